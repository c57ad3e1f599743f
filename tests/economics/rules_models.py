"""Rules of the economics state machine for the model registry: registrations, prices (rises and
cuts under notice), payees, versions, switching models off and transferring them."""

from __future__ import annotations

from eth_utils import keccak
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from . import reference as ref
from .machine_base import ACTOR, PICK, PRICE, SHARES_SPEC, ZERO_ADDRESS, normalise


class ModelRules:
    """Model registry rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

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
