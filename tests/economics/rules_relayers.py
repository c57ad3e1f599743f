"""Rules of the economics state machine for the relayer registry: registering with a bond, adding
to it, unbonding and withdrawing the bond."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from .machine_base import ACTOR, AMOUNT, PICK


class RelayerRules:
    """Relayer registry rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

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
            lambda ts: self.hub.relayer_add_bond(sender, amount, ts), sender, self.w.relayers, "addBond", amount, abi=self.L
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
