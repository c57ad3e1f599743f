"""`modelhub relayer ...`: a relayer operator's commands: register with a bond, status, add bond,
unbond and withdraw the bond, change the endpoint, and run the daemon (only while active)."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import click

from ..relayer.settings import RelayerConfig, click_options
from .common import (
    AMOUNT,
    AMOUNTS_HELP,
    HubError,
    Session,
    chain_now,
    duration,
    format_tokens,
    hub_command,
    print_table,
    when,
)

LIFECYCLE_HELP = """\b
A relayer's life:
  modelhub relayer register --endpoint http://HOST:PORT --bond 100   bonded and active at once
  modelhub relayer run --port PORT                                   serve paid calls, earn fees
  modelhub relayer status                                            bond, activity, earnings
  modelhub relayer bond 50                                           add to the bond
  modelhub relayer unbond                                            leave: inactive at once
  modelhub relayer withdraw-bond                                     the bond back, after the delay
  modelhub withdraw-earnings                                         the fees earned
"""


@click.group(epilog=LIFECYCLE_HELP)
def relayer():
    """Register, bond and run a relayer, and take the bond back."""


# --- registration and bond -------------------------------------------------------------------


def _endpoint(value: str) -> str:
    parsed = urlparse(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise click.BadParameter(f"{value!r} is not an HTTP URL; give the base URL callers reach the relayer's "
                                 "API at, e.g. http://203.0.113.7:8700", param_hint="--endpoint")
    return value.strip().rstrip("/")


def _positive(session: Session, amount, hint: str) -> int:
    base = session.base(amount)
    if base <= 0:
        raise click.BadParameter("give a positive amount", param_hint=hint)
    return base


@hub_command(relayer, epilog=AMOUNTS_HELP)
@click.option("--endpoint", required=True, metavar="URL",
              help="The base URL of the relayer's HTTP API as callers reach it (what `relayer run` "
                   "serves on --host/--port, or a proxy in front of it).")
@click.option("--bond", type=AMOUNT, metavar="AMOUNT",
              help="Tokens to bond, at least the registry's minimum (default: the minimum).")
def register(session: Session, endpoint: str, bond) -> None:
    """Register as a relayer at an endpoint, with a bond.

    Registers --account at --endpoint, bonding --bond tokens from its wallet. The relayer is active at once: start serving with `modelhub relayer run`. The bond comes
    back through `modelhub relayer unbond`, then `modelhub relayer withdraw-bond` once the
    registry's unbonding delay has passed.
    """
    url = _endpoint(endpoint)
    hub = session.hub
    least = hub.min_bond
    base = least if bond is None else session.base(bond)
    if base < max(least, 1):
        raise HubError(f"a bond of {session.money(base)} is below the minimum of {session.money(least)}; "
                       f"bond at least that (--bond {_tokens(session, least)})")
    info = hub.relayer_info()
    if info.registered:
        raise HubError(f"{info.address} is registered already (endpoint {info.endpoint or '-'}, bond "
                       f"{session.money(info.bond)}); see `modelhub relayer status`")
    info = hub.relayer_register(url, base)
    session.emit(_status_json(session, info, hub),
                 f"Registered relayer {info.address} at {info.endpoint} with a bond of {session.money(info.bond)}\n"
                 f"  start serving: modelhub relayer run --port {urlparse(url).port or 8700}")


@hub_command(relayer, "set-endpoint")
@click.argument("endpoint", metavar="URL")
def set_endpoint(session: Session, endpoint: str) -> None:
    """Change the URL the relayer advertises.

    Callers fetch outputs, and other relayers model files, from the advertised URL.
    """
    hub, _ = _registration(session)
    info = hub.relayer_set_endpoint(_endpoint(endpoint))
    session.emit({"relayer": info.address, "endpoint": info.endpoint},
                 f"Relayer {info.address} now advertises {info.endpoint}")


@hub_command(relayer, "bond", epilog=AMOUNTS_HELP)
@click.argument("amount", type=AMOUNT)
def add_bond(session: Session, amount) -> None:
    """Add AMOUNT tokens to the relayer's bond.

    The tokens come from the wallet; not while unbonding. A relayer whose bond is below
    the registry's minimum (after a rise of the minimum, say) is inactive until it adds enough.
    """
    base = _positive(session, amount, "AMOUNT")
    hub, info = _registration(session)
    if info.unbonding:
        raise HubError(f"{info.address} is unbonding and takes no more bond; withdraw it with `modelhub relayer "
                       f"withdraw-bond` ({when(info.unbond_at, chain_now())}), then register again")
    info = hub.relayer_add_bond(base)
    state = "active" if info.active else f"still inactive: the minimum is {session.money(hub.min_bond)}"
    session.emit(_status_json(session, info, hub),
                 f"Relayer {info.address} now bonds {session.money(info.bond)}; {state}")


@hub_command(relayer)
def unbond(session: Session) -> None:
    """Start leaving; the bond comes back after a delay.

    The relayer is inactive at once and the bond withdrawable after the registry's unbonding
    delay. Stop `modelhub relayer run` first: at shutdown it settles every receipt it holds, and
    an inactive relayer can settle nothing. There is no way back but `withdraw-bond` and a new
    registration.
    """
    hub, info = _registration(session)
    if info.unbonding:
        raise HubError(f"{info.address} is unbonding already; its bond can be withdrawn "
                       f"{when(info.unbond_at, chain_now())} with `modelhub relayer withdraw-bond`")
    info = hub.relayer_begin_unbond()
    session.emit(_status_json(session, info, hub),
                 f"Relayer {info.address} is unbonding: inactive now, it serves no more calls.\n"
                 f"  Its bond of {session.money(info.bond)} can be withdrawn {when(info.unbond_at, chain_now())} "
                 "with `modelhub relayer withdraw-bond`")


@hub_command(relayer, "withdraw-bond")
def withdraw_bond(session: Session) -> None:
    """Take the bond back once the unbonding delay passed.

    Withdraws the whole bond to the wallet and ends the registration; refused before the
    delay has passed, with the time left.
    """
    hub, info = _registration(session)
    if not info.unbonding:
        raise HubError(f"{info.address} has not begun to unbond: run `modelhub relayer unbond` first (it stops "
                       f"serving at once), then withdraw the bond {duration(hub.unbond_delay)} later")
    now = chain_now()
    if now < info.unbond_at:
        raise HubError(f"the bond of {info.address} can be withdrawn {when(info.unbond_at, now)}; run "
                       "`modelhub relayer withdraw-bond` again then")
    amount = hub.relayer_withdraw_bond()
    session.emit({"relayer": info.address, "withdrawn": session.money_json(amount),
                  "wallet": session.money_json(hub.token_balance())},
                 f"Withdrew the bond of {session.money(amount)} to {info.address}; it is no longer a relayer")


# --- status ------------------------------------------------------------------------------------


@hub_command(relayer)
@click.argument("address", required=False)
def status(session: Session, address: str | None) -> None:
    """Show a relayer's bond, state and earnings.

    Its endpoint, bond (and the minimum), whether it is active, when an unbonding ends, and
    the fees it earned. ADDRESS is the relayer's address (default: --account's).
    """
    from eth_utils import is_address

    if address is not None and not is_address(address):
        raise click.BadParameter(f"{address!r} is not an address (0x and 40 hex digits)", param_hint="ADDRESS")
    hub = session.hub
    info = hub.relayer_info(address)
    body = _status_json(session, info, hub)
    now = chain_now()

    def human() -> None:
        click.echo(f"Relayer {info.address}")
        if not info.registered:
            click.echo(f"  not registered: register with `modelhub relayer register --endpoint URL --bond AMOUNT` "
                       f"(at least {session.money(hub.min_bond)})")
        else:
            click.echo(f"  endpoint   {info.endpoint or '-'}")
            click.echo(f"  bond       {session.money(info.bond)} (minimum {session.money(hub.min_bond)})")
            click.echo(f"  active     {'yes' if info.active else 'no: ' + _why_inactive(session, info, hub)}")
            click.echo("  unbonding  " + (f"yes: the bond can be withdrawn {when(info.unbond_at, now)}"
                                          if info.unbonding else "no"))
        earnings = int(body["earnings"])
        click.echo(f"  earnings   {session.money(earnings)}"
                   + (" (withdraw with `modelhub withdraw-earnings`)" if earnings else ""))

    session.emit(body, human)


@hub_command(relayer, "list")
def list_relayers(session: Session) -> None:
    """List the registered relayers."""
    hub = session.hub
    found = [info for info in (hub.relayer_info(address) for address in hub.registered_relayers()) if info.registered]

    def human() -> None:
        if not found:
            click.echo("No relayers yet: register one with `modelhub relayer register --endpoint URL --bond AMOUNT`.")
            return
        rows = [("RELAYER", "ENDPOINT", "BOND", "ACTIVE")]
        rows += [(i.address, i.endpoint or "-", session.money(i.bond),
                  "yes" if i.active else "no: " + _why_inactive(session, i, hub)) for i in found]
        print_table(rows)

    session.emit({"relayers": [{"relayer": i.address, "endpoint": i.endpoint, "bond": session.money_json(i.bond),
                                "active": i.active, "unbondAt": i.unbond_at} for i in found]}, human)


def _status_json(session: Session, info, hub) -> dict:
    left = max(info.unbond_at - chain_now(), 0) if info.unbonding else 0
    return {"relayer": info.address, "registered": info.registered, "endpoint": info.endpoint,
            "bond": session.money_json(info.bond), "minBond": session.money_json(hub.min_bond),
            "active": info.active, "unbonding": info.unbonding, "unbondAt": info.unbond_at,
            "unbondSecondsLeft": left, "earnings": session.money_json(hub.earnings(info.address))}


def _tokens(session: Session, base: int) -> str:
    """An amount as the CLI takes it back: a number of tokens."""
    return format_tokens(base, session.token()[1])


def _why_inactive(session: Session, info, hub) -> str:
    if not info.registered:
        return "not registered"
    if info.unbonding:
        return "unbonding"
    return f"the bond is below the minimum of {session.money(hub.min_bond)}"


def _registration(session: Session) -> tuple:
    """(hub, --account's RelayerInfo); a HubError saying how to register when it is not."""
    hub = session.hub
    info = hub.relayer_info()
    if not info.registered:
        raise _not_registered(session, info)
    return hub, info


def _not_registered(session: Session, info) -> HubError:
    return HubError(f"{info.address} is not a registered relayer; register it first with `modelhub relayer "
                    f"register --endpoint URL --bond AMOUNT` (at least {session.money(session.hub.min_bond)})")


def _refusal_to_run(session: Session, info, hub) -> HubError:
    """Why an inactive relayer may not serve, and the command that makes it active."""
    if not info.registered:
        return _not_registered(session, info)
    if info.unbonding:
        return HubError(f"{info.address} is unbonding and may serve no more; take the bond back with `modelhub "
                        f"relayer withdraw-bond` ({when(info.unbond_at, chain_now())}) and register again with "
                        "`modelhub relayer register --endpoint URL --bond AMOUNT` to serve")
    short = hub.min_bond - info.bond
    return HubError(f"{info.address} bonds {session.money(info.bond)}, below the minimum of "
                    f"{session.money(hub.min_bond)}, so it is not active; add at least {session.money(short)} with "
                    f"`modelhub relayer bond {_tokens(session, short)}`")


# --- the daemon --------------------------------------------------------------------------------


@hub_command(relayer, "run")
@click_options
def run(session: Session, **options):
    """Serve paid calls (only while active).

    Follows the chain, runs models, settles with signed attestations. Also serves fast calls paid with signed receipts (POST /v1/models/{id}/infer): each accepted
    receipt is stored before the answer and settled later with settleReceipts, many per
    transaction (see the --settle-* options and docs/fast-calls.md).

    A model file it lacks is fetched in the background from the other registered relayers and
    from the --fetch-from sources, and kept only if it hashes to the digest on chain; calls
    are left to other relayers meanwhile.

    Runs until SIGTERM or Ctrl-C, finishing the batch in flight. Its state lives in --store, so it
    can be stopped or killed at any point and started again without losing or repeating a call.
    Refuses to start unless --account is an active relayer (see `modelhub relayer register`).
    """
    from modelhub.relayer.service import run_service

    config = RelayerConfig.from_options(**options)
    account = session.account
    if hasattr(account, "set_autosign"):
        # A daemon cannot stop to ask before each signature; the passphrase may come from
        # APE_ACCOUNTS_<alias>_PASSPHRASE.
        account.set_autosign(True)
    hub = session.hub
    info = hub.relayer_info()
    if not info.active:
        # Its attestations, rejections and receipt settlements would all be refused.
        raise _refusal_to_run(session, info, hub)
    served = urlparse(info.endpoint)
    if config.port and served.port not in (None, config.port) and served.hostname in ("127.0.0.1", "localhost"):
        session.note(f"warning: {hub.address} advertises {info.endpoint} but serves on port {config.port}; "
                     "callers and other relayers use the advertised URL (change it with `modelhub relayer "
                     "set-endpoint URL`)")
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    # One line per event that matters: not one per health check or metrics scrape.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    run_service(hub, config,
                on_ready=lambda url: session.note(f"relayer {hub.address} serving on {url}, store {config.store_dir}"))
