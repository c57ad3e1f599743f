"""The caller side of fast calls: a `FastSession` keeps one channel (caller, relayer, model), signs
its receipts, calls the relayer's HTTP route and verifies every answer before returning it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from eth_utils import is_address, keccak, to_checksum_address

from . import errors as e
from .answers import SignedAnswer
from .codec import canonical_input
from .contracts import chain_errors, refusal
from .kept import KeptCall, KeptCalls
from .refusals import RESERVATION_LAG_CODES, error_for
from .relayer_client import HTTP_TIMEOUT_S, RelayerClient, resolve_relayer
from .results import ChannelState, DisputeCase, FastCallResult
from .spotcheck import SpotChecker
from .typed_data import MIN_RECEIPT_PRICE, Attestation, Domain, KeySigner, Receipt, recover_digest_signer

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["DEFAULT_RECEIPT_LIFETIME", "DEFAULT_RESERVE_CALLS", "FastSession"]

DEFAULT_RECEIPT_LIFETIME = 86_400  # seconds a receipt stays settleable
# What a session reserves when the caller does not say: this many calls at the most one may cost.
DEFAULT_RESERVE_CALLS = 100
# After reserving, how long a relayer's refusal for want of a reservation may just mean that it
# has not seen the transaction yet (the session then waits and retries).
RESERVATION_SETTLE_S = 15.0
# Refusals the session can repair itself (stale totals, a price change, a slow clock); more in a
# row means the relayer and the session disagree for a reason a retry will not fix.
MAX_RECOVERIES = 3


# --- the session -------------------------------------------------------------------------------


class FastSession:
    """Fast calls of one model at one relayer, paid with receipts on the channel (caller,
    relayer, model). Opening it checks the relayer (its /healthz names the expected address
    and chain), the model, the price against `max_price` (default: the price now, at least the
    1 base unit every receipt call pays), pins the version (0: the latest now), resumes the
    channel from the relayer's view (refusing a view below what the chain has settled or
    claiming more than `max_price` per unsettled call), and makes sure the caller's
    reservation for that relayer can pay: receipts are paid only out of it.

    Reservation: what the relayer may count on is the reservation minus an announced release
    minus what this channel holds unsettled. When that is short of a call, the session reserves
    `reserve` more from free credit (default: DEFAULT_RESERVE_CALLS calls at the dearer of
    `max_price` and the price, or all free credit if less), on opening and, with `top_up`,
    whenever it runs out; each reservation is a transaction, told to `progress`. A session
    never signs a receipt its reservation (as last read) cannot pay: without `top_up` it
    raises InsufficientReservationError instead.

    Signing: receipts are signed by `signer` (an Ape account or a private key; default: the
    hub's account). When that is not the caller itself (a contract-wallet hub, or an extra
    key), it must be the caller's receipt signer in force on chain: the session registers it
    (`setReceiptSigner`) if the caller has none, and refuses to open if another key is in force.

    Each call pays the least a receipt must pay per call now (`receipt_price`): the model's
    price, or during a price rise's notice period the price before the rise. When the relayer
    says the amount no longer fits, the session re-reads the price from the chain and goes on
    only if it is at most `max_price`.

    Keeping calls: with `keep` (True: the user's data folder, kept.default_kept_folder(); a
    folder; or a KeptCalls store), every call answered is written as a kept call, all that a
    challenge of it needs (`FastCallResult` holds the same), so that a later process can
    challenge it (`modelhub dispute open --fast CALL_ID`).

    Spot checks: with `spot_check` (a share from 0 to 1, or a SpotChecker), that share of
    calls is re-run locally and judged (`modelhub.spotcheck`); the result's `spot_check` says
    what was found, `spot_checks.counts` counts it all. A call found wrong is challenged once
    the relayer has settled its receipt (the court requires it): the session tries on each
    later call once the relayer reports the channel settled that far, on `challenge_waiting`
    and on `close`; the wrong calls still waiting are kept (with `keep`) for a later session
    of the channel, or `modelhub dispute open --waiting`, to challenge.

    Thread safety: a channel is a sequence (each receipt is exactly one call after the last),
    so `infer` holds a lock; threads may share a session but their calls run one at a time.
    For parallel throughput, open one session per channel (another model or relayer). The
    session keeps one HTTP connection (requests.Session) open; close it, or use `with`.
    """

    def __init__(self, hub: "Hub", model_id: int, relayer: str | None = None, version: int = 0,
                 max_price: int | None = None, receipt_lifetime: int = DEFAULT_RECEIPT_LIFETIME,
                 timeout: float = HTTP_TIMEOUT_S, reserve: int | None = None, top_up: bool = True,
                 progress: Callable[[str], None] | None = None, signer: Any = None,
                 keep: KeptCalls | str | Path | bool | None = None,
                 spot_check: float | SpotChecker | None = None) -> None:
        if receipt_lifetime <= 0:
            raise ValueError("receipt_lifetime is a positive number of seconds")
        if reserve is not None and int(reserve) <= 0:
            raise ValueError("reserve is a positive amount in base units (None: the default)")
        self.reserve_amount = None if reserve is None else int(reserve)
        self.top_up = bool(top_up)
        self._progress = progress or (lambda text: None)
        self.reserved = 0  # what this session moved into the reservation (transactions it sent)
        self.registered_signer = False  # True if opening this session sent setReceiptSigner
        self._reserved_at = self._signer_set_at = float("-inf")
        self._opened = False
        self.reservation = None  # the caller's Reservation for the relayer, as last read
        self._budget: int | None = None  # what the reservation can still pay, as last read
        self.hub = hub
        self.model_id = int(model_id)
        self.version = int(version)
        self.receipt_lifetime = int(receipt_lifetime)
        self.timeout = timeout
        self.caller = to_checksum_address(hub.address)
        self.chain_id = hub.deployment.chain_id
        self.escrow = to_checksum_address(hub.deployment.inference_escrow)
        self._lock = threading.Lock()
        self._http = requests.Session()
        self._signing_account, self._signer, self.signer_address = _receipt_signer(
            hub.account if signer is None else signer)
        self._domain = Domain(self.chain_id, self.escrow)
        self._clock_skew = 0.0
        self._stale = False
        self._closed = False
        self._in_doubt: Receipt | None = None
        self.kept = _kept_store(hub, keep)
        self.spot_checks = (spot_check if isinstance(spot_check, SpotChecker) or spot_check is None
                            else SpotChecker(hub, spot_check, kept=self.kept))
        if self.spot_checks is not None and self.spot_checks.kept is None:
            self.spot_checks.kept = self.kept  # wrong calls are kept where the calls are
        try:
            self._open(relayer, max_price)
        except BaseException:
            self._http.close()
            raise
        if self.spot_checks is not None and self.kept is not None:
            # Wrong calls of this channel an earlier session could not challenge yet.
            for kept in self.kept.pending(self.caller):
                if kept.channel == (self.caller, self.relayer, self.model_id):
                    self.spot_checks.wait(kept)

    # ------------------------------------------------------------------ opening

    def _open(self, relayer: str | None, max_price: int | None) -> None:
        hub = self.hub
        self.relayer, self.relayer_url = resolve_relayer(hub, relayer, self._http, self.timeout)
        self._client = RelayerClient(self.relayer_url, self._http, self.timeout)
        model = hub.get_model(self.model_id)
        if not model.active:
            raise refusal("InferenceEscrow_ModelInactive", modelId=self.model_id)
        if self.version > model.latest_version:
            raise refusal("InferenceEscrow_UnknownVersion", modelId=self.model_id,
                          version=self.version, latestVersion=model.latest_version)
        self._latest_version = model.latest_version
        # Pinned: an owner publishing a version mid-session does not change what runs.
        self.version = self.version or model.latest_version
        self.max_price = max(model.price, MIN_RECEIPT_PRICE) if max_price is None else int(max_price)
        self.price = self._checked_price(hub.price_notice(self.model_id).receipt_price)
        self._valid_signers, register_signer = self._signer_plan()
        self._sync_clock()
        # The newest totals known to be signed by the caller: (calls, amount).
        self._known: tuple[int, int] = (0, 0)
        self._channel = self._load_channel()
        # Registering a key and reserving credit wait a delay to be undone: only once all else
        # says the session can work.
        if register_signer:
            self._register_signer()
        self._ensure_budget(self.price)
        self._opened = True

    def _signer_plan(self) -> tuple[frozenset[str], bool]:
        """(the keys whose receipts this caller's channel accepts once the session is open,
        whether the session must register its key as the caller's receipt signer first).
        Raises ReceiptSignerError when another receipt signer is in force."""
        hub = self.hub
        key = hub.receipt_signer(self.caller)
        valid = {self.caller} | ({key.signer} if key.signer else set())
        if self.signer_address in valid:
            return frozenset(valid), False
        if key.signer is None:  # a first signer applies at once
            return frozenset({self.caller, self.signer_address}), True
        pending = (f"; a change to {key.next_signer} applies at {key.next_at} (unix time)"
                   if key.next_at else "")
        raise e.ReceiptSignerError(
            f"receipts of {self.caller} are signed by its own key or by {key.signer}, its receipt "
            f"signer in force, not by {self.signer_address}{pending}; sign with that key "
            f"(signer=...), or replace it with Hub.set_receipt_signer and wait the withdrawal "
            f"delay ({hub.withdrawal_delay} s) for the change to apply")

    def _register_signer(self) -> None:
        self._progress(f"Registering {self.signer_address} as the receipt signer of "
                       f"{self.caller} (one transaction; a first signer applies at once)")
        key = self.hub.set_receipt_signer(self.signer_address)
        self.registered_signer = True
        self._signer_set_at = time.monotonic()
        if key.signer != self.signer_address:
            raise e.ReceiptSignerError(
                f"{self.caller} registered {self.signer_address} as its receipt signer, but the "
                f"escrow has {key.signer} in force; another client changed it: try again")

    # ------------------------------------------------------------------ the reservation

    def _read_budget(self) -> int:
        """What the caller's reservation for this relayer can still pay on this channel: the
        reservation, minus an announced release, minus what the channel holds unsettled. The
        channel is read before the reservation: a settlement between the reads then makes the
        answer smaller, never larger."""
        hub = self.hub
        _, settled_amount = hub.channel(self.caller, self.relayer, self.model_id)
        held = hub.reservation(self.caller, self.relayer)
        self.reservation = held
        unsettled = max(self._channel.amount - settled_amount, 0)
        return held.spendable - unsettled

    def _ensure_budget(self, needed: int) -> None:
        """Makes sure the reservation can pay `needed` more, reserving from free credit when it
        cannot (on opening; later only with `top_up`); else InsufficientReservationError."""
        if self._budget is not None and self._budget >= needed:
            return
        self._budget = self._read_budget()
        if self._budget >= needed:
            return
        shortfall = needed - self._budget
        held = self.reservation
        if self._opened and not self.top_up:
            raise e.InsufficientReservationError(
                f"{self.caller}'s reservation for relayer {self.relayer} cannot pay another call: "
                f"{held.reserved} reserved, {held.releasing} of it announced for release, "
                f"{self._channel.unsettled_amount} unsettled on this channel; "
                f"reserve more (Hub.reserve) or open the session with top_up=True",
                "InferenceEscrow_InsufficientCredit",
                {"account": self.caller, "credit": max(self._budget, 0), "required": needed,
                 "reserved": held.reserved, "releasing": held.releasing,
                 "unsettled": self._channel.unsettled_amount})
        credit = self.hub.balance()
        per_call = max(self.max_price, self.price)
        amount = self.reserve_amount or DEFAULT_RESERVE_CALLS * per_call
        amount = max(amount, shortfall)
        if credit < amount:
            if credit < shortfall or self.reserve_amount is not None:
                raise e.InsufficientCreditError(
                    f"{self.caller} has {credit} base units of free credit, but its reservation "
                    f"for relayer {self.relayer} needs {amount} more to pay for fast calls "
                    f"({held.reserved} reserved, {held.releasing} of it announced for release); "
                    "deposit more (Hub.deposit)" + ("" if held.releasing == 0 else
                                                    " or cancel the release (Hub.announce_release(relayer, 0))"),
                    "InferenceEscrow_InsufficientCredit",
                    {"account": self.caller, "credit": credit, "required": amount,
                     "reserved": held.reserved, "releasing": held.releasing})
            amount = credit  # all of it: more than the shortfall
        self._progress(f"Reserving {amount} base units of free credit for relayer {self.relayer} "
                       f"(one transaction): fast calls are paid from it; it comes back to free "
                       f"credit {self.hub.withdrawal_delay} s after `release` is announced")
        self.hub.reserve(self.relayer, amount)
        self.reserved += amount
        self._reserved_at = time.monotonic()
        self._budget = self._read_budget()

    def _load_channel(self) -> ChannelState:
        """The relayer's view of the channel, checked against the chain."""
        view = self._client.channel(self.caller, self.model_id)
        if view.relayer != self.relayer or view.model_id != self.model_id or view.caller != self.caller:
            raise e.ChannelStateError(
                f"the relayer at {self.relayer_url} answered for the channel ({view.caller}, "
                f"{view.relayer}, model {view.model_id}) when asked for ({self.caller}, "
                f"{self.relayer}, model {self.model_id}); do not use that relayer")
        if view.signature:
            receipt = Receipt(self.caller, self.relayer, self.model_id, view.state.calls,
                              view.state.amount, view.deadline)
            signer = recover_digest_signer(self.receipt_digest(receipt), view.signature)
            if signer not in self._valid_signers:
                raise e.ChannelStateError(
                    f"the relayer at {self.relayer_url} shows the channel of model {self.model_id} "
                    f"at {view.state.calls} calls / {view.state.amount} base units with a signature "
                    f"that is neither {self.caller}'s nor its receipt signer's: do not use that relayer")
            # Totals this caller signed: no need to bound them by price.
            self._known = max(self._known, (view.state.calls, view.state.amount))
        return self._checked_channel(view.state.calls, view.state.amount, view.state)

    def _checked_channel(self, calls: int, amount: int, reported: ChannelState | None = None) -> ChannelState:
        """Totals a relayer claims for the channel, if they can be true; else ChannelStateError.
        They must not be below what the chain settled (the relayer lost receipts). Beyond the
        newest totals this session knows to be signed (what the chain settled, what it signed
        itself, a view carrying the caller's signature), they may only add calls at no more
        than the dearer of `max_price` and the current price each: another client of the same
        account may have moved the channel on, but the view carries no signature, so that
        bounds what a lying relayer could make the caller pay."""
        settled_calls, settled_amount = self.hub.channel(self.caller, self.relayer, self.model_id)
        where = f"the relayer at {self.relayer_url} says the channel of model {self.model_id} is at"
        if calls < settled_calls or amount < settled_amount:
            raise e.ChannelStateError(
                f"{where} {calls} calls / {amount} base units, below the {settled_calls} calls / "
                f"{settled_amount} the chain has settled: it has lost receipts; use another relayer")
        known_calls, known_amount = max(self._known, (settled_calls, settled_amount))
        per_call = max(self.max_price, self.price)
        if amount > known_amount and amount - known_amount > max(calls - known_calls, 0) * per_call:
            raise e.ChannelStateError(
                f"{where} {calls} calls / {amount} base units: {amount - known_amount} more than "
                f"the {known_amount} known to be signed, for {max(calls - known_calls, 0)} more "
                f"calls, which is more than {per_call} per call; it claims receipts you did not "
                "sign: use another relayer")
        self._known = max(self._known, (calls, amount))
        reported_settled = (reported.settled_calls, reported.settled_amount) if reported else (0, 0)
        # The chain is the truth for what is settled; a relayer's view may lag or lead a block.
        settled = max((settled_calls, settled_amount), reported_settled)
        return ChannelState(calls, amount, settled[0], settled[1])

    def _checked_price(self, receipt_price: int) -> int:
        if receipt_price > self.max_price:
            raise e.PriceAboveMaxError(
                f"model {self.model_id} now costs {receipt_price} base units per call by receipt, "
                f"above your max_price of {self.max_price}; raise max_price to go on paying it",
                "InferenceEscrow_PriceAboveMax",
                {"modelId": self.model_id, "price": receipt_price, "maxPrice": self.max_price})
        return int(receipt_price)

    def _sync_clock(self) -> None:
        """Deadlines follow the chain's clock, which a dev chain may have moved ahead of ours."""
        from ape import chain

        with chain_errors():
            head = chain.blocks.head.timestamp
        self._clock_skew = max(0.0, float(head) - time.time())

    # ------------------------------------------------------------------ state

    @property
    def receipt_in_doubt(self) -> Receipt | None:
        """The receipt of the last call if it was sent but no answer came back (the connection
        broke, or the caller was interrupted): the relayer may hold it, and settle it. None once
        an answer has come."""
        return self._in_doubt

    @property
    def channel(self) -> ChannelState:
        """The channel's totals after the newest call (and what was settled, as last seen)."""
        return self._channel

    def refresh(self) -> ChannelState:
        """Re-reads the channel from the relayer (checked against the chain, as on opening)."""
        with self._lock:
            self._resync()
            return self._channel

    def _resync(self) -> None:
        view = self._client.channel(self.caller, self.model_id)
        self._channel = self._checked_channel(view.state.calls, view.state.amount, view.state)
        self._stale = False
        self._budget = None  # the channel may have moved: re-read what the reservation can pay

    # ------------------------------------------------------------------ calls

    def infer(self, inputs: Mapping[str, Any] | bytes) -> FastCallResult:
        """One call on `inputs` (a JSON object of tensors, or its bytes), paid by the next
        receipt of the channel and verified. Raises a FastCallError subclass, or the SDK's
        errors for its causes (InsufficientCreditError, PriceAboveMaxError, InvalidInputError,
        ModelInactiveError...), when the relayer refuses; a refused call is not charged.
        Raises OutputVerificationError for an answer that fails verification: that call was
        charged (the relayer holds its receipt), so do not use that relayer again."""
        canonical = canonical_input(inputs)
        input_hash = keccak(canonical)
        with self._lock:
            if self._closed:
                raise e.ModelHubError("this fast session is closed; open a new one (Hub.fast_session)")
            if self._stale:
                self._resync()
            self._challenge_if_settled()
            for attempt in range(MAX_RECOVERIES + 1):
                self._ensure_budget(self.price)  # never sign what the reservation cannot pay
                base = self._channel
                receipt = Receipt(self.caller, self.relayer, self.model_id, base.calls + 1,
                                  base.amount + self.price, self._deadline())
                signature = self._sign(receipt)
                # From here the relayer may hold this receipt, even if the answer gets lost.
                self._known = max(self._known, (receipt.calls, receipt.amount))
                self._in_doubt = receipt
                status, answer = self._post(canonical, receipt, signature)
                self._in_doubt = None
                if status == 200:
                    # The relayer stores the receipt before answering: it is owed from now on,
                    # whatever the verification below finds.
                    self._channel = ChannelState(receipt.calls, receipt.amount, base.settled_calls,
                                                 base.settled_amount)
                    self._budget -= receipt.amount - base.amount
                    result = self.verify(answer, receipt, input_hash, receipt_signature=signature,
                                         price=self.price, input_bytes=canonical)
                    self._channel = result.channel
                    return self._keep(result)
                if attempt < MAX_RECOVERIES and self._recover(status, answer):
                    continue
                raise self._refused(status, answer)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _keep(self, result: FastCallResult) -> FastCallResult:
        """Keeps a verified call (with `keep`) and spot-checks it (with `spot_check`)."""
        if self.kept is not None:
            self.kept.save(KeptCall.of(result, self.chain_id, self.escrow))
        if self.spot_checks is not None:
            check = self.spot_checks.check_fast(result, self.chain_id, self.escrow)
            if check is not None:
                result = replace(result, spot_check=check)
        return result

    def _challenge_if_settled(self) -> None:
        """Challenges waiting wrong calls once the relayer reports their receipts settled (the
        chain is read only then; the court checks it all the same)."""
        first = self.spot_checks.first_waiting_calls() if self.spot_checks is not None else None
        if first is not None and self._channel.settled_calls >= first:
            self._try_challenges()

    def _try_challenges(self) -> None:
        """Challenges the waiting calls the chain has settled; a chain that does not answer
        stops neither the calls nor closing (the calls wait, kept)."""
        try:
            self.spot_checks.challenge_settled()
        except e.ModelHubError as error:
            self.spot_checks.counts.note(f"the waiting calls were not challenged: {error}")

    def challenge_waiting(self, timeout: float = 0.0, poll: float = 1.0) -> list[DisputeCase]:
        """Challenges the wrong calls whose receipts the chain has settled, waiting up to
        `timeout` seconds for the relayer to settle the rest; returns the disputes opened."""
        if self.spot_checks is None:
            return []
        give_up = time.monotonic() + timeout
        opened: list[DisputeCase] = []
        with self._lock:
            while True:
                opened += self.spot_checks.challenge_settled()
                if not self.spot_checks.waiting or time.monotonic() >= give_up:
                    return opened
                time.sleep(poll)

    def _deadline(self) -> int:
        return int(time.time() + self._clock_skew) + self.receipt_lifetime

    def receipt_digest(self, receipt: Receipt) -> bytes:
        """The EIP-712 digest of a receipt (what the caller signs)."""
        return self._domain.digest(receipt)

    def attestation_digest(self, att: Attestation) -> bytes:
        """The EIP-712 digest of an attestation (what the relayer signs)."""
        return self._domain.digest(att)

    def _sign(self, receipt: Receipt) -> bytes:
        if self._signer is not None:
            return self._signer.sign_digest(self.receipt_digest(receipt))
        signature = self._signing_account.sign_message(self._domain.signable_message(receipt))
        if signature is None:
            raise e.ModelHubError(f"account {self.signer_address} declined to sign the receipt")
        return signature.encode_rsv()

    def _post(self, canonical: bytes, receipt: Receipt, signature: bytes) -> tuple[int, dict]:
        try:
            return self._client.fast_call(self.model_id, canonical, self.version, receipt, signature)
        except e.RelayerUnreachableError:
            # The relayer may have stored the receipt before the connection broke.
            self._stale = True
            raise

    def _recover(self, status: int, answer: dict) -> bool:
        """Repairs what a refusal says is stale in the session; False if it cannot."""
        code = answer.get("code")
        if status == 409 and code == "out_of_order":
            channel = answer.get("channel")
            if isinstance(channel, dict) and "calls" in channel and "amount" in channel:
                try:
                    calls, amount = int(channel["calls"]), int(channel["amount"])
                except (TypeError, ValueError):
                    self._resync()
                else:
                    self._channel = self._checked_channel(calls, amount, ChannelState.from_json(channel))
                    self._budget = None
            else:
                self._resync()
            return True
        if status == 409 and code == "wrong_amount":
            chain_price = self.hub.price_notice(self.model_id).receipt_price
            if chain_price == self.price:
                # The chain agrees with us; the relayer reads another block. Its own floor is
                # acceptable too, within max_price.
                try:
                    chain_price = int(answer.get("receiptPrice", chain_price))
                except (TypeError, ValueError):
                    return False
                if chain_price == self.price:
                    return False
            self.price = self._checked_price(chain_price)
            return True
        if status == 400 and code == "deadline_too_far":
            # The relayer holds receipts for less time than this session signs them for.
            try:
                max_deadline = int(answer["maxDeadline"])
            except (KeyError, TypeError, ValueError):
                return False
            shorter = max_deadline - int(time.time() + self._clock_skew) - 5
            if 0 < shorter < self.receipt_lifetime:
                self.receipt_lifetime = shorter
                return True
            return False
        if status == 400 and code == "deadline_too_soon":
            before = self._clock_skew
            self._sync_clock()
            return self._clock_skew > before
        if code in RESERVATION_LAG_CODES:
            # The session reserved (or registered its key) just now: the relayer may not have
            # seen that block yet.
            if time.monotonic() - max(self._reserved_at, self._signer_set_at) < RESERVATION_SETTLE_S:
                time.sleep(1.0)
                return True
        return False

    def _refused(self, status: int, answer: dict) -> Exception:
        """The SDK exception for a refused call, with what to do about it."""
        error = error_for(status, answer, f"the relayer at {self.relayer_url} refused the fast call of model "
                          f"{self.model_id}", caller=self.caller, signer=self.signer_address, relayer=self.relayer,
                          model_id=self.model_id, receipt_lifetime=self.receipt_lifetime, session_price=self.price)
        if isinstance(error, e.InsufficientReservationError):
            self._budget = None  # the relayer counts differently: read the reservation again
        return error

    # ------------------------------------------------------------------ verification

    def verify(self, answer: Mapping[str, Any], receipt: Receipt, input_hash: bytes, *,
               receipt_signature: bytes = b"", price: int | None = None,
               input_bytes: bytes = b"") -> FastCallResult:
        """Checks a relayer's 200 answer to the call paid by `receipt` on the input whose
        canonical JSON hashes to `input_hash`: the output's canonical encoding hashes to
        `outputHash`, the attestation is (the receipt's call id, model, version, input hash,
        output hash) and the session's relayer signed it (answers.SignedAnswer.check). Returns
        the result, or raises OutputVerificationError saying what does not match."""

        def refuse(what: str) -> e.OutputVerificationError:
            return e.OutputVerificationError(
                f"the answer of the relayer at {self.relayer_url} to fast call {receipt.calls} "
                f"of model {self.model_id} fails verification: {what}; do not trust it, and do "
                "not use that relayer again")

        signed = SignedAnswer.parse(answer, refuse)
        try:
            version = int(answer.get("version", signed.attestation.version))
        except (TypeError, ValueError) as error:
            raise refuse(f"the answer is malformed ({error})") from None
        if not self._version_fits(version):
            raise refuse(f"it ran version {version}, but the session asked for "
                         f"{self.version or 'the latest'}")
        expected = Attestation(self._domain.call_id(receipt), self.model_id, version, input_hash, signed.output_hash)
        signed.check(expected, self.relayer, self._domain, refuse, paid_by="this receipt, input and output")
        settled = ChannelState.from_json(answer["channel"]) if isinstance(answer.get("channel"), dict) else None
        channel = ChannelState(
            receipt.calls, receipt.amount,
            *max((self._channel.settled_calls, self._channel.settled_amount),
                 (settled.settled_calls, settled.settled_amount) if settled else (0, 0)))
        return FastCallResult(signed.output, signed.output_bytes, signed.output_hash, input_hash, version,
                              signed.attestation, signed.signature, receipt, receipt_signature,
                              self.price if price is None else price, self.relayer, self.relayer_url, channel,
                              bytes(input_bytes))

    def _version_fits(self, version: int) -> bool:
        if self.version:
            return version == self.version
        if 1 <= version <= self._latest_version:
            return True
        # A version published since the session opened is the latest now.
        self._latest_version = self.hub.get_model(self.model_id).latest_version
        return 1 <= version <= self._latest_version

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Closes the HTTP connection and challenges the wrong calls whose receipts have
        settled (a failure to is in `spot_checks.counts.problems`); the channel lives on at
        the relayer and on chain."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._http.close()
            if self.spot_checks is not None and self.spot_checks.waiting:
                self._try_challenges()

    def __enter__(self) -> "FastSession":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"FastSession(caller={self.caller}, relayer={self.relayer}, model={self.model_id}, "
                f"calls={self._channel.calls}, amount={self._channel.amount})")


