"""The check after every step of the economics state machine: the whole on-chain state against the
reference model, token conservation, exactly-once endings and the receipt channels."""

from __future__ import annotations

from eth_utils import to_checksum_address
from hypothesis.stateful import invariant

from . import reference as ref
from .chain_driver import RpcError
from .machine_base import ZERO_ADDRESS


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
        # Accounts nobody acts as, which no credit or earning may ever reach: counted in the
        # conservation check and expected to stay at zero.
        nobody = [ZERO_ADDRESS, w.escrow, w.registry, w.relayers, w.token]
        model_ids = sorted(hub.models)
        request_ids = list(hub.requests)
        # Every reservation the chain announced (Reserved events) and every one the model has.
        pairs = sorted(self.reserved_pairs | set(hub.reservations), key=str)
        calls = [(w.token, T["balanceOf"], (w.escrow,)), (w.token, T["balanceOf"], (w.relayers,))]
        calls += [(w.token, T["balanceOf"], (a,)) for a in people]
        calls += [(w.escrow, E["balanceOf"], (a,)) for a in people]
        calls += [(w.escrow, E["earningsOf"], (a,)) for a in people]
        calls += [(w.escrow, E["nextRequestId"], (a,)) for a in people]
        calls += [(w.relayers, L["relayerInfo"], (a,)) for a in people]
        calls += [(w.escrow, E["receiptSigner"], (a,)) for a in people]
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
        signer_keys = take(n)
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

        # Every balance, credit, earning, signer key and relayer equals the model's.
        for i, a in enumerate(people):
            assert tokens[i] == hub.tokens[a], f"token balance of {a}: chain {tokens[i]}, model {hub.tokens[a]}"
            assert credit[i] == hub.credit[a], f"credit of {a}: chain {credit[i]}, model {hub.credit[a]}"
            assert earnings[i] == hub.earnings[a], f"earnings of {a}: chain {earnings[i]}, model {hub.earnings[a]}"
            assert next_ids[i] == hub.next_request_id(a), f"nextRequestId of {a}"
            _, bond, active, unbond_at = infos[i]
            r = hub.relayers.get(a)
            want = (r.bond, hub.is_active(a, now), r.unbond_at) if r else (0, False, 0)
            assert (bond, active, unbond_at) == want, f"relayer {a} at {now}: chain {(bond, active, unbond_at)}, model {want}"
            got_key = (to_checksum_address(signer_keys[i][0]), to_checksum_address(signer_keys[i][1]), signer_keys[i][2])
            assert got_key == hub.receipt_signer(a, now), f"receiptSigner({a}) at {now}: chain {got_key}, model {hub.receipt_signer(a, now)}"
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
