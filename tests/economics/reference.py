"""A reference model of Model Hub's economics in plain Python, written from the rules of
/work/shared/spec/interface.md (not from the Solidity).

The model holds what the spec says the contracts hold: token balances, callers' free credit,
the price locked by each pending request, released earnings, request states, model stats,
relayer bonds and the fee split. Every operation takes the timestamp of the block it runs in
and either applies its effects or raises `Revert` naming the rules it breaks: the contracts must
then revert with one of those errors and change nothing. When several rules are broken the spec
does not say which is reported first, so any of them is accepted.

Implementation limits that the spec leaves open but the contracts must have are marked LIMIT:
prices and bonds fit in 128 bits, a caller's credit in 160 bits.

Off-chain calls (docs/fast-calls.md, issue 10): a caller moves free credit into a reservation
for one relayer; it pays that relayer with cumulative receipts over channels (caller, relayer,
model), signed by its own key or by a receipt signer key it registered (a change waits the
withdrawal delay). Only the named relayer settles them (`settle_receipts`), out of that
reservation alone, which comes back to free credit only a withdrawal delay after it is announced.
Each item settles or is skipped for the first reason in the escrow's check order. Terms that bind
calls already paid change only with notice: fees after max(request timeout, withdrawal delay),
a rise of the minimum bond after the unbond delay, explicit payees after the price notice period,
and a price rise binds receipts after it too (a channel last settled, or opened, before a notice
ended may pay the lowest price the model ever had: a channel's price only falls until it settles).

The model also states the design's promises about terms, as assertions (`TermsChanged`): a call
settles under the fees and the explicit payees that were in force, or already announced, when it
was paid for, if it settles within the notice (a later change may cancel an announced one).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field

from tests.support.disputes import reference_draw

BPS = 10_000
MAX_PRICE = 2**128 - 1  # LIMIT: the registry caps prices (ModelRegistry.MAX_PRICE)
MAX_BOND = 2**128 - 1  # LIMIT: bonds are stored in 128 bits
MAX_CREDIT = 2**160 - 1  # LIMIT: a caller's credit is stored in 160 bits
MAX_PAYEES = 8
MAX_PROTOCOL_FEE_BPS = 1_000
MAX_RELAYER_FEE_BPS = 3_000
REJECT_REASONS = (1, 2, 3, 4)

PENDING, FULFILLED, REJECTED, REFUNDED = 1, 2, 3, 4
ENDED = (FULFILLED, REJECTED, REFUNDED)

MAX_CHANNEL_CALLS = 2**64 - 1  # InferenceEscrow.MAX_CHANNEL_CALLS
MAX_CHANNEL_AMOUNT = 2**160 - 1  # LIMIT: a channel's settled amount is stored in 160 bits
MAX_REVENUE = 2**256 - 1  # modelStats' counters are full words: no reachable settlement overflows them

# Why an item of settleReceipts is skipped (ReceiptSkipped's reason).
(
    RECEIPT_NOT_NEWER,
    RECEIPT_EXPIRED,
    RECEIPT_BAD_SIGNATURE,
    RECEIPT_NOT_RELAYER,
    RECEIPT_UNKNOWN_MODEL,
    RECEIPT_UNDERPRICED,
    RECEIPT_INSUFFICIENT_CREDIT,
    RECEIPT_NOT_SUBMITTER,
) = range(1, 9)
RECEIPT_REASON_NAMES = {
    RECEIPT_NOT_NEWER: "NotNewer",
    RECEIPT_EXPIRED: "Expired",
    RECEIPT_BAD_SIGNATURE: "InvalidSignature",
    RECEIPT_NOT_RELAYER: "NotActiveRelayer",
    RECEIPT_UNKNOWN_MODEL: "UnknownModel",
    RECEIPT_UNDERPRICED: "Underpriced",
    RECEIPT_INSUFFICIENT_CREDIT: "InsufficientCredit",
    RECEIPT_NOT_SUBMITTER: "NotSubmitter",
}
MIN_RECEIPT_PRICE = 1  # InferenceEscrow.MIN_RECEIPT_PRICE: every receipt call pays at least this
MAX_MIN_BOND = 2**112 - 1  # LIMIT: the relayer registry stores the minimum bond in 112 bits
MAX_POOL_WEIGHT = 2**96 - 1  # LIMIT: a bond counts in the jury pool up to this much
ZERO_ADDRESS = "0x" + "00" * 20
PANIC_OVERFLOW = "Panic(0x11)"

# Why an item of fulfillBatch is skipped (InferenceSkipped's reason), and the error the single
# fulfill reverts with for the same cause.
SKIP_NOT_PENDING, SKIP_DEADLINE, SKIP_MISMATCH, SKIP_BAD_SIGNATURE, SKIP_NOT_RELAYER, SKIP_NOT_DESIGNATED = range(1, 7)
FULFILL_ERROR = {
    SKIP_NOT_DESIGNATED: "InferenceEscrow_NotDesignatedRelayer",
    SKIP_DEADLINE: "InferenceEscrow_DeadlinePassed",
    SKIP_MISMATCH: "InferenceEscrow_AttestationMismatch",
    SKIP_BAD_SIGNATURE: "InferenceEscrow_InvalidSignature",
    SKIP_NOT_RELAYER: "InferenceEscrow_NotActiveRelayer",
}


class Revert(Exception):
    """The operation breaks the rules named in `errors`; nothing changes."""

    def __init__(self, *errors: str):
        super().__init__(", ".join(errors))
        self.errors = frozenset(errors)


class TermsChanged(AssertionError):
    """A settlement used terms that changed after the call was paid for, within the notice."""


def _check(broken: list[str]) -> None:
    if broken:
        raise Revert(*broken)


# ---------------------------------------------------------------- the fee rule


def fee_split(price: int, protocol_bps: int, relayer_bps: int) -> tuple[int, int, int]:
    """(treasury, relayer, payees): each fee part rounds down, the payees take the rest."""
    protocol = price * protocol_bps // BPS
    relayer = price * relayer_bps // BPS
    payees = price - protocol - relayer
    assert protocol + relayer + payees == price and payees >= 0
    return protocol, relayer, payees


def payee_parts(payee_part: int, payees: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Payees' shares of the payee part by their bps, the first payee taking any remainder."""
    parts = [(account, payee_part * share // BPS) for account, share in payees[1:]]
    first = payee_part - sum(amount for _, amount in parts)
    assert first >= 0
    return [(payees[0][0], first), *parts]


# ---------------------------------------------------------------- state


@dataclass
class Model:
    owner: str
    price: int
    latest_version: int = 1
    active: bool = True
    # Explicit payees in force (None: the owner alone, 10_000 bps), and a change waiting for
    # `next_payees_at` (0: none). The first explicit payees apply at once, later ones after notice.
    explicit_payees: list[tuple[str, int]] | None = None
    next_payees: list[tuple[str, int]] | None = None
    next_payees_at: int = 0
    # The record of the last price rise: during [rise, notice_ends) receipts may pay
    # min(notice_floor, price) per call. Kept after the notice ends.
    notice_floor: int = 0
    notice_ends: int = 0
    # The lowest price the model ever had (None: never changed, the price itself): a channel
    # last settled (or opened) before `notice_ends` may pay it per call (see Hub.lowest_price).
    lowest: int | None = None

    def receipt_price(self, now: int) -> int:
        """The registry's receipt price at `now`: the floor while a rise is under notice, else the price."""
        if now < self.notice_ends and self.notice_floor < self.price:
            return self.notice_floor
        return self.price

    def floor_price(self) -> int:
        """receiptTerms' floorPrice: the lowest price the model ever had (never above the price)."""
        return self.price if self.lowest is None else self.lowest

    def price_notice(self, now: int) -> tuple[int, int]:
        """What `ModelRegistry.priceNotice` reads: the notice while it runs and binds, else zeros."""
        if now < self.notice_ends and self.notice_floor < self.price:
            return (self.notice_floor, self.notice_ends)
        return (0, 0)

    def payee_schedule(self, now: int) -> tuple[list[tuple[str, int]] | None, list[tuple[str, int]] | None, int]:
        """(explicit payees in force or None, pending change or None, its time or 0), as of `now`."""
        if self.next_payees_at and now >= self.next_payees_at:
            return (self.next_payees, None, 0)
        if self.next_payees_at:
            return (self.explicit_payees, self.next_payees, self.next_payees_at)
        return (self.explicit_payees, None, 0)

    def payees(self, now: int) -> list[tuple[str, int]]:
        explicit, _, _ = self.payee_schedule(now)
        return list(explicit) if explicit is not None else [(self.owner, BPS)]

    def pending_payees(self, now: int) -> tuple[list[tuple[str, int]], int]:
        _, pending, at = self.payee_schedule(now)
        return (list(pending), at) if pending is not None else ([], 0)

    def apply_due_payees(self, now: int) -> None:
        if self.next_payees_at and now >= self.next_payees_at:
            self.explicit_payees, self.next_payees, self.next_payees_at = self.next_payees, None, 0


@dataclass
class Request:
    request_id: int
    caller: str
    model_id: int
    version: int
    price: int
    input_hash: bytes
    deadline: int
    status: int = PENDING
    relayer: str | None = None  # designated (requestInferenceVia): only it serves or rejects
    paid_at: int = 0
    fee_schedule: tuple = ()  # Hub.fee_schedule() when it was paid for
    payee_schedule: tuple = ()  # Model.payee_schedule() when it was paid for
    # What the settlement record holds besides the above (set when it settles).
    output_hash: bytes = bytes(32)
    settled_by: str | None = None
    settled_at: int = 0

    def facts(self) -> tuple:
        """The settled call's facts, as SettlementRecord.Facts (what a challenge must show)."""
        return (self.request_id, self.model_id, self.version, self.price, self.input_hash, self.output_hash,
                self.settled_by, self.settled_at)


@dataclass
class Reservation:
    amount: int = 0
    releasing: int = 0
    release_at: int = 0  # 0: no release announced
    opened_at: int = 0  # the first reserve: no receipt paid from it was signed before


@dataclass
class SignerKey:
    current: str = ZERO_ADDRESS
    next: str = ZERO_ADDRESS
    next_at: int = 0  # 0: no change pending

    def in_force(self, now: int) -> str:
        return self.next if self.next_at and now >= self.next_at else self.current


@dataclass(frozen=True)
class SignedReceipt:
    """A receipt as the model sees it: its fields and the address the escrow recovers from its
    signature, or None (no valid signature)."""

    caller: str
    relayer: str
    model_id: int
    calls: int
    amount: int
    deadline: int
    signer: str | None

    @property
    def channel(self) -> tuple[str, str, int]:
        return (self.caller, self.relayer, self.model_id)


@dataclass
class ReceiptSettlement:
    """One settled receipt: the channel's increase and who got which part of it."""

    channel: tuple[str, str, int]
    calls: int
    amount: int
    new_calls: int
    paid: int
    treasury: tuple[str, int]
    relayer: tuple[str, int]
    payees: list[tuple[str, int]]
    fees: tuple[int, int] = (0, 0)


@dataclass
class Relayer:
    bond: int
    unbond_at: int = 0  # 0 while serving


@dataclass
class Settlement:
    """One settled call: who got which part of its price."""

    request_id: int
    price: int
    treasury: tuple[str, int]
    relayer: tuple[str, int]
    payees: list[tuple[str, int]]


@dataclass(frozen=True)
class Signed:
    """An attestation as the model sees it: its fields and who (if anyone) the escrow will
    recover as its signer. `signer` is None for a signature the escrow cannot recover
    (malformed or malleable), and a fresh, unbonded address for a signature over another
    domain (another chain id or verifying contract): recovery gives an unrelated key."""

    request_id: int
    model_id: int
    version: int
    input_hash: bytes
    signer: str | None
    output_hash: bytes = bytes(32)


@dataclass
class Hub:
    # parameters
    escrow: str
    relayer_registry: str
    owner: str
    treasury: str
    protocol_bps: int  # in force until `fees_next_at` (then the next ones)
    relayer_bps: int
    request_timeout: int
    min_bond: int  # in force until `min_bond_next_at`
    unbond_delay: int
    withdrawal_delay: int = 3_600
    price_notice_period: int = 3_600
    # scheduled changes: fees (escrow) and a rise of the minimum bond (relayer registry)
    next_protocol_bps: int = 0
    next_relayer_bps: int = 0
    fees_next_at: int = 0
    min_bond_next: int = 0
    min_bond_next_at: int = 0
    # ERC-20 balances of the fee token
    tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # escrow
    credit: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    earnings: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: dict[int, Request] = field(default_factory=dict)
    request_count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stats: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    escrow_paused: bool = False
    settlements: list[Settlement] = field(default_factory=list)
    # off-chain calls: per channel (caller, relayer, model) -> [calls, amount, settledAt]
    channels: dict[tuple[str, str, int], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    reservations: dict[tuple[str, str], Reservation] = field(default_factory=lambda: defaultdict(Reservation))
    signers: dict[str, SignerKey] = field(default_factory=lambda: defaultdict(SignerKey))
    receipt_settlements: list[ReceiptSettlement] = field(default_factory=list)
    # registries
    models: dict[int, Model] = field(default_factory=dict)
    registry_paused: bool = False
    relayers: dict[str, Relayer] = field(default_factory=dict)
    relayers_paused: bool = False
    # The relayer registry's part in disputes: the jury pool (a slot per address that ever
    # registered, in registration order, each with its weight), the jury draws announced and
    # not made (weights frozen while any is), and the court's holds on bonds.
    court: str = ZERO_ADDRESS
    slots: dict[str, int] = field(default_factory=dict)
    pool: list[list] = field(default_factory=list)  # slot - 1 -> [owner, weight]
    draws_pending: int = 0
    holds: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def terms_notice_period(self) -> int:
        return max(self.request_timeout, self.withdrawal_delay)

    # ------------------------------------------------------------ derived views

    def min_bond_at(self, now: int) -> int:
        return self.min_bond_next if self.min_bond_next_at and now >= self.min_bond_next_at else self.min_bond

    def pending_min_bond(self, now: int) -> tuple[int, int]:
        if self.min_bond_next_at == 0 or now >= self.min_bond_next_at:
            return (0, 0)
        return (self.min_bond_next, self.min_bond_next_at)

    def is_active(self, account: str | None, now: int) -> bool:
        r = self.relayers.get(account) if account else None
        return r is not None and r.unbond_at == 0 and r.bond >= self.min_bond_at(now)

    def fees(self, now: int) -> tuple[int, int]:
        if self.fees_next_at and now >= self.fees_next_at:
            return (self.next_protocol_bps, self.next_relayer_bps)
        return (self.protocol_bps, self.relayer_bps)

    def fee_schedule(self, now: int) -> tuple[tuple[int, int], tuple[int, int] | None, int]:
        """(fees in force, a pending change or None, its time or 0), as of `now`."""
        if self.fees_next_at and now < self.fees_next_at:
            return (self.fees(now), (self.next_protocol_bps, self.next_relayer_bps), self.fees_next_at)
        return (self.fees(now), None, 0)

    def pending_fees(self, now: int) -> tuple[int, int, int]:
        _, pending, at = self.fee_schedule(now)
        return (*pending, at) if pending is not None else (0, 0, 0)

    def signer_in_force(self, account: str, now: int) -> str:
        key = self.signers.get(account)
        return key.in_force(now) if key else ZERO_ADDRESS

    def receipt_signer(self, account: str, now: int) -> tuple[str, str, int]:
        """What `receiptSigner(account)` reads: (signer in force, pending next, its time)."""
        key = self.signers.get(account) or SignerKey()
        if key.next_at and now < key.next_at:
            return (key.in_force(now), key.next, key.next_at)
        return (key.in_force(now), ZERO_ADDRESS, 0)

    def signed_by(self, account: str, signer: str | None, now: int) -> bool:
        """Whether a signature recovering to `signer` is `account`'s: its own key, or its receipt signer in force."""
        if signer is None:
            return False
        if signer == account:
            return True
        delegated = self.signer_in_force(account, now)
        return delegated != ZERO_ADDRESS and signer == delegated

    def reservation(self, caller: str, relayer: str) -> tuple[int, int, int]:
        r = self.reservations.get((caller, relayer)) or Reservation()
        return (r.amount, r.releasing, r.release_at)

    def locked(self) -> int:
        return sum(r.price for r in self.requests.values() if r.status == PENDING)

    def reserved_total(self) -> int:
        return sum(r.amount for r in self.reservations.values())

    def escrow_liabilities(self) -> int:
        return sum(self.credit.values()) + self.reserved_total() + self.locked() + sum(self.earnings.values())

    def total_bonds(self) -> int:
        return sum(r.bond for r in self.relayers.values())

    def request_id(self, caller: str, number: int) -> int:
        return int(caller, 16) << 96 | number

    def next_request_id(self, caller: str) -> int:
        return self.request_id(caller, self.request_count[caller] + 1)

    # ------------------------------------------------------------ token

    def mint(self, to: str, amount: int) -> None:
        self.tokens[to] += amount

    def _pull(self, payer: str, to: str, amount: int, broken: list[str]) -> None:
        """Checks that `payer` can pay (allowances are unlimited in the tests)."""
        if self.tokens[payer] < amount:
            broken.append("ERC20InsufficientBalance")

    def _move(self, frm: str, to: str, amount: int) -> None:
        self.tokens[frm] -= amount
        self.tokens[to] += amount

    # ------------------------------------------------------------ model registry

    def register_model(self, sender: str, name: str, digest: bytes, price: int) -> int:
        broken = []
        if self.registry_paused:
            broken.append("EnforcedPause")
        if not name:
            broken.append("ModelRegistry_EmptyName")
        if digest == bytes(32):
            broken.append("ModelRegistry_ZeroDigest")
        if price > MAX_PRICE:
            broken.append("ModelRegistry_PriceTooHigh")
        _check(broken)
        model_id = len(self.models) + 1  # ids start at 1
        self.models[model_id] = Model(owner=sender, price=price)
        return model_id

    def _owned(self, sender: str, model_id: int, broken: list[str]) -> Model | None:
        model = self.models.get(model_id)
        if model is None:
            raise Revert("ModelRegistry_UnknownModel")
        if sender != model.owner:
            broken.append("ModelRegistry_NotModelOwner")
        return model

    def publish_version(self, sender: str, model_id: int, digest: bytes) -> int:
        broken: list[str] = []
        model = self._owned(sender, model_id, broken)
        if digest == bytes(32):
            broken.append("ModelRegistry_ZeroDigest")
        _check(broken)
        model.latest_version += 1
        return model.latest_version

    def set_price(self, sender: str, model_id: int, price: int, now: int) -> None:
        broken: list[str] = []
        model = self._owned(sender, model_id, broken)
        if price > MAX_PRICE:
            broken.append("ModelRegistry_PriceTooHigh")
        _check(broken)
        # A rise above the receipt price in force binds receipts only after the notice period:
        # until then receipts at that price (the floor) settle. A rise during a notice keeps
        # its floor and restarts the clock; a cut keeps the record (the lower of the floor and
        # the price is what receipts pay while it runs).
        floor = model.receipt_price(now)
        lowest = model.floor_price()
        model.price = price  # calls already paid keep their locked price; new requests pay this
        if price > floor:
            model.notice_floor, model.notice_ends = floor, now + self.price_notice_period
        model.lowest = min(price, lowest)

    def receipt_terms(self, model_id: int, now: int) -> tuple:
        """What `ModelRegistry.receiptTerms` reads: exists, price, floor, floorEndsAt, payees."""
        model = self.models.get(model_id)
        if model is None:
            return (False, 0, 0, 0, [])
        return (True, model.price, model.floor_price(), model.notice_ends, model.payees(now))

    def lowest_price(self, since: int, model: Model) -> int:
        """The least a channel pays per new call for the increase since `since` (its last
        settlement, or for a first one the opening of the caller's reservation for the relayer):
        the lowest price the model ever had if its last rise's notice ended after `since`, else
        the price; at least 1. For a given channel it only falls until the channel settles."""
        per_call = model.floor_price() if since < model.notice_ends else model.price
        return max(per_call, MIN_RECEIPT_PRICE)

    def channel_since(self, caller: str, relayer: str, model_id: int) -> int:
        settled_at = self.channels.get((caller, relayer, model_id), (0, 0, 0))[2]
        if settled_at:
            return settled_at
        r = self.reservations.get((caller, relayer))
        return r.opened_at if r else 0

    def channel_price(self, caller: str, relayer: str, model_id: int, now: int) -> int:
        model = self.models.get(model_id)
        if model is None:
            return 0
        return self.lowest_price(self.channel_since(caller, relayer, model_id), model)

    def set_payees(self, sender: str, model_id: int, accounts: list[str], shares: list[int], now: int) -> None:
        broken: list[str] = []
        model = self._owned(sender, model_id, broken)
        if not 1 <= len(accounts) <= MAX_PAYEES:
            broken.append("ModelRegistry_PayeeCount")
        if len(shares) != len(accounts):
            broken.append("ModelRegistry_LengthMismatch")
        if any(a.lower() == ZERO_ADDRESS for a in accounts):
            broken.append("ModelRegistry_ZeroAddress")
        if any(s == 0 for s in shares):
            broken.append("ModelRegistry_ZeroShare")
        if len({a.lower() for a in accounts}) != len(accounts):
            broken.append("ModelRegistry_DuplicatePayee")
        if sum(shares) != BPS:
            broken.append("ModelRegistry_SharesTotal")
        _check(broken)
        model.apply_due_payees(now)
        new = list(zip(accounts, shares))
        if model.explicit_payees is None:  # the owner alone is paid, and the owner changes it: at once
            model.explicit_payees = new
        else:  # co-authors keep their share of calls already paid for: after notice
            model.next_payees, model.next_payees_at = new, now + self.price_notice_period

    def set_active(self, sender: str, model_id: int, active: bool) -> None:
        broken: list[str] = []
        model = self._owned(sender, model_id, broken)
        _check(broken)
        model.active = active

    def transfer_model(self, sender: str, model_id: int, new_owner: str) -> None:
        broken: list[str] = []
        model = self._owned(sender, model_id, broken)
        if int(new_owner, 16) == 0:
            broken.append("ModelRegistry_ZeroAddress")
        _check(broken)
        model.owner = new_owner  # default payees follow the owner; explicit ones stay

    # ------------------------------------------------------------ relayer registry

    def relayer_register(self, sender: str, bond: int, now: int) -> None:
        broken: list[str] = []
        if self.relayers_paused:
            broken.append("EnforcedPause")
        if sender in self.relayers:  # registered, or unbonding and not yet withdrawn
            broken.append("RelayerRegistry_AlreadyRegistered")
        if bond < self.min_bond_at(now) or bond == 0:
            broken.append("RelayerRegistry_BondTooLow")
        if bond > MAX_BOND:
            broken.append("RelayerRegistry_BondTooHigh")
        self._pull(sender, self.relayer_registry, bond, broken)
        _check(broken)
        self.relayers[sender] = Relayer(bond=bond)
        if sender not in self.slots:  # its slot in the jury pool, kept if it leaves and comes back
            self.pool.append([sender, 0])
            self.slots[sender] = len(self.pool)
        self.sync_weight(sender, now)
        self._move(sender, self.relayer_registry, bond)

    def relayer_add_bond(self, sender: str, amount: int, now: int) -> None:
        r = self.relayers.get(sender)
        if r is None:
            raise Revert("RelayerRegistry_NotRegistered")
        broken: list[str] = []
        if amount == 0:
            broken.append("RelayerRegistry_ZeroAmount")
        if r.unbond_at != 0:
            broken.append("RelayerRegistry_Unbonding")
        if r.bond + amount > MAX_BOND:
            broken.append("RelayerRegistry_BondTooHigh")
        self._pull(sender, self.relayer_registry, amount, broken)
        _check(broken)
        r.bond += amount
        self.sync_weight(sender, now)
        self._move(sender, self.relayer_registry, amount)

    def relayer_begin_unbond(self, sender: str, now: int) -> None:
        r = self.relayers.get(sender)
        if r is None:
            raise Revert("RelayerRegistry_NotRegistered")
        if r.unbond_at != 0:
            raise Revert("RelayerRegistry_Unbonding")
        r.unbond_at = now + self.unbond_delay  # inactive at once
        self.sync_weight(sender, now)

    def relayer_withdraw_bond(self, sender: str, now: int) -> int:
        r = self.relayers.get(sender)
        if r is None:
            raise Revert("RelayerRegistry_NotRegistered")
        if r.unbond_at == 0:
            raise Revert("RelayerRegistry_NotUnbonding")
        if now < r.unbond_at:  # the bond comes back once the delay has passed
            raise Revert("RelayerRegistry_UnbondPending")
        if self.holds[sender]:  # an open dispute holds it, however long the relayer waited
            raise Revert("RelayerRegistry_BondHeld")
        del self.relayers[sender]
        self.sync_weight(sender, now)
        self._move(self.relayer_registry, sender, r.bond)
        return r.bond

    # ------------------------------------------------------------ relayer registry: the court's part

    def pool_weight(self, account: str) -> int:
        slot = self.slots.get(account)
        return self.pool[slot - 1][1] if slot else 0

    def pool_total(self) -> int:
        return sum(weight for _, weight in self.pool)

    def sync_weight(self, account: str, now: int) -> None:
        """A relayer's weight in the jury pool becomes its bond while active, else 0 (at most
        MAX_POOL_WEIGHT); while a jury draw is pending nothing moves (the change waits for the
        relayer's next change or anyone's syncWeight)."""
        if self.draws_pending or account not in self.slots:
            return
        r = self.relayers.get(account)
        weight = r.bond if r is not None and self.is_active(account, now) else 0
        self.pool[self.slots[account] - 1][1] = min(weight, MAX_POOL_WEIGHT)

    def slash(self, account: str, amount: int, now: int) -> int:
        """Takes up to `amount` of `account`'s bond to the court; returns what was taken."""
        r = self.relayers.get(account)
        taken = min(amount, r.bond) if r is not None else 0
        if taken == 0:
            return 0
        r.bond -= taken
        self.sync_weight(account, now)
        self._move(self.relayer_registry, self.court, taken)
        return taken

    def draw_jurors(self, seed: bytes, seats: int, excluded: tuple[str, ...]) -> list[str]:
        """Up to `seats` relayers drawn by pool weight without replacement (the rule of
        reference_draw), never one of `excluded`; a drawn slot whose relayer left since is an
        empty seat."""
        weights = [weight for _, weight in self.pool]
        picked = reference_draw(weights, seed, seats, {self.slots.get(a, 0) for a in excluded})
        return [self.pool[slot - 1][0] for slot in picked if self.pool[slot - 1][0] in self.relayers]

    def set_min_bond(self, sender: str, amount: int, now: int) -> None:
        if sender != self.owner:
            raise Revert("OwnableUnauthorizedAccount")
        if amount > MAX_MIN_BOND:
            raise Revert("RelayerRegistry_BondTooHigh")
        in_force = self.min_bond_at(now)
        if amount <= in_force:  # a cut applies at once
            self.min_bond, self.min_bond_next, self.min_bond_next_at = amount, 0, 0
        else:  # a rise after the unbond delay: relayers settle or add bond first
            self.min_bond, self.min_bond_next, self.min_bond_next_at = in_force, amount, now + self.unbond_delay

    # ------------------------------------------------------------ escrow: credit

    def deposit_for(self, sender: str, account: str, amount: int) -> None:
        broken: list[str] = []
        if amount == 0:
            broken.append("InferenceEscrow_ZeroAmount")
        if int(account, 16) == 0:
            broken.append("InferenceEscrow_ZeroAddress")
        if self.credit[account] + amount > MAX_CREDIT:
            broken.append("InferenceEscrow_CreditOverflow")
        self._pull(sender, self.escrow, amount, broken)
        _check(broken)  # deposits go on while paused
        self.credit[account] += amount
        self._move(sender, self.escrow, amount)

    def withdraw(self, sender: str, amount: int, now: int) -> None:
        """Free credit backs no receipt: it leaves in one step."""
        broken: list[str] = []
        if amount == 0:
            broken.append("InferenceEscrow_ZeroAmount")
        if self.credit[sender] < amount:
            broken.append("InferenceEscrow_InsufficientCredit")
        _check(broken)
        self.credit[sender] -= amount
        self._move(self.escrow, sender, amount)

    def withdraw_earnings(self, sender: str) -> int:
        amount = self.earnings[sender]
        if amount == 0:
            raise Revert("InferenceEscrow_NothingToWithdraw")
        self.earnings[sender] = 0
        self._move(self.escrow, sender, amount)
        return amount

    # ------------------------------------------------------------ escrow: reservations and signer keys

    def reserve(self, sender: str, relayer: str, amount: int, now: int) -> None:
        broken: list[str] = []
        if amount == 0:
            broken.append("InferenceEscrow_ZeroAmount")
        if int(relayer, 16) == 0:
            broken.append("InferenceEscrow_ZeroAddress")
        if self.credit[sender] < amount:
            broken.append("InferenceEscrow_InsufficientCredit")
        if self.reservation(sender, relayer)[0] + amount > MAX_CREDIT:
            broken.append("InferenceEscrow_CreditOverflow")
        _check(broken)
        self.credit[sender] -= amount
        self._add_reservation(sender, relayer, amount, now)

    def _add_reservation(self, caller: str, relayer: str, amount: int, now: int) -> None:
        r = self.reservations[(caller, relayer)]
        r.amount += amount
        r.opened_at = r.opened_at or now

    def reserve_for(self, sender: str, account: str, relayer: str, amount: int, now: int) -> None:
        """A deposit for `account` and its reserve for `relayer` in one step, paid by `sender`."""
        broken: list[str] = []
        if amount == 0:
            broken.append("InferenceEscrow_ZeroAmount")
        if int(account, 16) == 0 or int(relayer, 16) == 0:
            broken.append("InferenceEscrow_ZeroAddress")
        if self.reservation(account, relayer)[0] + amount > MAX_CREDIT:
            broken.append("InferenceEscrow_CreditOverflow")
        self._pull(sender, self.escrow, amount, broken)
        _check(broken)
        self._add_reservation(account, relayer, amount, now)
        self._move(sender, self.escrow, amount)

    def announce_release(self, sender: str, relayer: str, amount: int, now: int) -> None:
        if amount > MAX_CREDIT:
            raise Revert("InferenceEscrow_CreditOverflow")
        r = self.reservations[(sender, relayer)]
        # Replaces any earlier announcement; 0 cancels. It stays reserved meanwhile.
        r.releasing, r.release_at = amount, (0 if amount == 0 else now + self.withdrawal_delay)

    def release(self, sender: str, relayer: str, now: int) -> int:
        r = self.reservations.get((sender, relayer)) or Reservation()
        if r.release_at == 0:
            raise Revert("InferenceEscrow_NothingToRelease")
        if now < r.release_at:
            raise Revert("InferenceEscrow_ReleaseNotReady")
        amount = min(r.releasing, r.amount)
        if self.credit[sender] + amount > MAX_CREDIT:
            raise Revert("InferenceEscrow_CreditOverflow")
        r.amount -= amount
        r.releasing, r.release_at = 0, 0
        self.credit[sender] += amount
        return amount

    def set_receipt_signer(self, sender: str, signer: str, now: int) -> int:
        """The first key applies at once; a replacement or removal a withdrawal delay later.
        Returns when it applies."""
        key = self.signers[sender]
        in_force = key.in_force(now)
        if in_force == ZERO_ADDRESS:
            key.current, key.next, key.next_at = signer, ZERO_ADDRESS, 0
            return now
        key.current, key.next, key.next_at = in_force, signer, now + self.withdrawal_delay
        return key.next_at

    # ------------------------------------------------------------ escrow: calls

    def request(
        self, sender: str, model_id: int, version: int, input_hash: bytes, max_price: int, now: int,
        relayer: str | None = None,
    ) -> Request:  # fmt: skip
        """An open request (relayer None), or one designated to `relayer` (requestInferenceVia)."""
        designate: list[str] = []
        if relayer is not None and not self.is_active(relayer, now):
            designate.append("InferenceEscrow_NotActiveRelayer")
        paused = ["EnforcedPause"] if self.escrow_paused else []
        model = self.models.get(model_id)
        if model is None:
            raise Revert("ModelRegistry_UnknownModel", *paused, *designate)
        broken: list[str] = [*paused, *designate]
        if not model.active:
            broken.append("InferenceEscrow_ModelInactive")
        if version > model.latest_version:
            broken.append("InferenceEscrow_UnknownVersion")
        price = model.price  # the current price
        if price > max_price:
            broken.append("InferenceEscrow_PriceAboveMax")
        if self.credit[sender] < price:
            broken.append("InferenceEscrow_InsufficientCredit")
        _check(broken)
        self.credit[sender] -= price  # locked
        self.request_count[sender] += 1
        request = Request(
            request_id=self.request_id(sender, self.request_count[sender]),
            caller=sender,
            model_id=model_id,
            version=version or model.latest_version,  # 0 = latest, resolved now
            price=price,
            input_hash=input_hash,
            deadline=now + self.request_timeout,
            relayer=relayer,
            paid_at=now,
            fee_schedule=self.fee_schedule(now),
            payee_schedule=model.payee_schedule(now),
        )
        self.requests[request.request_id] = request
        return request

    def designated_relayer(self, request_id: int) -> str:
        r = self.requests.get(request_id)
        return r.relayer if r is not None and r.status == PENDING and r.relayer else ZERO_ADDRESS

    def skip_reasons(self, att: Signed, now: int) -> set[int]:
        """Why `att` cannot settle now (empty: it settles)."""
        request = self.requests.get(att.request_id)
        if request is None or request.status != PENDING:
            return {SKIP_NOT_PENDING}  # unknown, or already ended: settles at most once
        reasons = set()
        if now > request.deadline:
            reasons.add(SKIP_DEADLINE)
        if (att.model_id, att.version, att.input_hash) != (request.model_id, request.version, request.input_hash):
            reasons.add(SKIP_MISMATCH)
        if att.signer is None:
            reasons.add(SKIP_BAD_SIGNATURE)
        else:
            if request.relayer is not None and att.signer != request.relayer:
                reasons.add(SKIP_NOT_DESIGNATED)  # only the designated relayer settles it
            if not self.is_active(att.signer, now):
                reasons.add(SKIP_NOT_RELAYER)
        return reasons

    def fulfill_errors(self, att: Signed, now: int) -> set[str]:
        reasons = self.skip_reasons(att, now)
        if reasons == {SKIP_NOT_PENDING}:
            return {"InferenceEscrow_NotPending" if att.request_id in self.requests else "InferenceEscrow_UnknownRequest"}
        return {FULFILL_ERROR[r] for r in reasons}

    def fulfill(self, att: Signed, now: int) -> Settlement:
        errors = self.fulfill_errors(att, now)
        if errors:
            raise Revert(*errors)
        return self._settle(att, now)

    def fulfill_batch(self, atts: list[Signed], now: int) -> list[Settlement | set[int]]:
        """Per item, its settlement or the reasons it is skipped; items run in order."""
        def run() -> list[Settlement | set[int]]:
            out: list[Settlement | set[int]] = []
            for att in atts:
                reasons = self.skip_reasons(att, now)
                out.append(reasons if reasons else self._settle(att, now))
            return out

        return self._atomic(run)

    def _check_revenue(self, model_id: int, price: int) -> None:
        """A model's revenue is a checked 256-bit counter: a settlement that would push it past
        2**256 - 1 reverts the whole transaction (unreachable: kept so the model states the rule)."""
        if self.stats[model_id][1] + price > MAX_REVENUE:
            raise Revert(PANIC_OVERFLOW)

    def _atomic(self, run):
        """Runs `run()`; if it raises Revert, the model's state is as before (one transaction)."""
        saved = copy.deepcopy(self.__dict__)
        try:
            return run()
        except Revert:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _book(self, amount: int, relayer: str, model_id: int, now: int):
        """Splits `amount` by the fees in force now among the treasury, `relayer` and the payees in force now."""
        protocol_bps, relayer_bps = self.fees(now)
        protocol, relayer_part, payee_part = fee_split(amount, protocol_bps, relayer_bps)
        parts = payee_parts(payee_part, self.models[model_id].payees(now))
        for account, value in [(self.treasury, protocol), (relayer, relayer_part), *parts]:
            self.earnings[account] += value
        return (self.treasury, protocol), (relayer, relayer_part), parts, (protocol_bps, relayer_bps)

    def check_terms(self, fee_schedule: tuple, payee_schedule: tuple, paid_at: int, model_id: int, now: int) -> None:
        """The promise about terms: within the notice, a call paid for at `paid_at` settles under
        the fees in force then or the change announced then (a later change may cancel that
        one, not bring another), and likewise under the explicit payees in force or announced."""
        if now < paid_at + self.terms_notice_period:
            in_force, pending, _ = fee_schedule
            if self.fees(now) not in (in_force, pending):
                raise TermsChanged(f"fees {self.fees(now)} at {now}, neither {in_force} nor {pending} as when paid at {paid_at}")
        explicit, pending, _ = payee_schedule
        if explicit is not None and now < paid_at + self.price_notice_period:
            payees = self.models[model_id].payees(now)
            if payees != explicit and payees != pending:
                raise TermsChanged(f"payees of model {model_id} at {now} are {payees}, not those of a call paid at {paid_at}")

    def _settle(self, att: Signed, now: int) -> Settlement:
        request = self.requests[att.request_id]
        self._check_revenue(request.model_id, request.price)
        self.check_terms(request.fee_schedule, request.payee_schedule, request.paid_at, request.model_id, now)
        request.status = FULFILLED
        request.output_hash, request.settled_by, request.settled_at = att.output_hash, att.signer, now
        price = request.price
        treasury, relayer, parts, _ = self._book(price, att.signer, request.model_id, now)
        settlement = Settlement(att.request_id, price, treasury, relayer, parts)
        stats = self.stats[request.model_id]
        stats[0] += 1
        stats[1] += price
        self.settlements.append(settlement)
        return settlement

    # ------------------------------------------------------------ escrow: receipts

    def receipt_skip_reason(self, submitter: str, receipt: SignedReceipt, now: int) -> int | None:
        """Why `receipt`, submitted by `submitter`, does not settle now: the first reason in the
        escrow's check order, or None: it settles."""
        if receipt.relayer != submitter:
            return RECEIPT_NOT_SUBMITTER  # only the relayer it names settles it
        if not self.is_active(submitter, now):
            return RECEIPT_NOT_RELAYER
        if now > receipt.deadline:
            return RECEIPT_EXPIRED
        if receipt.calls > MAX_CHANNEL_CALLS or receipt.amount > MAX_CHANNEL_AMOUNT:
            return RECEIPT_NOT_NEWER
        settled_calls, settled_amount, _ = self.channels.get(receipt.channel, (0, 0, 0))
        if receipt.calls <= settled_calls or receipt.amount < settled_amount:
            return RECEIPT_NOT_NEWER  # a replay, an older receipt, or one that owes less
        if not self.signed_by(receipt.caller, receipt.signer, now):
            return RECEIPT_BAD_SIGNATURE
        model = self.models.get(receipt.model_id)
        if model is None:
            return RECEIPT_UNKNOWN_MODEL
        new_calls = receipt.calls - settled_calls
        paid = receipt.amount - settled_amount
        if paid < new_calls * self.lowest_price(self.channel_since(*receipt.channel), model):
            return RECEIPT_UNDERPRICED
        if paid > self.reservation(receipt.caller, receipt.relayer)[0]:
            return RECEIPT_INSUFFICIENT_CREDIT  # only the caller's reservation for this relayer pays
        return None

    def settle_receipts(self, submitter: str, receipts: list[SignedReceipt], now: int) -> list[ReceiptSettlement | int]:
        """Per item, in order, its settlement or the reason it is skipped. The whole batch
        reverts (and nothing changes) if a model's revenue would overflow (unreachable)."""
        def run() -> list[ReceiptSettlement | int]:
            out: list[ReceiptSettlement | int] = []
            for receipt in receipts:
                reason = self.receipt_skip_reason(submitter, receipt, now)
                out.append(reason if reason is not None else self._settle_receipt(receipt, now))
            return out

        return self._atomic(run)

    def _settle_receipt(self, receipt: SignedReceipt, now: int) -> ReceiptSettlement:
        channel = self.channels[receipt.channel]
        new_calls = receipt.calls - channel[0]
        paid = receipt.amount - channel[1]  # only the increase since the newest settled receipt
        self._check_revenue(receipt.model_id, paid)
        channel[0], channel[1], channel[2] = receipt.calls, receipt.amount, now
        self.reservations[(receipt.caller, receipt.relayer)].amount -= paid
        stats = self.stats[receipt.model_id]
        stats[0] += new_calls
        stats[1] += paid
        # The one rounding rule, applied to the increase as a whole; the fees and payees in force now.
        treasury, relayer, parts, fees = self._book(paid, receipt.relayer, receipt.model_id, now)
        settlement = ReceiptSettlement(
            receipt.channel, receipt.calls, receipt.amount, new_calls, paid, treasury, relayer, parts, fees
        )
        self.receipt_settlements.append(settlement)
        return settlement

    def reject(self, sender: str, request_id: int, reason: int) -> Request:
        broken: list[str] = []
        if reason not in REJECT_REASONS:
            broken.append("InferenceEscrow_InvalidRejectReason")
        request = self.requests.get(request_id)
        if request is None:
            broken.append("InferenceEscrow_UnknownRequest")
        elif request.status != PENDING:
            broken.append("InferenceEscrow_NotPending")
        elif request.relayer is None or request.relayer != sender:
            # Open requests: nobody may reject; designated ones: only their relayer (active or not).
            broken.append("InferenceEscrow_NotDesignatedRelayer")
        elif self.credit[request.caller] + request.price > MAX_CREDIT:
            broken.append("InferenceEscrow_CreditOverflow")
        _check(broken)  # rejection is allowed while pending, deadline or not
        return self._return_to_caller(request, REJECTED)

    def refund(self, request_id: int, now: int) -> Request:
        request = self.requests.get(request_id)
        if request is None:
            raise Revert("InferenceEscrow_UnknownRequest")
        broken: list[str] = []
        if request.status != PENDING:
            broken.append("InferenceEscrow_NotPending")
        if request.status == PENDING and now <= request.deadline:
            broken.append("InferenceEscrow_DeadlineNotPassed")
        if request.status == PENDING and self.credit[request.caller] + request.price > MAX_CREDIT:
            broken.append("InferenceEscrow_CreditOverflow")
        _check(broken)
        return self._return_to_caller(request, REFUNDED)

    def _return_to_caller(self, request: Request, status: int) -> Request:
        request.status = status
        self.credit[request.caller] += request.price  # exactly the locked price
        return request

    # ------------------------------------------------------------ escrow: owner

    def _only_owner(self, sender: str) -> None:
        if sender != self.owner:
            raise Revert("OwnableUnauthorizedAccount")

    def _schedule_fees(self, protocol_bps: int, relayer_bps: int, now: int) -> None:
        in_force = self.fees(now)
        self.protocol_bps, self.relayer_bps = in_force
        self.next_protocol_bps, self.next_relayer_bps = protocol_bps, relayer_bps
        self.fees_next_at = now + self.terms_notice_period

    def _scheduled_fees(self) -> tuple[int, int]:
        if self.fees_next_at:
            return (self.next_protocol_bps, self.next_relayer_bps)
        return (self.protocol_bps, self.relayer_bps)

    def set_protocol_fee(self, sender: str, bps: int, now: int) -> None:
        """Applies a terms notice period from now, replacing a change still pending."""
        self._only_owner(sender)
        if bps > MAX_PROTOCOL_FEE_BPS:
            raise Revert("InferenceEscrow_FeeTooHigh")
        self._schedule_fees(bps, self._scheduled_fees()[1], now)

    def set_relayer_fee(self, sender: str, bps: int, now: int) -> None:
        self._only_owner(sender)
        if bps > MAX_RELAYER_FEE_BPS:
            raise Revert("InferenceEscrow_FeeTooHigh")
        self._schedule_fees(self._scheduled_fees()[0], bps, now)

    def set_treasury(self, sender: str, treasury: str) -> None:
        self._only_owner(sender)
        if int(treasury, 16) == 0:
            raise Revert("InferenceEscrow_ZeroAddress")
        self.treasury = treasury  # past earnings stay where they are

    def set_paused(self, sender: str, which: str, paused: bool) -> None:
        """`which`: "escrow", "registry" or "relayers"; all three have the same owner here."""
        self._only_owner(sender)
        attr = {"escrow": "escrow_paused", "registry": "registry_paused", "relayers": "relayers_paused"}[which]
        if getattr(self, attr) == paused:
            raise Revert("EnforcedPause" if paused else "ExpectedPause")
        setattr(self, attr, paused)
