"""What the SDK returns: plain dataclasses and named tuples of what the chain holds, of a
relayer's view of a channel, and of answers checked against what paid for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .contracts import DisputeOutcome, DisputePhase, ReceiptSkipReason, RequestStatus, SkipReason
from .typed_data import Attestation, Receipt

__all__ = [
    "Ballot", "ChannelState", "DisputeCase", "DisputeInfo", "DisputeTerms", "FastCallResult", "FulfillOutcome", "InferenceResult", "ModelInfo", "ModelStats",
    "ModelVersion", "Payee", "PendingFees", "PendingMinBond", "PoolWeight", "PriceNotice", "Published",
    "ReceiptOutcome", "ReceiptSigner", "ReceiptTerms", "RelayerChannel", "RelayerInfo", "RequestInfo", "RequestRecord", "RequestedCall",
    "Reservation", "Upload", "VerifiedOutput",
]


# --- the chain -------------------------------------------------------------------------------


class Upload(NamedTuple):
    model_id: int
    digest: bytes
    cid: str


class Published(NamedTuple):
    version: int
    digest: bytes
    cid: str


class ModelVersion(NamedTuple):
    version: int
    digest: bytes
    cid: str
    published_at: int  # unix time


class Payee(NamedTuple):
    account: str
    share: int  # bps of the payees' part


class ModelStats(NamedTuple):
    calls: int  # settled calls
    revenue: int  # their total price


@dataclass(frozen=True)
class ModelInfo:
    """A registered model as the chain holds it now; `metadata_uri` is the latest version's."""

    id: int
    owner: str
    price: int
    latest_version: int
    active: bool
    name: str
    metadata_uri: str
    versions: tuple[ModelVersion, ...]
    payees: tuple[Payee, ...]
    calls: int
    revenue: int


@dataclass(frozen=True)
class RequestInfo:
    """A paid call. Once it has ended the chain keeps only its status and caller: the other
    fields then read as zero."""

    id: int
    caller: str
    model_id: int
    version: int
    price: int
    input_hash: bytes
    deadline: int  # unix time; refundable after it
    status: RequestStatus
    # Hash of the requestInference transaction, when this SDK sent it; not part of what a request is.
    transaction: str | None = field(default=None, compare=False)
    # The relayer the call was designated to (requestInferenceVia), when this SDK knows it.
    relayer: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RequestedCall:
    """An `InferenceRequested` event: what a relayer needs to serve the call."""

    request_id: int
    model_id: int
    version: int
    caller: str
    price: int
    input_hash: bytes
    input: bytes
    block_number: int


@dataclass(frozen=True)
class RequestRecord:
    """One on-chain call as the escrow's events tell it: what was asked and paid, and how it
    ended. `relayer` is the one that fulfilled or rejected it; for a pending call, the one it
    was designated to (None: open to every relayer). `deadline` is known for pending calls."""

    request_id: int
    model_id: int
    version: int
    price: int
    status: RequestStatus
    block_number: int
    requested_at: int  # unix time of the request's block
    transaction: str
    relayer: str | None = None
    reason: int | None = None  # a rejection's reason code (errors.RejectReason)
    output_hash: bytes | None = None  # a fulfilled call's settled outputHash
    deadline: int = 0  # a pending call: refundable after it (unix time)


@dataclass(frozen=True)
class FulfillOutcome:
    """What became of one attestation: settled, or skipped and why."""

    request_id: int
    settled: bool
    skip_reason: SkipReason = SkipReason.NONE


@dataclass(frozen=True)
class ReceiptOutcome:
    """What became of one receipt in `settle_receipts`: settled (paying `paid`), or skipped and why."""

    caller: str
    relayer: str
    model_id: int
    calls: int
    settled: bool
    paid: int = 0
    skip_reason: ReceiptSkipReason = ReceiptSkipReason.NONE


@dataclass(frozen=True)
class Reservation:
    """Credit a caller set aside for one relayer's receipts (`InferenceEscrow.reservation`).

    Only that relayer can settle receipts against `reserved`; `releasing` of it goes back to
    free credit from `release_at` on (unix time; 0 when no release is announced)."""

    caller: str
    relayer: str
    reserved: int
    releasing: int = 0
    release_at: int = 0

    @property
    def spendable(self) -> int:
        """What receipts may still draw on without the relayer refusing them: the reservation
        minus an announced release (relayers subtract what they hold unsettled besides)."""
        return max(self.reserved - self.releasing, 0)


