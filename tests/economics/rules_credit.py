"""Rules of the economics state machine for free credit: deposits, withdrawals and earnings
withdrawals, and the funding and credit reading the other rule groups use."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from . import reference as ref
from .machine_base import ACTOR, AMOUNT, PICK


class CreditRules:
    """Free credit rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

    # ------------------------------------------------------------ credit

    @rule(payer=ACTOR, beneficiary=st.one_of(st.none(), ACTOR), amount=AMOUNT, mint_first=st.booleans())
    def deposit(self, payer, beneficiary, amount, mint_first):
        sender = self.actor(payer)
        if mint_first and amount:
            self.mint(sender, amount)
        if beneficiary is None:
            self.transact(
                lambda ts: self.hub.deposit_for(sender, sender, amount),
                sender, self.w.escrow, "deposit", amount, abi=self.E,
            )  # fmt: skip
        else:
            account = self.actor(beneficiary)
            self.transact(
                lambda ts: self.hub.deposit_for(sender, account, amount),
                sender, self.w.escrow, "depositFor", account, amount, abi=self.E,
            )  # fmt: skip

    @rule(actor=PICK, amount=AMOUNT, how=st.sampled_from(["all", "part", "one_more", "given"]))
    def withdraw(self, actor, amount, how):
        funded = [a for a in self.w.actors if self.hub.credit[a]]
        sender = funded[actor % len(funded)] if funded and actor % 4 else self.actor(actor)
        credit = self.hub.credit[sender]
        amount = {"all": credit, "part": credit // 2, "one_more": credit + 1, "given": amount}[how]
        self.transact(lambda ts: self.hub.withdraw(sender, amount, ts), sender, self.w.escrow, "withdraw", amount, abi=self.E)

    @rule(actor=PICK)
    def withdraw_earnings(self, actor):
        earning = [a for a in self.w.actors if self.hub.earnings[a]]
        sender = earning[actor % len(earning)] if earning and actor % 4 else self.actor(actor)
        self.transact(lambda ts: self.hub.withdraw_earnings(sender), sender, self.w.escrow, "withdrawEarnings", abi=self.E)

    def fund(self, account: str, amount: int) -> None:
        """Mints and deposits `amount` as `account`'s credit (a wallet's owner pays for it)."""
        payer = self.w.wallets.get(account, account)
        if amount <= 0 or self.hub.credit[account] + amount > ref.MAX_CREDIT:
            return
        self.mint(payer, amount)
        self.transact(
            lambda ts: self.hub.deposit_for(payer, account, amount),
            payer, self.w.escrow, "depositFor", account, amount, abi=self.E,
        )  # fmt: skip

    def observed_credit(self, account: str) -> int:
        return self.rpc.view(self.w.escrow, self.E["balanceOf"], account)[0]
