"""The relayer's main loop: each round follows the chain (once, for both paths), serves, rejects
and settles the on-chain calls, settles the fast path's receipts that are due, then does a few
steps of jury duty on the deployment's dispute court (relayer/juror.py), if it has one.

The on-chain path runs each new call on its verified model file, signs and stores the answer
and settles answers in batches; the fast path (relayer/fast/) answers over HTTP meanwhile.

Open requests (requestInference) may be served by any active relayer and rejected by none: a
call this relayer cannot serve (bad input...) is left to the others, and its caller takes a
refund after the deadline. Requests designated to this relayer (requestInferenceVia, event
RelayerDesignated) are served or rejected with a reason; requests designated to another relayer
are ignored. A call whose model file the relayer lacks waits while the file is fetched in the
background (relayer/file_fetcher.py) and is served once it is held, unless another relayer
settled it meanwhile; a designated one is rejected (reason 3) only once no source has served
the file for `file_wait` seconds (docs/model-files.md says why).

One loop, one thread, at most one transaction in flight. Every step is driven by the state file
(relayer/state.py), so the loop can be killed anywhere and resumed: it never runs again a call
it answered, and settlement is safe to repeat because the escrow settles a request only once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

import requests

from .. import codec
from ..contracts import COURT, ESCROW, REGISTRY, RELAYERS, RequestStatus, SkipReason
from ..errors import (
    ChainUnreachableError,
    InvalidInputError,
    ModelHubError,
    NotActiveRelayerError,
    RejectReason,
    RequestExpiredError,
    RequestNotPendingError,
    reject_reason_of,
)
from ..fetch import Limits, Source
from ..hub import Hub
from ..rpc import JsonRpc
from ..runtime import ModelRuntime
from ..store import ModelStore, digest_to_cid
from ..typed_data import Attestation
from .chain_follower import ChainFollower, first_block_since
from .court_events import CourtEvents
from .file_fetcher import FileFetcher, shuffled
from .fast.book import ReceiptBook
from .fast.calls import FastCalls
from .fast.chain_view import ChainView
from .fast.channels import ChannelStore
from .fast.settlement import Settlement
from .juror import Juror
from .metrics import RelayerMetrics
from .model_cards import CardTolerances
from .paid_requests import PaidRequests
from .peers import RelayerEndpoints
from .registered_files import RegisteredFiles
from .settings import RelayerConfig
from .signing import AttestationSigner
from .state import CallState, RelayerState, StoredCall

log = logging.getLogger("modelhub.relayer")


class Relayer:
    """The daemon. `run()` loops until `stop()`; `step()` does one round (tests drive it)."""

    def __init__(self, hub: Hub, config: RelayerConfig, metrics: RelayerMetrics | None = None):
        self.hub = hub
        self.config = config
        self.metrics = metrics or RelayerMetrics()
        self.store = ModelStore(config.store_dir / "artifacts", max_size=config.max_upload_bytes)
        self.state = RelayerState(config.store_dir / "relayer.sqlite")
        self.state.bind(hub.deployment.chain_id, hub.deployment.inference_escrow)
        self.runtime = ModelRuntime(time_limit_s=config.inference_time_limit, store=self.store)
        self.address = hub.address
        self.chain_head = 0
        self.chain_time = 0
        self._stopping = threading.Event()
        self._relayer_fee_bps: int | None = None
        self._recovered = False
        self.channels = ChannelStore(config.store_dir / "receipts.sqlite")
        self.channels.bind(hub.deployment.chain_id, hub.deployment.inference_escrow, hub.address)
        self.rpc = JsonRpc()
        self.requests = PaidRequests(self.state, hub.address, lambda: hub.request_timeout, _block_time, self.metrics)
        addresses = {ESCROW: hub.escrow_address, REGISTRY: hub.registry_address, RELAYERS: hub.relayers_address}
        court = hub.deployment.dispute_court  # None: a deployment from before disputes, with no juror
        if court is not None:
            addresses[COURT] = court
        self.follower = ChainFollower(self.rpc, addresses, hub.deployment.start_block, self.requests,
                                      config.confirmations, config.max_scan_blocks)
        # Model files it lacks: fetched in the background from the other relayers and --fetch-from.
        self.peers = RelayerEndpoints(hub.address)
        self.configured_sources = config.file_sources()
        self.fetcher = FileFetcher(self.store, self._file_sources, self.metrics,
                                   Limits(config.max_upload_bytes, read_timeout=config.fetch_read_timeout,
                                          total_timeout=config.fetch_timeout),
                                   config.fetch_min_retry, config.fetch_max_retry)
        # The fast path: the book, its chain view, its calls and its settlements.
        self.files = RegisteredFiles(self.follower)
        self.book = ReceiptBook(self.channels.load(), config.max_callers)
        self.view = ChainView(hub, self.book, config.chain_refresh_interval)
        self.fast = FastCalls(self.view, self.channels, self.files, self.runtime, self.fetcher.want,
                              AttestationSigner(hub), self.metrics, config, self.rpc)
        self.settlement = Settlement(self.view, self.channels, self.metrics, config)
        # In order: a new model's files are known before the view reads the model.
        self.follower.add(self.peers, in_memory=True)
        self.follower.add(self.files, in_memory=True)
        self.follower.add(self.view, in_memory=True)
        self.follower.add(self.requests)
        self.juror: Juror | None = None
        if court is not None:
            self.court_events = self.follower.add(CourtEvents(self.state, hub.address, self.metrics))
            cards = CardTolerances(self.files.card_uri, self.fetcher, self.store, config.file_wait)
            self.juror = Juror(hub, self.state, self.court_events, self.runtime, self.fetcher, self.files, cards,
                               self.metrics, config.jury_actions_per_round, lambda: self.stopping)
        # Request ids in a fulfillBatch in flight: GET /v1/requests/{id} waits for their outcome
        # instead of answering "settling" to a caller who saw the settlement on chain first.
        self.settling: set[int] = set()

    # ------------------------------------------------------------------ loop

    def stop(self) -> None:
        """Asks the loop to finish the round it is in (including a batch in flight) and return."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        backoff = self.config.min_backoff
        log.info("relayer %s serving deployment %s on chain %s", self.address, self.hub.deployment.inference_escrow,
                 self.hub.deployment.chain_id)
        while not self.stopping:
            try:
                busy = self.step()
                backoff = self.config.min_backoff
            except Exception as exc:  # noqa: BLE001 -- a daemon left running for weeks must not die of one bad round
                if _chain_unreachable(exc):
                    self.metrics.rpc_errors.inc()
                    log.warning("chain unreachable (%s); retrying in %.1fs", _first_line(exc), backoff)
                elif _out_of_gas_money(exc):
                    self.metrics.round_errors.inc()
                    log.error("the account %s cannot pay for gas (%s): fund it; retrying in %.1fs", self.address,
                              _first_line(exc), backoff)
                else:
                    self.metrics.round_errors.inc()
                    log.exception("round failed; retrying in %.1fs (state is intact: nothing is lost)", backoff)
            else:
                if not busy:
                    self._stopping.wait(self.config.poll_interval)
                continue
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self.config.max_backoff)
        try:  # what it holds is settled before it goes: it may not come back
            self.settlement.settle_all("shutdown")
        except Exception as exc:  # noqa: BLE001 -- settled at the next start instead
            log.warning("could not settle the open receipt channels before stopping (%s); they are settled at "
                        "the next start", _first_line(exc))
        log.info("relayer stopped; %s", self.state.counts())

    def step(self) -> bool:
        """One round: recover (first time), follow, serve, reject, settle, then the fast path's
        recovery (first time) and settlements, then jury duty. True if it did work."""
        if not self._recovered:
            self.recover()
            self._recovered = True
        seen = self.follow()
        woken = self.wake_waiting()
        served = self.serve()
        rejected = self.reject_unservable()
        settled = self.settle()
        fast_settled = self.settle_receipts()
        jury = self.juror.step(self.chain_head, self.chain_time) if self.juror and not self.stopping else 0
        return bool(seen or woken or served or rejected or settled or fast_settled or jury)

    # ------------------------------------------------------------------ recovery

    def recover(self) -> None:
        """After a restart: asks the chain how each call left open in the state file ended.
        Answers that were settled while the relayer was down (or whose batch was in flight when
        it died) are closed; the rest stay open and are settled or rejected as usual."""
        open_calls = self.state.in_state(CallState.ANSWERED, limit=1_000_000) + self.state.in_state(
            CallState.REJECTING, limit=1_000_000
        )
        for call in open_calls:
            request = self.hub.get_request(call.request_id)
            if request.status is RequestStatus.PENDING:
                continue
            self._close_ended(call, request.status)
        if open_calls:
            log.info("recovered %d open calls from %s", len(open_calls), self.state.path)
        if self.juror is not None and self.court_events.is_new():
            self._backfill_court_events()

    def _backfill_court_events(self) -> None:
        """A state file from a relayer that predates the juror has its cursor past the disputes
        opened before the upgrade: their court events are read once, from the blocks of the last
        dispute window and vote periods (a dispute opened earlier and drawn on time has ended)."""
        court = self.court_events
        cursor = self.state.next_block
        if cursor is None:  # a new state file: the follower reads the court from the start block
            court.mark_complete()
            return
        from ape import chain

        terms = self.hub.dispute_terms()
        head = chain.blocks.head
        since = head.timestamp - terms.dispute_window - terms.commit_period - terms.reveal_period
        start = first_block_since(since, self.hub.deployment.start_block, head.number, _block_time)
        if start < cursor:
            log.info("this state file predates the juror: reading the dispute court's events of blocks %d-%d once",
                     start, cursor - 1)
        self.follower.backfill(court, start, court.mark_complete)

    def _close_ended(self, call: StoredCall, status: RequestStatus) -> None:
        if status is RequestStatus.FULFILLED and call.state is CallState.ANSWERED and self._fulfilled_by_us(call):
            self._count_settled([call])
            self.state.mark_ended([call.request_id], CallState.SETTLED, "settled (confirmed after a restart)")
        elif status is RequestStatus.REJECTED and call.state is CallState.REJECTING:
            self.state.mark_ended([call.request_id], CallState.REJECTED)
        else:
            self.metrics.requests_dropped.inc()
            self.state.mark_ended([call.request_id], CallState.DROPPED, f"ended on chain as {status.name.lower()}")

    def _fulfilled_by_us(self, call: StoredCall) -> bool:
        found = self.hub.fulfilled_by(call.request_id)  # (relayer, outputHash) of the settlement
        return found is not None and found[0] == self.address

    # ------------------------------------------------------------------ follow

    def follow(self) -> int:
        """Reads the new blocks up to `confirmations` behind the head, for every consumer;
        returns how many new paid calls they held."""
        from ape import chain

        head = chain.blocks.head
        self.chain_head, self.chain_time = head.number, head.timestamp
        self.view.chain_time = max(self.view.chain_time, head.timestamp)
        self.metrics.chain_head.set(head.number)
        before = self.requests.added
        self.follower.step(head.number)
        return self.requests.added - before

    def settle_receipts(self) -> bool:
        """The fast path's part of a round: after a start, settles the receipts left open;
        then settles what is due. True if it sent a settlement."""
        if not self.settlement.recovered:
            self.settlement.recover()
            self.view.live = True
        if self.view.refresh_if_due():
            self.settlement.update_gauges()
        return self.settlement.settle_due()

    # ------------------------------------------------------------------ serve

    def serve(self, limit: int | None = None) -> int:
        """Runs new calls: each ends ANSWERED (output signed and stored) or REJECTING. The
        round's answers are committed together, before any of them is settled or served."""
        calls = self.state.in_state(CallState.NEW, limit=limit or self.config.batch_size)
        answers = []
        for call in calls:
            if self.stopping:
                break
            answer = self.serve_one(call)
            if answer is not None:
                answers.append(answer)
        self.state.mark_answered(answers)
        return len(calls)

    def serve_one(self, call: StoredCall) -> tuple[int, bytes, bytes, bytes] | None:
        """Runs one call; returns its answer (id, output, output hash, signature) to store, or
        None when the call was dropped or found unservable."""
        if self.chain_time > call.deadline:
            self.metrics.requests_dropped.inc()
            self.state.mark_ended([call.request_id], CallState.DROPPED, "deadline passed before it was served")
            log.info("request %s expired before it was served; the caller can take a refund", _short(call.request_id))
            return None
        started = time.perf_counter()
        try:
            output = self._run(call)
        except _FileMissing as missing:
            self.state.mark_waiting([call.request_id], f"waiting for the model file {missing.cid}, which this relayer "
                                    "is fetching")
            log.info("request %s waits for the model file %s, which this relayer lacks and is fetching",
                     _short(call.request_id), missing.cid)
            return None
        except ModelHubError as exc:
            if exc.reject_reason is None:
                raise  # not the call's fault (the chain is down, say): retried, never rejected
            reason = reject_reason_of(exc)
            if call.designated is None:
                # Open to every relayer and rejectable by none: another relayer may accept the
                # input; otherwise the caller takes a refund after the deadline.
                self.metrics.requests_dropped.inc()
                self.state.mark_ended([call.request_id], CallState.DROPPED,
                                      f"not servable here (reason {int(reason)}: {exc}); left to other relayers, "
                                      "refundable after the deadline")
                log.info("request %s is not servable here (reason %d): %s; left to other relayers",
                         _short(call.request_id), reason, exc)
                return None
            self.state.mark_rejecting(call.request_id, int(reason), str(exc))
            log.info("request %s cannot be served (reason %d): %s", _short(call.request_id), reason, exc)
            return None
        output_hash = codec.output_hash(output)
        signature = self.hub.sign_attestation(_attestation(call, output_hash))
        self.metrics.inference_seconds.observe(time.perf_counter() - started)
        return call.request_id, output, output_hash, signature

    def _run(self, call: StoredCall) -> bytes:
        """The canonical output bytes of the call, or a ModelHubError carrying its reject reason;
        _FileMissing when the model file is not held (its fetch is started)."""
        if len(call.input) > self.config.max_input_bytes:
            raise InvalidInputError(
                f"the input is {len(call.input)} bytes; this relayer accepts at most {self.config.max_input_bytes}"
            )
        inputs = codec.decode_input(call.input)
        digest = self._digest(call)
        if not self.fetcher.want(digest).held:
            raise _FileMissing(digest_to_cid(digest))
        outputs = self.runtime.run(digest, inputs)
        return codec.encode_output(outputs)

    def _digest(self, call: StoredCall) -> bytes:
        return self.files.digest(call.model_id, call.version) or self.hub.version_digest(call.model_id, call.version)

    def _file_sources(self) -> list[Source]:
        """Where a missing file is asked for: the configured sources first (the operator's
        choice), then every other registered relayer, in a random order."""
        peers = []
        for url in shuffled(self.peers.others()):
            try:
                peers.append(Source.parse(url))
            except ValueError:
                continue  # anyone may register any string as its endpoint
        return list(dict.fromkeys(self.configured_sources + peers))

    # ------------------------------------------------------------------ waiting for files

    def wake_waiting(self) -> int:
        """Looks at the calls waiting for a model file: those whose file is now held are served
        (unless they ended on chain meanwhile: another relayer settled them, say); those past
        their deadline are dropped; a designated one whose file no source served for
        `file_wait` seconds is rejected (reason 3: the caller is refunded at once, and no other
        relayer may serve it). Returns how many calls moved."""
        calls = self.state.in_state(CallState.WAITING, limit=100_000)
        if not calls:
            return 0
        by_digest: dict[bytes, list[StoredCall]] = defaultdict(list)
        expired = []
        for call in calls:
            if self.chain_time > call.deadline:
                expired.append(call.request_id)
            else:
                by_digest[self._digest(call)].append(call)
        if expired:
            self.metrics.requests_dropped.inc(len(expired))
            self.state.mark_ended(expired, CallState.DROPPED, "deadline passed while waiting for the model file")
        ready, rejecting, now = [], 0, time.monotonic()
        for digest, waiting in by_digest.items():
            fetch = self.fetcher.want(digest)
            if fetch.held:
                ready += waiting
                continue
            if not fetch.given_up_for(self.config.file_wait, now):
                continue
            for call in waiting:
                if call.designated is not None:
                    rejecting += 1
                    self.state.mark_rejecting(call.request_id, int(RejectReason.MODEL_FILE),
                                              f"the model file {digest_to_cid(digest)} is not held here and no source "
                                              f"served it for {self.config.file_wait:g} s: {fetch.problem}")
        return len(expired) + rejecting + self._ready(ready)

    def _ready(self, calls: list[StoredCall]) -> int:
        """Waiting calls whose file is held: NEW again if still pending on chain, else dropped."""
        if not calls:
            return 0
        statuses = self.hub.request_statuses([call.request_id for call in calls])
        pending = [c.request_id for c in calls if statuses[c.request_id] is RequestStatus.PENDING]
        self.state.mark_ready(pending)
        for call in calls:
            status = statuses[call.request_id]
            if status is not RequestStatus.PENDING:
                self.metrics.requests_dropped.inc()
                self.state.mark_ended([call.request_id], CallState.DROPPED,
                                      f"ended on chain as {status.name.lower()} while this relayer fetched the file")
        return len(calls)

    # ------------------------------------------------------------------ reject

    def reject_unservable(self) -> int:
        """Sends the on-chain rejection of each call designated to this relayer that it found
        unservable; the caller is refunded at once. Open calls are never rejected (the escrow
        refuses: no relayer may refund a call another one answered)."""
        calls = self.state.in_state(CallState.REJECTING, limit=self.config.batch_size)
        for call in calls:
            if self.stopping:
                break
            if call.designated is None:  # a state file from before designated requests
                self.state.mark_ended([call.request_id], CallState.DROPPED,
                                      "open request: not rejectable; left to other relayers")
                continue
            try:
                self.hub.reject(call.request_id, call.reject_reason or RejectReason.OTHER)
            except RequestNotPendingError:
                self._close_ended(call, self.hub.get_request(call.request_id).status)
                continue
            except NotActiveRelayerError as exc:
                log.error("cannot reject: %s", exc)
                return 0
            except ModelHubError as exc:
                if getattr(exc, "error_name", "") != "InferenceEscrow_NotDesignatedRelayer":
                    raise
                self.state.mark_ended([call.request_id], CallState.DROPPED, "not designated to this relayer")
                continue
            self.metrics.requests_rejected.labels(reason=str(call.reject_reason)).inc()
            self.state.mark_ended([call.request_id], CallState.REJECTED)
            log.info("rejected request %s (reason %s); caller refunded", _short(call.request_id), call.reject_reason)
        return len(calls)

    # ------------------------------------------------------------------ settle

    def settle(self) -> int:
        """Settles up to `batch_size` answered calls with one fulfillBatch transaction."""
        calls = self.state.in_state(CallState.ANSWERED, limit=self.config.batch_size)
        if not calls:
            return 0
        live = []
        for call in calls:
            if self.chain_time > call.deadline:
                self.metrics.requests_dropped.inc()
                self.state.mark_ended([call.request_id], CallState.DROPPED, "deadline passed before settlement")
            else:
                live.append(call)
        if not live:
            return len(calls)
        self.settling.update(c.request_id for c in live)
        try:
            return self._settle_batch(calls, live)
        finally:
            self.settling.difference_update(c.request_id for c in live)

    def _settle_batch(self, calls: list[StoredCall], live: list[StoredCall]) -> int:
        try:
            outcomes = self.hub.fulfill_batch([(c.attestation(), c.signature) for c in live])
        except RequestExpiredError:
            return 0
        except NotActiveRelayerError as exc:
            log.error("cannot settle: %s", exc)
            return 0
        self.metrics.settlement_batches.inc()
        self.metrics.settlement_batch_size.observe(len(live))
        by_id = {c.request_id: c for c in live}
        settled = [by_id[o.request_id] for o in outcomes if o.settled]
        self._count_settled(settled)
        self.state.mark_ended([c.request_id for c in settled], CallState.SETTLED)
        for outcome in outcomes:
            if outcome.settled:
                continue
            call = by_id[outcome.request_id]
            if outcome.skip_reason is SkipReason.NOT_PENDING and self._fulfilled_by_us(call):
                # An earlier transaction of ours settled it (sent in a round that then failed,
                # a receipt that timed out...): it is paid to us.
                self._count_settled([call])
                self.state.mark_ended([call.request_id], CallState.SETTLED, "settled by an earlier transaction")
                continue
            if outcome.skip_reason in (SkipReason.NOT_PENDING, SkipReason.DEADLINE_PASSED):
                # Settled by another relayer first, refunded, or too late: nothing is owed to us.
                self.metrics.requests_dropped.inc()
                self.state.mark_ended([call.request_id], CallState.DROPPED, f"skipped: {outcome.skip_reason.name.lower()}")
            else:
                log.error("request %s was refused at settlement (%s): this relayer's attestation is wrong",
                          _short(call.request_id), outcome.skip_reason.name)
                self.state.mark_ended([call.request_id], CallState.DROPPED, f"refused: {outcome.skip_reason.name.lower()}")
        log.info("settled %d of %d answered call(s) in one transaction", len(settled), len(live))
        return len(calls)

    def _count_settled(self, calls: list[StoredCall]) -> None:
        if not calls:
            return
        if self._relayer_fee_bps is None:
            self._relayer_fee_bps = self.hub.relayer_fee_bps
        now = time.time()
        for call in calls:
            self.metrics.requests_served.inc()
            self.metrics.fees_earned.inc(call.price * self._relayer_fee_bps // 10_000)
            if call.answered_at:
                self.metrics.settlement_seconds.observe(max(0.0, now - call.answered_at))

    # ------------------------------------------------------------------ status

    def status(self) -> dict:
        """What /healthz reports."""
        counts = self.state.counts()
        return {
            "chainId": self.hub.deployment.chain_id,
            "relayer": self.address,
            "chainHead": self.chain_head,
            "nextBlock": self.state.next_block,
            "pending": sum(counts[s.value] for s in CallState if s.open),
            "calls": counts,
            "fast": self.fast.status(),
            "disputes": self.state.dispute_counts() if self.juror else None,
        }


class _FileMissing(Exception):
    """The call's model file is not held yet: the call waits while the file is fetched."""

    def __init__(self, cid: str) -> None:
        super().__init__(cid)
        self.cid = cid


def _block_time(number: int) -> int:
    from ape import chain

    return chain.blocks[number].timestamp


def _attestation(call: StoredCall, output_hash: bytes) -> Attestation:
    return Attestation(call.request_id, call.model_id, call.version, call.input_hash, output_hash)


def _chain_unreachable(exc: BaseException) -> bool:
    """True if `exc`, or anything it was raised from, says the node could not be reached. Ape
    wraps connection failures in errors of its own (BlockNotFoundError, ProviderError...)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ChainUnreachableError, requests.ConnectionError, requests.Timeout, ConnectionError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _out_of_gas_money(exc: BaseException) -> bool:
    """True if `exc` says this account cannot pay for a transaction's gas (Ape checks the balance
    before sending; a node refuses with "insufficient funds"): no traceback helps with that."""
    text = str(exc).lower()
    return "exceeds account balance" in text or "insufficient funds for gas" in text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _short(request_id: int) -> str:
    """A request id as people read it: caller prefix and request number."""
    caller, number = request_id >> 96, request_id & ((1 << 96) - 1)
    return f"0x{caller:040x}"[:10] + f"…#{number}"

