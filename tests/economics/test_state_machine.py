"""No money is created, lost or paid twice: a Hypothesis state machine drives the deployed
contracts on anvil through random sequences of everything users, relayers and the owner can do,
and after every step compares the whole on-chain state with the reference model
(reference.py, written from the spec).

After every step:
- conservation, from the chain's state alone: the escrow's token balance equals the free credit
  of every account plus the prices locked by pending requests plus unpaid earnings, exactly; the
  relayer registry's token balance equals the sum of bonds;
- every token balance, credit, earning, bond, request, model and model stat equals the model's;
- every request is in exactly one state, and ends at most once (one terminal event each);
- each settlement's parts sum to its price by the rounding rule (the model's split, checked by
  the earnings deltas), and a refund or rejection returns exactly the locked price;
- off-chain receipts (docs/fast-calls.md): every channel's settled totals, every account's
  withdrawal notice, every model's price notice and receipt price equal the model's; a receipt
  never pays twice: a channel's settled calls only grow, its amount never shrinks, it equals the
  newest ReceiptSettled of the channel, and the increases paid (`paid`) add up to it exactly;
  every item of settleReceipts settles or is skipped for exactly the reason the model gives, in
  the escrow's check order.

Callers sign receipts with anvil's dev keys (tests/cast_support.DEV_KEYS); forged, foreign-domain,
malleable, expired, replayed, older, underpriced, over-credit and out-of-range receipts are mixed
into batches with valid ones. Price rises under notice, cuts, withdrawal announcements and the
withdrawal delay are hit at their boundaries (endsAt - 1, endsAt, readyAt - 1, readyAt).

Every transaction is mined at a timestamp the test chooses, so deadlines and unbonding delays
are hit exactly (deadline, deadline + 1, ...). Each example starts from the same chain snapshot.

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
from modelhub.attestation import Attestation, sign_attestation
from modelhub.receipts import FastSigner, Receipt

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
    signers: dict[str, FastSigner]  # every dev account's key, for receipts
    abi: dict[str, Abi]
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
        return [self.owner, *self.actors]

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

    # ------------------------------------------------------------ plumbing

    def actor(self, i: int) -> str:
        return self.w.actors[i % len(self.w.actors)]

    def tick(self) -> int:
        ts = self.next_ts
        self.next_ts += 1
        return ts

    def transact(self, predict, sender: str, to: str, fn: str, *args, abi: Abi):
        """Runs `predict(ts)` on the model and the transaction on the chain at the same block
        time; both must agree on success, and on failure the chain's error must be one of the
        rules the model says are broken."""
        ts = self.tick()
        try:
            expected, errors = predict(ts), None
        except ref.Revert as exc:
            expected, errors = None, exc.errors
        receipt = self.rpc.send(sender, to, abi[fn], *args, timestamp=ts)
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

    def pick_signer(self, pick: int) -> str:
        active = [a for a in self.w.actors if self.hub.is_active(a)]
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
        signature = sign_attestation(self.w.keys[signer], att, chain_id, verifying)
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
        relayer_picks=st.lists(ACTOR, min_size=1, max_size=2, unique=True),
        callers=st.lists(st.tuples(ACTOR, AMOUNT, st.sampled_from([False, False, True])), min_size=1, max_size=3),
    )
    def market(self, prices, relayer_picks, callers):
        """A few models, bonded relayers and funded callers (some of which sign receipts), so
        that steps have something to do."""
        for i, price in enumerate(prices):
            self.register_model(actor=i, price=price, named=2)
        for pick in relayer_picks:
            self.relayer_register(actor=pick, bond_choice=0, extra=0)
        for pick, amount, receipts in callers:
            self.deposit(payer=pick, beneficiary=None, amount=amount, mint_first=True)
            if receipts:
                self.enable_receipts(actor=pick)

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
            lambda ts: self.hub.set_payees(sender, model_id, accounts, shares),
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
    )
    def request(self, actor, model, version, max_price, fund, data):
        sender = self.actor(actor)
        model_id = self.pick_model(model)
        m = self.hub.models.get(model_id)
        price = m.price if m else 0
        if fund and m and self.hub.credit[sender] < price and price - self.hub.credit[sender] <= ref.MAX_CREDIT:
            self.deposit(payer=actor, beneficiary=None, amount=price - self.hub.credit[sender], mint_first=True)
        maximum = {
            "exact": price,
            "below": max(price - 1, 0),
            "above": price + 1 + actor,
            "unlimited": MAX_UINT256,
            "zero": 0,
        }[max_price]
        if m and version > m.latest_version + 1:
            version = m.latest_version  # mostly known versions; latest + 1 is unknown
        request, receipt = self.transact(
            lambda ts: self.hub.request(sender, model_id, version, keccak(data), maximum, ts),
            sender, self.w.escrow, "requestInference", model_id, version, data, maximum, abi=self.E,
        )  # fmt: skip
        if request is not None:
            self.inputs[request.request_id] = data
            logged = [log for log in receipt.logs if log["topics"][0] == TOPIC_REQUESTED]
            self.check(
                len(logged) == 1 and int(logged[0]["topics"][1], 16) == request.request_id,
                f"request id: chain {logged and logged[0]['topics'][1]}, model {request.request_id:#x}",
            )

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
        sender = self.pick_signer(actor)
        request_id = self.pick_request(request)
        before = self.hub.requests.get(request_id)
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
        bond = [self.hub.min_bond, self.hub.min_bond + extra, max(self.hub.min_bond - 1, 0), extra, 2**128][bond_choice]
        if bond_choice != 3 or actor % 2:
            self.mint(sender, min(bond, 2**200))
        self.transact(
            lambda ts: self.hub.relayer_register(sender, bond),
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

    @rule(by_owner=st.booleans(), amount=st.one_of(st.sampled_from([0, 1, 100 * 10**18]), AMOUNT), actor=ACTOR)
    def set_min_bond(self, by_owner, amount, actor):
        sender = self.w.owner if by_owner else self.actor(actor)
        self.transact(
            lambda ts: self.hub.set_min_bond(sender, amount), sender, self.w.relayers, "setMinBond", amount, abi=self.L
        )

    @rule(by_owner=st.booleans(), which=st.booleans(), bps=st.one_of(st.integers(0, 3_001), st.sampled_from([0, 1_000, 1_001, 3_000, 10_000])), actor=ACTOR)
    def set_fee(self, by_owner, which, bps, actor):
        sender = self.w.owner if by_owner or actor < 6 else self.actor(actor)
        if which:
            self.transact(
                lambda ts: self.hub.set_protocol_fee(sender, bps), sender, self.w.escrow, "setProtocolFeeBps", bps, abi=self.E
            )
        else:
            self.transact(
                lambda ts: self.hub.set_relayer_fee(sender, bps), sender, self.w.escrow, "setRelayerFeeBps", bps, abi=self.E
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

    # ------------------------------------------------------------ receipts: withdrawal delay

    def receipt_accounts(self) -> list[str]:
        return [a for a in self.w.actors if self.hub.withdrawal_notice(a)[0]]

    @rule(actor=ACTOR)
    def enable_receipts(self, actor):
        sender = self.actor(actor)
        self.transact(lambda ts: self.hub.enable_receipts(sender), sender, self.w.escrow, "enableReceipts", abi=self.E)

    @rule(
        actor=PICK,
        how=st.sampled_from(["all", "all", "part", "zero", "one_more", "given", "over_max"]),
        amount=AMOUNT,
    )
    def announce_withdrawal(self, actor, how, amount):
        enabled = self.receipt_accounts()
        sender = enabled[actor % len(enabled)] if enabled and actor % 5 else self.actor(actor)
        credit = self.hub.credit[sender]
        amount = {
            "all": credit, "part": credit // 2, "zero": 0, "one_more": credit + 1, "given": amount,
            "over_max": ref.MAX_CREDIT + 1,
        }[how]  # fmt: skip
        self.transact(
            lambda ts: self.hub.announce_withdrawal(sender, amount, ts),
            sender, self.w.escrow, "announceWithdrawal", amount, abi=self.E,
        )  # fmt: skip

    @precondition(lambda self: any(self.hub.withdrawal_notice(a)[1] for a in self.w.actors))
    @rule(
        actor=PICK,
        when=st.sampled_from(["before_ready", "ready", "ready", "now"]),
        how=st.sampled_from(["announced", "announced", "part", "one_more", "credit"]),
    )
    def withdraw_announced(self, actor, when, how):
        """An account that signs receipts withdraws what it announced: one second early, right
        on time, or whenever; all of it, part, one more than announced, or its whole credit."""
        announced = [a for a in self.w.actors if self.hub.withdrawal_notice(a)[1]]
        sender = announced[actor % len(announced)]
        _, amount, ready_at = self.hub.withdrawal_notice(sender)
        if when == "before_ready":
            self.next_ts = max(self.next_ts, ready_at - 1)
        elif when == "ready":
            self.next_ts = max(self.next_ts, ready_at)
        credit = self.hub.credit[sender]
        amount = {
            "announced": max(min(amount, credit), 1), "part": max(min(amount, credit) // 2, 1), "one_more": amount + 1,
            "credit": credit,
        }[how]  # fmt: skip
        self.transact(lambda ts: self.hub.withdraw(sender, amount, ts), sender, self.w.escrow, "withdraw", amount, abi=self.E)

    @rule(
        actor=ACTOR,
        share=st.sampled_from(["all", "part", "one"]),
        when=st.sampled_from(["at_once", "before_ready", "ready", "ready", "later"]),
        again=st.booleans(),
    )
    def announce_and_withdraw(self, actor, share, when, again):
        """The two steps in one: a funded account that signs receipts announces a withdrawal,
        then withdraws it at once, one second early, right on time or later; and sometimes
        tries to withdraw as much again."""
        account = self.actor(actor)
        if not self.hub.withdrawal_notice(account)[0]:
            self.enable_receipts(actor=actor)
        if not self.hub.credit[account]:
            self.deposit(payer=actor, beneficiary=None, amount=10**6 + actor, mint_first=True)
        credit = self.hub.credit[account]
        amount = {"all": credit, "part": max(credit // 3, 1), "one": 1}[share]
        self.transact(
            lambda ts: self.hub.announce_withdrawal(account, amount, ts),
            account, self.w.escrow, "announceWithdrawal", amount, abi=self.E,
        )  # fmt: skip
        ready_at = self.hub.withdrawal_notice(account)[2]
        if when == "before_ready":
            self.next_ts = max(self.next_ts, ready_at - 1)
        elif when == "ready":
            self.next_ts = max(self.next_ts, ready_at)
        elif when == "later":
            self.next_ts = max(self.next_ts, ready_at + 1 + actor)
        for _ in range(1 + again):
            self.transact(
                lambda ts: self.hub.withdraw(account, amount, ts), account, self.w.escrow, "withdraw", amount, abi=self.E
            )

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
        """Moves the next block's time to a boundary of the price notice or withdrawal delay."""
        notices = [m.notice_ends for m in self.hub.models.values() if m.notice_ends >= self.next_ts]
        ready = [n.ready_at for n in self.hub.notices.values() if n.ready_at >= self.next_ts]
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
        """An actor index: mostly one with credit, preferring those that signed receipts."""
        funded = [i for i, a in enumerate(self.w.actors) if self.hub.credit[a]]
        enabled = [i for i in funded if self.hub.withdrawal_notice(self.w.actors[i])[0]]
        if enabled and pick % 3 == 0:
            return enabled[pick // 3 % len(enabled)]
        if funded and pick % 3 == 1:
            return funded[pick // 3 % len(funded)]
        return pick

    def caller_signer(self, account: str) -> FastSigner:
        return self.w.signers[account]

    def newest_signed(self, channel: tuple) -> tuple[int, int]:
        """The totals a caller builds its next receipt on: its newest signed receipt of the
        channel, or what has been settled if that is further."""
        settled = self.hub.channels.get(channel, (0, 0))
        signed = self.signed.get(channel)
        if not signed:
            return tuple(settled)
        last = signed[-1][0]
        return max(last.calls, settled[0]), max(last.amount, settled[1])

    def sign(self, view: ref.SignedReceipt, key: FastSigner, chain_id: int | None = None, escrow: str | None = None) -> bytes:
        receipt = Receipt(view.caller, view.relayer, view.model_id, view.calls, view.amount, view.deadline)
        return key.sign_receipt(receipt, chain_id or self.w.chain_id, escrow or self.w.escrow)

    def build_receipt(
        self, kind, caller_pick, relayer_pick, model_pick, k, extra, ts, model_id: int | None = None
    ) -> tuple[ref.SignedReceipt, tuple, bytes]:
        """A receipt (possibly forged, stale or out of range) to be settled at time `ts`: the
        model's view of it, the ABI tuple and the signature."""
        if kind == "replay" and self.submitted:
            return self.submitted[extra % len(self.submitted)]
        if model_id is None:  # a random item; the fast-call paths name their caller and model
            caller_pick = self.pick_caller(caller_pick)
        if kind in ("newest", "stale") and self.signed:
            channels = sorted(self.signed, key=str)
            history = self.signed[channels[extra % len(channels)]]
            return history[-1] if kind == "newest" else history[extra % len(history)]
        caller = self.actor(caller_pick)
        relayer = self.pick_signer(relayer_pick)
        if model_id is None:
            model_id = 0 if kind == "model_zero" else self.pick_model(model_pick)
        channel = (caller, relayer, model_id)
        m = self.hub.models.get(model_id)
        receipt_price = m.receipt_price(ts) if m else 0
        price = m.price if m else 0
        per_call = [receipt_price, receipt_price, price, receipt_price + extra % 1000][extra % 4]
        base_calls, base_amount = self.newest_signed(channel)
        settled_calls, settled_amount = self.hub.channels.get(channel, (0, 0))
        credit = self.hub.credit[caller]
        calls, amount = base_calls + k, base_amount + k * per_call
        deadline = ts + 600 + extra % 7200  # mostly settleable now, not always later
        if kind == "all_credit":
            amount = base_amount + max(credit, k * receipt_price)
        elif kind == "over_credit":
            amount = base_amount + max(credit + 1 + extra % 3, k * receipt_price)
        elif kind == "underpriced":
            amount = base_amount + max(k * receipt_price - 1 - extra % 2, 0)
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
            amount = base_amount + (calls - base_calls) * receipt_price
        calls, amount = max(calls, 0), max(amount, 0)
        if amount >= 2**256:
            amount = 2**256 - 1
        if kind == "zero_relayer":  # never a relayer, whatever any cache starts at
            relayer = ZERO_ADDRESS
        key = self.caller_signer(caller)
        signer: str | None = caller
        if kind == "zero_caller":  # no key signs for address(0), and no wallet lives there
            caller = ZERO_ADDRESS
            signer = key.address
        elif kind == "forged":
            other = self.actor(caller_pick + 1 + extra % 8)
            key, signer = self.caller_signer(other), other
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
        if kind in ("next", "at_deadline"):  # what a relayer accepts: the caller's newest receipt
            self.signed.setdefault(channel, []).append((view, fields, signature))
        return view, fields, signature

    def settle_receipts(self, built, submitter: int, mismatched_lengths: bool = False) -> list | None:
        for item in built:
            if item not in self.submitted:
                self.submitted.append(item)
        views = [b[0] for b in built]
        receipts = [b[1] for b in built]
        sigs = [b[2] for b in built]
        if mismatched_lengths:
            sigs = sigs[:-1] if sigs else [b"\x00" * 65]

            def predict(ts):
                raise ref.Revert("InferenceEscrow_LengthMismatch")
        else:

            def predict(ts):
                return self.hub.settle_receipts(views, ts)

        outcome, receipt = self.transact(
            predict, self.actor(submitter), self.w.escrow, "settleReceipts", receipts, sigs, abi=self.E
        )
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
            self.w.outcomes[("settleReceipts item", name)] = self.w.outcomes.get(("settleReceipts item", name), 0) + 1
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

    @rule(
        items=st.lists(RECEIPT_ITEM, min_size=0, max_size=6),
        duplicate=st.booleans(),
        mismatched_lengths=st.booleans(),
        submitter=ACTOR,
    )
    def sign_and_settle(self, items, duplicate, mismatched_lengths, submitter):
        """A batch of receipts of every kind, valid and not, settled in one transaction."""
        ts = self.next_ts
        built = [self.build_receipt(*item, ts) for item in items]
        if duplicate and built:
            built.append(built[len(built) // 2])  # the same receipt twice in one batch
        self.settle_receipts(built, submitter, mismatched_lengths=mismatched_lengths and len(items) % 3 == 1)

    @rule(items=st.lists(RECEIPT_ITEM, min_size=1, max_size=4))
    def sign_only(self, items):
        """Callers sign receipts that a relayer keeps for now (no transaction)."""
        ts = self.next_ts
        for item in items:
            self.build_receipt(*item, ts)

    @precondition(lambda self: self.hub.models)
    @rule(
        caller=ACTOR,
        relayer=PICK,
        model=PICK,
        calls=st.integers(1, 6),
        extra=st.integers(0, 2**16),
        enable=st.booleans(),
        fund=st.sampled_from([True, True, True, False]),
        settle_every=st.integers(1, 6),
        others=st.lists(RECEIPT_ITEM, max_size=3),
        submitter=ACTOR,
    )
    def serve_fast_calls(self, caller, relayer, model, calls, extra, enable, fund, settle_every, others, submitter):
        """The common path: a caller that signs receipts, funded for its calls, makes a few
        fast calls with a relayer (one receipt each, at the receipt price or the price); the
        relayer settles every `settle_every` calls, each time in a batch with other items."""
        account = self.actor(caller)
        if enable and not self.hub.withdrawal_notice(account)[0]:
            self.enable_receipts(actor=caller)
        if not any(self.hub.is_active(a) for a in self.w.actors):  # a relayer to serve the calls
            self.relayer_register(actor=relayer % 9, bond_choice=0, extra=0)
        model_id = 1 + model % len(self.hub.models)
        m = self.hub.models[model_id]
        need = calls * max(m.price, m.receipt_price(self.next_ts))
        if fund and need > self.hub.credit[account] and self.hub.credit[account] + need <= ref.MAX_CREDIT:
            self.deposit(payer=caller, beneficiary=None, amount=need, mint_first=True)
        pending = []
        for i in range(calls):
            ts = self.next_ts
            pending.append(self.build_receipt("next", caller, relayer, 0, 1, extra + i, ts, model_id=model_id))
            if (i + 1) % settle_every == 0 or i == calls - 1:
                ts = self.next_ts
                built = [self.build_receipt(*item, ts) for item in others] + [pending[-1]]
                self.settle_receipts(built, submitter)
                others, pending = [], []

    @precondition(lambda self: self.hub.models)
    @rule(caller=ACTOR, relayer=PICK, model=PICK, calls=st.integers(1, 4), extra=st.integers(0, 2**16), submitter=ACTOR)
    def serve_fast_calls_2(self, caller, relayer, model, calls, extra, submitter):
        self.serve_fast_calls(
            caller=caller, relayer=relayer, model=model, calls=calls, extra=extra, enable=True, fund=True,
            settle_every=calls, others=[], submitter=submitter,
        )  # fmt: skip

    @precondition(lambda self: self.hub.models)
    @rule(caller=ACTOR, relayer=PICK, model=PICK, extra=st.integers(0, 2**16))
    def whale_fast_call(self, caller, relayer, model, extra):
        """A caller with credit near the 160-bit limit pays all of it in one receipt: a model's
        revenue passes 2**160 within a few settlements, and must keep counting."""
        account = self.actor(caller)
        top_up = ref.MAX_CREDIT - extra - self.hub.credit[account]
        if top_up > 0:
            self.deposit(payer=caller, beneficiary=None, amount=top_up, mint_first=True)
        model_id = 1 + model % len(self.hub.models)
        built = self.build_receipt("all_credit", caller, relayer, 0, 1, extra, self.next_ts, model_id=model_id)
        self.settle_receipts([built], caller)

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
        self.settle_receipts(built, submitter)

    @precondition(lambda self: self.hub.models)
    @rule(
        caller=ACTOR,
        relayer=PICK,
        model=PICK,
        extra=st.integers(0, 2**16),
        hows=st.lists(st.sampled_from(["rise", "rise", "rise_big", "same", "between", "to_floor", "below_floor"]), min_size=1, max_size=3),
        when=st.sampled_from(["now", "before_end", "at_end", "after_end"]),
    )
    def price_change_under_receipts(self, caller, relayer, model, extra, hows, when):
        """A receipt signed at the receipt price before one to three price changes (a rise, then
        more within its notice), settled after them: at once, or one second before, at, or after
        the end of the notice."""
        model_id = 1 + model % len(self.hub.models)
        built = self.build_receipt("next", caller, relayer, 0, 1, extra * 4, self.next_ts, model_id=model_id)
        for how in hows:
            self.change_price(model=model_id - 1, how=how, extra=1 + extra)
        ends = self.hub.models[model_id].notice_ends
        if when != "now":
            ends = ends or self.next_ts + self.hub.price_notice_period
            self.next_ts = max(self.next_ts, ends + {"before_end": -1, "at_end": 0, "after_end": 1}[when])
        self.settle_receipts([built], caller)

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
        pick = next(i for i in range(64) if self.pick_request(i) == request_id) if self.has_pending() else 0
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
        pick = next(i for i in range(64) if self.pick_request(i) == target.request_id)
        self.refund(actor=actor, request=pick)

    @precondition(lambda self: self.has_pending())
    @rule(request=PICK, signer=PICK, submitter=ACTOR, late=st.booleans())
    def fulfill_at_deadline(self, request, signer, submitter, late):
        """At the last second a call can settle, or one second after it."""
        pending = [r for r in self.hub.requests.values() if r.status == ref.PENDING]
        target = pending[request % len(pending)]
        self.next_ts = max(self.next_ts, target.deadline + late)
        pick = next(i for i in range(64) if self.pick_request(i) == target.request_id)
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
        calls = [(w.token, T["balanceOf"], (w.escrow,)), (w.token, T["balanceOf"], (w.relayers,))]
        calls += [(w.token, T["balanceOf"], (a,)) for a in people]
        calls += [(w.escrow, E["balanceOf"], (a,)) for a in people]
        calls += [(w.escrow, E["earningsOf"], (a,)) for a in people]
        calls += [(w.escrow, E["nextRequestId"], (a,)) for a in people]
        calls += [(w.relayers, L["relayerInfo"], (a,)) for a in people]
        calls += [(w.escrow, E["getRequest"], (rid,)) for rid in request_ids]
        calls += [(w.escrow, E["modelStats"], (m,)) for m in model_ids]
        calls += [(w.registry, R["getModel"], (m,)) for m in model_ids]
        calls += [(w.registry, R["getPayees"], (m,)) for m in model_ids]
        calls += [(w.escrow, E["withdrawalNotice"], (a,)) for a in people]
        calls += [(w.escrow, fn, (a,)) for a in nobody for fn in (E["balanceOf"], E["earningsOf"])]
        channel_ids = sorted(set(hub.channels) | set(self.settled_events) | set(self.signed), key=str)
        calls += [(w.escrow, E["channel"], ch) for ch in channel_ids]
        calls += [(w.registry, R["priceNotice"], (m,)) for m in model_ids]
        calls += [(w.registry, R["receiptTerms"], (m,)) for m in [*model_ids, len(model_ids) + 1, 0]]
        calls += [
            (w.registry, R["modelCount"], ()),
            (w.escrow, E["protocolFeeBps"], ()),
            (w.escrow, E["relayerFeeBps"], ()),
            (w.escrow, E["treasury"], ()),
            (w.escrow, E["paused"], ()),
            (w.registry, R["paused"], ()),
            (w.relayers, L["paused"], ()),
            (w.relayers, L["minBond"], ()),
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
        requests = take(len(request_ids))
        stats = take(len(model_ids))
        models = take(len(model_ids))
        payees = take(len(model_ids))
        notices = take(n)
        strays = [v[0] for v in take(2 * len(nobody))]
        channels = take(len(channel_ids))
        price_notices = take(len(model_ids))
        terms = take(len(model_ids) + 2)
        (count,), (protocol_bps,), (relayer_bps,), (treasury,), (escrow_paused,), (registry_paused,), (relayers_paused,), (min_bond,) = take(8)

        # Conservation, from the chain's own state: every account that can hold credit or
        # earnings is one of `people`; nothing is booked to address(0) or a contract.
        assert not any(strays), f"credit/earnings of {nobody}: {strays}"
        pending_locked = sum(r[3] for r in requests if r[6] == ref.PENDING)
        assert escrow_tokens == sum(credit) + pending_locked + sum(earnings), (
            f"escrow holds {escrow_tokens}, owes credit {sum(credit)} + locked {pending_locked} + earnings {sum(earnings)}"
            f" (difference {escrow_tokens - sum(credit) - pending_locked - sum(earnings)})"
        )
        assert registry_tokens == sum(info[1] for info in infos), "relayer registry's balance != sum of bonds"
        assert escrow_tokens == hub.tokens[w.escrow] == hub.escrow_liabilities()
        assert registry_tokens == hub.tokens[w.relayers] == hub.total_bonds()

        # Every balance, credit, earning and relayer equals the model's.
        for i, a in enumerate(people):
            assert tokens[i] == hub.tokens[a], f"token balance of {a}: chain {tokens[i]}, model {hub.tokens[a]}"
            assert credit[i] == hub.credit[a], f"credit of {a}: chain {credit[i]}, model {hub.credit[a]}"
            assert earnings[i] == hub.earnings[a], f"earnings of {a}: chain {earnings[i]}, model {hub.earnings[a]}"
            assert next_ids[i] == hub.next_request_id(a), f"nextRequestId of {a}"
            _, bond, active, unbond_at = infos[i]
            r = hub.relayers.get(a)
            assert (bond, active, unbond_at) == ((r.bond, hub.is_active(a), r.unbond_at) if r else (0, False, 0)), (
                f"relayer {a}: chain {(bond, active, unbond_at)}, model {r} active={hub.is_active(a)}"
            )

        # Every request is in exactly one state, the model's.
        for rid, got in zip(request_ids, requests):
            want = hub.requests[rid]
            status = got[6]
            assert status in (ref.PENDING, *ref.ENDED), f"request {rid:#x} has status {status}"
            assert status == want.status, f"request {rid:#x}: chain status {status}, model {want.status}"
            if status == ref.PENDING:
                assert (to_checksum_address(got[0]), got[1], got[2], got[3], got[4], got[5]) == (
                    want.caller, want.model_id, want.version, want.price, want.input_hash, want.deadline
                ), f"request {rid:#x}: chain {got}, model {want}"
                assert rid not in self.terminal_events, f"pending request {rid:#x} has a terminal event"
            else:
                assert self.terminal_events.get(rid) == status, f"request {rid:#x} ended without its one event"

        # Models and their stats.
        assert count == len(hub.models)
        for m, st_, model, (accounts, shares) in zip(model_ids, stats, models, payees):
            want = hub.models[m]
            assert tuple(st_) == tuple(hub.stats[m]), f"modelStats({m}): chain {st_}, model {hub.stats[m]}"
            assert (to_checksum_address(model[0]), model[1], model[2], model[3]) == (
                want.owner, want.price, want.latest_version, want.active
            ), f"model {m}: chain {model[:4]}, model {want}"
            assert [(to_checksum_address(a), s) for a, s in zip(accounts, shares)] == want.payees(), f"payees of {m}"

        # Receipts: withdrawal notices, price notices and receipt terms, at the latest block's time
        # (what views run at).
        now = self.head_ts
        for a, got in zip(people, notices):
            assert tuple(got) == hub.withdrawal_notice(a), f"withdrawalNotice({a}): chain {got}, model {hub.withdrawal_notice(a)}"
        for m, got in zip(model_ids, price_notices):
            assert tuple(got) == hub.models[m].price_notice(now), (
                f"priceNotice({m}) at {now}: chain {got}, model {hub.models[m].price_notice(now)} ({hub.models[m]})"
            )
        for m, (exists, receipt_price, accounts, shares) in zip([*model_ids, len(model_ids) + 1, 0], terms):
            want_exists, want_price, want_payees = hub.receipt_terms(m, now)
            got_terms = (exists, receipt_price, [(to_checksum_address(a), s) for a, s in zip(accounts, shares)])
            assert got_terms == (want_exists, want_price, want_payees), f"receiptTerms({m}) at {now}: chain {got_terms}"

        # Channels: no receipt pays twice. The settled totals equal the model's and the newest
        # ReceiptSettled of the channel; the increases paid add up to the settled amount exactly;
        # calls strictly grow and the amount never shrinks, event by event and check by check.
        for ch, (calls_, amount) in zip(channel_ids, channels):
            want = tuple(hub.channels.get(ch, (0, 0)))
            assert (calls_, amount) == want, f"channel {ch}: chain {(calls_, amount)}, model {want}"
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

        # Parameters.
        assert (protocol_bps, relayer_bps, to_checksum_address(treasury), min_bond) == (
            hub.protocol_bps, hub.relayer_bps, hub.treasury, hub.min_bond
        )
        assert (escrow_paused, registry_paused, relayers_paused) == (hub.escrow_paused, hub.registry_paused, hub.relayers_paused)

        # The model's own books: every settlement's parts sum to its price by the rounding rule.
        for s in hub.settlements[-4:]:
            parts = [s.treasury[1], s.relayer[1], *(a for _, a in s.payees)]
            assert sum(parts) == s.price
        for s in hub.receipt_settlements[-4:]:
            parts = [s.treasury[1], s.relayer[1], *(a for _, a in s.payees)]
            assert sum(parts) == s.paid


# ---------------------------------------------------------------- the test


def test_no_money_created_lost_or_paid_twice(chain, accounts, deployment, token, registry, relayers, escrow, deployer, treasury):
    rpc = Rpc(chain.provider.uri)
    abi = {
        "token": Abi(token.contract_type),
        "registry": Abi(registry.contract_type),
        "relayers": Abi(relayers.contract_type),
        "escrow": Abi(escrow.contract_type),
    }
    for a in abi.values():
        rpc.register_errors(a)
    owner = deployer.address
    actors = [accounts[i].address for i in range(1, 10)]
    assert treasury.address in actors
    keys = {a.address: a.private_key for a in accounts}
    signers = {signer.address: signer for signer in map(FastSigner, DEV_KEYS)}
    assert all(a in signers for a in [owner, *actors]), "the test accounts are anvil's dev accounts"

    # The base every example starts from: unlimited allowances for the escrow and the registry.
    for sender in [owner, *actors]:
        for spender in (escrow.address, relayers.address):
            receipt = rpc.send(sender, token.address, abi["token"]["approve"], spender, MAX_UINT256)
            assert receipt.ok
    assert registry.modelCount() == 0, "the session deployment is expected to be fresh"
    base_tokens = {a: token.balanceOf(a) for a in [owner, *actors, escrow.address, relayers.address]}

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