@dataclass(frozen=True)
class ReceiptSigner:
    """The key that signs receipts for an account besides its own (`InferenceEscrow.receiptSigner`):
    `signer` in force now (None: none), and a change to `next_signer` at `next_at` (unix time;
    0 when none is pending; `next_signer` None with a `next_at` means removal)."""

    account: str
    signer: str | None
    next_signer: str | None = None
    next_at: int = 0


@dataclass(frozen=True)
class ReceiptTerms:
    """What the fast path needs to know of a model (`ModelRegistry.receiptTerms` and
    `getModel`): its price, the floor of its last price rise (the price before it, until
    `floor_ends_at`, unix time; kept after it ended, 0 if never a rise), whether it takes calls
    and its latest version. `exists` False: no such model (the other fields read as zero)."""

    exists: bool
    price: int = 0
    floor_price: int = 0
    floor_ends_at: int = 0
    latest_version: int = 0
    active: bool = False


# Kept for code written against the old escrow; no contract call returns it any more.
@dataclass(frozen=True)
class PriceNotice:
    """What signed receipts must pay per call now: the price, or during a price rise's notice
    period the price before the rise (until `ends_at`, unix time; 0 when no rise is pending);
    at least 1 base unit (MIN_RECEIPT_PRICE), free models too. `price` is the price now."""

    receipt_price: int
    ends_at: int
    price: int = field(default=0, compare=False)


@dataclass(frozen=True)
class PendingFees:
    """A fee change scheduled by the escrow's owner: it applies to settlements from
    `effective_at` on (unix time), `termsNoticePeriod` after it was made."""

    protocol_fee_bps: int
    relayer_fee_bps: int
    effective_at: int


@dataclass(frozen=True)
class PendingMinBond:
    """A rise of the relayers' minimum bond: relayers below it turn inactive at `effective_at`."""

    min_bond: int
    effective_at: int


@dataclass(frozen=True)
class RelayerInfo:
    address: str
    endpoint: str
    bond: int
    active: bool
    unbond_at: int  # unix time the bond can be withdrawn; 0 while serving

    @property
    def registered(self) -> bool:
        """Registered and not withdrawn yet: a registration bonds more than 0, and only
        `withdrawBond` (which forgets the relayer) takes the bond back."""
        return self.bond > 0

    @property
    def unbonding(self) -> bool:
        return self.unbond_at != 0


# --- fast calls ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelState:
    """A channel's totals: what the caller has signed and what the escrow has settled."""

    calls: int  # calls paid by the newest receipt the caller signed
    amount: int  # what that receipt owes in total
    settled_calls: int = 0  # the totals of the newest receipt settled on chain
    settled_amount: int = 0

    @property
    def unsettled_amount(self) -> int:
        """What the relayer holds signed but not settled yet."""
        return self.amount - self.settled_amount

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ChannelState":
        """The totals as a relayer's API writes them (decimal strings or numbers)."""
        return cls(int(data["calls"]), int(data["amount"]), int(data.get("settledCalls", 0)),
                   int(data.get("settledAmount", 0)))


@dataclass(frozen=True)
class RelayerChannel:
    """A relayer's view of a channel (GET /v1/channels/{caller}/{modelId})."""

    caller: str
    relayer: str
    model_id: int
    state: ChannelState
    price: int  # the model's price as the relayer knows it
    receipt_price: int  # the least a receipt must pay per call, as the relayer knows it
    # The newest receipt's deadline and the caller's signature of it, if the relayer shows them
    # (not part of the route's documented answer): proof that the caller signed these totals.
    deadline: int = 0
    signature: bytes = b""


