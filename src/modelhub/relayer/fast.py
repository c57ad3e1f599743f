"""Fast calls: the relayer's hot path for off-chain calls paid with signed receipts
(POST /v1/models/{modelId}/infer, docs/fast-calls.md), and the settlement of those receipts.

A caller pays this relayer's fast calls out of the credit it *reserved* for this relayer
(InferenceEscrow.reserve): only this relayer can settle receipts against that reservation, and
it comes back to the caller only `withdrawalDelay` after an announcement. So the relayer knows
from the chain alone what it can serve without loss:

    servable = reserved - releasing (once announced) - unsettled receipts it holds - calls in flight

The daemon thread follows the escrow's Reserved / ReleaseAnnounced / Released events for this
relayer (an indexed topic) and ReceiptSignerChanged, so the hot path holds every caller that
reserved credit here in memory and makes no RPC for a caller: a caller the follower does not
know is refused at once (`no_reservation`). A receipt's signature is recovered locally and
compared with the caller and the caller's receipt signer key in force, before anything else is
looked at; contract wallets sign with a registered receipt signer key (no ERC-1271 call: its
answer could differ between this check and settlement).

What stays exposed, and why it is bounded:
* Nothing of the credit: reservations only shrink by this relayer's own settlements, and an
  announced release is subtracted the moment its event is seen and the caller's channels are
  settled at once (the release waits `withdrawalDelay`).
* A price rise under notice: receipts may pay the notice's floor only while the notice has more
  than `min_receipt_lifetime / 2` to run; channels holding floor-priced receipts are settled
  then (the escrow keeps a channel that last settled under the floor settleable at the floor,
  so a late settlement is not lost either).
* A receipt signer change: receipts signed by the outgoing key are settled before it ends.
* Fee changes and minimum bond rises are announced ahead (FeesEffectiveAt, MinBondEffectiveAt):
  every open channel is settled before they apply.

Memory bounds (nothing grows with requests that are refused):
* callers: only accounts that reserved credit here, at most `max_callers` (the smallest
  reservations without open channels are dropped first when full);
* per-channel locks and in-flight amounts: one per call in flight, at most `max_in_flight`;
* models: only registered ones (from the registry's events), read once, then kept by events;
* channels: one per (caller, model) that paid a receipt here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from eth_utils import keccak as _eth_keccak

from .. import codec
from ..attestation import ATTESTATION_TYPEHASH, Attestation
from ..contracts import ReceiptSkipReason, chain_errors
from ..errors import (
    ArtifactNotFoundError,
    DigestMismatchError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelExecutionError,
    ModelFileError,
    OutputEncodingError,
)
from ..receipts import RECEIPT_TYPEHASH, FastSigner, Receipt, domain_separator, recover_digest_address
from ..runtime import ModelRuntime
from .channels import Channel, ChannelStore
from .follower import RegisteredFiles, Rpc, address_topic, decode_words, encode_call, topic, word, word_address
from .metrics import RelayerMetrics

log = logging.getLogger("modelhub.relayer")

MAX_CALLS = 2**64 - 1  # the escrow's limits: beyond them a receipt can never settle
MAX_AMOUNT = 2**160 - 1
MIN_RECEIPT_PRICE = 1  # InferenceEscrow.MIN_RECEIPT_PRICE: every receipt call pays at least this
_WORD = 32
_BODY_OVERHEAD = 4096  # bytes a request body may hold besides the input
INLINE_MODEL_S = 0.001  # models averaging less than this run on the event loop: a thread hop costs more

RESERVED = topic("Reserved(address,address,uint256,uint256)")
RELEASE_ANNOUNCED = topic("ReleaseAnnounced(address,address,uint256,uint64)")
RELEASED = topic("Released(address,address,uint256)")
RECEIPT_SIGNER_CHANGED = topic("ReceiptSignerChanged(address,address,uint64)")
FEES_EFFECTIVE_AT = topic("FeesEffectiveAt(uint16,uint16,uint64)")
PRICE_CHANGED = topic("PriceChanged(uint256,uint256,uint256)")
PRICE_NOTICE_STARTED = topic("PriceNoticeStarted(uint256,uint256,uint64)")
MODEL_ACTIVE_CHANGED = topic("ModelActiveChanged(uint256,bool)")
MIN_BOND_EFFECTIVE_AT = topic("MinBondEffectiveAt(uint256,uint64)")


try:  # safe-pysha3 (requirements.lock): ~3x faster than eth_hash's pycryptodome backend
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        return _keccak_256(data).digest()
except ImportError:  # pragma: no cover -- same digest, slower
    def keccak(data: bytes) -> bytes:
        return _eth_keccak(data)


class FastCallError(Exception):
    """A refused fast call: HTTP `status`, a stable `code`, a message saying what to do, and
    extra fields for the client. A refused call is not charged."""

    def __init__(self, status: int, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


@dataclass(frozen=True)
class CallerView:
    """What the hot path knows of a caller's reservation for this relayer and of its receipt
    signer key (replaced whole, so a reader never sees half an update)."""

    reserved: int
    releasing: int  # announced to go back to free credit at `release_at` (0: none)
    release_at: int
    signer: bytes | None  # raw 20 bytes of the receipt signer key in force when read (None: none)
    next_signer: bytes | None  # the key that replaces it at `next_at` (None with next_at: removal)
    next_at: int  # 0: no change pending

    def signer_at(self, when: int) -> bytes | None:
        if self.next_at and when >= self.next_at:
            return self.next_signer
        return self.signer

    @property
    def spendable(self) -> int:
        return max(self.reserved - self.releasing, 0)


@dataclass(frozen=True)
class ModelView:
    """What the hot path knows of a model (ModelRegistry.receiptTerms and getModel)."""

    price: int
    floor_price: int  # the last price rise's floor (the price before it), <= price
    floor_ends_at: int  # when that rise's notice ends (kept after it ended; 0: never a rise)
    active: bool
    latest_version: int


@dataclass
class FastConfig:
    """The fast-call options of RelayerConfig."""

    settle_threshold: int
    settle_interval: float
    min_receipt_lifetime: int
    settle_batch_size: int
    chain_refresh_interval: float
    max_input_bytes: int
    min_settle_amount: int = 10**15
    max_receipt_lifetime: int = 2 * 86_400
    max_callers: int = 200_000
    max_in_flight: int = 1_024
    max_scan_blocks: int = 2_000


# ---------------------------------------------------------------------------- signing


class AttestationSigner:
    """Signs attestations of fast calls: through libsecp256k1 when the account's key can be
    read (Ape test accounts; keyfile accounts with APE_ACCOUNTS_<alias>_PASSPHRASE set),
    otherwise through the Ape account, about 10x slower."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self._domain = domain_separator(hub.deployment.chain_id, hub.deployment.inference_escrow)
        key = private_key_of(hub.account)
        self._fast = FastSigner(key) if key is not None else None
        if self._fast is not None and self._fast.address != hub.address:
            log.warning("the key found for %s signs as %s; signing through the account instead",
                        hub.address, self._fast.address)
            self._fast = None
        if self._fast is None:
            log.info("signing fast-call attestations through the Ape account (slow path): set "
                     "APE_ACCOUNTS_<alias>_PASSPHRASE to let the relayer sign with the key directly")

    @property
    def fast(self) -> bool:
        return self._fast is not None

    def digest(self, request_id: int, model_id: int, version: int, input_hash: bytes, output_hash: bytes) -> bytes:
        """The attestation's EIP-712 digest, built from raw words (no ABI encoder per call)."""
        struct = keccak(ATTESTATION_TYPEHASH + request_id.to_bytes(_WORD, "big") + model_id.to_bytes(_WORD, "big")
                        + version.to_bytes(_WORD, "big") + input_hash + output_hash)
        return keccak(b"\x19\x01" + self._domain + struct)

    def sign(self, request_id: int, model_id: int, version: int, input_hash: bytes, output_hash: bytes) -> bytes:
        if self._fast is not None:
            return self._fast.sign_digest(self.digest(request_id, model_id, version, input_hash, output_hash))
        return self.hub.sign_attestation(Attestation(request_id, model_id, version, input_hash, output_hash))


