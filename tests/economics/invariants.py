"""The check after every step of the economics state machine: the whole on-chain state against the
reference model, token conservation, exactly-once endings and the receipt channels."""

from __future__ import annotations

from eth_utils import to_checksum_address
from hypothesis.stateful import invariant

from . import reference as ref
from .chain_driver import RpcError
from .machine_base import ZERO_ADDRESS
from .reference_court import RESOLVED


class Invariants:
    """The check after every step (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

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
        # Jurors hold tokens, bonds and court payouts, never credit, earnings, requests or keys.
        clients = w.clients
        # Accounts nobody acts as, which no credit or earning may ever reach: counted in the
        # conservation check and expected to stay at zero.
        nobody = [ZERO_ADDRESS, w.escrow, w.registry, w.relayers, w.token]
        model_ids = sorted(hub.models)
        request_ids = list(hub.requests)
        # Every reservation the chain announced (Reserved events) and every one the model has.
        pairs = sorted(self.reserved_pairs | set(hub.reservations), key=str)
        calls = [(w.token, T["balanceOf"], (w.escrow,)), (w.token, T["balanceOf"], (w.relayers,))]
        calls += [(w.token, T["balanceOf"], (a,)) for a in people]
        calls += [(w.escrow, E["balanceOf"], (a,)) for a in clients]
        calls += [(w.escrow, E["earningsOf"], (a,)) for a in clients]
        calls += [(w.escrow, E["nextRequestId"], (a,)) for a in clients]
        calls += [(w.relayers, L["relayerInfo"], (a,)) for a in people]
        calls += [(w.escrow, E["receiptSigner"], (a,)) for a in clients]
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
        # Disputes: the court's balance and books, the jury pool, holds, every dispute and ballot.
        # A dispute that ended is read once more after it ended, then never changes.
        C, court = w.abi["court"], self.court
        disputes = [d for _, d in sorted(court.disputes.items()) if d.dispute_id not in self.sealed]
        ballots = [(d.dispute_id, j) for d in disputes for j in d.jurors]
        pool_members = list(hub.slots)
        calls += [(w.token, T["balanceOf"], (w.court,))]
        calls += [(w.court, C["claimable"], (a,)) for a in [*people, *nobody, w.court]]
        calls += [(w.relayers, L["poolWeight"], (a,)) for a in pool_members]
        calls += [(w.relayers, L["bondHolds"], (a,)) for a in pool_members]
        calls += [(w.court, C["getDispute"], (d.dispute_id,)) for d in disputes]
        calls += [(w.court, C["disputeOf"], (d.attestation,)) for d in disputes]
        calls += [(w.court, C["refunded"], (d.request_id,)) for d in disputes]
        calls += [(w.court, C["ballotOf"], b) for b in ballots]
        calls += [
            (w.relayers, L["poolState"], ()),
            (w.court, C["bondsHeld"], ()),
            (w.court, C["disputeCount"], ()),
            (w.court, C["termsIdInForce"], ()),
            (w.court, C["terms"], ()),
            (w.court, C["pendingTerms"], ()),
        ]
        out = iter(self.rpc.view_many(calls))

        def take(n):
            values = [next(out) for _ in range(n)]
            for v in values:
                if isinstance(v, RpcError):
                    raise AssertionError(f"a view reverted: {v}")
            return values

        n, nc = len(people), len(clients)
        (escrow_tokens,), (registry_tokens,) = take(2)
        tokens = [v[0] for v in take(n)]
        credit = [v[0] for v in take(nc)]
        earnings = [v[0] for v in take(nc)]
        next_ids = [v[0] for v in take(nc)]
        infos = take(n)
        signer_keys = take(nc)
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
        ((court_tokens,),) = take(1)
        claimable = [v[0] for v in take(len(people) + len(nobody) + 1)]
        weights = [v[0] for v in take(len(pool_members))]
        holds = [v[0] for v in take(len(pool_members))]
        dispute_infos = [v[0] for v in take(len(disputes))]
        dispute_of = [v[0] for v in take(len(disputes))]
        refunded = [v[0] for v in take(len(disputes))]
        ballot_views = take(len(ballots))
        pool_state, (bonds_held,), (dispute_count,), (terms_id,), (court_terms,), pending_terms = take(6)
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
        # The court holds exactly what it owes: every payout not yet claimed and the challenge
        # bonds of open disputes (so challenge bonds, slashes and rewards are all accounted for).
        assert not any(claimable[n:]), f"court payouts booked to {nobody} or the court: {claimable[n:]}"
        assert court_tokens == sum(claimable) + bonds_held, (
            f"court holds {court_tokens}, owes claimable {sum(claimable)} + challenge bonds {bonds_held}"
            f" (difference {court_tokens - sum(claimable) - bonds_held})"
        )
        assert court_tokens == hub.tokens[w.court] == court.liabilities(), f"court balance {court_tokens}, model {hub.tokens[w.court]}"
        assert bonds_held == court.bonds_held, f"bondsHeld: chain {bonds_held}, model {court.bonds_held}"

        # Every balance, credit, earning, signer key and relayer equals the model's.
        for i, a in enumerate(people):
            assert tokens[i] == hub.tokens[a], f"token balance of {a}: chain {tokens[i]}, model {hub.tokens[a]}"
            _, bond, active, unbond_at = infos[i]
            r = hub.relayers.get(a)
            want = (r.bond, hub.is_active(a, now), r.unbond_at) if r else (0, False, 0)
            assert (bond, active, unbond_at) == want, f"relayer {a} at {now}: chain {(bond, active, unbond_at)}, model {want}"
            assert claimable[i] == court.claimable[a], f"claimable({a}): chain {claimable[i]}, model {court.claimable[a]}"
        for i, a in enumerate(clients):
            assert credit[i] == hub.credit[a], f"credit of {a}: chain {credit[i]}, model {hub.credit[a]}"
            assert earnings[i] == hub.earnings[a], f"earnings of {a}: chain {earnings[i]}, model {hub.earnings[a]}"
            assert next_ids[i] == hub.next_request_id(a), f"nextRequestId of {a}"
            got_key = (to_checksum_address(signer_keys[i][0]), to_checksum_address(signer_keys[i][1]), signer_keys[i][2])
            assert got_key == hub.receipt_signer(a, now), f"receiptSigner({a}) at {now}: chain {got_key}, model {hub.receipt_signer(a, now)}"
        # The jury pool (a slot per address that ever registered; the total catches any other weight) and holds.
        for a, weight, held in zip(pool_members, weights, holds):
            assert weight == hub.pool_weight(a), f"poolWeight({a}): chain {weight}, model {hub.pool_weight(a)}"
            assert held == hub.holds[a], f"bondHolds({a}): chain {held}, model {hub.holds[a]}"
        assert tuple(pool_state) == (hub.pool_total(), hub.draws_pending), f"poolState: chain {pool_state}, model {(hub.pool_total(), hub.draws_pending)}"
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

        # Disputes: each as the model has it; each ended exactly when the model says, with its
        # one DisputeResolved event; one dispute per attestation; a call refunded at most once.
        assert dispute_count == len(court.disputes), f"disputeCount: chain {dispute_count}, model {len(court.disputes)}"
        for d, got, of, was_refunded in zip(disputes, dispute_infos, dispute_of, refunded):
            got = tuple(to_checksum_address(v) if isinstance(v, str) else v for v in got[:11]) + (
                tuple(to_checksum_address(j) for j in got[11]), *got[12:])
            assert got == d.info(), f"dispute {d.dispute_id}: chain {got}, model {d.info()}"
            assert (d.phase == RESOLVED) == (self.endings.get(d.dispute_id) == 1), f"dispute {d.dispute_id} in phase {d.phase}, endings {self.endings.get(d.dispute_id)}"
            assert of == d.dispute_id, f"disputeOf({d.attestation.hex()}) = {of}, not {d.dispute_id}"
            assert was_refunded == (d.request_id in court.refunded), f"refunded({d.request_id:#x}) = {was_refunded}"
            if d.phase == RESOLVED:
                self.sealed.add(d.dispute_id)
        for (dispute_id, juror), got in zip(ballots, ballot_views):
            b = court.disputes[dispute_id].ballots[juror]
            assert tuple(got) == (b.seat, b.commitment, b.vote), f"ballotOf({dispute_id}, {juror}): chain {got}, model {b}"
        assert terms_id == court.terms_id_in_force(now), f"termsIdInForce at {now}: chain {terms_id}, model {court.terms_id_in_force(now)}"
        assert tuple(court_terms) == court.terms(now).as_tuple(), f"terms at {now}: chain {court_terms}, model {court.terms(now)}"
        assert tuple(pending_terms) == court.pending_terms(now), f"pendingTerms at {now}: chain {pending_terms}, model {court.pending_terms(now)}"

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