@dataclass(frozen=True)
class FastCallResult:
    """One fast call, verified: its outputs, the relayer's signed attestation and the receipt
    that paid for it; with the input bytes as sent, all a challenge of it needs (`kept.KeptCall`)."""

    outputs: dict
    output_bytes: bytes  # canonical encoding of `outputs`; keccak-256 is `output_hash`
    output_hash: bytes
    input_hash: bytes  # keccak-256 of the input's canonical JSON
    version: int  # the model version that ran
    attestation: Attestation
    signature: bytes  # the relayer's EIP-712 signature of `attestation`
    receipt: Receipt
    receipt_signature: bytes  # the caller's signature of `receipt`
    price: int  # what this call added to the channel's amount
    relayer: str
    relayer_url: str
    channel: ChannelState  # totals after this call; settled part as the relayer reported it
    input_bytes: bytes = b""  # the input's canonical JSON, exactly as sent (hashing to input_hash)
    spot_check: Any = None  # a spotcheck.SpotCheck when this call was spot-checked

    @property
    def call_id(self) -> int:
        """The attestation's request id: the receipt's EIP-712 digest as a number."""
        return self.attestation.request_id


# --- calls on chain --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedOutput:
    """A call's output as its relayer delivered it, checked against the chain."""

    request_id: int
    output: dict  # the output JSON object
    output_bytes: bytes  # its canonical encoding, hashing to output_hash
    output_hash: bytes
    attestation: Attestation
    signature: bytes
    relayer: str  # the relayer that fulfilled the call and signed the attestation
    relayer_url: str


@dataclass(frozen=True)
class InferenceResult:
    """What `Hub.infer` returns: the decoded outputs, the paid request (its id and the
    transaction that paid for it) and the checked output with its attestation."""

    outputs: dict
    request: RequestInfo
    verified: VerifiedOutput
    spot_check: Any = None  # a spotcheck.SpotCheck when this call was spot-checked

    @property
    def request_id(self) -> int:
        return self.request.id

    @property
    def transaction(self) -> str | None:
        return self.request.transaction


# --- disputes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DisputeTerms:
    """The DisputeCourt's terms (token base units, seconds; `draw_delay` in blocks)."""

    challenge_bond: int
    slash_amount: int  # taken from a relayer found lying, on top of the call's price
    challenger_reward: int
    juror_reward: int  # shared by the jurors in the majority
    juror_penalty: int  # per juror who does not reveal or votes against the majority
    dispute_window: int
    commit_period: int
    reveal_period: int
    draw_delay: int
    jury_size: int


@dataclass(frozen=True)
class DisputeCase:
    """What a dispute is about (its `DisputeOpened` event): the attestation that `accused` ran
    `version` of `model_id` on `input` for call `request_id` and got `output` (hashing to
    `output_hash`). Jurors re-run exactly that and compare."""

    dispute_id: int
    request_id: int  # an on-chain request id, or a fast call's receipt digest
    attestation: bytes  # the attestation's EIP-712 digest
    accused: str
    challenger: str
    caller: str
    model_id: int
    version: int
    input_hash: bytes
    output_hash: bytes
    refund: int  # the caller's refund if the output is found wrong
    terms_id: int
    draw_block: int
    input: bytes
    output: bytes  # the output bytes the relayer delivered, as the challenger showed them
    block_number: int


@dataclass(frozen=True)
class DisputeInfo:
    """A dispute as the court holds it now."""

    id: int
    request_id: int
    accused: str
    challenger: str
    caller: str
    refund: int
    terms_id: int
    phase: DisputePhase
    outcome: DisputeOutcome
    draw_block: int  # the first block the jury may be drawn in
    commit_deadline: int  # unix time; 0 until drawn
    reveal_deadline: int
    jurors: tuple[str, ...]
    revealed: int
    votes_match: int  # revealed votes: the output is what the model gives
    votes_wrong: int  # revealed votes: it is not


class Ballot(NamedTuple):
    """A juror's seat (1-based; 0: not drawn), commitment (zero bytes: none) and vote (0: none)."""

    seat: int
    commitment: bytes
    vote: int


@dataclass(frozen=True)
class PoolWeight:
    """A relayer's weight in the jury pool (a juror is drawn with probability proportional to
    it), the weight the registry's rule gives it now (its bond while active, else 0), and the
    jury draws pending: while any is, weights are frozen and a bond change waits for a sync."""

    relayer: str
    weight: int
    due: int
    draws_pending: int

    @property
    def stale(self) -> bool:
        """The weight is not what the rule gives (a sync would change it)."""
        return self.weight != self.due

    @property
    def frozen(self) -> bool:
        return self.draws_pending > 0
