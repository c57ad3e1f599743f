"""Rules of the economics state machine for adversaries: self-dealers, a relayer rejecting to steal
an answer, one caller with many relayers, wallets rotating keys, the owner changing terms."""

from __future__ import annotations

from eth_utils import keccak
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from . import reference as ref
from .machine_base import ACTOR, PICK
from .signing import Attestation


class AdversaryRules:
    """Adversary rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

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
        input_hash = keccak(self.inputs[request_id])
        output = self.attested_output(request.model_id, request.version, input_hash, signer, 1)
        att = Attestation(request_id, request.model_id, request.version, input_hash, keccak(output))
        signature = self.w.signers[signer].sign_attestation(att, self.w.chain_id, self.w.escrow)
        view = ref.Signed(request_id, request.model_id, request.version, att.input_hash, signer, att.output_hash)
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
