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
  the earnings deltas), and a refund or rejection returns exactly the locked price.

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
from chain_driver import Abi, Rpc, RpcError
from modelhub.attestation import Attestation, sign_attestation

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_UINT256 = 2**256 - 1
ZERO_ADDRESS = "0x" + "00" * 20

TOPIC_FULFILLED = "0x" + keccak(text="InferenceFulfilled(uint256,address,bytes32)").hex()
TOPIC_SKIPPED = "0x" + keccak(text="InferenceSkipped(uint256,uint8)").hex()
TOPIC_REJECTED = "0x" + keccak(text="InferenceRejected(uint256,address,uint8)").hex()
TOPIC_REFUNDED = "0x" + keccak(text="InferenceRefunded(uint256)").hex()
TOPIC_REQUESTED = "0x" + keccak(text="InferenceRequested(uint256,uint256,uint32,address,uint256,bytes32,bytes)").hex()
TERMINAL = {TOPIC_FULFILLED: ref.FULFILLED, TOPIC_REJECTED: ref.REJECTED, TOPIC_REFUNDED: ref.REFUNDED}


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
        )
        for account, amount in w.base_tokens.items():
            self.hub.tokens[account] = amount
        self.next_ts = w.head_timestamp() + 1
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
        callers=st.lists(st.tuples(ACTOR, AMOUNT), min_size=1, max_size=3),
    )
    def market(self, prices, relayer_picks, callers):
        """A few models, bonded relayers and funded callers, so that steps have something to do."""
        for i, price in enumerate(prices):
            self.register_model(actor=i, price=price, named=2)
        for pick in relayer_picks:
            self.relayer_register(actor=pick, bond_choice=0, extra=0)
        for pick, amount in callers:
            self.deposit(payer=pick, beneficiary=None, amount=amount, mint_first=True)

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
            lambda ts: self.hub.set_price(sender, model_id, price),
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
        self.transact(lambda ts: self.hub.withdraw(sender, amount), sender, self.w.escrow, "withdraw", amount, abi=self.E)

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
        (count,), (protocol_bps,), (relayer_bps,), (treasury,), (escrow_paused,), (registry_paused,), (relayers_paused,), (min_bond,) = take(8)

        # Conservation, from the chain's own state: every account that can hold credit or
        # earnings is one of `people`.
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

        # Parameters.
        assert (protocol_bps, relayer_bps, to_checksum_address(treasury), min_bond) == (
            hub.protocol_bps, hub.relayer_bps, hub.treasury, hub.min_bond
        )
        assert (escrow_paused, registry_paused, relayers_paused) == (hub.escrow_paused, hub.registry_paused, hub.relayers_paused)

        # The model's own books: every settlement's parts sum to its price by the rounding rule.
        for s in hub.settlements[-4:]:
            parts = [s.treasury[1], s.relayer[1], *(a for _, a in s.payees)]
            assert sum(parts) == s.price


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
        abi=abi,
        chain_id=chain.chain_id,
        params=dict(
            treasury=escrow.treasury(),
            protocol_bps=escrow.protocolFeeBps(),
            relayer_bps=escrow.relayerFeeBps(),
            timeout=escrow.requestTimeout(),
            min_bond=relayers.minBond(),
            unbond_delay=relayers.unbondDelay(),
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