def private_key_of(account: Any) -> bytes | None:
    """The raw private key of an Ape account, when it can be had without a prompt."""
    key = getattr(account, "private_key", None)  # Ape's test accounts
    if key:
        return bytes.fromhex(key.removeprefix("0x")) if isinstance(key, str) else bytes(key)
    alias, keyfile = getattr(account, "alias", None), None
    try:
        keyfile = getattr(account, "keyfile", None)  # Ape keyfile accounts: the encrypted JSON
    except Exception:  # noqa: BLE001 -- an unreadable keyfile: Ape reports it when it signs
        return None
    passphrase = os.environ.get(f"APE_ACCOUNTS_{alias}_PASSPHRASE") if alias else None
    if not keyfile or not passphrase:
        return None
    from eth_account import Account

    try:
        return bytes(Account.decrypt(keyfile, passphrase))
    except ValueError:
        log.warning("APE_ACCOUNTS_%s_PASSPHRASE does not decrypt that account's keyfile", alias)
        return None


# ---------------------------------------------------------------------------- the hot path


@dataclass(frozen=True)
class _Call:
    """A parsed request body."""

    inputs: dict[str, Any]
    version: int
    caller: str  # lowercase 0x-hex
    model_id: int
    calls: int
    amount: int
    deadline: int
    signature: bytes
    digest: bytes  # the receipt's EIP-712 digest


