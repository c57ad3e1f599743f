"""Rules of the economics state machine for reservations and receipt signer keys: reserve,
reserveFor, announced releases, signer key changes, and contract wallets acting."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from . import reference as ref
from .machine_base import ACTOR, AMOUNT, MAX_UINT256, PICK, SMALL, ZERO_ADDRESS


class ReservationRules:
    """Reservation and signer key rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

    # ------------------------------------------------------------ reservations and receipt signer keys

    def account(self, pick: int, wallet: bool = False) -> str:
        return self.wallet(pick) if wallet and self.w.wallets else self.actor(pick)

    @rule(
        actor=ACTOR,
        relayer=PICK,
        how=st.sampled_from(["all", "part", "part", "one_more", "given", "zero", "to_max"]),
        amount=AMOUNT,
        wallet=st.booleans(),
    )
    def reserve(self, actor, relayer, how, amount, wallet=False):
        """Free credit set aside for one relayer (mostly an active one; sometimes address(0))."""
        sender = self.account(actor, wallet)
        target = self.pick_signer(relayer) if relayer % 13 else ZERO_ADDRESS
        credit = self.hub.credit[sender]
        reserved = self.hub.reservation(sender, target)[0]
        amount = {
            "all": credit, "part": max(credit // 3, 1), "one_more": credit + 1, "given": amount, "zero": 0,
            "to_max": ref.MAX_CREDIT - reserved + 1 if actor % 2 else ref.MAX_CREDIT - reserved,
        }[how]  # fmt: skip
        amount = min(amount, MAX_UINT256)
        self.transact(
            lambda ts: self.hub.reserve(sender, target, amount, ts),
            sender, self.w.escrow, "reserve", target, amount, abi=self.E,
        )  # fmt: skip

    @rule(payer=ACTOR, account=ACTOR, relayer=PICK, amount=st.one_of(SMALL, AMOUNT), wallet=st.booleans(), mint=st.booleans())
    def reserve_for(self, payer, account, relayer, amount, wallet, mint):
        """A deposit for an account (or a wallet) and its reserve for a relayer, in one step."""
        sender = self.actor(payer)
        beneficiary = self.account(account, wallet) if account % 9 else ZERO_ADDRESS
        target = self.pick_signer(relayer) if relayer % 13 else ZERO_ADDRESS
        if mint and amount:
            self.mint(sender, amount)
        self.transact(
            lambda ts: self.hub.reserve_for(sender, beneficiary, target, amount, ts),
            sender, self.w.escrow, "reserveFor", beneficiary, target, amount, abi=self.E,
        )  # fmt: skip

    def reservation_pairs(self, releasing: bool = False) -> list[tuple[str, str]]:
        return sorted(
            (pair for pair, r in self.hub.reservations.items() if (r.release_at if releasing else r.amount)), key=str
        )

    @rule(
        pick=PICK,
        how=st.sampled_from(["all", "all", "part", "zero", "one_more", "given", "over_max"]),
        amount=AMOUNT,
    )
    def announce_release(self, pick, how, amount):
        """A caller announces that (part of) a reservation comes back after the delay; 0 cancels."""
        pairs = self.reservation_pairs()
        caller, relayer = pairs[pick % len(pairs)] if pairs and pick % 5 else (self.actor(pick), self.pick_signer(pick))
        reserved = self.hub.reservation(caller, relayer)[0]
        amount = {
            "all": reserved, "part": reserved // 2, "zero": 0, "one_more": reserved + 1, "given": amount,
            "over_max": ref.MAX_CREDIT + 1,
        }[how]  # fmt: skip
        self.transact(
            lambda ts: self.hub.announce_release(caller, relayer, amount, ts),
            caller, self.w.escrow, "announceRelease", relayer, amount, abi=self.E,
        )  # fmt: skip

    @rule(pick=PICK, when=st.sampled_from(["before_ready", "ready", "ready", "now"]))
    def release(self, pick, when):
        """A release one second early, right on time, or whenever (often nothing announced)."""
        pairs = self.reservation_pairs(releasing=True)
        caller, relayer = pairs[pick % len(pairs)] if pairs and pick % 4 else (self.actor(pick), self.pick_signer(pick))
        ready_at = self.hub.reservation(caller, relayer)[2]
        if ready_at and when != "now":
            self.next_ts = max(self.next_ts, ready_at - (when == "before_ready"))
        self.transact(
            lambda ts: self.hub.release(caller, relayer, ts), caller, self.w.escrow, "release", relayer, abi=self.E
        )

    @rule(
        actor=ACTOR,
        relayer=PICK,
        share=st.sampled_from(["all", "part", "one"]),
        when=st.sampled_from(["at_once", "before_ready", "ready", "ready", "later"]),
        again=st.booleans(),
        withdraw=st.booleans(),
        wallet=st.sampled_from([False, False, False, True]),
    )
    def announce_and_release(self, actor, relayer, share, when, again, withdraw, wallet):
        """The two steps in one: a caller with a reservation announces a release, then releases
        at once, one second early, right on time or later; sometimes releases again, and
        withdraws what came back (free credit leaves in one step)."""
        account = self.account(actor, wallet)
        target = self.pick_signer(relayer)
        if not self.hub.reservation(account, target)[0]:
            self.fund(account, 10**6 + actor)
            self.reserve(actor=actor, relayer=relayer, how="part", amount=0, wallet=wallet)
            target = self.pick_signer(relayer) if relayer % 13 else ZERO_ADDRESS
        reserved = self.hub.reservation(account, target)[0]
        amount = {"all": reserved, "part": max(reserved // 3, 1), "one": 1}[share]
        self.transact(
            lambda ts: self.hub.announce_release(account, target, amount, ts),
            account, self.w.escrow, "announceRelease", target, amount, abi=self.E,
        )  # fmt: skip
        ready_at = self.hub.reservation(account, target)[2]
        if when == "before_ready":
            self.next_ts = max(self.next_ts, ready_at - 1)
        elif when == "ready":
            self.next_ts = max(self.next_ts, ready_at)
        elif when == "later":
            self.next_ts = max(self.next_ts, ready_at + 1 + actor)
        for _ in range(1 + again):
            self.transact(
                lambda ts: self.hub.release(account, target, ts), account, self.w.escrow, "release", target, abi=self.E
            )
        if withdraw and self.hub.credit[account]:
            credit = self.hub.credit[account]
            self.transact(
                lambda ts: self.hub.withdraw(account, credit, ts), account, self.w.escrow, "withdraw", credit, abi=self.E
            )

    @rule(actor=ACTOR, key=st.integers(0, 10), wallet=st.sampled_from([False, True]))
    def set_receipt_signer(self, actor, key, wallet):
        """A key that signs receipts besides the account's own: the first applies at once, a
        change (or removal: key 9) a withdrawal delay later."""
        sender = self.account(actor, wallet)
        signer = ZERO_ADDRESS if key == 9 else (sender if key == 10 else self.actor(key))
        self.transact(
            lambda ts: self.hub.set_receipt_signer(sender, signer, ts),
            sender, self.w.escrow, "setReceiptSigner", signer, abi=self.E,
        )  # fmt: skip

    @rule(actor=ACTOR, how=st.sampled_from(["withdraw", "deposit", "request", "request_via"]), amount=SMALL, model=PICK)
    def wallet_acts(self, actor, how, amount, model):
        """A contract wallet deposits (paid by its owner), withdraws, or makes a call."""
        if not self.w.wallets:
            return
        wallet = self.wallet(actor)
        if how == "deposit":
            self.fund(wallet, amount + 1)
        elif how == "withdraw":
            credit = self.hub.credit[wallet]
            value = credit if actor % 2 else credit + 1
            self.transact(lambda ts: self.hub.withdraw(wallet, value, ts), wallet, self.w.escrow, "withdraw", value, abi=self.E)
        else:
            via = model if how == "request_via" else None
            self.request(actor=actor, model=model % 15, version=0, max_price="exact", fund=True, data=b"w", via=via, sender=wallet)
