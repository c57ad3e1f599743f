"""Rules of the economics state machine for receipts: receipts of every kind (valid, forged, stale,
out of range) in batches, each item's outcome checked, and the fast-call paths."""

from __future__ import annotations

from eth_utils import to_checksum_address
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from . import reference as ref
from .machine_base import (
    ACTOR,
    PICK,
    RECEIPT_ITEM,
    SECP256K1_N,
    TOPIC_RECEIPT_SETTLED,
    TOPIC_RECEIPT_SKIPPED,
    ZERO_ADDRESS,
)
from .signing import Receipt, Signer


class ReceiptRules:
    """Receipt rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

    # ------------------------------------------------------------ receipts: signing and settling

    def pick_caller(self, pick: int) -> int:
        """An actor index: mostly one with a reservation, or with credit."""
        reserving = sorted({self.w.actors.index(c) for (c, _), r in self.hub.reservations.items() if r.amount and c in self.w.actors})
        funded = [i for i, a in enumerate(self.w.actors) if self.hub.credit[a]]
        if reserving and pick % 3 == 0:
            return reserving[pick // 3 % len(reserving)]
        if funded and pick % 3 == 1:
            return funded[pick // 3 % len(funded)]
        return pick

    def pick_relayer_for(self, caller: str, pick: int) -> str:
        """Mostly a relayer the caller reserved credit for, else an active relayer (or anyone)."""
        mine = sorted(r for (c, r), res in self.hub.reservations.items() if c == caller and res.amount)
        if mine and pick % 2 == 0:
            return mine[pick // 2 % len(mine)]
        return self.pick_signer(pick)

    def caller_key(self, account: str, kind: str, ts: int) -> tuple[Signer, str | None]:
        """The key a receipt of `account` is signed with and who the escrow recovers (None:
        nobody valid): its own key, its receipt signer key in force, or the pending next key."""
        in_force, pending, _ = self.hub.receipt_signer(account, ts)
        own = self.w.signers.get(account) or self.w.signers[self.w.wallets.get(account, self.w.owner)]
        if kind == "delegated" and in_force in self.w.signers:
            return self.w.signers[in_force], in_force
        if kind == "next_key" and pending in self.w.signers:
            return self.w.signers[pending], pending
        if account in self.w.wallets:  # a contract has no key of its own: its signer key, if any
            key = self.w.signers.get(in_force, own)
            return key, key.address
        return own, own.address

    def newest_signed(self, channel: tuple) -> tuple[int, int]:
        """The totals a caller builds its next receipt on: its newest signed receipt of the
        channel, or what has been settled if that is further."""
        settled = self.hub.channels.get(channel, (0, 0, 0))[:2]
        signed = self.signed.get(channel)
        if not signed:
            return tuple(settled)
        last = signed[-1][0]
        return max(last.calls, settled[0]), max(last.amount, settled[1])

    def sign(self, view: ref.SignedReceipt, key: Signer, chain_id: int | None = None, escrow: str | None = None) -> bytes:
        receipt = Receipt(view.caller, view.relayer, view.model_id, view.calls, view.amount, view.deadline)
        return key.sign_receipt(receipt, chain_id or self.w.chain_id, escrow or self.w.escrow)

    def build_receipt(
        self, kind, caller_pick, relayer_pick, model_pick, k, extra, ts, model_id: int | None = None,
        caller: str | None = None, relayer: str | None = None,
    ) -> tuple[ref.SignedReceipt, tuple, bytes]:  # fmt: skip
        """A receipt (possibly forged, stale or out of range) to be settled at time `ts`: the
        model's view of it, the ABI tuple and the signature."""
        if kind == "replay" and self.submitted:
            return self.submitted[extra % len(self.submitted)]
        if model_id is None and caller is None:  # a random item; the fast-call paths name their caller and model
            caller_pick = self.pick_caller(caller_pick)
        if kind in ("newest", "stale") and self.signed:
            channels = sorted(self.signed, key=str)
            history = self.signed[channels[extra % len(channels)]]
            return history[-1] if kind == "newest" else history[extra % len(history)]
        if caller is None:
            caller = self.wallet(caller_pick) if kind == "wallet" and self.w.wallets else self.actor(caller_pick)
        if relayer is None:
            relayer = self.pick_relayer_for(caller, relayer_pick)
        if model_id is None:
            model_id = 0 if kind == "model_zero" else self.pick_model(model_pick)
        channel = (caller, relayer, model_id)
        m = self.hub.models.get(model_id)
        lowest = self.hub.channel_price(caller, relayer, model_id, ts) if m else 1
        receipt_price = max(m.receipt_price(ts), 1) if m else 1
        price = m.price if m else 0
        per_call = [lowest, receipt_price, price, receipt_price + extra % 1000][extra % 4]
        base_calls, base_amount = self.newest_signed(channel)
        settled_calls, settled_amount, _ = self.hub.channels.get(channel, (0, 0, 0))
        credit = self.hub.reservation(caller, relayer)[0]  # what pays: the reservation for this relayer
        calls, amount = base_calls + k, base_amount + k * per_call
        deadline = ts + 600 + extra % 7200  # mostly settleable now, not always later
        if kind == "all_credit":
            amount = settled_amount + max(credit, k * lowest)
        elif kind == "over_credit":
            amount = settled_amount + max(credit + 1 + extra % 3, k * lowest)
        elif kind == "underpriced":
            amount = base_amount + max(k * lowest - 1 - extra % 2, 0)
        elif kind == "zero_increase":
            amount = base_amount
        elif kind == "expired":
            deadline = ts - 1 - extra % 2
        elif kind == "at_deadline":
            deadline = ts
        elif kind == "older":
            calls, amount = settled_calls - extra % 2, settled_amount + k * per_call
        elif kind == "less_amount":
            amount = settled_amount - 1
        elif kind == "out_of_range":
            if extra % 2:
                calls = ref.MAX_CHANNEL_CALLS + 1
            else:
                amount = ref.MAX_CHANNEL_AMOUNT + 1
        elif kind == "max_calls":
            calls = ref.MAX_CHANNEL_CALLS
            amount = base_amount + (calls - base_calls) * lowest
        calls, amount = max(calls, 0), max(amount, 0)
        if amount >= 2**256:
            amount = 2**256 - 1
        if kind == "zero_relayer":  # never a relayer, whatever any cache starts at
            relayer = ZERO_ADDRESS
        key, signer = self.caller_key(caller, kind, ts)
        if kind == "zero_caller":  # no key signs for address(0), and no wallet lives there
            caller = ZERO_ADDRESS
        elif kind == "forged":
            other = self.actor(caller_pick + 1 + extra % 8)
            key, signer = self.w.signers[other], other
        view = ref.SignedReceipt(caller, relayer, model_id, calls, amount, deadline, signer)
        if kind == "foreign_domain":
            signature = self.sign(view, key, chain_id=1 if extra % 2 else None, escrow=None if extra % 2 else self.w.registry)
            view = ref.SignedReceipt(caller, relayer, model_id, calls, amount, deadline, None)
        else:
            signature = self.sign(view, key)
        if kind == "malleable":  # the same signature with s in the upper half: refused
            r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
            signature = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
            view = ref.SignedReceipt(caller, relayer, model_id, calls, amount, deadline, None)
        elif kind == "short":
            signature = signature[:64]
            view = ref.SignedReceipt(caller, relayer, model_id, calls, amount, deadline, None)
        fields = (caller, relayer, model_id, calls, amount, deadline)
        if kind in ("next", "at_deadline", "delegated", "wallet"):  # what a relayer accepts: the caller's newest receipt
            self.signed.setdefault(channel, []).append((view, fields, signature))
        return view, fields, signature

    def settle_receipts(self, built, submitter: str, mismatched_lengths: bool = False, honest: list | None = None) -> list | None:
        """`submitter` sends settleReceipts with the receipts `built`. An honest relayer settles
        only what it accepted (`honest`, the Accepted items): any other batch it would send that
        touches a caller whose receipts it holds is sent by the owner instead (all NotSubmitter)."""
        for item in built:
            if item not in self.submitted:
                self.submitted.append(item)
        views = [b[0] for b in built]
        receipts = [b[1] for b in built]
        sigs = [b[2] for b in built]
        if honest is None and submitter in self.honest:
            if any(v.relayer == submitter and self.unsettled(v.caller, submitter) for v in views):
                submitter = self.w.owner
        if mismatched_lengths:
            sigs = sigs[:-1] if sigs else [b"\x00" * 65]

            def predict(ts):
                raise ref.Revert("InferenceEscrow_LengthMismatch")
        else:

            def predict(ts):
                for acc in honest or []:  # the promise about terms, within the notice
                    self.hub.check_terms(acc.fee_schedule, acc.payee_schedule, acc.accepted_at, acc.view.model_id, ts)
                return self.hub.settle_receipts(submitter, views, ts)

        outcome, receipt = self.transact(predict, submitter, self.w.escrow, "settleReceipts", receipts, sigs, abi=self.E)
        if outcome is None:
            return None
        # Item by item, in the batch's order: a settled item emits ReceiptSettled with the
        # channel's new totals and the increase the model pays; a skipped one ReceiptSkipped
        # with the one reason the model finds first in the escrow's check order.
        logs = [log for log in receipt.logs if log["topics"][0] in (TOPIC_RECEIPT_SETTLED, TOPIC_RECEIPT_SKIPPED)]
        self.check(len(logs) == len(views), f"{len(logs)} settle/skip events for {len(views)} receipts")
        for i, (expected, log, view) in enumerate(zip(outcome, logs, views)):
            settled = isinstance(expected, ref.ReceiptSettlement)
            name = "settled" if settled else f"skipped {ref.RECEIPT_REASON_NAMES[expected]}"
            key = ("settleReceipts item" + (" (honest)" if honest else ""), name)
            self.w.outcomes[key] = self.w.outcomes.get(key, 0) + 1
            topics = log["topics"]
            about = (to_checksum_address("0x" + topics[1][-40:]), to_checksum_address("0x" + topics[2][-40:]), int(topics[3], 16))
            self.check(about == view.channel, f"receipt {i} event is about {about}, the item about {view.channel}")
            data = bytes.fromhex(log["data"][2:])
            if settled:
                self.check(topics[0] == TOPIC_RECEIPT_SETTLED, f"receipt {i} {view} skipped; the model settles it: {expected}")
                calls, amount, paid = (int.from_bytes(data[j : j + 32], "big") for j in (0, 32, 64))
                self.check(
                    (calls, amount, paid) == (expected.calls, expected.amount, expected.paid),
                    f"receipt {i} settled (calls, amount, paid) = {(calls, amount, paid)};"
                    f" the model {(expected.calls, expected.amount, expected.paid)}",
                )
                self.settled_events.setdefault(view.channel, []).append((calls, amount, paid))
            else:
                self.check(
                    topics[0] == TOPIC_RECEIPT_SKIPPED,
                    f"receipt {i} {view} settled; the model skips it: {ref.RECEIPT_REASON_NAMES[expected]}",
                )
                calls, reason = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:64], "big")
                self.check(calls == view.calls, f"receipt {i} skipped with calls {calls}, the item has {view.calls}")
                self.check(
                    reason == expected,
                    f"receipt {i} {view} skipped for {ref.RECEIPT_REASON_NAMES.get(reason, reason)};"
                    f" the model says {ref.RECEIPT_REASON_NAMES[expected]}",
                )
        return outcome

    def submitter_of(self, built, pick: int) -> str:
        """Mostly the relayer a receipt of the batch names (who may settle it), else anyone."""
        named = [b[0].relayer for b in built if b[0].relayer != ZERO_ADDRESS]
        if named and pick % 4:
            return named[pick % len(named)]
        return self.actor(pick)

    @rule(
        items=st.lists(RECEIPT_ITEM, min_size=0, max_size=6),
        duplicate=st.booleans(),
        mismatched_lengths=st.booleans(),
        submitter=ACTOR,
    )
    def sign_and_settle(self, items, duplicate, mismatched_lengths, submitter):
        """A batch of receipts of every kind, valid and not, settled in one transaction."""
        ts = self.next_ts
        relayer = None
        if items and submitter % 3:  # mostly one relayer's batch, which it submits
            first = items[0]
            relayer = self.pick_relayer_for(self.actor(self.pick_caller(first[1])), first[2])
        built = [self.build_receipt(*item, ts, relayer=relayer if item[0] != "zero_relayer" else None) for item in items]
        if duplicate and built:
            built.append(built[len(built) // 2])  # the same receipt twice in one batch
        self.settle_receipts(
            built, relayer or self.submitter_of(built, submitter), mismatched_lengths=mismatched_lengths and len(items) % 3 == 1
        )

    @rule(items=st.lists(RECEIPT_ITEM, min_size=1, max_size=4))
    def sign_only(self, items):
        """Callers sign receipts that a relayer keeps for now (no transaction)."""
        ts = self.next_ts
        for item in items:
            self.build_receipt(*item, ts)

    def pick_relayer(self, pick: int) -> str:
        """An active relayer that is not honest (the random paths act as it), else anyone."""
        active = [a for a in self.w.actors if self.hub.is_active(a, self.next_ts) and a not in self.honest]
        if active and pick % 5 != 0:
            return active[pick % len(active)]
        return self.actor(pick)

    @precondition(lambda self: self.hub.models)
    @rule(
        caller=ACTOR,
        relayer=PICK,
        model=PICK,
        calls=st.integers(1, 6),
        extra=st.integers(0, 2**16),
        reserve=st.booleans(),
        fund=st.sampled_from([True, True, True, False]),
        settle_every=st.integers(1, 6),
        others=st.lists(RECEIPT_ITEM, max_size=3),
        submitter=ACTOR,
    )
    def serve_fast_calls(self, caller, relayer, model, calls, extra, reserve, fund, settle_every, others, submitter):
        """The common path: a caller funded for its calls reserves credit for a relayer and
        makes a few fast calls (one receipt each, at the channel price, the receipt price or
        the price); the relayer settles every `settle_every` calls, each time in a batch with
        other items (sometimes somebody else submits: NotSubmitter)."""
        account = self.actor(caller)
        if not any(self.hub.is_active(a, self.next_ts) for a in self.w.actors if a not in self.honest):
            self.relayer_register(actor=relayer % 9, bond_choice=0, extra=0)  # a relayer to serve the calls
        target = self.pick_relayer(relayer)
        model_id = 1 + model % len(self.hub.models)
        m = self.hub.models[model_id]
        need = calls * max(m.price, m.receipt_price(self.next_ts), 1)
        if fund and need > self.hub.credit[account]:
            self.fund(account, need)
        if reserve or fund:
            amount = min(need, self.hub.credit[account]) or 1
            self.transact(
                lambda ts: self.hub.reserve(account, target, amount, ts),
                account, self.w.escrow, "reserve", target, amount, abi=self.E,
            )  # fmt: skip
        pending = []
        for i in range(calls):
            ts = self.next_ts
            pending.append(self.build_receipt("next", caller, 0, 0, 1, extra + i, ts, model_id=model_id, relayer=target))
            if (i + 1) % settle_every == 0 or i == calls - 1:
                ts = self.next_ts
                built = [self.build_receipt(*item, ts) for item in others] + [pending[-1]]
                self.settle_receipts(built, target if submitter % 5 else self.actor(submitter))
                others, pending = [], []

    @precondition(lambda self: self.hub.models)
    @rule(caller=ACTOR, relayer=PICK, model=PICK, calls=st.integers(1, 4), extra=st.integers(0, 2**16), submitter=ACTOR)
    def serve_fast_calls_2(self, caller, relayer, model, calls, extra, submitter):
        self.serve_fast_calls(
            caller=caller, relayer=relayer, model=model, calls=calls, extra=extra, reserve=True, fund=True,
            settle_every=calls, others=[], submitter=submitter,
        )  # fmt: skip

    @precondition(lambda self: self.hub.models)
    @rule(caller=ACTOR, relayer=PICK, model=PICK, extra=st.integers(0, 2**16))
    def whale_fast_call(self, caller, relayer, model, extra):
        """A caller with credit near the 160-bit limit reserves and pays all of it in one
        receipt: a model's revenue passes 2**160 within a few settlements, and must keep counting."""
        account = self.actor(caller)
        target = self.pick_relayer(relayer)
        reserved = self.hub.reservation(account, target)[0]
        top_up = ref.MAX_CREDIT - extra - self.hub.credit[account] - reserved
        if top_up > 0:
            self.fund(account, top_up)
        amount = self.hub.credit[account]
        if amount and reserved + amount <= ref.MAX_CREDIT:
            self.transact(
                lambda ts: self.hub.reserve(account, target, amount, ts),
                account, self.w.escrow, "reserve", target, amount, abi=self.E,
            )  # fmt: skip
        model_id = 1 + model % len(self.hub.models)
        built = self.build_receipt("all_credit", caller, 0, 0, 1, extra, self.next_ts, model_id=model_id, relayer=target)
        self.settle_receipts([built], target)

    @precondition(lambda self: self.signed)
    @rule(picks=st.lists(PICK, min_size=1, max_size=4), newest=st.booleans(), submitter=ACTOR)
    def settle_held(self, picks, newest, submitter):
        """A relayer settles receipts it has held: the newest of each channel (paying every call
        since the last settlement at once) or an older one."""
        channels = sorted(self.signed, key=str)
        built = []
        for pick in picks:
            history = self.signed[channels[pick % len(channels)]]
            built.append(history[-1] if newest else history[pick % len(history)])
        self.settle_receipts(built, self.submitter_of(built, submitter))

    @precondition(lambda self: self.hub.models)
    @rule(
        caller=ACTOR,
        relayer=PICK,
        model=PICK,
        extra=st.integers(0, 2**16),
        hows=st.lists(st.sampled_from(["rise", "rise", "rise_big", "same", "between", "to_floor", "below_floor"]), min_size=1, max_size=3),
        when=st.sampled_from(["now", "before_end", "at_end", "after_end", "after_delay"]),
    )
    def price_change_under_receipts(self, caller, relayer, model, extra, hows, when):
        """A receipt signed at the channel or receipt price before one to three price changes
        (a rise, then more within its notice), settled after them by its relayer: at once, or
        one second before, at, or after the end of the notice, or a withdrawal delay after it."""
        model_id = 1 + model % len(self.hub.models)
        account = self.actor(caller)
        target = self.pick_relayer(relayer)
        if not self.hub.reservation(account, target)[0]:
            self.fund(account, 10**6)
            amount = self.hub.credit[account]
            if amount:
                self.transact(
                    lambda ts: self.hub.reserve(account, target, amount, ts),
                    account, self.w.escrow, "reserve", target, amount, abi=self.E,
                )  # fmt: skip
        built = self.build_receipt("next", caller, 0, 0, 1, extra * 4, self.next_ts, model_id=model_id, relayer=target)
        for how in hows:
            self.change_price(model=model_id - 1, how=how, extra=1 + extra)
        ends = self.hub.models[model_id].notice_ends
        if when != "now":
            ends = max(ends, self.next_ts) if ends else self.next_ts + self.hub.price_notice_period
            shift = {"before_end": -1, "at_end": 0, "after_end": 1, "after_delay": self.hub.withdrawal_delay}[when]
            self.next_ts = max(self.next_ts, ends + shift)
        self.settle_receipts([built], target)
