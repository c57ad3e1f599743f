"""Extra rules of the economics state machine on the money paths: Hypothesis picks rules uniformly,
so funded calls, their service, refunds and withdrawals get more entries."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from . import reference as ref
from .machine_base import ACTOR, ATT_KIND, PICK, SMALL


class WeightRules:
    """Weighting rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

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
