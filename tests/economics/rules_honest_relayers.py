"""Rules of the economics state machine for honest relayers: the policy by which they accept
receipts, and their duty to settle all they hold before it could be lost."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from . import reference as ref
from .machine_base import ACTOR, PICK, ZERO_ADDRESS, Accepted
from .signing import Signer


class HonestRelayerRules:
    """Honest relayer rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

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
            self.juror_duties()  # jurors whose reveal deadline the settlement would pass reveal first
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
