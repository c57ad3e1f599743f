"""Callers' prepaid credit and uploaders' earnings: `deposit`, `balance`, `withdraw` (two steps
for accounts that sign receipts), `faucet`, `earnings`, `withdraw-earnings`, and `receipts`."""

from __future__ import annotations

import time

import click

from modelhub import errors as e

from .common import AMOUNT, AMOUNTS_HELP, HubError, Session, hub_command

WITHDRAW_HELP = """\b
Accounts that pay by signed receipts (fast calls, `modelhub receipts`) withdraw in two steps,
so relayers can settle the receipts they hold first:
  modelhub withdraw 0.5 --announce   announces; prints when it becomes possible
  modelhub withdraw 0.5              after the withdrawal delay (1 h by default)
The credit stays usable meanwhile; `--announce 0` cancels. Other accounts withdraw at once.
"""


def register(cli: click.Group) -> None:
    """Adds the credit and earnings commands, and the `receipts` group, to the top-level group."""

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
        """Show your prepaid credit and the fee tokens in your wallet; for an account that signs
        receipts, also its announced withdrawal and when it is possible."""
        hub = session.hub
        credit, wallet = hub.balance(), hub.token_balance()
        notice = hub.withdrawal_notice()
        data = {"account": hub.address, "credit": session.money_json(credit),
                "wallet": session.money_json(wallet), "receiptsEnabled": notice.receipts_enabled}
        lines = [hub.address, f"  credit  {session.money(credit)}", f"  wallet  {session.money(wallet)}"]
        if notice.receipts_enabled:
            now = _chain_now()
            ready = bool(notice.announced) and now >= notice.ready_at
            data.update({"announcedWithdrawal": session.money_json(notice.announced),
                         "withdrawalReadyAt": notice.ready_at, "withdrawalReady": ready})
            lines.append(f"  receipts enabled: withdrawals wait {_duration(hub.withdrawal_delay)} "
                         "after an announcement")
            if notice.announced:
                when = ("ready now" if ready else
                        f"possible from {_utc(notice.ready_at)} ({_until(notice.ready_at, now)})")
                lines.append(f"  announced {session.money(notice.announced)} to withdraw, {when}")
        session.emit(data, "\n".join(lines))

    @hub_command(cli, epilog=AMOUNTS_HELP + "\n" + WITHDRAW_HELP)
    @click.argument("amount", type=AMOUNT)
    @click.option("--announce", is_flag=True,
                  help="Announce a withdrawal of AMOUNT instead of making it (accounts that "
                       "sign receipts); 0 cancels the announcement.")
    def withdraw(session: Session, amount, announce: bool) -> None:
        """Take AMOUNT of free credit back to your wallet."""
        hub = session.hub
        base = session.base(amount)
        notice = hub.withdrawal_notice()
        if announce:
            _announce(session, amount.text, base, notice.receipts_enabled)
            return
        if notice.receipts_enabled:
            _check_announced(session, amount.text, base, notice)
        credit = hub.withdraw(base)
        session.emit({"account": hub.address, "withdrawn": session.money_json(base),
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

    cli.add_command(receipts)


# --- receipts ----------------------------------------------------------------------------------


@click.group(epilog=WITHDRAW_HELP)
def receipts() -> None:
    """Paying by signed receipts: what fast calls (`modelhub infer --fast`) use.

    A fast call goes straight to a relayer over HTTP, paid with a receipt your account signs
    (the running totals of your channel with that relayer and model); the relayer settles the
    receipts on chain later. Once receipts are enabled, credit is withdrawn in two steps.
    """


def _announce(session: Session, text: str, base: int, enabled: bool) -> None:
    hub = session.hub
    if not enabled:
        raise HubError(f"{hub.address} has not enabled receipts, so its withdrawals do not wait: "
                       f"run `modelhub withdraw {text}` without --announce")
    notice = hub.announce_withdrawal(base)
    data = {"account": hub.address, "announced": session.money_json(notice.announced),
            "readyAt": notice.ready_at}
    if not notice.announced:
        session.emit(data, "Cancelled the announced withdrawal")
        return
    session.emit(data, f"Announced a withdrawal of {session.money(base)}: possible from "
                       f"{_utc(notice.ready_at)} ({_until(notice.ready_at, _chain_now())}); then run "
                       f"`modelhub withdraw {text}`. The credit stays usable until then, and "
                       "relayers settle your receipts meanwhile")


def _check_announced(session: Session, text: str, base: int, notice) -> None:
    """Refuses, with what to do, a withdrawal the escrow would refuse for want of a ripe
    announcement (before paying for a transaction that reverts)."""
    hub = session.hub
    if notice.announced < base:
        already = (f" (announced: {session.money(notice.announced)})" if notice.announced else "")
        raise e.WithdrawalDelayError(
            f"{hub.address} signs receipts, so its credit leaves in two steps{already}: run "
            f"`modelhub withdraw {text} --announce`, then `modelhub withdraw {text}` "
            f"{_duration(hub.withdrawal_delay)} later")
    now = _chain_now()
    if now < notice.ready_at:
        raise e.WithdrawalDelayError(
            f"the announced withdrawal of {session.money(notice.announced)} is possible from "
            f"{_utc(notice.ready_at)} ({_until(notice.ready_at, now)}); run `modelhub withdraw "
            f"{text}` again then")


@hub_command(receipts)
def enable(session: Session) -> None:
    """Let your account pay by signed receipts (fast calls). Cannot be undone: from then on
    its credit is withdrawn in two steps."""
    hub = session.hub
    changed = hub.enable_receipts()
    delay = _duration(hub.withdrawal_delay)
    session.emit({"account": hub.address, "receiptsEnabled": True, "changed": changed,
                  "withdrawalDelay": hub.withdrawal_delay},
                 (f"Enabled receipts for {hub.address}" if changed else
                  f"Receipts were already enabled for {hub.address}")
                 + f"; withdrawals wait {delay} after `modelhub withdraw AMOUNT --announce`")


@hub_command(receipts)
@click.option("--relayer", metavar="URL|ADDRESS",
              help="Also show your channel with this relayer (needs --model).")
@click.option("--model", "model_id", type=click.IntRange(1),
              help="The model of the channel to show (needs --relayer).")
def status(session: Session, relayer: str | None, model_id: int | None) -> None:
    """Show whether your account signs receipts, its announced withdrawal and, with --relayer
    and --model, your channel: what the chain has settled and what the relayer holds."""
    from modelhub.session import fetch_channel, resolve_relayer

    if (relayer is None) != (model_id is None):
        raise click.UsageError("give --relayer and --model together to show a channel")
    hub = session.hub
    notice = hub.withdrawal_notice()
    now = _chain_now()
    data: dict = {"account": hub.address, "receiptsEnabled": notice.receipts_enabled,
                  "withdrawalDelay": hub.withdrawal_delay,
                  "announcedWithdrawal": session.money_json(notice.announced),
                  "withdrawalReadyAt": notice.ready_at,
                  "withdrawalReady": bool(notice.announced) and now >= notice.ready_at}
    lines = [f"{hub.address}: receipts "
             + (f"enabled; withdrawals wait {_duration(hub.withdrawal_delay)} after an announcement"
                if notice.receipts_enabled else "not enabled (`modelhub receipts enable`, or the "
                                                "first `modelhub infer --fast`)")]
    if notice.announced:
        lines.append(f"  announced withdrawal  {session.money(notice.announced)}, "
                     + ("ready now" if data["withdrawalReady"] else
                        f"possible from {_utc(notice.ready_at)} ({_until(notice.ready_at, now)})"))
    if relayer is not None:
        from eth_utils import is_address

        held = None
        if "://" in relayer:
            address, url = resolve_relayer(hub, relayer)
        elif is_address(relayer):
            info = hub.relayer_info(relayer)
            address, url = info.address, info.endpoint
        else:
            raise click.UsageError(f"--relayer {relayer!r} is neither a URL nor an address")
        calls, amount = hub.channel(hub.address, address, model_id)
        channel = {"relayer": address, "modelId": model_id, "settledCalls": str(calls),
                   "settledAmount": session.money_json(amount)}
        lines.append(f"  channel with relayer {address}, model {model_id}:")
        lines.append(f"    settled on chain    {calls} calls, {session.money(amount)}")
        try:
            import requests

            if not url:
                raise e.RelayerMismatchError(f"{address} registered no endpoint")
            with requests.Session() as http:
                held = fetch_channel(http, url, hub.address, model_id, timeout=10).state
        except e.ModelHubError as error:
            lines.append(f"    at the relayer      unknown: {error}")
        if held is not None:
            channel.update({"calls": str(held.calls), "amount": session.money_json(held.amount)})
            lines.append(f"    signed (relayer)    {held.calls} calls, {session.money(held.amount)}; "
                         f"{session.money(max(held.amount - amount, 0))} not settled yet")
        data["channel"] = channel
    session.emit(data, "\n".join(lines))


# --- time ------------------------------------------------------------------------------------


def _chain_now() -> int:
    """Now, as the next block will see it: the head's time, or later if no block came lately
    (a dev chain whose clock was moved ahead keeps it)."""
    from ape import chain

    return max(int(chain.blocks.head.timestamp), int(time.time()))


def _utc(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _duration(seconds: int) -> str:
    seconds = max(int(seconds), 0)
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 60:
        return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 and seconds < 3600 else "")
    return f"{seconds} s"


def _until(timestamp: int, now: int) -> str:
    return f"in {_duration(timestamp - now)}" if timestamp > now else "now"
