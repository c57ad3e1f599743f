"""Callers' prepaid credit and uploaders' earnings: `deposit`, `balance`, `withdraw`, `faucet`,
`earnings`, `withdraw-earnings`."""

from __future__ import annotations

import click

from .common import AMOUNT, AMOUNTS_HELP, Session, hub_command


def register(cli: click.Group) -> None:
    """Adds the credit and earnings commands to the top-level group."""

    @hub_command(cli, epilog=AMOUNTS_HELP)
    @click.argument("amount", type=AMOUNT)
    def deposit(session: Session, amount) -> None:
        """Move AMOUNT fee tokens from your wallet into prepaid credit for calls."""
        base = session.base(amount)
        credit = session.hub.deposit(base)
        session.emit({"account": session.hub.address, "deposited": session.money_json(base),
                      "credit": session.money_json(credit)},
                     f"Deposited {session.money(base)}; credit now {session.money(credit)}")

    @hub_command(cli)
    def balance(session: Session) -> None:
        """Show your prepaid credit and the fee tokens in your wallet."""
        hub = session.hub
        credit, wallet = hub.balance(), hub.token_balance()
        session.emit(
            {"account": hub.address, "credit": session.money_json(credit),
             "wallet": session.money_json(wallet)},
            f"{hub.address}\n  credit  {session.money(credit)}\n  wallet  {session.money(wallet)}",
        )

    @hub_command(cli, epilog=AMOUNTS_HELP)
    @click.argument("amount", type=AMOUNT)
    def withdraw(session: Session, amount) -> None:
        """Take AMOUNT of free credit back to your wallet."""
        base = session.base(amount)
        credit = session.hub.withdraw(base)
        session.emit({"account": session.hub.address, "withdrawn": session.money_json(base),
                      "credit": session.money_json(credit)},
                     f"Withdrew {session.money(base)}; credit now {session.money(credit)}")

    @hub_command(cli, epilog=AMOUNTS_HELP)
    @click.argument("amount", type=AMOUNT)
    def faucet(session: Session, amount) -> None:
        """Mint AMOUNT test fee tokens to your wallet (dev chains only)."""
        base = session.base(amount)
        wallet = session.hub.faucet(base)
        session.emit({"account": session.hub.address, "minted": session.money_json(base),
                      "wallet": session.money_json(wallet)},
                     f"Minted {session.money(base)}; wallet now {session.money(wallet)}")

    @hub_command(cli)
    def earnings(session: Session) -> None:
        """Show your released revenue waiting to be withdrawn (payees, relayers, treasury)."""
        hub = session.hub
        amount = hub.earnings()
        session.emit({"account": hub.address, "earnings": session.money_json(amount)},
                     f"{hub.address} has {session.money(amount)} in earnings"
                     + ("; take them with `modelhub withdraw-earnings`" if amount else ""))

    @hub_command(cli, name="withdraw-earnings")
    def withdraw_earnings(session: Session) -> None:
        """Pay all your earnings out to your wallet."""
        amount = session.hub.withdraw_earnings()
        session.emit({"account": session.hub.address, "withdrawn": session.money_json(amount)},
                     f"Withdrew {session.money(amount)} of earnings to {session.hub.address}")