# --- kept calls --------------------------------------------------------------------------------


def _kept_store(hub: "Hub", keep: KeptCalls | str | Path | bool | None) -> KeptCalls | None:
    """The store of a session's kept calls: None (keep none), the default folder, or the one given."""
    if keep is None or keep is False:
        return None
    if isinstance(keep, KeptCalls):
        return keep
    return KeptCalls.of(hub, None if keep is True else keep)


# --- receipt signers ---------------------------------------------------------------------------


def _receipt_signer(signer: Any) -> tuple[Any, KeySigner | None, str]:
    """(Ape account or None, KeySigner or None, address) of what signs a session's receipts: an
    Ape account, or a raw private key (hex string or 32 bytes)."""
    if isinstance(signer, (bytes, bytearray)) or (isinstance(signer, str) and not is_address(signer)):
        try:
            key_signer = KeySigner(bytes(signer) if not isinstance(signer, str) else signer)
        except (ValueError, TypeError) as error:
            raise ValueError(f"the receipt signer is neither an account nor a private key ({error})") from None
        return None, key_signer, key_signer.address
    if not hasattr(signer, "sign_message"):
        raise ValueError("the receipt signer must be an Ape account or a private key")
    return signer, _key_signer(signer), to_checksum_address(signer.address)


def _key_signer(account: Any) -> KeySigner | None:
    """A KeySigner for an account that exposes its raw key (Ape's test accounts); else None,
    and receipts are signed through the account's own `sign_message`."""
    from ape.api.accounts import TestAccountAPI

    # Only test accounts: on a keyfile account, reading the key would ask for its passphrase.
    key = getattr(account, "private_key", None) if isinstance(account, TestAccountAPI) else None
    if not isinstance(key, (str, bytes)):
        return None
    signer = KeySigner(key)
    return signer if signer.address == to_checksum_address(account.address) else None

