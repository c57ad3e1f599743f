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

Off-chain calls (docs/fast-calls.md): callers sign cumulative receipts over channels (caller,
relayer, model); `settle_receipts` pays each channel's increase since its newest settled receipt,
or skips the item for the first reason in the escrow's check order. A price rise binds receipts
only after the registry's notice period; an account that enables receipts withdraws credit only
what it announced, a delay after announcing it.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field

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
) = range(1, 8)
RECEIPT_REASON_NAMES = {
    RECEIPT_NOT_NEWER: "NotNewer",
    RECEIPT_EXPIRED: "Expired",
    RECEIPT_BAD_SIGNATURE: "InvalidSignature",
    RECEIPT_NOT_RELAYER: "NotActiveRelayer",
    RECEIPT_UNKNOWN_MODEL: "UnknownModel",
    RECEIPT_UNDERPRICED: "Underpriced",
    RECEIPT_INSUFFICIENT_CREDIT: "InsufficientCredit",
}
PANIC_OVERFLOW = "Panic(0x11)"

# Why an item of fulfillBatch is skipped (InferenceSkipped's reason), and the error the single
# fulfill reverts with for the same cause.
SKIP_NOT_PENDING, SKIP_DEADLINE, SKIP_MISMATCH, SKIP_BAD_SIGNATURE, SKIP_NOT_RELAYER = 1, 2, 3, 4, 5
FULFILL_ERROR = {
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
    explicit_payees: list[tuple[str, int]] | None = None  # None: the owner alone, 10_000 bps
    # The notice on the last price rise: receipts paying `notice_floor` per call settle until
    # `notice_ends` (exclusive); (0, 0) when no rise was announced or a cut cleared it.
    notice_floor: int = 0
    notice_ends: int = 0

    def receipt_price(self, now: int) -> int:
        """The least a receipt must pay per new call at time `now`."""
        return self.notice_floor if now < self.notice_ends else self.price

    def price_notice(self, now: int) -> tuple[int, int]:
        """What `ModelRegistry.priceNotice` reads: the notice while it runs, else zeros."""
        return (self.notice_floor, self.notice_ends) if now < self.notice_ends else (0, 0)

    def payees(self) -> list[tuple[str, int]]:
        return list(self.explicit_payees) if self.explicit_payees is not None else [(self.owner, BPS)]


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


@dataclass
class WithdrawalNotice:
    receipts_enabled: bool = False
    announced: int = 0
    ready_at: int = 0


@dataclass(frozen=True)
class SignedReceipt:
    """A receipt as the model sees it: its fields and who the escrow will find signed it:
    an address (a key recovered, or an ERC-1271 wallet) or None (no valid signature)."""

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


@dataclass
class Hub:
    # parameters
    escrow: str
    relayer_registry: str
    owner: str
    treasury: str
    protocol_bps: int
    relayer_bps: int
    request_timeout: int
    min_bond: int
    unbond_delay: int
    withdrawal_delay: int = 3_600
    price_notice_period: int = 3_600
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
    # off-chain calls: settled totals per channel (caller, relayer, model) -> [calls, amount]
    channels: dict[tuple[str, str, int], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    notices: dict[str, WithdrawalNotice] = field(default_factory=lambda: defaultdict(WithdrawalNotice))
    receipt_settlements: list[ReceiptSettlement] = field(default_factory=list)
    # registries
    models: dict[int, Model] = field(default_factory=dict)
    registry_paused: bool = False
    relayers: dict[str, Relayer] = field(default_factory=dict)
    relayers_paused: bool = False

    # ------------------------------------------------------------ derived views

    def is_active(self, account: str | None) -> bool:
        r = self.relayers.get(account) if account else None
        return r is not None and r.unbond_at == 0 and r.bond >= self.min_bond

    def locked(self) -> int:
        return sum(r.price for r in self.requests.values() if r.status == PENDING)

    def escrow_liabilities(self) -> int:
        return sum(self.credit.values()) + self.locked() + sum(self.earnings.values())

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
        # its floor and restarts the clock; a price at or below the floor ends any notice.
        floor = model.receipt_price(now)
        model.price = price  # calls already paid keep their locked price; new requests pay this
        if price > floor:
            model.notice_floor, model.notice_ends = floor, now + self.price_notice_period
        else:
            model.notice_floor, model.notice_ends = 0, 0

    def receipt_terms(self, model_id: int, now: int) -> tuple[bool, int, list[tuple[str, int]]]:
        """What `ModelRegistry.receiptTerms` reads: exists, receipt price, payees."""
        model = self.models.get(model_id)
        if model is None:
            return (False, 0, [])
        return (True, model.receipt_price(now), model.payees())

    def set_payees(self, sender: str, model_id: int, accounts: list[str], shares: list[int]) -> None:
        broken: list[str] = []
        model = self._owned(sender, model_id, broken)
        if not 1 <= len(accounts) <= MAX_PAYEES:
            broken.append("ModelRegistry_PayeeCount")
        if len(shares) != len(accounts):
            broken.append("ModelRegistry_LengthMismatch")
        zero = "0x" + "00" * 20
        if any(a.lower() == zero for a in accounts):
            broken.append("ModelRegistry_ZeroAddress")
        if any(s == 0 for s in shares):
            broken.append("ModelRegistry_ZeroShare")
        if len({a.lower() for a in accounts}) != len(accounts):
            broken.append("ModelRegistry_DuplicatePayee")
        if sum(shares) != BPS:
            broken.append("ModelRegistry_SharesTotal")
        _check(broken)
        model.explicit_payees = list(zip(accounts, shares))

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

    def relayer_register(self, sender: str, bond: int) -> None:
        broken: list[str] = []
        if self.relayers_paused:
            broken.append("EnforcedPause")
        if sender in self.relayers:  # registered, or unbonding and not yet withdrawn
            broken.append("RelayerRegistry_AlreadyRegistered")
        if bond < self.min_bond or bond == 0:
            broken.append("RelayerRegistry_BondTooLow")
        if bond > MAX_BOND:
            broken.append("RelayerRegistry_BondTooHigh")
        self._pull(sender, self.relayer_registry, bond, broken)
        _check(broken)
        self.relayers[sender] = Relayer(bond=bond)
        self._move(sender, self.relayer_registry, bond)

    def relayer_add_bond(self, sender: str, amount: int) -> None:
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
        self._move(sender, self.relayer_registry, amount)

    def relayer_begin_unbond(self, sender: str, now: int) -> None:
        r = self.relayers.get(sender)
        if r is None:
            raise Revert("RelayerRegistry_NotRegistered")
        if r.unbond_at != 0:
            raise Revert("RelayerRegistry_Unbonding")
        r.unbond_at = now + self.unbond_delay  # inactive at once

    def relayer_withdraw_bond(self, sender: str, now: int) -> int:
        r = self.relayers.get(sender)
        if r is None:
            raise Revert("RelayerRegistry_NotRegistered")
        if r.unbond_at == 0:
            raise Revert("RelayerRegistry_NotUnbonding")
        if now < r.unbond_at:  # the bond comes back once the delay has passed
            raise Revert("RelayerRegistry_UnbondPending")
        del self.relayers[sender]
        self._move(self.relayer_registry, sender, r.bond)
        return r.bond

    def set_min_bond(self, sender: str, amount: int) -> None:
        if sender != self.owner:
            raise Revert("OwnableUnauthorizedAccount")
        self.min_bond = amount

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
        broken: list[str] = []
        if amount == 0:
            broken.append("InferenceEscrow_ZeroAmount")
        if self.credit[sender] < amount:
            broken.append("InferenceEscrow_InsufficientCredit")
        notice = self.notices.get(sender)
        if notice is not None and notice.receipts_enabled:
            # Credit behind signed receipts leaves only as announced, once the delay has passed.
            if notice.announced < amount:
                broken.append("InferenceEscrow_WithdrawalNotAnnounced")
            elif now < notice.ready_at:
                broken.append("InferenceEscrow_WithdrawalNotReady")
        _check(broken)
        if notice is not None and notice.receipts_enabled:
            notice.announced -= amount
        self.credit[sender] -= amount
        self._move(self.escrow, sender, amount)

    def enable_receipts(self, sender: str) -> None:
        self.notices[sender].receipts_enabled = True  # once; again is a no-op

    def announce_withdrawal(self, sender: str, amount: int, now: int) -> None:
        notice = self.notices.get(sender)
        broken: list[str] = []
        if notice is None or not notice.receipts_enabled:
            broken.append("InferenceEscrow_NoWithdrawalDelay")
        if amount > MAX_CREDIT:
            broken.append("InferenceEscrow_CreditOverflow")
        _check(broken)
        # Replaces any earlier announcement; 0 cancels. Credit stays usable meanwhile.
        notice.announced = amount
        notice.ready_at = 0 if amount == 0 else now + self.withdrawal_delay

    def withdrawal_notice(self, account: str) -> tuple[bool, int, int]:
        notice = self.notices.get(account) or WithdrawalNotice()
        return (notice.receipts_enabled, notice.announced, notice.ready_at)

    def withdraw_earnings(self, sender: str) -> int:
        amount = self.earnings[sender]
        if amount == 0:
            raise Revert("InferenceEscrow_NothingToWithdraw")
        self.earnings[sender] = 0
        self._move(self.escrow, sender, amount)
        return amount

    # ------------------------------------------------------------ escrow: calls

    def request(self, sender: str, model_id: int, version: int, input_hash: bytes, max_price: int, now: int) -> Request:
        model = self.models.get(model_id)
        if model is None:
            raise Revert("ModelRegistry_UnknownModel", *(["EnforcedPause"] if self.escrow_paused else []))
        broken: list[str] = []
        if self.escrow_paused:
            broken.append("EnforcedPause")
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
        )
        self.requests[request.request_id] = request
        return request

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
        elif not self.is_active(att.signer):
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
        return self._settle(att)

    def fulfill_batch(self, atts: list[Signed], now: int) -> list[Settlement | set[int]]:
        """Per item, its settlement or the reasons it is skipped; items run in order."""
        def run() -> list[Settlement | set[int]]:
            out: list[Settlement | set[int]] = []
            for att in atts:
                reasons = self.skip_reasons(att, now)
                out.append(reasons if reasons else self._settle(att))
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

    def _settle(self, att: Signed) -> Settlement:
        request = self.requests[att.request_id]
        self._check_revenue(request.model_id, request.price)
        request.status = FULFILLED
        price = request.price
        protocol, relayer, payee_part = fee_split(price, self.protocol_bps, self.relayer_bps)
        # payees the model has at settlement
        parts = payee_parts(payee_part, self.models[request.model_id].payees())
        settlement = Settlement(att.request_id, price, (self.treasury, protocol), (att.signer, relayer), parts)
        for account, amount in [settlement.treasury, settlement.relayer, *parts]:
            self.earnings[account] += amount
        stats = self.stats[request.model_id]
        stats[0] += 1
        stats[1] += price
        self.settlements.append(settlement)
        return settlement

    # ------------------------------------------------------------ escrow: receipts

    def receipt_skip_reason(self, receipt: SignedReceipt, now: int) -> int | None:
        """Why `receipt` does not settle now, the first reason in the escrow's check order, or
        None: it settles."""
        if now > receipt.deadline:
            return RECEIPT_EXPIRED
        if receipt.calls > MAX_CHANNEL_CALLS or receipt.amount > MAX_CHANNEL_AMOUNT:
            return RECEIPT_NOT_NEWER
        settled_calls, settled_amount = self.channels.get(receipt.channel, (0, 0))
        if receipt.calls <= settled_calls or receipt.amount < settled_amount:
            return RECEIPT_NOT_NEWER  # a replay, an older receipt, or one that owes less
        if receipt.signer is None or receipt.signer != receipt.caller:
            return RECEIPT_BAD_SIGNATURE
        if not self.is_active(receipt.relayer):
            return RECEIPT_NOT_RELAYER
        exists, receipt_price, _ = self.receipt_terms(receipt.model_id, now)
        if not exists:
            return RECEIPT_UNKNOWN_MODEL
        new_calls = receipt.calls - settled_calls
        paid = receipt.amount - settled_amount
        if paid < new_calls * receipt_price:
            return RECEIPT_UNDERPRICED
        if paid > self.credit[receipt.caller]:
            return RECEIPT_INSUFFICIENT_CREDIT
        return None

    def settle_receipts(self, receipts: list[SignedReceipt], now: int) -> list[ReceiptSettlement | int]:
        """Per item, in order, its settlement or the reason it is skipped. The whole batch
        reverts (and nothing changes) if a model's revenue would overflow (unreachable)."""
        def run() -> list[ReceiptSettlement | int]:
            out: list[ReceiptSettlement | int] = []
            for receipt in receipts:
                reason = self.receipt_skip_reason(receipt, now)
                out.append(reason if reason is not None else self._settle_receipt(receipt, now))
            return out

        return self._atomic(run)

    def _settle_receipt(self, receipt: SignedReceipt, now: int) -> ReceiptSettlement:
        channel = self.channels[receipt.channel]
        new_calls = receipt.calls - channel[0]
        paid = receipt.amount - channel[1]  # only the increase since the newest settled receipt
        self._check_revenue(receipt.model_id, paid)
        channel[0], channel[1] = receipt.calls, receipt.amount
        self.credit[receipt.caller] -= paid
        stats = self.stats[receipt.model_id]
        stats[0] += new_calls
        stats[1] += paid
        # The one rounding rule, applied to the increase as a whole; the payees the model has now.
        protocol, relayer, payee_part = fee_split(paid, self.protocol_bps, self.relayer_bps)
        parts = payee_parts(payee_part, self.models[receipt.model_id].payees())
        settlement = ReceiptSettlement(
            receipt.channel, receipt.calls, receipt.amount, new_calls, paid,
            (self.treasury, protocol), (receipt.relayer, relayer), parts,
        )  # fmt: skip
        for account, amount in [settlement.treasury, settlement.relayer, *parts]:
            self.earnings[account] += amount
        self.receipt_settlements.append(settlement)
        return settlement

    def reject(self, sender: str, request_id: int, reason: int) -> Request:
        broken: list[str] = []
        if reason not in REJECT_REASONS:
            broken.append("InferenceEscrow_InvalidRejectReason")
        if not self.is_active(sender):
            broken.append("InferenceEscrow_NotActiveRelayer")
        request = self.requests.get(request_id)
        if request is None:
            broken.append("InferenceEscrow_UnknownRequest")
        elif request.status != PENDING:
            broken.append("InferenceEscrow_NotPending")
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
        if now <= request.deadline:
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

    def set_protocol_fee(self, sender: str, bps: int) -> None:
        self._only_owner(sender)
        if bps > MAX_PROTOCOL_FEE_BPS:
            raise Revert("InferenceEscrow_FeeTooHigh")
        self.protocol_bps = bps

    def set_relayer_fee(self, sender: str, bps: int) -> None:
        self._only_owner(sender)
        if bps > MAX_RELAYER_FEE_BPS:
            raise Revert("InferenceEscrow_FeeTooHigh")
        self.relayer_bps = bps

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