class FastCalls:
    """The fast-call side of one relayer: the in-memory chain view, the channels, the HTTP
    handlers' logic (`infer`, `channel_view`) and the daemon's side (`tick`)."""

    def __init__(self, hub: Any, runtime: ModelRuntime, channels: ChannelStore, metrics: RelayerMetrics,
                 config: FastConfig, ensure_artifact: Callable[[bytes], None], signer: AttestationSigner,
                 files: RegisteredFiles | None = None, rpc: Rpc | None = None) -> None:
        self.hub = hub
        self.runtime = runtime
        self.channel_store = channels
        self.metrics = metrics
        self.config = config
        self.ensure_artifact = ensure_artifact
        self.signer = signer
        deployment = hub.deployment
        self.relayer = hub.address.lower()
        self._relayer_word = bytes.fromhex(self.relayer[2:]).rjust(_WORD, b"\0")
        self._domain = domain_separator(deployment.chain_id, deployment.inference_escrow)
        self.max_body = config.max_input_bytes + _BODY_OVERHEAD
        self.settle_margin = max(1, config.min_receipt_lifetime // 2)
        self.rpc = rpc or Rpc()
        contracts = hub.contracts
        self._escrow = str(contracts.escrow.address).lower()
        self._registry = str(contracts.registry.address).lower()
        self._relayers = str(contracts.relayers.address).lower()
        self.files = files or RegisteredFiles(self.rpc, self._registry, deployment.start_block, config.max_scan_blocks)

        # Chain state for the hot path; written by the daemon thread and the loader pool.
        self.callers: dict[str, CallerView] = {}
        self.models: dict[int, ModelView] = {}
        self.chain_time = 0  # latest block timestamp the daemon saw
        self.hot_path_chain_reads = 0  # chain reads made while answering a fast call

        # Channels; `_book` guards the money: settled totals, reservations and amounts in
        # flight, which the loop and the daemon thread both change.
        self._book = threading.Lock()
        self.channels: dict[tuple[str, int], Channel] = {}
        self._by_caller: dict[str, list[Channel]] = {}
        self._in_flight_amount: dict[str, int] = {}  # increases of calls being run, per caller
        self._locks: dict[tuple[str, int], list] = {}  # [asyncio.Lock, users]: one per call in flight
        self._in_flight = 0  # fast calls being served (event loop thread only)
        for channel in channels.load():
            self._add_channel(channel)

        self._model_seconds: dict[bytes, float] = {}
        self._model_pool = ThreadPoolExecutor(max(2, os.cpu_count() or 2), thread_name_prefix="relayer-fast-model")
        self._chain_pool = ThreadPoolExecutor(2, thread_name_prefix="relayer-fast-chain")

        # Daemon-side state.
        self._recovered = False
        self._event_cursor = deployment.start_block
        self._last_refresh = time.monotonic()
        self._last_interval = time.monotonic()
        self._releasing: set[str] = set()  # callers whose announced release triggers a settlement
        self._notice_settled: dict[int, int] = {}  # model id -> floor_ends_at already settled for
        self._signer_settled: dict[str, int] = {}  # caller -> next_at already settled for
        self._fee_change_at = 0  # a fee change announced for this time
        self._fees_settled_for = 0
        self._min_bond_change: tuple[int, int] = (0, 0)  # (new minimum bond, effective at)
        self._min_bond_settled_for = 0
        self._retry_at: dict[tuple[str, int], float] = {}

    def close(self) -> None:
        self._model_pool.shutdown(wait=False, cancel_futures=True)
        self._chain_pool.shutdown(wait=False, cancel_futures=True)

    def now(self) -> int:
        """Unix time as the escrow will judge deadlines: a dev chain's clock may run ahead."""
        return max(int(time.time()), self.chain_time)

    # ------------------------------------------------------------------ POST /v1/models/{id}/infer

    async def infer(self, path_model_id: int, body: bytes) -> bytes:
        """Serves one fast call; the JSON answer as bytes, or FastCallError."""
        started = time.perf_counter()
        if self._in_flight >= self.config.max_in_flight:
            error = FastCallError(503, "busy", f"this relayer is serving {self._in_flight} fast calls already; "
                                  "try again in a moment")
            self.metrics.fast_calls_refused.labels(code=error.code).inc()
            raise error
        self._in_flight += 1
        try:
            answer = await self._infer(path_model_id, body)
        except FastCallError as error:
            self.metrics.fast_calls_refused.labels(code=error.code).inc()
            raise
        finally:
            self._in_flight -= 1
        self.metrics.fast_calls_accepted.inc()
        self.metrics.fast_call_seconds.observe(time.perf_counter() - started)
        return answer

    async def _infer(self, path_model_id: int, body: bytes) -> bytes:
        if len(body) > self.max_body:
            raise FastCallError(400, "bad_request", f"the body is {len(body)} bytes; this relayer takes inputs "
                                f"of at most {self.config.max_input_bytes} bytes")
        call = self._parse(path_model_id, body)
        now = self.now()
        min_deadline = now + self.config.min_receipt_lifetime
        if call.deadline < min_deadline:
            raise FastCallError(400, "deadline_too_soon", f"the receipt's deadline {call.deadline} leaves this "
                                f"relayer no time to settle it; sign a deadline of at least {min_deadline}",
                                minDeadline=min_deadline)
        max_deadline = now + self.config.max_receipt_lifetime
        if call.deadline > max_deadline:
            raise FastCallError(400, "deadline_too_far", f"the receipt's deadline {call.deadline} is further than "
                                f"this relayer holds receipts ({self.config.max_receipt_lifetime} s); sign a "
                                f"deadline of at most {max_deadline}", maxDeadline=max_deadline)
        # Who signed, and whether that key may sign for the caller: from memory only.
        signed_by = recover_digest_address(call.digest, call.signature)
        caller = self.callers.get(call.caller)
        if caller is None or caller.spendable == 0:
            raise FastCallError(402, "no_reservation", f"{call.caller} has no credit reserved for relayer "
                                f"{self.relayer}; reserve credit with this relayer first "
                                "(InferenceEscrow.reserve(relayer, amount), Hub.reserve), then pay with receipts (a reservation "
                                "made a moment ago counts from the relayer's next round: retry in a second)",
                                relayer=self.relayer)
        self._check_signer(call, caller, signed_by, now)
        model = self.models.get(call.model_id) or await self._load_model(call.model_id)
        if not model.active:
            raise FastCallError(409, "model_inactive", f"model {call.model_id} is inactive: its owner takes no calls")
        version = call.version or model.latest_version
        if version > model.latest_version:
            raise FastCallError(400, "bad_request", f"model {call.model_id} has versions 1 to "
                                f"{model.latest_version}; ask for one of them, or 0 for the latest")
        digest = self.files.digest(call.model_id, version) or await self._load_digest(call.model_id, version)

        key = (call.caller, call.model_id)
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                answer = await self._serve(call, model, version, digest, now)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]
        return answer

    def _check_signer(self, call: _Call, caller: CallerView, signed_by: bytes | None, now: int) -> None:
        if signed_by is not None and signed_by == bytes.fromhex(call.caller[2:]):
            return
        key = caller.signer_at(now)
        if signed_by is None or key is None or signed_by != key:
            raise FastCallError(401, "invalid_signature", f"the signature is neither {call.caller}'s nor its "
                                "receipt signer key's signature of this receipt (EIP-712, domain ModelHub/1 of this "
                                "escrow); sign the receipt exactly as sent. A contract wallet signs with a key it "
                                "registered with InferenceEscrow.setReceiptSigner")
        if caller.next_at and caller.signer_at(caller.next_at) != key and now >= caller.next_at - self.settle_margin:
            raise FastCallError(401, "signer_expiring", f"{call.caller}'s receipt signer key is replaced at "
                                f"{caller.next_at}, too soon for this relayer to settle a receipt it signs; sign "
                                "with the new key or the account's own key", signerChangesAt=caller.next_at)

    async def _serve(self, call: _Call, model: ModelView, version: int, digest: bytes, now: int) -> bytes:
        """Checks the totals, holds the increase, runs the model, commits the receipt and signs:
        runs with the channel locked."""
        key = (call.caller, call.model_id)
        channel = self.channels.get(key) or Channel(call.caller, call.model_id)
        increase = self._check_totals(call, channel, model, now)
        self._hold(call.caller, increase)
        try:
            if self._model_seconds.get(digest, 1.0) < INLINE_MODEL_S:
                output, output_hash, input_hash = self._run(call, digest, version)
            else:
                loop = asyncio.get_running_loop()
                output, output_hash, input_hash = await loop.run_in_executor(
                    self._model_pool, self._run, call, digest, version)
            # Shielded: once the commit is under way the channel is updated even if the
            # client goes away, so memory never lags what is on disk. A fast signer (it
            # cannot fail) signs while the writer thread waits for the disk; a wallet
            # that may refuse signs first, so no receipt is kept for an unanswered call.
            sign = partial(self.signer.sign, int.from_bytes(call.digest, "big"), call.model_id, version,
                           input_hash, output_hash)
            signature = None if self.signer.fast else sign()
            commit = asyncio.ensure_future(self._commit(channel, call))
            if signature is None:
                signature = sign()
            await asyncio.shield(commit)
        finally:
            with self._book:
                left = self._in_flight_amount[call.caller] - increase
                if left:
                    self._in_flight_amount[call.caller] = left
                else:
                    del self._in_flight_amount[call.caller]
        settled_calls, settled_amount = channel.settled_calls, channel.settled_amount
        request_id = int.from_bytes(call.digest, "big")
        return b"".join((
            b'{"modelId":%d,"version":%d,"output":' % (call.model_id, version), output,
            b',"outputHash":"0x', output_hash.hex().encode(),
            b'","attestation":{"requestId":"%d","modelId":%d,"version":%d,"inputHash":"0x'
            % (request_id, call.model_id, version), input_hash.hex().encode(),
            b'","outputHash":"0x', output_hash.hex().encode(),
            b'"},"signature":"0x', signature.hex().encode(),
            b'","channel":{"calls":"%d","amount":"%d","settledCalls":"%d","settledAmount":"%d"}}'
            % (call.calls, call.amount, settled_calls, settled_amount),
        ))

    def _parse(self, path_model_id: int, body: bytes) -> _Call:
        """The call in a request body; FastCallError 400 bad_request / wrong_channel."""
        # Nesting is checked before parsing (see codec.MAX_NESTING); a body with few brackets
        # cannot be deep, which spares the character scan on every small call.
        if body.count(b"[") + body.count(b"{") > codec.MAX_NESTING:
            try:
                codec._check_nesting(body.decode("utf-8", "replace"))
            except InvalidInputError as error:
                raise FastCallError(400, "bad_request", str(error)) from None
        try:
            data = json.loads(body, parse_constant=_refuse_constant)
            inputs, receipt, signature_text = data["input"], data["receipt"], data["signature"]
            version = data.get("version") or 0
            if not isinstance(inputs, dict) or not isinstance(receipt, dict) or type(version) is not int:
                raise ValueError("input and receipt must be JSON objects, version a number")
            if not 0 <= version < 2**32:
                raise ValueError("version must be a uint32")
            caller = _address(receipt["caller"], "caller")
            relayer = _address(receipt["relayer"], "relayer")
            model_id = _uint(receipt["modelId"], "modelId", 2**256 - 1)
            calls = _uint(receipt["calls"], "calls", MAX_CALLS)
            amount = _uint(receipt["amount"], "amount", MAX_AMOUNT)
            deadline = _uint(receipt["deadline"], "deadline", 2**64 - 1)
            if not isinstance(signature_text, str) or signature_text[:2] not in ("0x", "0X"):
                raise ValueError("signature must be 0x-hex")
            signature = bytes.fromhex(signature_text[2:])
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise FastCallError(400, "bad_request", f"malformed request ({detail[:200]}); send "
                                '{"input": {...}, "receipt": {"caller", "relayer", "modelId", "calls", "amount", '
                                '"deadline"}, "signature": "0x..."} as in docs/fast-calls.md') from None
        if relayer != self.relayer or model_id != path_model_id:
            raise FastCallError(400, "wrong_channel", f"the receipt names relayer {relayer} and model {model_id}; "
                                f"this is relayer {self.relayer} serving model {path_model_id}: sign a receipt for them")
        struct = keccak(RECEIPT_TYPEHASH + bytes.fromhex(caller[2:]).rjust(_WORD, b"\0") + self._relayer_word
                        + model_id.to_bytes(_WORD, "big") + calls.to_bytes(_WORD, "big")
                        + amount.to_bytes(_WORD, "big") + deadline.to_bytes(_WORD, "big"))
        digest = keccak(b"\x19\x01" + self._domain + struct)
        return _Call(inputs, version, caller, model_id, calls, amount, deadline, signature, digest)

    def _check_totals(self, call: _Call, channel: Channel, model: ModelView, now: int) -> int:
        """The receipt's increase over the channel, checked against the price; runs on the loop
        with the channel locked."""
        if call.calls != channel.calls + 1:
            raise FastCallError(409, "out_of_order", f"the channel's last accepted receipt has calls={channel.calls}; "
                                f"sign calls={channel.calls + 1} (totals since the channel opened)",
                                channel=self._channel_totals(channel))
        increase = call.amount - channel.amount
        receipt_price = self.receipt_price(model, now)
        most = max(model.price, receipt_price)
        if increase < receipt_price or increase > most:
            raise FastCallError(409, "wrong_amount", f"the amount must grow by between {receipt_price} and "
                                f"{most} over the last accepted {channel.amount}; it grows by {increase}",
                                price=str(model.price), receiptPrice=str(receipt_price),
                                channel=self._channel_totals(channel))
        return increase

    def receipt_price(self, model: ModelView, now: int) -> int:
        """What a new receipt must pay per call: the floor of a price rise while its notice has
        more than `settle_margin` to run (channels holding such receipts are settled then, so
        each settles while the escrow still takes the floor), otherwise the price; never less
        than the escrow's minimum of 1 base unit per call."""
        price = model.price
        if model.floor_price < price and now < model.floor_ends_at - self.settle_margin:
            price = model.floor_price
        return max(price, MIN_RECEIPT_PRICE)

    def _hold(self, caller: str, increase: int) -> None:
        """Counts `increase` against the caller's servable credit for the time of the call."""
        with self._book:
            view = self.callers.get(caller)
            spendable = view.spendable if view is not None else 0
            in_flight = self._in_flight_amount.get(caller, 0)
            unsettled = self._unsettled(caller)
            available = spendable - unsettled - in_flight
            if increase > available:
                raise FastCallError(402, "insufficient_credit", f"{caller} has {max(available, 0)} of credit this "
                                    f"relayer can count on (reserved here {view.reserved if view else 0}, "
                                    f"announced release {view.releasing if view else 0}, unsettled here "
                                    f"{unsettled + in_flight}) and this call needs {increase}; reserve more credit "
                                    "with this relayer or wait for settlement",
                                    available=str(max(available, 0)), needed=str(increase))
            self._in_flight_amount[caller] = in_flight + increase

    def _unsettled(self, caller: str) -> int:
        return sum(max(channel.amount - channel.settled_amount, 0) for channel in self._by_caller.get(caller, ()))

    def _run(self, call: _Call, digest: bytes, version: int) -> tuple[bytes, bytes, bytes]:
        """Runs the model (on the loop, or in a worker thread for slow models): (output bytes,
        output hash, input hash)."""
        try:
            input_bytes = codec.encode_plain(call.inputs)  # parsed JSON: plain already
            started = time.perf_counter()
            try:
                outputs = self.runtime.run(digest, call.inputs)
            except ArtifactNotFoundError:
                self.ensure_artifact(digest)  # fetches it from peers, or raises
                outputs = self.runtime.run(digest, call.inputs)
            else:
                # A running average of the model's time decides where its next calls run.
                elapsed = time.perf_counter() - started
                self._model_seconds[digest] = 0.9 * self._model_seconds.get(digest, elapsed) + 0.1 * elapsed
            output = codec.encode_plain(outputs)  # runtime.run returns plain Python
        except (InvalidInputError, ModelExecutionError, InferenceTimeoutError, OutputEncodingError) as error:
            raise FastCallError(422, "bad_input", str(error)) from None
        except (ArtifactNotFoundError, DigestMismatchError, ModelFileError) as error:
            raise FastCallError(503, "model_unavailable", f"{error}; try another relayer") from None
        return output, keccak(output), keccak(input_bytes)

    async def _commit(self, channel: Channel, call: _Call) -> None:
        await self.channel_store.save(channel, call.calls, call.amount, call.deadline, call.signature,
                                      alone=self._in_flight == 1)
        with self._book:
            channel.calls, channel.amount = call.calls, call.amount
            channel.deadline, channel.signature = call.deadline, call.signature
            if (channel.caller, channel.model_id) not in self.channels:
                self._add_channel(channel)

    def _add_channel(self, channel: Channel) -> None:
        self.channels[(channel.caller, channel.model_id)] = channel
        self._by_caller.setdefault(channel.caller, []).append(channel)

    def _channel_totals(self, channel: Channel) -> dict[str, str]:
        return {"calls": str(channel.calls), "amount": str(channel.amount),
                "settledCalls": str(channel.settled_calls), "settledAmount": str(channel.settled_amount)}

    # ------------------------------------------------------------------ GET /v1/channels/{caller}/{modelId}

    async def channel_view(self, caller_text: str, model_id_text: str) -> dict[str, Any]:
        try:
            caller = _address(caller_text, "caller")
            model_id = _uint(model_id_text, "modelId", 2**256 - 1)
        except (ValueError, TypeError) as error:
            raise FastCallError(400, "bad_request", f"{error}; use /v1/channels/<caller 0x-address>/<modelId>") from None
        model = self.models.get(model_id) or await self._load_model(model_id)
        channel = self.channels.get((caller, model_id)) or Channel(caller, model_id)
        view = {"caller": caller, "relayer": self.relayer, "modelId": model_id, **self._channel_totals(channel),
                "price": str(model.price), "receiptPrice": str(self.receipt_price(model, self.now()))}
        known = self.callers.get(caller)
        if known is not None:
            with self._book:
                available = known.spendable - self._unsettled(caller) - self._in_flight_amount.get(caller, 0)
            view.update(reserved=str(known.reserved), releasing=str(known.releasing), available=str(max(available, 0)))
        if channel.signature:
            # The caller's own signature of the totals: a client resuming the channel can check
            # that it really signed them, instead of taking the relayer's word.
            view["deadline"] = channel.deadline
            view["signature"] = "0x" + channel.signature.hex()
        return view

    # ------------------------------------------------------------------ chain reads off the loop

    async def _load_model(self, model_id: int) -> ModelView:
        """A registered model the hot path has not read yet (once per model: then events keep
        it); an id the registry's events never named is refused without a chain read."""
        if model_id not in self.files.latest:
            raise FastCallError(404, "unknown_model", f"this relayer knows no model {model_id} on this deployment "
                                "(list the models with `modelhub models list`); a model registered a moment ago is "
                                "known after the relayer's next round: retry in a few seconds")
        self.hot_path_chain_reads += 1
        self.metrics.fast_chain_reads.inc()
        loop = asyncio.get_running_loop()
        model = await loop.run_in_executor(self._chain_pool, self.read_model, model_id)
        if model is None:
            raise FastCallError(404, "unknown_model", f"there is no model {model_id} on this deployment; "
                                "list the models with `modelhub models list`")
        return model

    async def _load_digest(self, model_id: int, version: int) -> bytes:
        self.hot_path_chain_reads += 1
        self.metrics.fast_chain_reads.inc()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._chain_pool, self.hub.version_digest, model_id, version)

    def read_model(self, model_id: int) -> ModelView | None:
        """Reads a model's price, receipt floor, state and latest version; caches it. None if unknown."""
        registry = self.hub.contracts.registry
        with chain_errors():
            exists, price, floor, floor_ends_at, _, _ = registry.receiptTerms(model_id)
            if not exists:
                return None
            _, price, latest, active, _, _ = registry.getModel(model_id)
        view = ModelView(int(price), int(floor), int(floor_ends_at), bool(active), int(latest))
        self.models[model_id] = view
        return view

    def read_callers(self, callers: list[str]) -> None:
        """Reads the reservations for this relayer and the receipt signer keys of `callers`, in
        one JSON-RPC batch, and keeps the callers that have something reserved here."""
        if not callers:
            return
        datas = []
        for caller in callers:
            datas.append(encode_call("reservation(address,address)", [caller, self.relayer]))
            datas.append(encode_call("receiptSigner(address)", [caller]))
        results = self.rpc.eth_calls(self._escrow, datas)
        for index, caller in enumerate(callers):
            reserved, releasing, release_at = decode_words(results[2 * index] or b"", 3)
            signer, next_signer, next_at = decode_words(results[2 * index + 1] or b"", 3)
            view = CallerView(reserved, releasing, release_at, _raw_address(signer), _raw_address(next_signer),
                              next_at)
            self._keep_caller(caller, view)

    def _keep_caller(self, caller: str, view: CallerView) -> None:
        """Stores a caller's view within `max_callers`: a caller with nothing reserved and no open
        channel is forgotten; when full, the smallest reservation without open channels goes."""
        with self._book:
            open_here = any(channel.open for channel in self._by_caller.get(caller, ()))
            if view.reserved == 0 and not open_here:
                self.callers.pop(caller, None)
                return
            if caller not in self.callers and len(self.callers) >= self.config.max_callers:
                evictable = [(known.reserved, other) for other, known in self.callers.items()
                             if not any(channel.open for channel in self._by_caller.get(other, ()))]
                if not evictable:
                    log.warning("%s reserved credit here, but this relayer already follows %d callers with open "
                                "channels (max_callers); it is not served", caller, len(self.callers))
                    return
                smallest, other = min(evictable)
                if smallest >= view.reserved:
                    log.warning("%s reserved %d here; the %d callers followed (max_callers) all reserved more; "
                                "it is not served", caller, view.reserved, len(self.callers))
                    return
                del self.callers[other]
            self.callers[caller] = view

    # ------------------------------------------------------------------ the daemon's side

    def tick(self, chain_head: int, chain_time: int) -> bool:
        """One round of the daemon: follow events, settle what is due. True if it sent a settlement."""
        self.chain_time = max(self.chain_time, chain_time)
        self._follow(chain_head)
        if not self._recovered:
            self._recover()
            self._recovered = True
        if time.monotonic() - self._last_refresh >= self.config.chain_refresh_interval:
            self.refresh()
        return self.settle_due()

    def _recover(self) -> None:
        """After a (re)start: reads what the escrow settled of the stored open channels (a batch
        may have landed just before a crash) and settles the rest at once."""
        open_channels = [channel for channel in list(self.channels.values()) if channel.open]
        for channel in open_channels:
            self._sync_from_chain(channel)
        self.read_callers(sorted({channel.caller for channel in open_channels}))
        still_open = [channel for channel in open_channels if channel.open]
        if still_open:
            log.info("recovered %d unsettled receipt channel(s) from %s; settling them", len(still_open),
                     self.channel_store.path)
            self._settle(still_open, "restart")

    def refresh(self) -> None:
        """Re-reads every cached model (belt and braces: their events already keep them)."""
        self._last_refresh = time.monotonic()
        for model_id in list(self.models):
            self.read_model(model_id)
        self._update_gauges()

    def _follow(self, head: int) -> None:
        """Reads the events that change what the hot path knows: this relayer's reservations
        (filtered on the chain by the indexed relayer topic), receipt signer changes, model
        registrations and prices, announced fee and minimum bond changes."""
        for model_id in self.files.catch_up(head) & set(self.models):
            self.read_model(model_id)
        if head < self._event_cursor:
            return
        me = address_topic(self.relayer)
        touched: set[str] = set()  # callers of this relayer's reservation events
        signers: set[str] = set()  # accounts whose receipt signer key changed
        models: set[int] = set()
        while self._event_cursor <= head:
            start, end = self._event_cursor, min(head, self._event_cursor + self.config.max_scan_blocks - 1)
            mine = self.rpc.logs([self._escrow], [[RESERVED, RELEASE_ANNOUNCED, RELEASED], None, me], start, end)
            others = self.rpc.logs([self._escrow, self._registry, self._relayers],
                                   [[RECEIPT_SIGNER_CHANGED, FEES_EFFECTIVE_AT, PRICE_CHANGED, PRICE_NOTICE_STARTED,
                                     MODEL_ACTIVE_CHANGED, MIN_BOND_EFFECTIVE_AT]], start, end)
            for entry in mine:
                caller = word_address(entry.topics[1])
                touched.add(caller)
                if entry.name_topic == RELEASE_ANNOUNCED:
                    amount = word(entry.data, 0)
                    if amount > 0:
                        self._releasing.add(caller)
                        if self._recovered:
                            log.info("%s announced a release of %d of its reservation here: settling its channels "
                                     "now", caller, amount)
                    else:
                        self._releasing.discard(caller)
            for entry in others:
                name = entry.name_topic
                if name == RECEIPT_SIGNER_CHANGED:
                    signers.add(word_address(entry.topics[1]))
                elif name == FEES_EFFECTIVE_AT:
                    self._fee_change_at = word(entry.data, 2)
                elif name == MIN_BOND_EFFECTIVE_AT:
                    self._min_bond_change = (word(entry.data, 0), word(entry.data, 1))
                else:
                    models.add(int.from_bytes(entry.topics[1], "big"))
            self._event_cursor = end + 1
        # A caller with nothing reserved here any more is dropped by read_callers; a signer
        # change matters only for callers followed already (a new one is read whole).
        self.read_callers(sorted(touched | (signers & set(self.callers))))
        for model_id in models & set(self.models):
            self.read_model(model_id)

    def settle_due(self) -> bool:
        """Settles the channels a trigger names. Forced (whatever they are worth): an announced
        release, a deadline near, a price notice ending, a receipt signer key being replaced, a
        fee change or a minimum bond rise about to apply. Otherwise only channels worth at least
        `min_settle_amount`: on the threshold, or every interval."""
        now = self.now()
        clock = time.monotonic()
        margin = self.settle_margin
        interval_due = clock - self._last_interval >= self.config.settle_interval
        notices = {model_id: model.floor_ends_at for model_id, model in list(self.models.items())
                   if model.floor_price < model.price and model.floor_ends_at
                   and now >= model.floor_ends_at - margin
                   and self._notice_settled.get(model_id) != model.floor_ends_at}
        signer_changes = {caller: view.next_at for caller, view in list(self.callers.items())
                          if view.next_at and now >= view.next_at - margin
                          and self._signer_settled.get(caller) != view.next_at}
        everything = None
        if self._fee_change_at > now - margin and now >= self._fee_change_at - margin \
                and self._fees_settled_for != self._fee_change_at:
            everything = "fee change"
        new_min, min_at = self._min_bond_change
        if min_at > now - margin and self._min_bond_settled_for != min_at and min_at - margin <= now:
            if self._bond() < new_min:
                everything = "minimum bond rise"
            else:
                self._min_bond_settled_for = min_at
        due: dict[str, list[Channel]] = {}
        with self._book:
            candidates = [channel for channel in self.channels.values()
                          if channel.open and channel.calls > channel.refused_calls]
        unforced_minimum = max(self.config.min_settle_amount, 1)
        for channel in candidates:
            key = (channel.caller, channel.model_id)
            if self._retry_at.get(key, 0) > clock:
                continue
            view = self.callers.get(channel.caller)
            if channel.caller in self._releasing or (view is not None and view.releasing
                                                 and self._unsettled(channel.caller) > view.spendable):
                reason = "release announced"
            elif channel.deadline - now <= margin:
                reason = "deadline near"
            elif channel.model_id in notices:
                reason = "price notice ending"
            elif channel.caller in signer_changes:
                reason = "receipt signer change"
            elif everything is not None:
                reason = everything
            elif channel.unsettled < unforced_minimum:
                continue  # not worth the gas yet
            elif channel.unsettled >= self.config.settle_threshold:
                reason = "threshold"
            elif interval_due:
                reason = "interval"
            else:
                continue
            due.setdefault(reason, []).append(channel)
        if interval_due:
            self._last_interval = clock
        for reason, channels in due.items():
            self._settle(channels, reason)
        self._notice_settled.update(notices)
        self._signer_settled.update(signer_changes)
        if everything == "fee change":
            self._fees_settled_for = self._fee_change_at
        elif everything == "minimum bond rise":
            self._min_bond_settled_for = min_at
        self._releasing.clear()
        return bool(due)

    def _bond(self) -> int:
        try:
            return int(self.hub.relayer_info(self.hub.address).bond)
        except Exception as error:  # noqa: BLE001 -- unknown: assume the worst and settle
            log.warning("could not read this relayer's bond (%s); settling before the minimum bond rises", error)
            return 0

    def settle_all(self, reason: str) -> None:
        """Settles every open channel, whatever it is worth (shutdown)."""
        with self._book:
            channels = [channel for channel in self.channels.values()
                        if channel.open and channel.calls > channel.refused_calls]
        if channels:
            self._settle(channels, reason)

    def _settle(self, channels: list[Channel], reason: str) -> None:
        """settleReceipts on the newest receipt of each channel, `settle_batch_size` per transaction."""
        for start in range(0, len(channels), self.config.settle_batch_size):
            chunk = channels[start:start + self.config.settle_batch_size]
            with self._book:  # one consistent receipt per channel, even while calls come in
                items = [(channel, Receipt(_checksum(channel.caller), self.hub.address, channel.model_id,
                                           channel.calls, channel.amount, channel.deadline), channel.signature)
                         for channel in chunk]
            outcomes = self.hub.settle_receipts([(receipt, signature) for _, receipt, signature in items])
            self.metrics.fast_settlement_batches.inc()
            settled_rows = []
            settled_calls = settled_amount = 0
            for (channel, receipt, _), outcome in zip(items, outcomes):
                if outcome.settled:
                    with self._book:
                        new_calls = receipt.calls - channel.settled_calls
                        paid = receipt.amount - channel.settled_amount
                        channel.settled_calls, channel.settled_amount = receipt.calls, receipt.amount
                        view = self.callers.get(channel.caller)
                        if view is not None:  # the escrow took `paid` from the reservation
                            self.callers[channel.caller] = replace(view, reserved=max(view.reserved - paid, 0))
                    settled_rows.append((channel.caller, channel.model_id, receipt.calls, receipt.amount))
                    settled_calls += new_calls
                    settled_amount += paid
                    self._retry_at.pop((channel.caller, channel.model_id), None)
                else:
                    self._skipped(channel, receipt, outcome.skip_reason)
            self.channel_store.record_settled(settled_rows)
            self.metrics.fast_calls_settled.inc(settled_calls)
            self.metrics.fast_amount_settled.inc(settled_amount)
            log.info("settled %d of %d receipt channel(s) in one transaction (%s): %d call(s), %d base units",
                     len(settled_rows), len(items), reason, settled_calls, settled_amount)
        self._update_gauges()

    def _skipped(self, channel: Channel, receipt: Receipt, reason: ReceiptSkipReason) -> None:
        key = (channel.caller, channel.model_id)
        name = getattr(reason, "name", str(reason))
        self.metrics.fast_receipts_skipped.labels(reason=name.lower()).inc()
        if reason is ReceiptSkipReason.NOT_NEWER:
            # The chain says what is settled (a batch that landed before a crash, say).
            log.info("receipt of %s on model %d (calls=%d) was already settled; reading the channel", channel.caller,
                     channel.model_id, receipt.calls)
            self._sync_from_chain(channel)
        elif reason in (ReceiptSkipReason.NOT_ACTIVE_RELAYER, ReceiptSkipReason.INSUFFICIENT_CREDIT):
            # May change (the relayer bonds again): retried at the next interval.
            self._retry_at[key] = time.monotonic() + self.config.settle_interval
            hint = ("register this relayer with a bond (`modelhub relayer register`)"
                    if reason is ReceiptSkipReason.NOT_ACTIVE_RELAYER
                    else "the caller's reservation here is smaller than this relayer counted")
            log.error("receipt of %s on model %d (calls=%d) skipped: %s; %s; retrying in %gs", channel.caller,
                      channel.model_id, receipt.calls, name, hint, self.config.settle_interval)
            if reason is ReceiptSkipReason.INSUFFICIENT_CREDIT:
                self.read_callers([channel.caller])
        else:
            # This receipt can never settle (NotSubmitter cannot happen: the relayer submits only
            # receipts naming itself); a newer receipt of the channel (cumulative) still can.
            channel.refused_calls = receipt.calls
            detail = ""
            if reason is ReceiptSkipReason.UNDERPRICED:
                try:
                    detail = f" (channelPrice now {self.hub.contracts.escrow.channelPrice(receipt.caller, self.hub.address, channel.model_id)})"
                except Exception:  # noqa: BLE001 -- only for the log line
                    pass
            log.error("receipt of %s on model %d (calls=%d) was refused by the escrow: %s%s; waiting for a newer "
                      "receipt of that channel", channel.caller, channel.model_id, receipt.calls, name, detail)

    def _sync_from_chain(self, channel: Channel) -> None:
        calls, amount = self.hub.channel(_checksum(channel.caller), self.hub.address, channel.model_id)
        if calls == channel.settled_calls and amount == channel.settled_amount:
            return
        with self._book:
            paid = amount - channel.settled_amount
            channel.settled_calls, channel.settled_amount = calls, amount
            view = self.callers.get(channel.caller)
            if view is not None and paid > 0:
                self.callers[channel.caller] = replace(view, reserved=max(view.reserved - paid, 0))
        self.channel_store.record_settled([(channel.caller, channel.model_id, calls, amount)])

    def _update_gauges(self) -> None:
        with self._book:
            channels = list(self.channels.values())
        self.metrics.fast_unsettled_amount.set(sum(max(c.unsettled, 0) for c in channels))
        self.metrics.fast_open_channels.set(sum(1 for c in channels if c.open))

    def status(self) -> dict[str, Any]:
        """The fast-call part of /healthz."""
        with self._book:
            channels = list(self.channels.values())
        return {"channels": len(channels), "openChannels": sum(1 for c in channels if c.open),
                "unsettledAmount": str(sum(max(c.unsettled, 0) for c in channels)),
                "callers": len(self.callers), "locks": len(self._locks),
                "hotPathChainReads": self.hot_path_chain_reads, "rpcCalls": self.rpc.calls,
                "registeredFiles": len(self.files.digests),
                "fastSigning": self.signer.fast, "receiptCommits": self.channel_store.commits,
                "receiptsCommitted": self.channel_store.saved,
                "receiptCommitSeconds": round(self.channel_store.commit_seconds, 3)}


def _raw_address(number: int) -> bytes | None:
    return number.to_bytes(20, "big") if number else None


# ---------------------------------------------------------------------------- parsing helpers


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _address(value: Any, name: str) -> str:
    """A 0x-address as lowercase hex; ValueError otherwise."""
    if not isinstance(value, str) or len(value) != 42 or value[:2] not in ("0x", "0X"):
        raise ValueError(f"{name} must be a 0x-address of 40 hex digits")
    int(value[2:], 16)  # raises ValueError on a non-hex digit
    return "0x" + value[2:].lower()


def _uint(value: Any, name: str, maximum: int) -> int:
    """A decimal string or a JSON integer within 0..maximum; ValueError otherwise."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        number = int(value)
    elif type(value) is int:
        number = value
    else:
        raise ValueError(f"{name} must be a whole number (a decimal string or a JSON integer)")
    if not 0 <= number <= maximum:
        raise ValueError(f"{name} must be between 0 and {maximum}")
    return number


def _checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(address)
