"""Rules of the economics state machine for the owner's powers: the minimum bond, the fees, the
treasury and the pauses (by the owner, or refused to anyone else)."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from .machine_base import ACTOR, AMOUNT, ZERO_ADDRESS


class OwnerRules:
    """Owner rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

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
