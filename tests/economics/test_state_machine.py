"""No money is created, lost or paid twice, and nobody who follows the rules loses: a Hypothesis
state machine drives the deployed contracts on anvil through random sequences of everything users,
relayers, attackers and the owner can do, and after every step compares the whole on-chain state
with the reference model (reference.py).

After every step:
- conservation, from the chain's state alone: the escrow's token balance equals the free credit
  of every account plus every reservation plus the prices locked by pending requests plus unpaid
  earnings, exactly; the relayer registry's token balance equals the sum of bonds;
- every token balance, credit, reservation, receipt signer key, earning, bond, request (and its
  designated relayer), model, payee schedule, fee schedule, minimum bond schedule and model stat
  equals the model's;
- every request is in exactly one state, and ends at most once (one terminal event each);
- each settlement's parts sum to its price by the rounding rule (the model's split, checked by
  the earnings deltas), and a refund or rejection returns exactly the locked price; a call settles
  under the fees and explicit payees in force (or announced) when it was paid for, within the
  notice (reference.TermsChanged);
- off-chain receipts: every channel's settled totals and channel price, every model's price notice
  and receipt terms equal the model's; a receipt never pays twice: a channel's settled calls only
  grow, its amount never shrinks, it equals the newest ReceiptSettled of the channel, and the
  increases paid add up to it exactly; every item of settleReceipts settles or is skipped for
  exactly the reason the model gives, in the escrow's check order (1-8);
- honest relayers (issue 10): a relayer that accepts a receipt only within its caller's
  reservation minus what is being released minus what it has not settled of that caller, only
  signed by the caller or its signer key in force, at the channel price, never holds more
  unsettled than the reservation backs, and every receipt it settles before the receipt's
  deadline, the reservation's release, a signer change or a minimum bond rise settles in full,
  however the price changed meanwhile. It is forced to settle at the last seconds each time one
  of these comes (honest_duties, before every transaction).

Adversaries: self-dealing accounts that are caller, uploader and relayer at once (receipts to
their own model naming themselves or an honest relayer, submitted by themselves, earnings taken
at once, releases and withdrawals racing the honest relayer); one caller served by several
relayers; contract-wallet callers (TestWallet) whose receipt signer key is changed mid-flight;
an owner changing fees, the minimum bond and a model owner the payees between payment and
settlement. At the end of every example the pending calls are refunded to their callers in full
after their deadline and honest relayers settle all they hold.

Callers sign receipts with anvil's dev keys; forged, foreign-domain, malleable, expired, replayed,
older, underpriced, over-reservation, wrong-submitter, next-key and out-of-range receipts are mixed
into batches with valid ones. Price rises under notice, releases, signer changes and the
scheduled terms are hit at their boundaries (t - 1, t).

Every transaction is mined at a timestamp the test chooses, so deadlines and delays are hit
exactly. Each example starts from the same chain snapshot.

Profiles: see conftest.py (MODELHUB_HYPOTHESIS_PROFILE=long for the soak run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from eth_utils import keccak, to_checksum_address
from hypothesis import assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

import reference as ref
from cast_support import DEV_KEYS
from chain_driver import Abi, Rpc, RpcError
from signing import Attestation, Receipt, Signer

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
    owner: str
    actors: list[str]
    keys: dict[str, object]
    signers: dict[str, Signer]  # every dev account's key, for receipts and attestations
    abi: dict[str, Abi]
    wallets: dict[str, str]  # contract wallet (TestWallet) -> its owner, an actor
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
    def everyone(self) -> list[str]:
        return [self.owner, *self.actors, *self.wallets]

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


# ---------------------------------------------------------------- the machine


class EconomicsMachine(RuleBasedStateMachine):
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
        self.head_ts = w.head_timestamp()  # the latest block's time: what views run at
        self.next_ts = self.head_ts + 1
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

    # ------------------------------------------------------------ attestations

    def attestation(self, kind: str, request_pick: int, signer_pick: int) -> tuple[ref.Signed, tuple, bytes]:
        """A (possibly forged) attestation: the model's view of it, the ABI tuple, the signature."""
        if kind == "replay" and self.used:
            fields, signature = self.used[request_pick % len(self.used)]
            request_id, model_id, version, input_hash, _ = fields
            signer = self.recover_model_view(fields, signature)
            return ref.Signed(request_id, model_id, version, input_hash, signer), fields, signature
        if kind == "unknown":
            request_id = self.hub.next_request_id(self.actor(request_pick))
            model_id, version, input_hash = 1, 1, keccak(b"")
        else:
            request_id = self.pick_request(request_pick)
            request = self.hub.requests.get(request_id)
            if request is not None:
                model_id, version = request.model_id, request.version
                input_hash = keccak(self.inputs[request_id])
            else:
                model_id, version, input_hash = 1, 1, keccak(b"")
        if kind == "wrong_model":
            model_id += 1
        elif kind == "wrong_version":
            version += 1
        elif kind == "wrong_input":
            input_hash = keccak(input_hash)
        output_hash = keccak(b'{"y":[%d]}' % signer_pick)
        att = Attestation(request_id, model_id, version, input_hash, output_hash)
        signer = self.pick_signer(signer_pick)
        chain_id, verifying = self.w.chain_id, self.w.escrow
        if kind == "wrong_chain":
            chain_id = 1
        elif kind == "wrong_contract":
            verifying = self.w.registry
        signature = self.w.signers[signer].sign_attestation(att, chain_id, verifying)
        view_signer: str | None = signer
        if kind in ("wrong_chain", "wrong_contract"):
            view_signer = "foreign-domain"  # recovers to an unrelated key, never a relayer
        elif kind == "malleable":  # the same signature with s in the upper half: refused
            r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
            signature = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
            view_signer = None
        elif kind == "short":
            signature = signature[:64]
            view_signer = None
        return ref.Signed(request_id, model_id, version, input_hash, view_signer), att.as_tuple(), signature

    def recover_model_view(self, fields: tuple, signature: bytes) -> str | None:
        """Who the model says a replayed signature recovers to (its original view)."""
        return self._signers[(fields, signature)]

    @property
    def _signers(self) -> dict:
        if not hasattr(self, "_signer_views"):
            self._signer_views = {}
        return self._signer_views

    def remember(self, view: ref.Signed, fields: tuple, signature: bytes) -> None:
        if (fields, signature) not in self._signers:
            self._signers[(fields, signature)] = view.signer
            self.used.append((fields, signature))

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

    # ------------------------------------------------------------ model registry

    @rule(actor=ACTOR, price=PRICE, named=st.integers(0, 7))
    def register_model(self, actor, price, named=1):
        sender = self.actor(actor)
        name = "model" if named else ""
        digest = bytes(32) if named == 1 and actor % 2 else keccak(b"onnx %d" % len(self.hub.models))
        self.transact(
            lambda ts: self.hub.register_model(sender, name, digest, price),
            sender, self.w.registry, "registerModel", name, digest, "ipfs://card", price, abi=self.R,
        )  # fmt: skip

    @rule(model=PICK, by_owner=st.booleans(), price=PRICE)
    def set_price(self, model, by_owner, price):
        model_id = self.pick_model(model)
        sender = self.model_actor(model_id, by_owner, model)
        self.transact(
            lambda ts: self.hub.set_price(sender, model_id, price, ts),
            sender, self.w.registry, "setPrice", model_id, price, abi=self.R,
        )  # fmt: skip

    def model_actor(self, model_id: int, by_owner: bool, pick: int) -> str:
        m = self.hub.models.get(model_id)
        return m.owner if (m is not None and by_owner) else self.actor(pick // 3)

    @rule(model=PICK, by_owner=st.booleans(), spec=SHARES_SPEC, normalised=st.booleans(), zero_addr=st.booleans())
    def set_payees(self, model, by_owner, spec, normalised, zero_addr):
        model_id = self.pick_model(model)
        sender = self.model_actor(model_id, by_owner or normalised, model)
        if normalised and spec and all(w > 0 for _, w in spec):
            seen, pairs = set(), []
            for a, w in spec:  # distinct accounts
                if a not in seen:
                    seen.add(a)
                    pairs.append((a, w))
            spec = normalise(pairs)
        accounts = [self.actor(a) for a, _ in spec]
        shares = [s for _, s in spec]
        if zero_addr and accounts and model % 7 == 0:
            accounts[-1] = ZERO_ADDRESS
        if any(s > 65_535 for s in shares):
            return
        self.transact(
            lambda ts: self.hub.set_payees(sender, model_id, accounts, shares, ts),
            sender, self.w.registry, "setPayees", model_id, accounts, shares, abi=self.R,
        )  # fmt: skip

    @rule(model=PICK, by_owner=st.booleans(), active=st.booleans())
    def set_active(self, model, by_owner, active):
        model_id = self.pick_model(model)
        sender = self.model_actor(model_id, by_owner, model)
        self.transact(
            lambda ts: self.hub.set_active(sender, model_id, active),
            sender, self.w.registry, "setActive", model_id, active, abi=self.R,
        )  # fmt: skip

    @rule(model=PICK, by_owner=st.booleans(), zero=st.booleans())
    def publish_version(self, model, by_owner, zero):
        model_id = self.pick_model(model)
        sender = self.model_actor(model_id, by_owner, model)
        digest = bytes(32) if zero and model % 3 == 0 else keccak(b"v%d" % model)
        self.transact(
            lambda ts: self.hub.publish_version(sender, model_id, digest),
            sender, self.w.registry, "publishVersion", model_id, digest, "ipfs://v", abi=self.R,
        )  # fmt: skip

    @rule(model=PICK, by_owner=st.booleans(), to=ACTOR)
    def transfer_model(self, model, by_owner, to):
        model_id = self.pick_model(model)
        sender = self.model_actor(model_id, by_owner, model)
        new_owner = self.actor(to) if to != 8 or model % 2 else ZERO_ADDRESS
        self.transact(
            lambda ts: self.hub.transfer_model(sender, model_id, new_owner),
            sender, self.w.registry, "transferModel", model_id, new_owner, abi=self.R,
        )  # fmt: skip

    # ------------------------------------------------------------ credit

    @rule(payer=ACTOR, beneficiary=st.one_of(st.none(), ACTOR), amount=AMOUNT, mint_first=st.booleans())
    def deposit(self, payer, beneficiary, amount, mint_first):
        sender = self.actor(payer)
        if mint_first and amount:
            self.mint(sender, amount)
        if beneficiary is None:
            self.transact(
                lambda ts: self.hub.deposit_for(sender, sender, amount),
                sender, self.w.escrow, "deposit", amount, abi=self.E,
            )  # fmt: skip
        else:
            account = self.actor(beneficiary)
            self.transact(
                lambda ts: self.hub.deposit_for(sender, account, amount),
                sender, self.w.escrow, "depositFor", account, amount, abi=self.E,
            )  # fmt: skip

    @rule(actor=PICK, amount=AMOUNT, how=st.sampled_from(["all", "part", "one_more", "given"]))
    def withdraw(self, actor, amount, how):
        funded = [a for a in self.w.actors if self.hub.credit[a]]
        sender = funded[actor % len(funded)] if funded and actor % 4 else self.actor(actor)
        credit = self.hub.credit[sender]
        amount = {"all": credit, "part": credit // 2, "one_more": credit + 1, "given": amount}[how]
        self.transact(lambda ts: self.hub.withdraw(sender, amount, ts), sender, self.w.escrow, "withdraw", amount, abi=self.E)

    @rule(actor=PICK)
    def withdraw_earnings(self, actor):
        earning = [a for a in self.w.actors if self.hub.earnings[a]]
        sender = earning[actor % len(earning)] if earning and actor % 4 else self.actor(actor)
        self.transact(lambda ts: self.hub.withdraw_earnings(sender), sender, self.w.escrow, "withdrawEarnings", abi=self.E)

    # ------------------------------------------------------------ calls

    @rule(
        actor=ACTOR,
        model=PICK,
        version=st.integers(0, 4),
        max_price=st.sampled_from(["exact", "exact", "below", "above", "unlimited", "zero"]),
        fund=st.booleans(),
        data=st.binary(max_size=24),
        via=st.one_of(st.none(), st.none(), PICK),
    )
    def request(self, actor, model, version, max_price, fund, data, via=None, sender=None, designate=None):
        """An open request, or one designated to a relayer (mostly an active one; `via`)."""
        sender = sender or self.actor(actor)
        if designate is not None:
            via = 0
        model_id = self.pick_model(model)
        m = self.hub.models.get(model_id)
        price = m.price if m else 0
        if fund and m and self.hub.credit[sender] < price and price - self.hub.credit[sender] <= ref.MAX_CREDIT:
            self.fund(sender, price - self.hub.credit[sender])
        maximum = {
            "exact": price,
            "below": max(price - 1, 0),
            "above": price + 1 + actor,
            "unlimited": MAX_UINT256,
            "zero": 0,
        }[max_price]
        if m and version > m.latest_version + 1:
            version = m.latest_version  # mostly known versions; latest + 1 is unknown
        if via is None:
            request, receipt = self.transact(
                lambda ts: self.hub.request(sender, model_id, version, keccak(data), maximum, ts),
                sender, self.w.escrow, "requestInference", model_id, version, data, maximum, abi=self.E,
            )  # fmt: skip
        else:
            relayer = designate or self.pick_signer(via)
            request, receipt = self.transact(
                lambda ts: self.hub.request(sender, model_id, version, keccak(data), maximum, ts, relayer=relayer),
                sender, self.w.escrow, "requestInferenceVia", model_id, version, data, maximum, relayer, abi=self.E,
            )  # fmt: skip
        if request is not None:
            self.inputs[request.request_id] = data
            logged = [log for log in receipt.logs if log["topics"][0] == TOPIC_REQUESTED]
            self.check(
                len(logged) == 1 and int(logged[0]["topics"][1], 16) == request.request_id,
                f"request id: chain {logged and logged[0]['topics'][1]}, model {request.request_id:#x}",
            )
            designated = [log for log in receipt.logs if log["topics"][0] == TOPIC_DESIGNATED]
            self.check(
                [(int(d["topics"][1], 16), to_checksum_address("0x" + d["topics"][2][-40:])) for d in designated]
                == ([(request.request_id, request.relayer)] if request.relayer else []),
                f"RelayerDesignated events {designated} for {request}",
            )

    def fund(self, account: str, amount: int) -> None:
        """Mints and deposits `amount` as `account`'s credit (a wallet's owner pays for it)."""
        payer = self.w.wallets.get(account, account)
        if amount <= 0 or self.hub.credit[account] + amount > ref.MAX_CREDIT:
            return
        self.mint(payer, amount)
        self.transact(
            lambda ts: self.hub.deposit_for(payer, account, amount),
            payer, self.w.escrow, "depositFor", account, amount, abi=self.E,
        )  # fmt: skip

    @rule(kind=ATT_KIND, request=PICK, signer=PICK, submitter=ACTOR)
    def fulfill(self, kind, request, signer, submitter):
        view, fields, signature = self.attestation(kind, request, signer)
        self.remember(view, fields, signature)
        sender = self.actor(submitter)  # anyone may submit
        self.transact(
            lambda ts: self.hub.fulfill(view, ts),
            sender, self.w.escrow, "fulfill", fields, signature, abi=self.E,
        )  # fmt: skip

    @rule(
        items=st.lists(st.tuples(ATT_KIND, PICK, PICK), min_size=0, max_size=6),
        duplicate=st.booleans(),
        mismatched_lengths=st.booleans(),
        submitter=ACTOR,
    )
    def fulfill_batch(self, items, duplicate, mismatched_lengths, submitter):
        built = [self.attestation(kind, r, s) for kind, r, s in items]
        if duplicate and built:
            built.append(built[0])  # the same attestation twice in one batch
        for view, fields, signature in built:
            self.remember(view, fields, signature)
        views = [b[0] for b in built]
        atts = [b[1] for b in built]
        sigs = [b[2] for b in built]
        if mismatched_lengths and len(items) % 3 == 1:
            sigs = sigs[:-1]

            def predict(ts):
                raise ref.Revert("InferenceEscrow_LengthMismatch")
        else:

            def predict(ts):
                return self.hub.fulfill_batch(views, ts)

        outcome, receipt = self.transact(
            predict, self.actor(submitter), self.w.escrow, "fulfillBatch", atts, sigs, abi=self.E
        )
        if outcome is None:
            return
        # Item by item: settled ones emit InferenceFulfilled, the others InferenceSkipped with a
        # reason the model agrees with; in the order of the batch.
        logs = [log for log in receipt.logs if log["topics"][0] in (TOPIC_FULFILLED, TOPIC_SKIPPED)]
        self.check(len(logs) == len(views), f"{len(logs)} settle/skip events for {len(views)} items")
        for i, (expected, log) in enumerate(zip(outcome, logs)):
            key = ("fulfillBatch item", "settled" if isinstance(expected, ref.Settlement) else f"skipped {sorted(expected)}")
            self.w.outcomes[key] = self.w.outcomes.get(key, 0) + 1
            request_id = int(log["topics"][1], 16)
            self.check(request_id == views[i].request_id, f"item {i} is about {request_id:#x}")
            if isinstance(expected, ref.Settlement):
                self.check(log["topics"][0] == TOPIC_FULFILLED, f"item {i} ({request_id:#x}) skipped; the model settles it")
            else:
                self.check(
                    log["topics"][0] == TOPIC_SKIPPED, f"item {i} ({request_id:#x}) settled; the model skips it {expected}"
                )
                reason = int(log["data"], 16)
                self.check(reason in expected, f"item {i} skipped for reason {reason}; the model says {sorted(expected)}")

    @rule(actor=PICK, request=PICK, reason=st.integers(0, 5))
    def reject(self, actor, request, reason):
        """Only a designated request's relayer may reject it (active or not); nobody an open one."""
        designated = [r.request_id for r in self.hub.requests.values() if r.status == ref.PENDING and r.relayer]
        request_id = designated[request % len(designated)] if designated and actor % 2 else self.pick_request(request)
        before = self.hub.requests.get(request_id)
        sender = before.relayer if before and before.relayer and actor % 3 else self.pick_signer(actor)
        locked = before.price if before and before.status == ref.PENDING else None
        caller = before.caller if before else None
        credit_before = self.observed_credit(caller) if caller else None
        result, _ = self.transact(
            lambda ts: self.hub.reject(sender, request_id, reason),
            sender, self.w.escrow, "reject", request_id, reason, abi=self.E,
        )  # fmt: skip
        if result is not None:
            self.check(self.observed_credit(caller) - credit_before == locked, "a rejection returns exactly the locked price")

    @rule(actor=ACTOR, request=PICK)
    def refund(self, actor, request):
        sender = self.actor(actor)  # anyone
        request_id = self.pick_request(request)
        before = self.hub.requests.get(request_id)
        locked = before.price if before and before.status == ref.PENDING else None
        caller = before.caller if before else None
        credit_before = self.observed_credit(caller) if caller else None
        result, _ = self.transact(
            lambda ts: self.hub.refund(request_id, ts),
            sender, self.w.escrow, "refund", request_id, abi=self.E,
        )  # fmt: skip
        if result is not None:
            self.check(self.observed_credit(caller) - credit_before == locked, "a refund returns exactly the locked price")

    def observed_credit(self, account: str) -> int:
        return self.rpc.view(self.w.escrow, self.E["balanceOf"], account)[0]

    # ------------------------------------------------------------ time

    @rule(to=st.sampled_from(["deadline", "after_deadline", "unbond", "before_unbond", "seconds", "timeout"]), pick=PICK)
    def warp(self, to, pick):
        """Moves the next block's time to a boundary that matters."""
        target = to
        pending = [r for r in self.hub.requests.values() if r.status == ref.PENDING]
        unbonding = [r for r in self.hub.relayers.values() if r.unbond_at]
        if target in ("deadline", "after_deadline") and pending:
            ts = pending[pick % len(pending)].deadline + (target == "after_deadline")
        elif target in ("unbond", "before_unbond") and unbonding:
            ts = unbonding[pick % len(unbonding)].unbond_at - (target == "before_unbond")
        elif target == "timeout":
            ts = self.next_ts + self.hub.request_timeout
        else:
            ts = self.next_ts + pick
        self.next_ts = max(self.next_ts, ts)

    # ------------------------------------------------------------ relayers

    @rule(actor=ACTOR, bond_choice=st.integers(0, 4), extra=AMOUNT)
    def relayer_register(self, actor, bond_choice, extra):
        sender = self.actor(actor)
        least = self.hub.min_bond_at(self.next_ts)
        bond = [least, least + extra, max(least - 1, 0), extra, 2**128][bond_choice]
        if bond_choice != 3 or actor % 2:
            self.mint(sender, min(bond, 2**200))
        self.transact(
            lambda ts: self.hub.relayer_register(sender, bond, ts),
            sender, self.w.relayers, "register", "http://relayer", bond, abi=self.L,
        )  # fmt: skip

    @rule(actor=PICK, amount=AMOUNT)
    def relayer_add_bond(self, actor, amount):
        sender = self.pick_signer(actor)
        self.mint(sender, amount)
        self.transact(
            lambda ts: self.hub.relayer_add_bond(sender, amount), sender, self.w.relayers, "addBond", amount, abi=self.L
        )

    @rule(actor=PICK)
    def relayer_begin_unbond(self, actor):
        sender = self.pick_signer(actor)
        if sender in self.honest and self.holds(sender):
            return  # an honest relayer settles what it holds before it leaves
        self.transact(
            lambda ts: self.hub.relayer_begin_unbond(sender, ts), sender, self.w.relayers, "beginUnbond", abi=self.L
        )

    @rule(actor=PICK)
    def relayer_withdraw_bond(self, actor):
        leaving = [a for a, r in self.hub.relayers.items() if r.unbond_at]
        sender = leaving[actor % len(leaving)] if leaving and actor % 4 else self.actor(actor)
        self.transact(
            lambda ts: self.hub.relayer_withdraw_bond(sender, ts), sender, self.w.relayers, "withdrawBond", abi=self.L
        )

    # ------------------------------------------------------------ owner

    @rule(
        by_owner=st.booleans(),
        amount=st.one_of(st.sampled_from([0, 1, 100 * 10**18, 100 * 10**18 + 1, 2**112 - 1, 2**112]), AMOUNT),
        actor=ACTOR,
    )
    def set_min_bond(self, by_owner, amount, actor):
        """A cut applies at once, a rise after the unbond delay (a second change replaces it)."""
        sender = self.w.owner if by_owner else self.actor(actor)
        self.transact(
            lambda ts: self.hub.set_min_bond(sender, amount, ts), sender, self.w.relayers, "setMinBond", amount, abi=self.L
        )

    @rule(by_owner=st.booleans(), which=st.booleans(), bps=st.one_of(st.integers(0, 3_001), st.sampled_from([0, 1_000, 1_001, 3_000, 10_000])), actor=ACTOR)
    def set_fee(self, by_owner, which, bps, actor):
        sender = self.w.owner if by_owner or actor < 6 else self.actor(actor)
        if which:
            self.transact(
                lambda ts: self.hub.set_protocol_fee(sender, bps, ts), sender, self.w.escrow, "setProtocolFeeBps", bps, abi=self.E
            )
        else:
            self.transact(
                lambda ts: self.hub.set_relayer_fee(sender, bps, ts), sender, self.w.escrow, "setRelayerFeeBps", bps, abi=self.E
            )

    @rule(by_owner=st.booleans(), to=ACTOR, zero=st.booleans())
    def set_treasury(self, by_owner, to, zero):
        sender = self.w.owner if by_owner else self.actor(to + 1)
        treasury = ZERO_ADDRESS if zero and to % 4 == 0 else self.actor(to)
        self.transact(
            lambda ts: self.hub.set_treasury(sender, treasury), sender, self.w.escrow, "setTreasury", treasury, abi=self.E
        )

    @rule(which=st.sampled_from(["escrow", "escrow", "registry", "relayers"]), again=st.integers(0, 3), by_owner=st.booleans(), actor=ACTOR)
    def set_paused(self, which, again, by_owner, actor):
        """Toggles a pause (sometimes asks for the state it is already in)."""
        paused = getattr(self.hub, f"{which}_paused") == (again == 0)
        sender = self.w.owner if by_owner or actor < 5 else self.actor(actor)
        to, abi = {"escrow": (self.w.escrow, self.E), "registry": (self.w.registry, self.R), "relayers": (self.w.relayers, self.L)}[which]
        self.transact(
            lambda ts: self.hub.set_paused(sender, which, paused), sender, to, "pause" if paused else "unpause", abi=abi
        )

    # ------------------------------------------------------------ reservations and receipt signer keys

    def account(self, pick: int, wallet: bool = False) -> str:
        return self.wallet(pick) if wallet and self.w.wallets else self.actor(pick)

    @rule(
        actor=ACTOR,
        relayer=PICK,
        how=st.sampled_from(["all", "part", "part", "one_more", "given", "zero", "to_max"]),
        amount=AMOUNT,
        wallet=st.booleans(),
    )
    def reserve(self, actor, relayer, how, amount, wallet=False):
        """Free credit set aside for one relayer (mostly an active one; sometimes address(0))."""
        sender = self.account(actor, wallet)
        target = self.pick_signer(relayer) if relayer % 13 else ZERO_ADDRESS
        credit = self.hub.credit[sender]
        reserved = self.hub.reservation(sender, target)[0]
        amount = {
            "all": credit, "part": max(credit // 3, 1), "one_more": credit + 1, "given": amount, "zero": 0,
            "to_max": ref.MAX_CREDIT - reserved + 1 if actor % 2 else ref.MAX_CREDIT - reserved,
        }[how]  # fmt: skip
        amount = min(amount, MAX_UINT256)
        self.transact(
            lambda ts: self.hub.reserve(sender, target, amount, ts),
            sender, self.w.escrow, "reserve", target, amount, abi=self.E,
        )  # fmt: skip

    @rule(payer=ACTOR, account=ACTOR, relayer=PICK, amount=st.one_of(SMALL, AMOUNT), wallet=st.booleans(), mint=st.booleans())
    def reserve_for(self, payer, account, relayer, amount, wallet, mint):
        """A deposit for an account (or a wallet) and its reserve for a relayer, in one step."""
        sender = self.actor(payer)
        beneficiary = self.account(account, wallet) if account % 9 else ZERO_ADDRESS
        target = self.pick_signer(relayer) if relayer % 13 else ZERO_ADDRESS
        if mint and amount:
            self.mint(sender, amount)
        self.transact(
            lambda ts: self.hub.reserve_for(sender, beneficiary, target, amount, ts),
            sender, self.w.escrow, "reserveFor", beneficiary, target, amount, abi=self.E,
        )  # fmt: skip

    def reservation_pairs(self, releasing: bool = False) -> list[tuple[str, str]]:
        return sorted(
            (pair for pair, r in self.hub.reservations.items() if (r.release_at if releasing else r.amount)), key=str
        )

    @rule(
        pick=PICK,
        how=st.sampled_from(["all", "all", "part", "zero", "one_more", "given", "over_max"]),
        amount=AMOUNT,
    )
    def announce_release(self, pick, how, amount):
        """A caller announces that (part of) a reservation comes back after the delay; 0 cancels."""
        pairs = self.reservation_pairs()
        caller, relayer = pairs[pick % len(pairs)] if pairs and pick % 5 else (self.actor(pick), self.pick_signer(pick))
        reserved = self.hub.reservation(caller, relayer)[0]
        amount = {
            "all": reserved, "part": reserved // 2, "zero": 0, "one_more": reserved + 1, "given": amount,
            "over_max": ref.MAX_CREDIT + 1,
        }[how]  # fmt: skip
        self.transact(
            lambda ts: self.hub.announce_release(caller, relayer, amount, ts),
            caller, self.w.escrow, "announceRelease", relayer, amount, abi=self.E,
        )  # fmt: skip

    @rule(pick=PICK, when=st.sampled_from(["before_ready", "ready", "ready", "now"]))
    def release(self, pick, when):
        """A release one second early, right on time, or whenever (often nothing announced)."""
        pairs = self.reservation_pairs(releasing=True)
        caller, relayer = pairs[pick % len(pairs)] if pairs and pick % 4 else (self.actor(pick), self.pick_signer(pick))
        ready_at = self.hub.reservation(caller, relayer)[2]
        if ready_at and when != "now":
            self.next_ts = max(self.next_ts, ready_at - (when == "before_ready"))
        self.transact(
            lambda ts: self.hub.release(caller, relayer, ts), caller, self.w.escrow, "release", relayer, abi=self.E
        )

    @rule(
        actor=ACTOR,
        relayer=PICK,
        share=st.sampled_from(["all", "part", "one"]),
        when=st.sampled_from(["at_once", "before_ready", "ready", "ready", "later"]),
        again=st.booleans(),
        withdraw=st.booleans(),
        wallet=st.sampled_from([False, False, False, True]),
    )
    def announce_and_release(self, actor, relayer, share, when, again, withdraw, wallet):
        """The two steps in one: a caller with a reservation announces a release, then releases
        at once, one second early, right on time or later; sometimes releases again, and
        withdraws what came back (free credit leaves in one step)."""
        account = self.account(actor, wallet)
        target = self.pick_signer(relayer)
        if not self.hub.reservation(account, target)[0]:
            self.fund(account, 10**6 + actor)
            self.reserve(actor=actor, relayer=relayer, how="part", amount=0, wallet=wallet)
            target = self.pick_signer(relayer) if relayer % 13 else ZERO_ADDRESS
        reserved = self.hub.reservation(account, target)[0]
        amount = {"all": reserved, "part": max(reserved // 3, 1), "one": 1}[share]
        self.transact(
            lambda ts: self.hub.announce_release(account, target, amount, ts),
            account, self.w.escrow, "announceRelease", target, amount, abi=self.E,
        )  # fmt: skip
        ready_at = self.hub.reservation(account, target)[2]
        if when == "before_ready":
            self.next_ts = max(self.next_ts, ready_at - 1)
        elif when == "ready":
            self.next_ts = max(self.next_ts, ready_at)
        elif when == "later":
            self.next_ts = max(self.next_ts, ready_at + 1 + actor)
        for _ in range(1 + again):
            self.transact(
                lambda ts: self.hub.release(account, target, ts), account, self.w.escrow, "release", target, abi=self.E
            )
        if withdraw and self.hub.credit[account]:
            credit = self.hub.credit[account]
            self.transact(
                lambda ts: self.hub.withdraw(account, credit, ts), account, self.w.escrow, "withdraw", credit, abi=self.E
            )

    @rule(actor=ACTOR, key=st.integers(0, 10), wallet=st.sampled_from([False, True]))
    def set_receipt_signer(self, actor, key, wallet):
        """A key that signs receipts besides the account's own: the first applies at once, a
        change (or removal: key 9) a withdrawal delay later."""
        sender = self.account(actor, wallet)
        signer = ZERO_ADDRESS if key == 9 else (sender if key == 10 else self.actor(key))
        self.transact(
            lambda ts: self.hub.set_receipt_signer(sender, signer, ts),
            sender, self.w.escrow, "setReceiptSigner", signer, abi=self.E,
        )  # fmt: skip

    @rule(actor=ACTOR, how=st.sampled_from(["withdraw", "deposit", "request", "request_via"]), amount=SMALL, model=PICK)
    def wallet_acts(self, actor, how, amount, model):
        """A contract wallet deposits (paid by its owner), withdraws, or makes a call."""
        if not self.w.wallets:
            return
        wallet = self.wallet(actor)
        if how == "deposit":
            self.fund(wallet, amount + 1)
        elif how == "withdraw":
            credit = self.hub.credit[wallet]
            value = credit if actor % 2 else credit + 1
            self.transact(lambda ts: self.hub.withdraw(wallet, value, ts), wallet, self.w.escrow, "withdraw", value, abi=self.E)
        else:
            via = model if how == "request_via" else None
            self.request(actor=actor, model=model % 15, version=0, max_price="exact", fund=True, data=b"w", via=via, sender=wallet)

    # ------------------------------------------------------------ receipts: price notice

    @precondition(lambda self: self.hub.models)
    @rule(
        model=PICK,
        how=st.sampled_from(["rise", "rise", "rise_big", "same", "between", "to_floor", "below_floor", "zero"]),
        extra=st.integers(1, 10**6),
    )
    def change_price(self, model, how, extra):
        """Rises and cuts relative to the price and the receipt price in force."""
        model_id = 1 + model % len(self.hub.models)
        m = self.hub.models[model_id]
        floor = m.receipt_price(self.next_ts)
        price = {
            "rise": m.price + extra,
            "rise_big": m.price * 3 + extra,
            "same": m.price,
            "between": floor + (m.price - floor) // 2 + (extra % 2),
            "to_floor": floor,
            "below_floor": max(floor - extra, 0),
            "zero": 0,
        }[how]
        price = min(price, ref.MAX_PRICE)
        self.transact(
            lambda ts: self.hub.set_price(m.owner, model_id, price, ts),
            m.owner, self.w.registry, "setPrice", model_id, price, abi=self.R,
        )  # fmt: skip

    @rule(
        to=st.sampled_from(["notice_end", "before_notice_end", "ready", "before_ready", "delay", "notice", "minute"]),
        pick=PICK,
    )
    def warp_receipts(self, to, pick):
        """Moves the next block's time to a boundary of a price notice, a release, a signer key
        change or a scheduled change of terms (fees, minimum bond, payees)."""
        hub = self.hub
        notices = [m.notice_ends for m in hub.models.values() if m.notice_ends >= self.next_ts]
        ready = [r.release_at for r in hub.reservations.values() if r.release_at >= self.next_ts]
        ready += [k.next_at for k in hub.signers.values() if k.next_at >= self.next_ts]
        ready += [t for t in (hub.fees_next_at, hub.min_bond_next_at) if t >= self.next_ts]
        ready += [m.next_payees_at for m in hub.models.values() if m.next_payees_at >= self.next_ts]
        if to in ("notice_end", "before_notice_end") and notices:
            ts = notices[pick % len(notices)] - (to == "before_notice_end")
        elif to in ("ready", "before_ready") and ready:
            ts = ready[pick % len(ready)] - (to == "before_ready")
        elif to == "delay":
            ts = self.next_ts + self.hub.withdrawal_delay + pick % 2
        elif to == "notice":
            ts = self.next_ts + self.hub.price_notice_period + pick % 2
        else:
            ts = self.next_ts + 60 + pick
        self.next_ts = max(self.next_ts, ts)

    # ------------------------------------------------------------ receipts: signing and settling

    def pick_caller(self, pick: int) -> int:
        """An actor index: mostly one with a reservation, or with credit."""
        reserving = sorted({self.w.actors.index(c) for (c, _), r in self.hub.reservations.items() if r.amount and c in self.w.actors})
        funded = [i for i, a in enumerate(self.w.actors) if self.hub.credit[a]]
        if reserving and pick % 3 == 0:
            return reserving[pick // 3 % len(reserving)]
        if funded and pick % 3 == 1:
            return funded[pick // 3 % len(funded)]
        return pick

    def pick_relayer_for(self, caller: str, pick: int) -> str:
        """Mostly a relayer the caller reserved credit for, else an active relayer (or anyone)."""
        mine = sorted(r for (c, r), res in self.hub.reservations.items() if c == caller and res.amount)
        if mine and pick % 2 == 0:
            return mine[pick // 2 % len(mine)]
        return self.pick_signer(pick)

    def caller_key(self, account: str, kind: str, ts: int) -> tuple[Signer, str | None]:
        """The key a receipt of `account` is signed with and who the escrow recovers (None:
        nobody valid): its own key, its receipt signer key in force, or the pending next key."""
        in_force, pending, _ = self.hub.receipt_signer(account, ts)
        own = self.w.signers.get(account) or self.w.signers[self.w.wallets.get(account, self.w.owner)]
        if kind == "delegated" and in_force in self.w.signers:
            return self.w.signers[in_force], in_force
        if kind == "next_key" and pending in self.w.signers:
            return self.w.signers[pending], pending
        if account in self.w.wallets:  # a contract has no key of its own: its signer key, if any
            key = self.w.signers.get(in_force, own)
            return key, key.address
        return own, own.address

    def newest_signed(self, channel: tuple) -> tuple[int, int]:
        """The totals a caller builds its next receipt on: its newest signed receipt of the
        channel, or what has been settled if that is further."""
        settled = self.hub.channels.get(channel, (0, 0, 0))[:2]
        signed = self.signed.get(channel)
        if not signed:
            return tuple(settled)
        last = signed[-1][0]
        return max(last.calls, settled[0]), max(last.amount, settled[1])

    def sign(self, view: ref.SignedReceipt, key: Signer, chain_id: int | None = None, escrow: str | None = None) -> bytes:
        receipt = Receipt(view.caller, view.relayer, view.model_id, view.calls, view.amount, view.deadline)
        return key.sign_receipt(receipt, chain_id or self.w.chain_id, escrow or self.w.escrow)

    def build_receipt(
        self, kind, caller_pick, relayer_pick, model_pick, k, extra, ts, model_id: int | None = None,
        caller: str | None = None, relayer: str | None = None,
    ) -> tuple[ref.SignedReceipt, tuple, bytes]:  # fmt: skip
        """A receipt (possibly forged, stale or out of range) to be settled at time `ts`: the
        model's view of it, the ABI tuple and the signature."""
        if kind == "replay" and self.submitted:
            return self.submitted[extra % len(self.submitted)]
        if model_id is None and caller is None:  # a random item; the fast-call paths name their caller and model
            caller_pick = self.pick_caller(caller_pick)
        if kind in ("newest", "stale") and self.signed:
            channels = sorted(self.signed, key=str)
            history = self.signed[channels[extra % len(channels)]]
            return history[-1] if kind == "newest" else history[extra % len(history)]
        if caller is None:
            caller = self.wallet(caller_pick) if kind == "wallet" and self.w.wallets else self.actor(caller_pick)
        if relayer is None:
            relayer = self.pick_relayer_for(caller, relayer_pick)
        if model_id is None:
            model_id = 0 if kind == "model_zero" else self.pick_model(model_pick)
        channel = (caller, relayer, model_id)
        m = self.hub.models.get(model_id)
        lowest = self.hub.channel_price(caller, relayer, model_id, ts) if m else 1
        receipt_price = max(m.receipt_price(ts), 1) if m else 1
        price = m.price if m else 0
        per_call = [lowest, receipt_price, price, receipt_price + extra % 1000][extra % 4]
        base_calls, base_amount = self.newest_signed(channel)
        settled_calls, settled_amount, _ = self.hub.channels.get(channel, (0, 0, 0))
        credit = self.hub.reservation(caller, relayer)[0]  # what pays: the reservation for this relayer
        calls, amount = base_calls + k, base_amount + k * per_call
        deadline = ts + 600 + extra % 7200  # mostly settleable now, not always later
        if kind == "all_credit":
            amount = settled_amount + max(credit, k * lowest)
        elif kind == "over_credit":
            amount = settled_amount + max(credit + 1 + extra % 3, k * lowest)
        elif kind == "underpriced":
            amount = base_amount + max(k * lowest - 1 - extra % 2, 0)
        elif kind == "zero_increase":
            amount = base_amount
        elif kind == "expired":
            deadline = ts - 1 - extra % 2
        elif kind == "at_deadline":
            deadline = ts
        elif kind == "older":
            calls, amount = settled_calls - extra % 2, settled_amount + k * per_call
        elif kind == "less_amount":
            amount = settled_amount - 1
        elif kind == "out_of_range":
            if extra % 2:
                calls = ref.MAX_CHANNEL_CALLS + 1
            else:
                amount = ref.MAX_CHANNEL_AMOUNT + 1
        elif kind == "max_calls":
            calls = ref.MAX_CHANNEL_CALLS
            amount = base_amount + (calls - base_calls) * lowest
        calls, amount = max(calls, 0), max(amount, 0)
        if amount >= 2**256:
            amount = 2**256 - 1
        if kind == "zero_relayer":  # never a relayer, whatever any cache starts at
            relayer = ZERO_ADDRESS
        key, signer = self.caller_key(caller, kind, ts)
        if kind == "zero_caller":  # no key signs for address(0), and no wallet lives there
            caller = ZERO_ADDRESS
        elif kind == "forged":
            other = self.actor(caller_pick + 1 + extra % 8)
            key, signer = self.w.signers[other], other
        view = ref.SignedReceipt(caller, relayer, model_id, calls, amount, deadline, signer)
        if kind == "foreign_domain":
            signature = self.sign(view, key, chain_id=1 if extra % 2 else None, escrow=None if extra % 2 else self.w.registry)
            view = ref.SignedReceipt(caller, relayer, model_id, calls, amount, deadline, None)
        else:
            signature = self.sign(view, key)
        if kind == "malleable":  # the same signature with s in the upper half: refused
            r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
            signature = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
            view = ref.SignedReceipt(caller, relayer, model_id, calls, amount, deadline, None)
        elif kind == "short":
            signature = signature[:64]
            view = ref.SignedReceipt(caller, relayer, model_id, calls, amount, deadline, None)
        fields = (caller, relayer, model_id, calls, amount, deadline)
        if kind in ("next", "at_deadline", "delegated", "wallet"):  # what a relayer accepts: the caller's newest receipt
            self.signed.setdefault(channel, []).append((view, fields, signature))
        return view, fields, signature

    def settle_receipts(self, built, submitter: str, mismatched_lengths: bool = False, honest: list | None = None) -> list | None:
        """`submitter` sends settleReceipts with the receipts `built`. An honest relayer settles
        only what it accepted (`honest`, the Accepted items): any other batch it would send that
        touches a caller whose receipts it holds is sent by the owner instead (all NotSubmitter)."""
        for item in built:
            if item not in self.submitted:
                self.submitted.append(item)
        views = [b[0] for b in built]
        receipts = [b[1] for b in built]
        sigs = [b[2] for b in built]
        if honest is None and submitter in self.honest:
            if any(v.relayer == submitter and self.unsettled(v.caller, submitter) for v in views):
                submitter = self.w.owner
        if mismatched_lengths:
            sigs = sigs[:-1] if sigs else [b"\x00" * 65]

            def predict(ts):
                raise ref.Revert("InferenceEscrow_LengthMismatch")
        else:

            def predict(ts):
                for acc in honest or []:  # the promise about terms, within the notice
                    self.hub.check_terms(acc.fee_schedule, acc.payee_schedule, acc.accepted_at, acc.view.model_id, ts)
                return self.hub.settle_receipts(submitter, views, ts)

        outcome, receipt = self.transact(predict, submitter, self.w.escrow, "settleReceipts", receipts, sigs, abi=self.E)
        if outcome is None:
            return None
        # Item by item, in the batch's order: a settled item emits ReceiptSettled with the
        # channel's new totals and the increase the model pays; a skipped one ReceiptSkipped
        # with the one reason the model finds first in the escrow's check order.
        logs = [log for log in receipt.logs if log["topics"][0] in (TOPIC_RECEIPT_SETTLED, TOPIC_RECEIPT_SKIPPED)]
        self.check(len(logs) == len(views), f"{len(logs)} settle/skip events for {len(views)} receipts")
        for i, (expected, log, view) in enumerate(zip(outcome, logs, views)):
            settled = isinstance(expected, ref.ReceiptSettlement)
            name = "settled" if settled else f"skipped {ref.RECEIPT_REASON_NAMES[expected]}"
            key = ("settleReceipts item" + (" (honest)" if honest else ""), name)
            self.w.outcomes[key] = self.w.outcomes.get(key, 0) + 1
            topics = log["topics"]
            about = (to_checksum_address("0x" + topics[1][-40:]), to_checksum_address("0x" + topics[2][-40:]), int(topics[3], 16))
            self.check(about == view.channel, f"receipt {i} event is about {about}, the item about {view.channel}")
            data = bytes.fromhex(log["data"][2:])
            if settled:
                self.check(topics[0] == TOPIC_RECEIPT_SETTLED, f"receipt {i} {view} skipped; the model settles it: {expected}")
                calls, amount, paid = (int.from_bytes(data[j : j + 32], "big") for j in (0, 32, 64))
                self.check(
                    (calls, amount, paid) == (expected.calls, expected.amount, expected.paid),
                    f"receipt {i} settled (calls, amount, paid) = {(calls, amount, paid)};"
                    f" the model {(expected.calls, expected.amount, expected.paid)}",
                )
                self.settled_events.setdefault(view.channel, []).append((calls, amount, paid))
            else:
                self.check(
                    topics[0] == TOPIC_RECEIPT_SKIPPED,
                    f"receipt {i} {view} settled; the model skips it: {ref.RECEIPT_REASON_NAMES[expected]}",
                )
                calls, reason = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:64], "big")
                self.check(calls == view.calls, f"receipt {i} skipped with calls {calls}, the item has {view.calls}")
                self.check(
                    reason == expected,
                    f"receipt {i} {view} skipped for {ref.RECEIPT_REASON_NAMES.get(reason, reason)};"
                    f" the model says {ref.RECEIPT_REASON_NAMES[expected]}",
                )
        return outcome

    def submitter_of(self, built, pick: int) -> str:
        """Mostly the relayer a receipt of the batch names (who may settle it), else anyone."""
        named = [b[0].relayer for b in built if b[0].relayer != ZERO_ADDRESS]
        if named and pick % 4:
            return named[pick % len(named)]
        return self.actor(pick)

    @rule(
        items=st.lists(RECEIPT_ITEM, min_size=0, max_size=6),
        duplicate=st.booleans(),
        mismatched_lengths=st.booleans(),
        submitter=ACTOR,
    )
    def sign_and_settle(self, items, duplicate, mismatched_lengths, submitter):
        """A batch of receipts of every kind, valid and not, settled in one transaction."""
        ts = self.next_ts
        relayer = None
        if items and submitter % 3:  # mostly one relayer's batch, which it submits
            first = items[0]
            relayer = self.pick_relayer_for(self.actor(self.pick_caller(first[1])), first[2])
        built = [self.build_receipt(*item, ts, relayer=relayer if item[0] != "zero_relayer" else None) for item in items]
        if duplicate and built:
            built.append(built[len(built) // 2])  # the same receipt twice in one batch
        self.settle_receipts(
            built, relayer or self.submitter_of(built, submitter), mismatched_lengths=mismatched_lengths and len(items) % 3 == 1
        )

    @rule(items=st.lists(RECEIPT_ITEM, min_size=1, max_size=4))
    def sign_only(self, items):
        """Callers sign receipts that a relayer keeps for now (no transaction)."""
        ts = self.next_ts
        for item in items:
            self.build_receipt(*item, ts)

    def pick_relayer(self, pick: int) -> str:
        """An active relayer that is not honest (the random paths act as it), else anyone."""
        active = [a for a in self.w.actors if self.hub.is_active(a, self.next_ts) and a not in self.honest]
        if active and pick % 5 != 0:
            return active[pick % len(active)]
        return self.actor(pick)

    @precondition(lambda self: self.hub.models)
    @rule(
        caller=ACTOR,
        relayer=PICK,
        model=PICK,
        calls=st.integers(1, 6),
        extra=st.integers(0, 2**16),
        reserve=st.booleans(),
        fund=st.sampled_from([True, True, True, False]),
        settle_every=st.integers(1, 6),
        others=st.lists(RECEIPT_ITEM, max_size=3),
        submitter=ACTOR,
    )
    def serve_fast_calls(self, caller, relayer, model, calls, extra, reserve, fund, settle_every, others, submitter):
        """The common path: a caller funded for its calls reserves credit for a relayer and
        makes a few fast calls (one receipt each, at the channel price, the receipt price or
        the price); the relayer settles every `settle_every` calls, each time in a batch with
        other items (sometimes somebody else submits: NotSubmitter)."""
        account = self.actor(caller)
        if not any(self.hub.is_active(a, self.next_ts) for a in self.w.actors if a not in self.honest):
            self.relayer_register(actor=relayer % 9, bond_choice=0, extra=0)  # a relayer to serve the calls
        target = self.pick_relayer(relayer)
        model_id = 1 + model % len(self.hub.models)
        m = self.hub.models[model_id]
        need = calls * max(m.price, m.receipt_price(self.next_ts), 1)
        if fund and need > self.hub.credit[account]:
            self.fund(account, need)
        if reserve or fund:
            amount = min(need, self.hub.credit[account]) or 1
            self.transact(
                lambda ts: self.hub.reserve(account, target, amount, ts),
                account, self.w.escrow, "reserve", target, amount, abi=self.E,
            )  # fmt: skip
        pending = []
        for i in range(calls):
            ts = self.next_ts
            pending.append(self.build_receipt("next", caller, 0, 0, 1, extra + i, ts, model_id=model_id, relayer=target))
            if (i + 1) % settle_every == 0 or i == calls - 1:
                ts = self.next_ts
                built = [self.build_receipt(*item, ts) for item in others] + [pending[-1]]
                self.settle_receipts(built, target if submitter % 5 else self.actor(submitter))
                others, pending = [], []

    @precondition(lambda self: self.hub.models)
    @rule(caller=ACTOR, relayer=PICK, model=PICK, calls=st.integers(1, 4), extra=st.integers(0, 2**16), submitter=ACTOR)
    def serve_fast_calls_2(self, caller, relayer, model, calls, extra, submitter):
        self.serve_fast_calls(
            caller=caller, relayer=relayer, model=model, calls=calls, extra=extra, reserve=True, fund=True,
            settle_every=calls, others=[], submitter=submitter,
        )  # fmt: skip

    @precondition(lambda self: self.hub.models)
    @rule(caller=ACTOR, relayer=PICK, model=PICK, extra=st.integers(0, 2**16))
    def whale_fast_call(self, caller, relayer, model, extra):
        """A caller with credit near the 160-bit limit reserves and pays all of it in one
        receipt: a model's revenue passes 2**160 within a few settlements, and must keep counting."""
        account = self.actor(caller)
        target = self.pick_relayer(relayer)
        reserved = self.hub.reservation(account, target)[0]
        top_up = ref.MAX_CREDIT - extra - self.hub.credit[account] - reserved
        if top_up > 0:
            self.fund(account, top_up)
        amount = self.hub.credit[account]
        if amount and reserved + amount <= ref.MAX_CREDIT:
            self.transact(
                lambda ts: self.hub.reserve(account, target, amount, ts),
                account, self.w.escrow, "reserve", target, amount, abi=self.E,
            )  # fmt: skip
        model_id = 1 + model % len(self.hub.models)
        built = self.build_receipt("all_credit", caller, 0, 0, 1, extra, self.next_ts, model_id=model_id, relayer=target)
        self.settle_receipts([built], target)

    @precondition(lambda self: self.signed)
    @rule(picks=st.lists(PICK, min_size=1, max_size=4), newest=st.booleans(), submitter=ACTOR)
    def settle_held(self, picks, newest, submitter):
        """A relayer settles receipts it has held: the newest of each channel (paying every call
        since the last settlement at once) or an older one."""
        channels = sorted(self.signed, key=str)
        built = []
        for pick in picks:
            history = self.signed[channels[pick % len(channels)]]
            built.append(history[-1] if newest else history[pick % len(history)])
        self.settle_receipts(built, self.submitter_of(built, submitter))

    @precondition(lambda self: self.hub.models)
    @rule(
        caller=ACTOR,
        relayer=PICK,
        model=PICK,
        extra=st.integers(0, 2**16),
        hows=st.lists(st.sampled_from(["rise", "rise", "rise_big", "same", "between", "to_floor", "below_floor"]), min_size=1, max_size=3),
        when=st.sampled_from(["now", "before_end", "at_end", "after_end", "after_delay"]),
    )
    def price_change_under_receipts(self, caller, relayer, model, extra, hows, when):
        """A receipt signed at the channel or receipt price before one to three price changes
        (a rise, then more within its notice), settled after them by its relayer: at once, or
        one second before, at, or after the end of the notice, or a withdrawal delay after it."""
        model_id = 1 + model % len(self.hub.models)
        account = self.actor(caller)
        target = self.pick_relayer(relayer)
        if not self.hub.reservation(account, target)[0]:
            self.fund(account, 10**6)
            amount = self.hub.credit[account]
            if amount:
                self.transact(
                    lambda ts: self.hub.reserve(account, target, amount, ts),
                    account, self.w.escrow, "reserve", target, amount, abi=self.E,
                )  # fmt: skip
        built = self.build_receipt("next", caller, 0, 0, 1, extra * 4, self.next_ts, model_id=model_id, relayer=target)
        for how in hows:
            self.change_price(model=model_id - 1, how=how, extra=1 + extra)
        ends = self.hub.models[model_id].notice_ends
        if when != "now":
            ends = max(ends, self.next_ts) if ends else self.next_ts + self.hub.price_notice_period
            shift = {"before_end": -1, "at_end": 0, "after_end": 1, "after_delay": self.hub.withdrawal_delay}[when]
            self.next_ts = max(self.next_ts, ends + shift)
        self.settle_receipts([built], target)

    # ------------------------------------------------------------ honest relayers

    def holds(self, relayer: str, caller: str | None = None) -> bool:
        return any(acc and ch[1] == relayer and (caller is None or ch[0] == caller) for ch, acc in self.held.items())

    def unsettled(self, caller: str, relayer: str) -> int:
        """What `relayer` accepted of `caller` and has not settled, over all its channels."""
        total = 0
        for ch, acc in self.held.items():
            if acc and ch[0] == caller and ch[1] == relayer:
                total += acc[-1].view.amount - self.hub.channels.get(ch, (0, 0, 0))[1]
        return total

    def duty_time(self, channel: tuple, held: list[Accepted]) -> int:
        """The last second at which the honest relayer can settle the channel safely: the
        newest receipt's deadline; a release announced since it accepted; the change of the
        signer key that signed it; a rise of the minimum bond above its bond."""
        hub, now = self.hub, self.head_ts
        caller, relayer, model_id = channel
        oldest, newest = held[0].accepted_at, held[-1]
        times = [newest.view.deadline]
        _, _, release_at = hub.reservation(caller, relayer)
        if release_at and release_at - hub.withdrawal_delay >= oldest:
            times.append(release_at)  # the release must come after the settlement
        if newest.view.signer != caller:
            in_force, pending, pending_at = hub.receipt_signer(caller, now)
            if in_force != newest.view.signer:
                times.append(now - 1)  # missed: reported by honest_duties
            elif pending_at and pending != in_force:
                times.append(pending_at - 1)
        # No duty at a price notice's end: a channel's price only falls until it settles, so
        # receipts accepted at the channel price settle however late (and whatever rises come).
        r = hub.relayers.get(relayer)
        if hub.min_bond_next_at and (r is None or r.bond < hub.min_bond_next):
            times.append(hub.min_bond_next_at - 1)
        return min(times)

    def honest_duties(self) -> None:
        """Before the next transaction (at next_ts): each honest relayer settles at the last
        seconds it safely can, if one of its duties falls before (or just after) that
        transaction; several relayers due together settle in consecutive blocks."""
        due: dict[str, int] = {}
        for ch, held in self.held.items():
            if held:
                at = self.duty_time(ch, held)
                if at <= self.next_ts + 2:
                    due[ch[1]] = min(due.get(ch[1], at), at)
        order = sorted(due.items(), key=lambda kv: kv[1])
        if not order:
            return
        start = max(self.head_ts + 1, min(order[0][1], self.next_ts - 1) - (len(order) - 1))
        for i, (relayer, at) in enumerate(order):
            ts = max(start + i, self.head_ts + 1)
            self.check(ts <= at, f"harness: honest relayer {relayer} could not settle by {at} (head {self.head_ts})")
            self.honest_settle(relayer, ts=ts)

    def honest_settle(self, relayer: str, ts: int | None = None) -> None:
        """The honest relayer settles the newest receipt of every channel it holds; each must
        settle in full (nobody who followed the rules loses)."""
        if ts is None and not self.in_duty:
            self.honest_duties()  # what is due before the next block's time first, at its time
        channels = sorted((ch for ch, acc in self.held.items() if acc and ch[1] == relayer), key=str)
        if not channels:
            return
        saved = self.next_ts
        if ts is not None:
            self.next_ts = ts
        items = [self.held[ch][-1] for ch in channels]
        self.in_duty = True
        try:
            outcome = self.settle_receipts([a.item for a in items], relayer, honest=items)
        finally:
            self.in_duty = False
            self.next_ts = max(saved, self.next_ts)
        self.check(outcome is not None, f"honest relayer {relayer}: settleReceipts reverted")
        for acc, result in zip(items, outcome):
            if not isinstance(result, ref.ReceiptSettlement):
                self.check(
                    False,
                    f"honest relayer {relayer} lost: receipt {acc.view} accepted at {acc.accepted_at} skipped with"
                    f" {ref.RECEIPT_REASON_NAMES.get(result, result)} at {self.head_ts}",
                )
        for ch in channels:
            self.held[ch] = []
        self.w.outcomes[("honest relayer", "settled all it held")] = self.w.outcomes.get(("honest relayer", "settled all it held"), 0) + 1

    def honest_key(self, caller: str, own: bool) -> Signer | None:
        """The key an honest relayer accepts `caller`'s receipts by: its own key (an account's),
        or the receipt signer key in force now."""
        if own and caller not in self.w.wallets:
            return self.w.signers[caller]
        delegated = self.hub.signer_in_force(caller, self.head_ts)
        if delegated in self.w.signers:
            return self.w.signers[delegated]
        return self.w.signers[caller] if caller in self.w.signers else None

    def honest_accept(self, caller: str, relayer: str, model_id: int, tip: int, lifetime: int, own_key: bool) -> bool:
        """The relayer policy for one fast call: a receipt for one more call at the channel
        price now (`channelPrice`, at least 1), only if the increase fits in reserved -
        releasing - what it has not settled of the caller, and signed by a key valid now.
        Returns whether it was accepted."""
        hub, now = self.hub, self.head_ts
        if relayer == caller or not hub.is_active(relayer, now) or not hub.is_active(relayer, self.next_ts):
            return False
        m = hub.models[model_id]
        per_call = hub.channel_price(caller, relayer, model_id, now) + tip
        reserved, releasing, _ = hub.reservation(caller, relayer)
        if per_call > reserved - releasing - self.unsettled(caller, relayer):
            return False  # no_reservation / not enough of it
        key = self.honest_key(caller, own_key)
        if key is None or not hub.signed_by(caller, key.address, now):
            return False
        _, pending, pending_at = hub.receipt_signer(caller, now)
        if key.address != caller and pending_at and pending != key.address and pending_at <= now + 5:
            return False  # the key stops signing within seconds: no time left to settle
        r = hub.relayers[relayer]
        if hub.min_bond_next_at and r.bond < hub.min_bond_next and hub.min_bond_next_at <= now + 5:
            return False  # it stops being active within seconds
        channel = (caller, relayer, model_id)
        held = self.held.setdefault(channel, [])
        settled = hub.channels.get(channel, (0, 0, 0))
        base_calls = max(held[-1].view.calls if held else 0, settled[0])
        base_amount = max(held[-1].view.amount if held else 0, settled[1])
        if base_calls + 1 > 2**64 - 1 or base_amount + per_call > 2**160 - 1:
            return False  # past a channel's range (the relayer's MAX_CALLS / MAX_AMOUNT): never settleable
        view = ref.SignedReceipt(caller, relayer, model_id, base_calls + 1, base_amount + per_call, now + lifetime, key.address)
        signature = self.sign(view, key)
        fields = (caller, relayer, model_id, view.calls, view.amount, view.deadline)
        held.append(Accepted(view, fields, signature, now, hub.fee_schedule(now), m.payee_schedule(now)))
        self.w.outcomes[("honest relayer", "accepted a receipt")] = self.w.outcomes.get(("honest relayer", "accepted a receipt"), 0) + 1
        return True

    @precondition(lambda self: self.hub.models and self.honest)
    @rule(
        caller=ACTOR,
        relayer=PICK,
        model=PICK,
        calls=st.integers(1, 5),
        tip=st.sampled_from([0, 0, 0, 1, 7]),
        fund=st.sampled_from([True, True, False]),
        wallet=st.sampled_from([False, False, True]),
        own_key=st.booleans(),
        lifetime=st.sampled_from([60, 600, 3_600, 7_200]),
        settle=st.sampled_from([False, False, True]),
    )
    def honest_serve(self, caller, relayer, model, calls, tip, fund, wallet, own_key, lifetime, settle):
        """An honest relayer serves fast calls to a caller (an account or a contract wallet,
        by its own key or its signer key); the caller reserves for it first, if funded."""
        target = self.honest[relayer % len(self.honest)]
        account = self.account(caller, wallet)
        model_id = 1 + model % len(self.hub.models)
        m = self.hub.models[model_id]
        if fund:
            need = calls * (max(m.price, 1) + tip)
            self.fund(account, need)
            if account in self.w.wallets and self.hub.signer_in_force(account, self.next_ts) == ZERO_ADDRESS:
                self.set_receipt_signer(actor=caller, key=caller, wallet=True)
            amount = min(need, self.hub.credit[account])
            if amount and self.hub.reservation(account, target)[0] + amount <= ref.MAX_CREDIT:
                self.transact(
                    lambda ts: self.hub.reserve(account, target, amount, ts),
                    account, self.w.escrow, "reserve", target, amount, abi=self.E,
                )  # fmt: skip
        for _ in range(calls):
            if not self.honest_accept(account, target, model_id, tip, lifetime, own_key):
                break
        if settle:
            self.honest_settle(target)

    @rule(actor=ACTOR)
    def become_honest(self, actor):
        """One more relayer follows the relayer policy from now on (it holds nothing yet)."""
        account = self.actor(actor)
        if account not in self.honest and self.hub.is_active(account, self.next_ts) and len(self.honest) < 3:
            self.honest.append(account)

    # ------------------------------------------------------------ adversaries

    @precondition(lambda self: self.hub.models)
    @rule(
        actor=ACTOR,
        attacks=st.lists(
            st.sampled_from([
                "receipt_self", "receipt_self_all", "receipt_naming_honest", "request_own", "request_own_via_self",
                "withdraw_earnings", "withdraw_all", "announce_release_honest", "release_honest", "rotate_key",
                "reject_own", "reserve_self",
            ]),
            min_size=1, max_size=5,
        ),
        victim=PICK,
        extra=st.integers(0, 2**16),
    )  # fmt: skip
    def self_dealer(self, actor, attacks, victim, extra):
        """An account that is caller, uploader and relayer at once, with credit reserved for an
        honest relayer that served it: it pays its own model with receipts it signs and
        submits itself, calls its own model on chain and serves the calls, takes its earnings
        at once, and races the honest relayer with releases, withdrawals and key changes."""
        me = self.actor(actor)
        if me in self.honest:
            return
        hub = self.hub
        own = [mid for mid, m in sorted(hub.models.items()) if m.owner == me]
        if not own:
            self.transact(
                lambda ts: hub.register_model(me, "mine", keccak(b"mine"), extra % 2),
                me, self.w.registry, "registerModel", "mine", keccak(b"mine"), "ipfs://mine", extra % 2, abi=self.R,
            )  # fmt: skip
            own = [mid for mid, m in sorted(hub.models.items()) if m.owner == me]
        if not own:
            return  # registrations are paused
        model_id = own[extra % len(own)]
        if not hub.is_active(me, self.next_ts) and me not in hub.relayers:
            self.relayer_register(actor=self.w.actors.index(me), bond_choice=0, extra=0)
        self.fund(me, 10**6 + extra)
        if self.honest:  # an honest relayer serves it first, so that something is at stake
            self.honest_serve(
                caller=self.w.actors.index(me), relayer=victim, model=victim, calls=3, tip=0, fund=True,
                wallet=False, own_key=True, lifetime=3_600, settle=False,
            )  # fmt: skip
        honest = self.honest[victim % len(self.honest)] if self.honest else self.pick_signer(victim)
        for attack in attacks:
            ts = self.next_ts
            if attack == "reserve_self":
                self.reserve(actor=self.w.actors.index(me), relayer=0, how="part", amount=0)
                amount = max(hub.credit[me] // 2, 1)
                self.transact(lambda ts: hub.reserve(me, me, amount, ts), me, self.w.escrow, "reserve", me, amount, abi=self.E)
            elif attack in ("receipt_self", "receipt_self_all", "receipt_naming_honest"):
                relayer = honest if attack == "receipt_naming_honest" else me
                channel = (me, relayer, model_id)
                calls, amount = self.newest_signed(channel)
                everything = hub.credit[me] + sum(r.amount for (c, _), r in hub.reservations.items() if c == me)
                pay = everything if attack == "receipt_self_all" else max(hub.reservation(me, relayer)[0], 1)
                view = ref.SignedReceipt(me, relayer, model_id, calls + 1, amount + pay, ts + 600, me)
                item = (view, (me, relayer, model_id, calls + 1, amount + pay, ts + 600), self.sign(view, self.w.signers[me]))
                self.settle_receipts([item], me)
            elif attack in ("request_own", "request_own_via_self"):
                before = set(hub.requests)
                designate = me if attack == "request_own_via_self" else None
                self.request(
                    actor=self.w.actors.index(me), model=model_id - 1, version=0, max_price="exact", fund=True, data=b"me",
                    designate=designate,
                )  # fmt: skip
                for request_id in set(hub.requests) - before:
                    self.attest_as(me, request_id)
            elif attack == "withdraw_earnings":
                self.transact(lambda ts: hub.withdraw_earnings(me), me, self.w.escrow, "withdrawEarnings", abi=self.E)
            elif attack == "withdraw_all":
                credit = hub.credit[me] + extra % 2
                self.transact(lambda ts: hub.withdraw(me, credit, ts), me, self.w.escrow, "withdraw", credit, abi=self.E)
            elif attack == "announce_release_honest":
                amount = hub.reservation(me, honest)[0]
                self.transact(
                    lambda ts: hub.announce_release(me, honest, amount, ts),
                    me, self.w.escrow, "announceRelease", honest, amount, abi=self.E,
                )  # fmt: skip
            elif attack == "release_honest":
                ready_at = hub.reservation(me, honest)[2]
                if ready_at and extra % 2:
                    self.next_ts = max(self.next_ts, ready_at)  # the honest relayer settles first (its duty)
                self.transact(lambda ts: hub.release(me, honest, ts), me, self.w.escrow, "release", honest, abi=self.E)
            elif attack == "rotate_key":
                self.set_receipt_signer(actor=self.w.actors.index(me), key=extra % 11, wallet=False)
            elif attack == "reject_own":
                mine = [r for r in hub.requests.values() if r.status == ref.PENDING and r.caller == me]
                if mine:
                    request_id = mine[-1].request_id
                    self.transact(
                        lambda ts: hub.reject(me, request_id, 1), me, self.w.escrow, "reject", request_id, 1, abi=self.E
                    )

    @precondition(lambda self: self.hub.models)
    @rule(
        caller=ACTOR,
        attacker=ACTOR,
        server=PICK,
        model=PICK,
        designated=st.booleans(),
        reason=st.integers(1, 4),
        late=st.sampled_from([False, False, True]),
    )
    def reject_to_steal_output(self, caller, attacker, server, model, designated, reason, late):
        """Issue 10, attack 4: a relayer answers a call; before its attestation lands, another
        relayer (the caller's own, bonded for the purpose) rejects the call to refund the caller.
        Only a designated call's own relayer may reject it: the answer is paid for in full."""
        server_address = self.pick_relayer(server)
        thief = self.actor(attacker)
        if thief not in self.hub.relayers:
            self.relayer_register(actor=attacker, bond_choice=0, extra=0)
        before = set(self.hub.requests)
        self.request(
            actor=caller, model=model, version=0, max_price="exact", fund=True, data=b"steal",
            designate=server_address if designated else None,
        )  # fmt: skip
        new = sorted(set(self.hub.requests) - before)
        if not new:
            return
        request_id = new[0]
        if late:
            self.next_ts = max(self.next_ts, self.hub.requests[request_id].deadline)
        for sender in (thief, self.actor(caller)):
            if sender != server_address:
                self.transact(
                    lambda ts: self.hub.reject(sender, request_id, reason),
                    sender, self.w.escrow, "reject", request_id, reason, abi=self.E,
                )  # fmt: skip
        if designated and reason >= 3:  # the designated relayer itself cannot serve it: the caller is refunded
            credit_before = self.observed_credit(self.hub.requests[request_id].caller)
            result, _ = self.transact(
                lambda ts: self.hub.reject(server_address, request_id, reason),
                server_address, self.w.escrow, "reject", request_id, reason, abi=self.E,
            )  # fmt: skip
            if result is not None:
                gained = self.observed_credit(result.caller) - credit_before
                self.check(gained == result.price, "a rejection returns exactly the locked price")
        if self.hub.requests[request_id].status == ref.PENDING:
            self.attest_as(server_address, request_id)

    def attest_as(self, signer: str, request_id: int) -> None:
        """`signer` attests request `request_id` (good fields) and submits it itself."""
        request = self.hub.requests[request_id]
        att = Attestation(request_id, request.model_id, request.version, keccak(self.inputs[request_id]), keccak(b"out"))
        signature = self.w.signers[signer].sign_attestation(att, self.w.chain_id, self.w.escrow)
        view = ref.Signed(request_id, request.model_id, request.version, att.input_hash, signer)
        self.remember(view, att.as_tuple(), signature)
        self.transact(lambda ts: self.hub.fulfill(view, ts), signer, self.w.escrow, "fulfill", att.as_tuple(), signature, abi=self.E)

    @precondition(lambda self: self.hub.models)
    @rule(
        caller=ACTOR,
        relayers=st.lists(ACTOR, min_size=2, max_size=3, unique=True),
        model=PICK,
        calls=st.integers(1, 4),
        wallet=st.sampled_from([False, False, True]),
        then=st.sampled_from(["nothing", "announce_all", "withdraw", "settle_one"]),
    )
    def one_caller_many_relayers(self, caller, relayers, model, calls, wallet, then):
        """One caller reserves credit for several honest relayers; each serves it up to its own
        reservation only; then the caller tries to take its credit back."""
        for pick in relayers:
            account = self.actor(pick)
            if account not in self.hub.relayers:
                self.relayer_register(actor=pick, bond_choice=0, extra=0)
            self.become_honest(actor=pick)
        targets = [self.actor(p) for p in relayers if self.actor(p) in self.honest]
        if not targets:
            return
        account = self.account(caller, wallet)
        for target in targets:
            self.honest_serve(
                caller=caller, relayer=self.honest.index(target), model=model, calls=calls, tip=0, fund=True,
                wallet=wallet, own_key=not wallet, lifetime=3_600, settle=False,
            )  # fmt: skip
        if then == "announce_all":
            for target in targets:
                amount = self.hub.reservation(account, target)[0]
                self.transact(
                    lambda ts: self.hub.announce_release(account, target, amount, ts),
                    account, self.w.escrow, "announceRelease", target, amount, abi=self.E,
                )  # fmt: skip
        elif then == "withdraw" and self.hub.credit[account]:
            credit = self.hub.credit[account]
            self.transact(lambda ts: self.hub.withdraw(account, credit, ts), account, self.w.escrow, "withdraw", credit, abi=self.E)
        elif then == "settle_one":
            self.honest_settle(targets[0])

    @precondition(lambda self: self.w.wallets and self.honest and self.hub.models)
    @rule(
        wallet=ACTOR,
        keys=st.lists(st.integers(0, 9), min_size=1, max_size=3),
        model=PICK,
        when=st.sampled_from(["before", "at", "after", "never"]),
        stale=st.booleans(),
    )
    def wallet_rotates_key(self, wallet, keys, model, when, stale):
        """A contract wallet served by an honest relayer under its signer key changes the key
        mid-flight (to another key, or none: 9), once or several times: receipts of the old key
        settle until the change applies, the new key's only from then on."""
        account = self.wallet(wallet)
        self.honest_serve(
            caller=wallet, relayer=wallet, model=model, calls=2, tip=0, fund=True, wallet=True, own_key=False,
            lifetime=7_200, settle=False,
        )  # fmt: skip
        for key in keys:
            self.set_receipt_signer(actor=wallet, key=key, wallet=True)
            if stale:  # the next key signs before its time: InvalidSignature (if it is another key)
                target = self.pick_relayer(wallet)
                model_id = 1 + model % len(self.hub.models)
                built = self.build_receipt("next_key", 0, 0, 0, 1, 0, self.next_ts, model_id=model_id, caller=account, relayer=target)
                self.settle_receipts([built], target)
        _, _, at = self.hub.receipt_signer(account, self.head_ts)
        if at and when != "never":
            self.next_ts = max(self.next_ts, at + {"before": -1, "at": 0, "after": 1}[when])
        self.honest_serve(
            caller=wallet, relayer=wallet, model=model, calls=1, tip=0, fund=False, wallet=True, own_key=False,
            lifetime=600, settle=True,
        )  # fmt: skip

    @precondition(lambda self: self.hub.models)
    @rule(
        caller=ACTOR,
        model=PICK,
        changes=st.lists(
            st.sampled_from(["protocol_fee", "relayer_fee", "min_bond_rise", "min_bond_cut", "payees", "transfer", "price"]),
            min_size=1, max_size=3,
        ),
        bps=st.integers(0, 3_000),
        when=st.sampled_from(["at_once", "deadline", "notice", "terms"]),
        coauthors=st.lists(st.tuples(ACTOR, st.integers(1, 10_000)), min_size=2, max_size=3),
    )  # fmt: skip
    def owner_changes_terms(self, caller, model, changes, bps, when, coauthors):
        """Calls are paid for (a request, and fast calls an honest relayer accepts), then the
        owner changes fees and the minimum bond and the model owner the payees, then the calls
        settle: the terms they were paid under hold within the notice (reference.TermsChanged),
        co-authors keep their shares, the honest relayer is paid."""
        model_id = 1 + model % len(self.hub.models)
        m = self.hub.models[model_id]
        if m.explicit_payees is None:  # co-authors first (the first explicit payees apply at once)
            self.set_payees(model=model_id - 1, by_owner=True, spec=coauthors, normalised=True, zero_addr=False)
        before = set(self.hub.requests)
        self.request(actor=caller, model=model_id - 1, version=0, max_price="exact", fund=True, data=b"terms")
        new = sorted(set(self.hub.requests) - before)
        if self.honest:
            self.honest_serve(
                caller=caller, relayer=caller, model=model_id - 1, calls=2, tip=0, fund=True, wallet=False,
                own_key=True, lifetime=7_200, settle=False,
            )  # fmt: skip
        owner = self.w.owner
        for change in changes:
            if change == "protocol_fee":
                value = bps % 1_001
                self.transact(lambda ts: self.hub.set_protocol_fee(owner, value, ts), owner, self.w.escrow, "setProtocolFeeBps", value, abi=self.E)
            elif change == "relayer_fee":
                self.transact(lambda ts: self.hub.set_relayer_fee(owner, bps, ts), owner, self.w.escrow, "setRelayerFeeBps", bps, abi=self.E)
            elif change == "min_bond_rise":
                value = min(self.hub.min_bond_at(self.next_ts) * 2 + 1, ref.MAX_MIN_BOND)
                self.transact(lambda ts: self.hub.set_min_bond(owner, value, ts), owner, self.w.relayers, "setMinBond", value, abi=self.L)
            elif change == "min_bond_cut":
                value = self.hub.min_bond_at(self.next_ts) // 2
                self.transact(lambda ts: self.hub.set_min_bond(owner, value, ts), owner, self.w.relayers, "setMinBond", value, abi=self.L)
            elif change == "payees":
                self.set_payees(model=model_id - 1, by_owner=True, spec=coauthors[::-1] + [(caller, 5_000)], normalised=True, zero_addr=False)
            elif change == "transfer":
                self.transfer_model(model=model_id - 1, by_owner=True, to=caller)
            elif change == "price":
                self.change_price(model=model_id - 1, how="rise", extra=bps + 1)
        if new:
            request = self.hub.requests[new[0]]
            if when == "deadline":
                self.next_ts = max(self.next_ts, request.deadline)
            elif when == "notice":
                self.next_ts = max(self.next_ts, request.paid_at + self.hub.price_notice_period - 1)
            elif when == "terms":
                self.next_ts = max(self.next_ts, request.paid_at + self.hub.terms_notice_period)
            signer = self.pick_signer(caller)
            if request.status == ref.PENDING and self.hub.is_active(signer, self.next_ts):
                self.attest_as(signer, request.request_id)
        for relayer in list(self.honest):
            self.honest_settle(relayer)

    # ------------------------------------------------------------ the end of an example

    def teardown(self):
        """Nobody who followed the rules loses: honest relayers settle all they hold, and every
        call still pending is refunded in full to its caller once its deadline has passed."""
        try:
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

    # ------------------------------------------------------------ weights
    # Hypothesis picks rules uniformly: the money paths get extra entries.

    @rule(actor=ACTOR, model=PICK, version=st.integers(0, 2), data=st.binary(max_size=8))
    def request_funded(self, actor, model, version, data):
        self.request(actor=actor, model=model, version=version, max_price="exact", fund=True, data=data)

    @rule(actor=ACTOR, model=PICK, data=st.binary(max_size=8))
    def request_latest(self, actor, model, data):
        self.request(actor=actor, model=model, version=0, max_price="unlimited", fund=True, data=data)

    def has_pending(self) -> bool:
        return any(r.status == ref.PENDING for r in self.hub.requests.values())

    @precondition(lambda self: self.has_pending())
    @rule(request=PICK, signer=PICK, submitter=ACTOR)
    def fulfill_good(self, request, signer, submitter):
        self.fulfill(kind="good", request=request, signer=signer, submitter=submitter)

    @rule(items=st.lists(st.tuples(ATT_KIND, PICK, PICK), min_size=1, max_size=8), submitter=ACTOR)
    def fulfill_batch_again(self, items, submitter):
        self.fulfill_batch(items=items, duplicate=False, mismatched_lengths=False, submitter=submitter)

    @rule(payer=ACTOR, amount=st.one_of(SMALL, st.integers(0, 2**128)))
    def deposit_again(self, payer, amount):
        self.deposit(payer=payer, beneficiary=None, amount=amount, mint_first=True)

    @precondition(lambda self: self.has_pending())
    @rule(to=st.sampled_from(["deadline", "after_deadline"]), pick=PICK)
    def warp_to_deadline(self, to, pick):
        self.warp(to=to, pick=pick)

    @precondition(lambda self: self.has_pending())
    @rule(actor=ACTOR, request=PICK)
    def refund_again(self, actor, request):
        self.refund(actor=actor, request=request)

    @rule(actor=PICK)
    def withdraw_earnings_again(self, actor):
        self.withdraw_earnings(actor=actor)

    @precondition(lambda self: self.hub.models)
    @rule(
        actor=ACTOR,
        model=PICK,
        data=st.binary(max_size=8),
        signer=PICK,
        batch=st.booleans(),
        others=st.lists(st.tuples(ATT_KIND, PICK, PICK), max_size=3),
    )
    def call_and_serve(self, actor, model, data, signer, batch, others):
        """The common path in one step: a funded call, then its attestation (alone, or in a
        batch with other items) by a relayer."""
        before = set(self.hub.requests)
        self.request(actor=actor, model=model % 15, version=0, max_price="exact", fund=True, data=data)
        new = set(self.hub.requests) - before
        if not new:
            return
        (request_id,) = new
        pick = self.pick_of(request_id) if self.has_pending() else 0
        if pick is None:
            return
        if batch:
            self.fulfill_batch(items=[*others, ("good", pick, signer)], duplicate=False, mismatched_lengths=False, submitter=actor)
        else:
            self.fulfill(kind="good", request=pick, signer=signer, submitter=actor)

    @precondition(lambda self: self.has_pending())
    @rule(actor=ACTOR, request=PICK)
    def refund_late(self, actor, request):
        """Right after a pending request's deadline: the refund must go through."""
        pending = [r for r in self.hub.requests.values() if r.status == ref.PENDING]
        target = pending[request % len(pending)]
        self.next_ts = max(self.next_ts, target.deadline + 1)
        pick = self.pick_of(target.request_id)
        if pick is None:
            return
        self.refund(actor=actor, request=pick)

    @precondition(lambda self: self.has_pending())
    @rule(request=PICK, signer=PICK, submitter=ACTOR, late=st.booleans())
    def fulfill_at_deadline(self, request, signer, submitter, late):
        """At the last second a call can settle, or one second after it."""
        pending = [r for r in self.hub.requests.values() if r.status == ref.PENDING]
        target = pending[request % len(pending)]
        self.next_ts = max(self.next_ts, target.deadline + late)
        pick = self.pick_of(target.request_id)
        if pick is None:
            return
        self.fulfill(kind="good", request=pick, signer=signer, submitter=submitter)

    # More weight on the money path.
    @precondition(lambda self: self.hub.models)
    @rule(actor=ACTOR, model=PICK, data=st.binary(max_size=8), signer=PICK, batch=st.booleans())
    def call_and_serve_2(self, actor, model, data, signer, batch):
        self.call_and_serve(actor=actor, model=model, data=data, signer=signer, batch=batch, others=[])

    @precondition(lambda self: self.hub.models)
    @rule(actor=ACTOR, model=PICK, data=st.binary(max_size=8), signer=PICK)
    def call_and_serve_3(self, actor, model, data, signer):
        self.call_and_serve(actor=actor, model=model, data=data, signer=signer, batch=False, others=[])

    @precondition(lambda self: self.hub.models)
    @rule(actor=ACTOR, model=PICK, data=st.binary(max_size=8))
    def request_funded_2(self, actor, model, data):
        self.request(actor=actor, model=model % 15, version=0, max_price="exact", fund=True, data=data)

    @precondition(lambda self: self.hub.models)
    @rule(actor=ACTOR, model=PICK, data=st.binary(max_size=8))
    def request_funded_3(self, actor, model, data):
        self.request(actor=actor, model=model % 15, version=1, max_price="above", fund=True, data=data)

    # ------------------------------------------------------------ the checks after every step

    @invariant()
    def chain_matches_model(self):
        self.w.checks += 1
        self.w.steps_per_example[-1] += 1
        try:
            self._check_chain_matches_model()
        except AssertionError as exc:
            self.w.note_failure(exc)
            raise

    def _check_chain_matches_model(self):
        w, hub, E, R, L, T = self.w, self.hub, self.E, self.R, self.L, self.T
        people = w.everyone
        # Accounts nobody acts as, which no credit or earning may ever reach: counted in the
        # conservation check and expected to stay at zero.
        nobody = [ZERO_ADDRESS, w.escrow, w.registry, w.relayers, w.token]
        model_ids = sorted(hub.models)
        request_ids = list(hub.requests)
        # Every reservation the chain announced (Reserved events) and every one the model has.
        pairs = sorted(self.reserved_pairs | set(hub.reservations), key=str)
        calls = [(w.token, T["balanceOf"], (w.escrow,)), (w.token, T["balanceOf"], (w.relayers,))]
        calls += [(w.token, T["balanceOf"], (a,)) for a in people]
        calls += [(w.escrow, E["balanceOf"], (a,)) for a in people]
        calls += [(w.escrow, E["earningsOf"], (a,)) for a in people]
        calls += [(w.escrow, E["nextRequestId"], (a,)) for a in people]
        calls += [(w.relayers, L["relayerInfo"], (a,)) for a in people]
        calls += [(w.escrow, E["receiptSigner"], (a,)) for a in people]
        calls += [(w.escrow, E["getRequest"], (rid,)) for rid in request_ids]
        calls += [(w.escrow, E["designatedRelayer"], (rid,)) for rid in request_ids]
        calls += [(w.escrow, E["modelStats"], (m,)) for m in model_ids]
        calls += [(w.registry, R["getModel"], (m,)) for m in model_ids]
        calls += [(w.registry, R["getPayees"], (m,)) for m in model_ids]
        calls += [(w.registry, R["pendingPayees"], (m,)) for m in model_ids]
        calls += [(w.escrow, fn, (a,)) for a in nobody for fn in (E["balanceOf"], E["earningsOf"])]
        calls += [(w.escrow, E["reservation"], pair) for pair in pairs]
        channel_ids = sorted(set(hub.channels) | set(self.settled_events) | set(self.signed) | set(self.held), key=str)
        calls += [(w.escrow, E["channel"], ch) for ch in channel_ids]
        calls += [(w.escrow, E["channelPrice"], ch) for ch in channel_ids]
        calls += [(w.registry, R["priceNotice"], (m,)) for m in model_ids]
        calls += [(w.registry, R["receiptTerms"], (m,)) for m in [*model_ids, len(model_ids) + 1, 0]]
        calls += [
            (w.registry, R["modelCount"], ()),
            (w.escrow, E["protocolFeeBps"], ()),
            (w.escrow, E["relayerFeeBps"], ()),
            (w.escrow, E["pendingFees"], ()),
            (w.escrow, E["treasury"], ()),
            (w.escrow, E["paused"], ()),
            (w.registry, R["paused"], ()),
            (w.relayers, L["paused"], ()),
            (w.relayers, L["minBond"], ()),
            (w.relayers, L["pendingMinBond"], ()),
        ]
        out = iter(self.rpc.view_many(calls))

        def take(n):
            values = [next(out) for _ in range(n)]
            for v in values:
                if isinstance(v, RpcError):
                    raise AssertionError(f"a view reverted: {v}")
            return values

        n = len(people)
        (escrow_tokens,), (registry_tokens,) = take(2)
        tokens = [v[0] for v in take(n)]
        credit = [v[0] for v in take(n)]
        earnings = [v[0] for v in take(n)]
        next_ids = [v[0] for v in take(n)]
        infos = take(n)
        signer_keys = take(n)
        requests = take(len(request_ids))
        designated = [v[0] for v in take(len(request_ids))]
        stats = take(len(model_ids))
        models = take(len(model_ids))
        payees = take(len(model_ids))
        pending_payees = take(len(model_ids))
        strays = [v[0] for v in take(2 * len(nobody))]
        reservations = take(len(pairs))
        channels = take(len(channel_ids))
        channel_prices = [v[0] for v in take(len(channel_ids))]
        price_notices = take(len(model_ids))
        terms = take(len(model_ids) + 2)
        (
            (count,), (protocol_bps,), (relayer_bps,), pending_fees, (treasury,), (escrow_paused,), (registry_paused,),
            (relayers_paused,), (min_bond,), pending_min_bond,
        ) = take(10)  # fmt: skip
        now = self.head_ts  # views run at the latest block's time

        # Conservation, from the chain's own state: every account that can hold credit or
        # earnings is one of `people`; nothing is booked to address(0) or a contract of the hub.
        assert not any(strays), f"credit/earnings of {nobody}: {strays}"
        pending_locked = sum(r[3] for r in requests if r[6] == ref.PENDING)
        reserved = sum(r[0] for r in reservations)
        owed = sum(credit) + reserved + pending_locked + sum(earnings)
        assert escrow_tokens == owed, (
            f"escrow holds {escrow_tokens}, owes credit {sum(credit)} + reserved {reserved} + locked {pending_locked}"
            f" + earnings {sum(earnings)} (difference {escrow_tokens - owed})"
        )
        assert registry_tokens == sum(info[1] for info in infos), "relayer registry's balance != sum of bonds"
        assert escrow_tokens == hub.tokens[w.escrow] == hub.escrow_liabilities()
        assert registry_tokens == hub.tokens[w.relayers] == hub.total_bonds()

        # Every balance, credit, earning, signer key and relayer equals the model's.
        for i, a in enumerate(people):
            assert tokens[i] == hub.tokens[a], f"token balance of {a}: chain {tokens[i]}, model {hub.tokens[a]}"
            assert credit[i] == hub.credit[a], f"credit of {a}: chain {credit[i]}, model {hub.credit[a]}"
            assert earnings[i] == hub.earnings[a], f"earnings of {a}: chain {earnings[i]}, model {hub.earnings[a]}"
            assert next_ids[i] == hub.next_request_id(a), f"nextRequestId of {a}"
            _, bond, active, unbond_at = infos[i]
            r = hub.relayers.get(a)
            want = (r.bond, hub.is_active(a, now), r.unbond_at) if r else (0, False, 0)
            assert (bond, active, unbond_at) == want, f"relayer {a} at {now}: chain {(bond, active, unbond_at)}, model {want}"
            got_key = (to_checksum_address(signer_keys[i][0]), to_checksum_address(signer_keys[i][1]), signer_keys[i][2])
            assert got_key == hub.receipt_signer(a, now), f"receiptSigner({a}) at {now}: chain {got_key}, model {hub.receipt_signer(a, now)}"
        for pair, got in zip(pairs, reservations):
            assert tuple(got) == hub.reservation(*pair), f"reservation{pair}: chain {got}, model {hub.reservation(*pair)}"

        # Every request is in exactly one state, the model's.
        for rid, got, relayer in zip(request_ids, requests, designated):
            want = hub.requests[rid]
            status = got[6]
            assert status in (ref.PENDING, *ref.ENDED), f"request {rid:#x} has status {status}"
            assert status == want.status, f"request {rid:#x}: chain status {status}, model {want.status}"
            assert to_checksum_address(got[0]) == want.caller, f"request {rid:#x}: caller {got[0]}, model {want.caller}"
            assert to_checksum_address(relayer) == hub.designated_relayer(rid), f"designatedRelayer({rid:#x}) = {relayer}"
            if status == ref.PENDING:
                assert (got[1], got[2], got[3], got[4], got[5]) == (
                    want.model_id, want.version, want.price, want.input_hash, want.deadline
                ), f"request {rid:#x}: chain {got}, model {want}"
                assert rid not in self.terminal_events, f"pending request {rid:#x} has a terminal event"
            else:
                assert self.terminal_events.get(rid) == status, f"request {rid:#x} ended without its one event"

        # Models, their stats and payee schedules.
        assert count == len(hub.models)
        for m, st_, model, (accounts, shares), pend in zip(model_ids, stats, models, payees, pending_payees):
            want = hub.models[m]
            assert tuple(st_) == tuple(hub.stats[m]), f"modelStats({m}): chain {st_}, model {hub.stats[m]}"
            assert (to_checksum_address(model[0]), model[1], model[2], model[3]) == (
                want.owner, want.price, want.latest_version, want.active
            ), f"model {m}: chain {model[:4]}, model {want}"
            assert [(to_checksum_address(a), s) for a, s in zip(accounts, shares)] == want.payees(now), f"payees of {m} at {now}"
            got_pending = ([(to_checksum_address(a), s) for a, s in zip(pend[0], pend[1])], pend[2])
            assert got_pending == want.pending_payees(now), f"pendingPayees({m}) at {now}: chain {got_pending}, model {want.pending_payees(now)}"

        # Receipts: price notices and receipt terms.
        for m, got in zip(model_ids, price_notices):
            assert tuple(got) == hub.models[m].price_notice(now), (
                f"priceNotice({m}) at {now}: chain {got}, model {hub.models[m].price_notice(now)} ({hub.models[m]})"
            )
        for m, (exists, price, floor, ends, accounts, shares) in zip([*model_ids, len(model_ids) + 1, 0], terms):
            got_terms = (exists, price, floor, ends, [(to_checksum_address(a), s) for a, s in zip(accounts, shares)])
            assert got_terms == hub.receipt_terms(m, now), f"receiptTerms({m}) at {now}: chain {got_terms}, model {hub.receipt_terms(m, now)}"

        # Channels: no receipt pays twice. The settled totals equal the model's and the newest
        # ReceiptSettled of the channel; the increases paid add up to the settled amount exactly;
        # calls strictly grow and the amount never shrinks, event by event and check by check.
        for ch, (calls_, amount), price in zip(channel_ids, channels, channel_prices):
            want = tuple(hub.channels.get(ch, (0, 0, 0))[:2])
            assert (calls_, amount) == want, f"channel {ch}: chain {(calls_, amount)}, model {want}"
            assert price == hub.channel_price(*ch, now), f"channelPrice{ch} at {now}: chain {price}, model {hub.channel_price(*ch, now)}"
            events = self.settled_events.get(ch, [])
            assert (calls_, amount) == (events[-1][:2] if events else (0, 0)), f"channel {ch} != its newest ReceiptSettled"
            assert sum(paid for _, _, paid in events) == amount, f"channel {ch}: paid {[e[2] for e in events]}, settled {amount}"
            for (c0, a0, _), (c1, a1, p1) in zip(events, events[1:]):
                assert c1 > c0 and a1 >= a0 and p1 == a1 - a0, f"channel {ch} settled {events}"
            before = self.seen_channels.get(ch, (0, 0))
            assert calls_ >= before[0] and amount >= before[1], f"channel {ch} went back from {before} to {(calls_, amount)}"
            self.seen_channels[ch] = (calls_, amount)
        paid_total = sum(s.paid for s in hub.receipt_settlements)
        assert paid_total == sum(amount for _, amount in channels), f"receipts paid {paid_total} != channels' settled amounts"

        # Honest relayers never hold more unsettled receipts of a caller than the chain's
        # reservation for them backs (a relayer that follows its rules serves nothing unpaid).
        chain_reserved = {pair: got[0] for pair, got in zip(pairs, reservations)}
        for relayer in self.honest:
            for caller in {ch[0] for ch, acc in self.held.items() if acc and ch[1] == relayer}:
                owed_to = self.unsettled(caller, relayer)
                backed = chain_reserved.get((caller, relayer), 0)
                assert owed_to <= backed, f"honest relayer {relayer} holds {owed_to} unsettled of {caller}, reserved only {backed}"

        # Parameters and scheduled terms.
        assert (protocol_bps, relayer_bps) == hub.fees(now), f"fees at {now}: chain {(protocol_bps, relayer_bps)}, model {hub.fees(now)}"
        assert tuple(pending_fees) == hub.pending_fees(now), f"pendingFees at {now}: chain {pending_fees}, model {hub.pending_fees(now)}"
        assert (to_checksum_address(treasury), min_bond) == (hub.treasury, hub.min_bond_at(now)), f"treasury/minBond at {now}"
        assert tuple(pending_min_bond) == hub.pending_min_bond(now), f"pendingMinBond: chain {pending_min_bond}, model {hub.pending_min_bond(now)}"
        assert (escrow_paused, registry_paused, relayers_paused) == (hub.escrow_paused, hub.registry_paused, hub.relayers_paused)

        # The model's own books: every settlement's parts sum to its price by the rounding rule.
        for s in hub.settlements[-4:]:
            parts = [s.treasury[1], s.relayer[1], *(a for _, a in s.payees)]
            assert sum(parts) == s.price
        for s in hub.receipt_settlements[-4:]:
            parts = [s.treasury[1], s.relayer[1], *(a for _, a in s.payees)]
            assert sum(parts) == s.paid


# ---------------------------------------------------------------- the test


def _container(project, name: str):
    """A compiled contract of the project, or None when this copy of the project lacks it."""
    try:
        return getattr(project, name)
    except AttributeError:
        return None


def test_no_money_created_lost_or_paid_twice(
    project, chain, accounts, deployment, token, registry, relayers, escrow, deployer, treasury
):
    rpc = Rpc(chain.provider.uri)
    # Contract-wallet callers: receipts of a contract are valid only by the signer key it registered.
    wallet_type = _container(project, "TestWallet")
    wallets = {}
    if wallet_type is not None:
        wallets = {wallet_type.deploy(accounts[i].address, sender=accounts[i]).address: accounts[i].address for i in (1, 2)}
    else:
        print("\neconomics: no TestWallet in this build: no contract-wallet callers")
    abi = {
        "token": Abi(token.contract_type),
        "registry": Abi(registry.contract_type),
        "relayers": Abi(relayers.contract_type),
        "escrow": Abi(escrow.contract_type),
    }
    if wallet_type is not None:
        abi["wallet"] = Abi(wallet_type.contract_type)
    for a in abi.values():
        rpc.register_errors(a)
    owner = deployer.address
    actors = [accounts[i].address for i in range(1, 10)]
    assert treasury.address in actors
    keys = {a.address: a.private_key for a in accounts}
    signers = {signer.address: signer for signer in map(Signer, DEV_KEYS)}
    assert all(a in signers for a in [owner, *actors]), "the test accounts are anvil's dev accounts"
    # The inlined EIP-712 digests are the escrow's.
    probe = Receipt(actors[0], actors[1], 3, 4, 5, 6)
    assert escrow.hashReceipt(probe.as_tuple()) == probe.digest(chain.chain_id, escrow.address)
    att = Attestation(7, 1, 2, keccak(b"in"), keccak(b"out"))
    assert escrow.hashAttestation(att.as_tuple()) == att.digest(chain.chain_id, escrow.address)

    # The base every example starts from: unlimited allowances for the escrow and the registry.
    for sender in [owner, *actors]:
        for spender in (escrow.address, relayers.address):
            receipt = rpc.send(sender, token.address, abi["token"]["approve"], spender, MAX_UINT256)
            assert receipt.ok
    assert registry.modelCount() == 0, "the session deployment is expected to be fresh"
    base_tokens = {a: token.balanceOf(a) for a in [owner, *actors, *wallets, escrow.address, relayers.address]}

    world = World(
        rpc=rpc,
        chain=chain,
        token=token.address,
        registry=registry.address,
        relayers=relayers.address,
        escrow=escrow.address,
        owner=owner,
        actors=actors,
        keys=keys,
        signers=signers,
        abi=abi,
        wallets=wallets,
        chain_id=chain.chain_id,
        params=dict(
            treasury=escrow.treasury(),
            protocol_bps=escrow.protocolFeeBps(),
            relayer_bps=escrow.relayerFeeBps(),
            timeout=escrow.requestTimeout(),
            min_bond=relayers.minBond(),
            unbond_delay=relayers.unbondDelay(),
            withdrawal_delay=escrow.withdrawalDelay(),
            price_notice_period=registry.priceNoticePeriod(),
        ),
        base_tokens=base_tokens,
    )
    EconomicsMachine.world = world
    try:
        run_state_machine_as_test(EconomicsMachine, settings=settings())
    finally:
        if world.snapshot is not None:
            chain.restore(world.snapshot)
        if world.first_failure:
            print(f"\neconomics: {world.first_failure}")
        print(
            f"\neconomics: {world.examples} examples, {world.checks - world.examples} steps,"
            f" {world.steps} transactions, {world.checks} full-state checks"
        )
        lengths = sorted(world.steps_per_example) or [0]
        full = settings().stateful_step_count - 1  # Hypothesis counts the setup as a step
        print(
            f"  random steps per example (after the setup): min {lengths[0]}, median {lengths[len(lengths) // 2]},"
            f" max {lengths[-1]}; {sum(1 for n in lengths if n >= full)} of {len(lengths)} examples ran all {full}"
        )
        for (fn, outcome), n in sorted(world.outcomes.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            print(f"  {fn:22s} {outcome:42s} {n}")
