"""Rules of the economics state machine that move the clock to a boundary: a deadline, an unbonding,
a price notice's end, a release, a signer key change or a scheduled change of terms."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from . import reference as ref
from .machine_base import PICK


class TimeRules:
    """Clock rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

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
