"""Shared base of the economics state machine: the deployment it drives (World), the strategies,
and the plumbing every rule group uses (one step on the model and the chain at once, picks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from eth_utils import keccak, to_checksum_address
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize

from . import reference as ref
from . import reference_court as court_ref
from .chain_driver import Abi, Rpc
from .signing import Signer

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_UINT256 = 2**256 - 1
ZERO_ADDRESS = "0x" + "00" * 20

TOPIC_FULFILLED = "0x" + keccak(text="InferenceFulfilled(uint256,address,bytes32)").hex()
TOPIC_SKIPPED = "0x" + keccak(text="InferenceSkipped(uint256,uint8)").hex()
TOPIC_REJECTED = "0x" + keccak(text="InferenceRejected(uint256,address,uint8)").hex()
TOPIC_REFUNDED = "0x" + keccak(text="InferenceRefunded(uint256)").hex()
TOPIC_REQUESTED = "0x" + keccak(text="InferenceRequested(uint256,uint256,uint32,address,uint256,bytes32,bytes)").hex()
TERMINAL = {TOPIC_FULFILLED: ref.FULFILLED, TOPIC_REJECTED: ref.REJECTED, TOPIC_REFUNDED: ref.REFUNDED}
TOPIC_RECEIPT_SETTLED = "0x" + keccak(text="ReceiptSettled(address,address,uint256,uint256,uint256,uint256)").hex()
TOPIC_RECEIPT_SKIPPED = "0x" + keccak(text="ReceiptSkipped(address,address,uint256,uint256,uint8)").hex()
TOPIC_RESERVED = "0x" + keccak(text="Reserved(address,address,uint256,uint256)").hex()
TOPIC_DESIGNATED = "0x" + keccak(text="RelayerDesignated(uint256,address)").hex()
TOPIC_DISPUTE_RESOLVED = "0x" + keccak(text="DisputeResolved(uint256,uint8,uint256,uint256,uint256)").hex()
TOPIC_CREDITED = "0x" + keccak(text="Credited(uint256,address,uint256,uint8)").hex()
TOPIC_JUROR_PENALIZED = "0x" + keccak(text="JurorPenalized(uint256,address,uint256)").hex()


# ---------------------------------------------------------------- the chain side


@dataclass
class World:
    """The session deployment as the state machine sees it, and the snapshot every example
    starts from."""

    rpc: Rpc
    chain: object
    token: str
    registry: str
    relayers: str
    escrow: str
    court: str
    owner: str
    actors: list[str]
    keys: dict[str, object]
    signers: dict[str, Signer]  # every dev account's key, for receipts and attestations
    abi: dict[str, Abi]
    wallets: dict[str, str]  # contract wallet (TestWallet) -> its owner, an actor
    jurors: list[tuple[str, int]]  # relayers bonded in the base state that only sit on juries, and their bonds
    chain_id: int
    params: dict
    base_tokens: dict[str, int]
    snapshot: object = None
    examples: int = 0
    steps: int = 0  # transactions
    checks: int = 0  # full-state checks: one after the setup and one after every step
    outcomes: dict = field(default_factory=dict)
    steps_per_example: list = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    first_failure: str | None = None  # when the first failing example was found (before shrinking)

    def note_failure(self, exc: BaseException) -> None:
        if self.first_failure is None:
            self.first_failure = (
                f"first failure after {time.monotonic() - self.started:.1f} s, in example {self.examples}"
                f" (step {self.steps_per_example[-1] + 1}): {str(exc).splitlines()[0][:200]}"
            )
            print(f"\neconomics: {self.first_failure}", flush=True)  # before shrinking, which can take minutes

    @property
    def clients(self) -> list[str]:
        """Every account that can hold credit, earnings, requests or a receipt signer key."""
        return [self.owner, *self.actors, *self.wallets]

    @property
    def everyone(self) -> list[str]:
        """Every account that can hold tokens, a bond or a court payout: the clients and the jurors."""
        return [*self.clients, *(j for j, _ in self.jurors)]

    def fresh(self) -> None:
        """Back to the base state for a new example."""
        if self.snapshot is not None:
            self.chain.restore(self.snapshot)
        self.snapshot = self.chain.snapshot()

    def head_timestamp(self) -> int:
        return int(self.rpc.call_raw("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


# ---------------------------------------------------------------- strategies

ACTOR = st.integers(0, 8)
PICK = st.integers(0, 63)
SMALL = st.integers(0, 10**6)
AMOUNT = st.one_of(
    st.sampled_from([0, 1, 2, 3, 9_999, 10_000, 10_001]),
    SMALL,
    st.integers(0, 10**24),
    st.integers(0, 2**128),
    st.integers(2**159, 2**160),  # near the 160-bit credit limit
)
PRICE = st.one_of(
    st.sampled_from([0, 1, 2, 3, 9_999, 10_000, 10_001, 2**128 - 1]),
    SMALL,
    st.integers(0, 10**21),
    st.integers(0, 2**128 - 1),
    st.just(2**128),  # one above the cap
)
SHARES_SPEC = st.one_of(
    st.lists(st.tuples(ACTOR, st.integers(1, 10_000)), min_size=1, max_size=8),  # normalised to 10_000
    st.lists(st.tuples(ACTOR, st.integers(0, 10_000)), min_size=0, max_size=10),  # raw, often invalid
)
ATT_KIND = st.sampled_from(
    [
        "good", "good", "good", "good", "good",
        "wrong_chain", "wrong_contract", "wrong_model", "wrong_version", "wrong_input",
        "malleable", "short", "replay", "unknown",
    ]
)  # fmt: skip


RECEIPT_KIND = st.sampled_from(
    [
        "next", "next", "next", "next", "next", "newest", "all_credit",
        "expired", "at_deadline", "forged", "foreign_domain", "malleable", "short",
        "replay", "stale", "older", "less_amount", "out_of_range", "max_calls", "zero_increase",
        "underpriced", "over_credit", "model_zero", "zero_relayer", "zero_caller",
        "delegated", "delegated", "next_key", "wallet", "wallet",
    ]
)  # fmt: skip
# (kind, caller, relayer, model, calls added, extra)
RECEIPT_ITEM = st.tuples(RECEIPT_KIND, ACTOR, PICK, PICK, st.integers(1, 4), st.integers(0, 2**16))


def normalise(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Scale raw weights to shares summing to exactly 10_000, each at least 1."""
    total = sum(w for _, w in pairs)
    shares = [max(1, w * ref.BPS // total) for _, w in pairs]
    shares[0] += ref.BPS - sum(shares)
    if shares[0] < 1:
        return [(pairs[0][0], ref.BPS)]
    return [(a, s) for (a, _), s in zip(pairs, shares)]


@dataclass
class Accepted:
    """A receipt an honest relayer accepted: what it will settle, and the terms known then."""

    view: ref.SignedReceipt
    fields: tuple
    signature: bytes
    accepted_at: int  # the latest block's time when it was accepted (the state it checked)
    fee_schedule: tuple
    payee_schedule: tuple

    @property
    def item(self) -> tuple:
        return (self.view, self.fields, self.signature)


# ---------------------------------------------------------------- the machine's base


class MachineBase(RuleBasedStateMachine):
    """The machine's state, plumbing, setup and end; its rules come from the groups EconomicsMachine
    composes (rules_*.py, invariants.py)."""

    world: World  # set by the test before running

    def __init__(self):
        super().__init__()
        w = self.world
        w.fresh()
        w.examples += 1
        w.steps_per_example.append(-1)  # the first check runs after the setup
        self.w = w
        self.rpc = w.rpc
        self.T, self.R, self.L, self.E = w.abi["token"], w.abi["registry"], w.abi["relayers"], w.abi["escrow"]
        p = w.params
        self.hub = ref.Hub(
            escrow=w.escrow,
            relayer_registry=w.relayers,
            owner=w.owner,
            treasury=p["treasury"],
            protocol_bps=p["protocol_bps"],
            relayer_bps=p["relayer_bps"],
            request_timeout=p["timeout"],
            min_bond=p["min_bond"],
            unbond_delay=p["unbond_delay"],
            withdrawal_delay=p["withdrawal_delay"],
            price_notice_period=p["price_notice_period"],
        )
        for account, amount in w.base_tokens.items():
            self.hub.tokens[account] = amount
        # The court, and the jurors bonded in the base state (slots 1.. of the jury pool).
        self.hub.court = w.court
        terms, next_at = p["court_terms"]
        self.court = court_ref.Court(
            self.hub, w.court, w.owner, {i: court_ref.Terms(*t) for i, t in enumerate(terms, 1)},
            terms_id=1, next_terms_id=len(terms), next_terms_at=next_at,
        )  # fmt: skip
        for juror, bond in w.jurors:
            self.hub.relayers[juror] = ref.Relayer(bond=bond)
            self.hub.pool.append([juror, min(bond, ref.MAX_POOL_WEIGHT)])
            self.hub.slots[juror] = len(self.hub.pool)
        self.head_ts = w.head_timestamp()  # the latest block's time: what views run at
        self.next_ts = self.head_ts + 1
        self.head_block = int(w.rpc.call_raw("eth_blockNumber", []), 16)  # each transaction mines one block
        # Receipts: every one submitted (the model's view, the ABI tuple, the signature), for
        # replays; per channel, the caller's newest validly signed receipt (its off-chain state);
        # per channel, the ReceiptSettled events seen (calls, amount, paid) and the settled totals
        # the chain showed at the last check.
        self.submitted: list[tuple[ref.SignedReceipt, tuple, bytes]] = []
        self.signed: dict[tuple, list[tuple[ref.SignedReceipt, tuple, bytes]]] = {}
        self.settled_events: dict[tuple, list[tuple[int, int, int]]] = {}
        self.seen_channels: dict[tuple, tuple[int, int]] = {}
        self.inputs: dict[int, bytes] = {}  # request id -> input bytes
        self.used: list[tuple[tuple, bytes]] = []  # attestations already submitted, for replays
        self.terminal_events: dict[int, int] = {}  # request id -> the one terminal status seen
        self.reserved_pairs: set[tuple[str, str]] = set()  # (caller, relayer) of every Reserved event
        # Honest relayers and the receipts they accepted and have not settled yet, per channel
        # (oldest first); see honest_serve and honest_duties.
        self.honest: list[str] = []
        self.held: dict[tuple, list[Accepted]] = {}
        self.in_duty = False
        # Disputes: the output bytes of every attestation made (a challenge shows them), what the
        # test knows of each dispute (rules_disputes.DisputeNote), the DisputeResolved events seen
        # per dispute, and whether jurors are revealing (their duty, see juror_duties).
        self.outputs: dict[bytes, bytes] = {}
        self.notes: dict = {}
        self.endings: dict[int, int] = {}
        self.sealed: set[int] = set()  # disputes read once after they ended (they never change again)
        self.in_juror_duty = False

    # ------------------------------------------------------------ plumbing

    def actor(self, i: int) -> str:
        return self.w.actors[i % len(self.w.actors)]

    def wallet(self, i: int) -> str:
        wallets = sorted(self.w.wallets)
        return wallets[i % len(wallets)]

    def tick(self) -> int:
        ts = self.next_ts
        self.next_ts += 1
        return ts

    def transact(self, predict, sender: str, to: str, fn: str, *args, abi: Abi):
        """Runs `predict(ts)` on the model and the transaction on the chain at the same block
        time; both must agree on success, and on failure the chain's error must be one of the
        rules the model says are broken. A contract wallet's transaction is sent by its owner
        through `execute`. Before it, honest relayers settle what they must settle by then."""
        if not self.in_duty and not self.in_juror_duty:
            self.juror_duties()
        if not self.in_duty:
            self.honest_duties()
        ts = self.tick()
        try:
            expected, errors = predict(ts), None
        except ref.Revert as exc:
            expected, errors = None, exc.errors
        except ref.TermsChanged as exc:
            self.w.note_failure(exc)
            raise
        owner = self.w.wallets.get(sender)
        if owner is None:
            receipt = self.rpc.send(sender, to, abi[fn], *args, timestamp=ts)
        else:
            data = abi[fn].encode(*args)
            receipt = self.rpc.send(owner, sender, self.w.abi["wallet"]["execute"], to, data, timestamp=ts)
            if receipt.error == "TestWallet_CallFailed":
                receipt.error, receipt.error_args = self.rpc.decode_error(receipt.error_args["reason"])
        self.head_ts = ts
        self.head_block = receipt.block_number
        self.w.steps += 1
        key = (fn, "ok" if receipt.ok else receipt.error)
        self.w.outcomes[key] = self.w.outcomes.get(key, 0) + 1
        try:
            self._expect(fn, args, errors, receipt)
        except AssertionError as exc:
            self.w.note_failure(exc)
            raise
        self.record_terminal_events(receipt)
        return expected, receipt

    def _expect(self, fn, args, errors, receipt) -> None:
        if errors is None:
            assert receipt.ok, f"{fn}{args!r} reverted with {receipt.error}{receipt.error_args}; the model expected success"
        else:
            assert not receipt.ok, f"{fn}{args!r} succeeded; the model expected a revert with one of {sorted(errors)}"
            assert receipt.error in errors, (
                f"{fn}{args!r} reverted with {receipt.error}{receipt.error_args}; the model expected one of {sorted(errors)}"
            )

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            error = AssertionError(message)
            self.w.note_failure(error)
            raise error

    def record_terminal_events(self, receipt) -> None:
        for log in receipt.logs:
            if log["address"].lower() == self.w.court.lower() and log["topics"][0] == TOPIC_DISPUTE_RESOLVED:
                dispute_id = int(log["topics"][1], 16)
                self.check(dispute_id not in self.endings, f"dispute {dispute_id} ended twice")
                self.endings[dispute_id] = 1
                continue
            if log["address"].lower() != self.w.escrow.lower():
                continue
            if log["topics"][0] == TOPIC_RESERVED:
                pair = tuple(to_checksum_address("0x" + t[-40:]) for t in log["topics"][1:3])
                self.reserved_pairs.add(pair)
                continue
            status = TERMINAL.get(log["topics"][0])
            if status is None:
                continue
            request_id = int(log["topics"][1], 16)
            self.check(
                request_id not in self.terminal_events,
                f"request {request_id:#x} ended twice: status {self.terminal_events.get(request_id)} then {status}",
            )
            self.terminal_events[request_id] = status

    def mint(self, account: str, amount: int) -> None:
        self.transact(lambda ts: self.hub.mint(account, amount), account, self.w.token, "mint", account, amount, abi=self.T)

    def pick_model(self, pick: int) -> int:
        """A registered model mostly, sometimes an unknown id."""
        n = len(self.hub.models)
        if n == 0 or pick % 16 == 15:
            return n + 1
        return 1 + pick % n

    def pick_request(self, pick: int) -> int:
        pending = [r for r in self.hub.requests.values() if r.status == ref.PENDING]
        every = list(self.hub.requests.values())
        if pending and pick % 4 != 0:
            return pending[pick % len(pending)].request_id
        if every and pick % 8 != 0:
            return every[pick % len(every)].request_id
        return self.hub.next_request_id(self.actor(pick))  # not (yet) a request

    def pick_of(self, request_id: int) -> int | None:
        """A PICK for which pick_request gives `request_id` (None: none does, with many requests)."""
        return next((i for i in range(64) if self.pick_request(i) == request_id), None)

    def pick_signer(self, pick: int) -> str:
        active = [a for a in self.w.actors if self.hub.is_active(a, self.next_ts)]
        if active and pick % 5 != 0:
            return active[pick % len(active)]
        return self.actor(pick)

    # ------------------------------------------------------------ setup of each example

    @initialize(
        prices=st.lists(PRICE, min_size=1, max_size=2),
        relayer_picks=st.lists(ACTOR, min_size=1, max_size=3, unique=True),
        honest=st.integers(0, 2),
        callers=st.lists(st.tuples(ACTOR, AMOUNT, st.sampled_from([False, False, True])), min_size=1, max_size=3),
    )
    def market(self, prices, relayer_picks, honest, callers):
        """A few models, bonded relayers (the first `honest` of them follow the relayer policy)
        and funded callers (some of which reserve credit for a relayer), so that steps have
        something to do."""
        for i, price in enumerate(prices):
            self.register_model(actor=i, price=price, named=2)
        for pick in relayer_picks:
            self.relayer_register(actor=pick, bond_choice=0, extra=0)
        for pick in relayer_picks[:honest]:
            if self.hub.is_active(self.actor(pick), self.next_ts) and self.actor(pick) not in self.honest:
                self.honest.append(self.actor(pick))
        for pick, amount, reserve in callers:
            self.deposit(payer=pick, beneficiary=None, amount=amount, mint_first=True)
            if reserve:
                self.reserve(actor=pick, relayer=pick, how="part", amount=amount)

    # ------------------------------------------------------------ the end of an example

    def teardown(self):
        """Every dispute ends, once; nobody who followed the rules loses: honest relayers settle
        all they hold, and every call still pending is refunded in full to its caller once its
        deadline has passed."""
        try:
            self.finish_disputes()
            for relayer in list(self.honest):
                self.honest_settle(relayer)
            pending = [r for r in self.hub.requests.values() if r.status == ref.PENDING]
            if pending:
                self.next_ts = max(self.next_ts, max(r.deadline for r in pending) + 1)
            for r in pending:
                credit_before = self.observed_credit(r.caller)
                result, _ = self.transact(
                    lambda ts: self.hub.refund(r.request_id, ts), self.w.owner, self.w.escrow, "refund", r.request_id, abi=self.E
                )
                if result is not None:
                    self.check(self.observed_credit(r.caller) - credit_before == r.price, f"refund of {r} at the end")
        except AssertionError as exc:
            self.w.note_failure(exc)
            raise
