"""Callers' prepaid credit and uploaders' earnings: `deposit`, `balance`, `withdraw`, `faucet`,
`earnings`, `withdraw-earnings`; reservations for relayers' receipts: `reserve`, `release`, and
`receipts status`."""

from __future__ import annotations

import click

from modelhub import errors as e

from .common import AMOUNT, AMOUNTS_HELP, MODEL, HubError, Session, chain_now, hub_command, when

RESERVE_HELP = """\b
Fast calls (`modelhub infer --fast`) are paid by signed receipts, out of credit you reserve
for one relayer: only that relayer can be paid from it, so it can serve you without waiting
for the chain. Reserved credit comes back to free credit in two steps, so the relayer can
settle the receipts it holds first:
  modelhub reserve 0.5 --relayer URL|ADDRESS           free credit -> reservation
  modelhub release --relayer URL|ADDRESS --announce 0.5 announces; prints when it is possible
  modelhub release --relayer URL|ADDRESS               after the withdrawal delay (1 h by default)
`--announce 0` cancels. Free credit is withdrawn at once (`modelhub withdraw`).
"""


def register(cli: click.Group) -> None:
    """Adds the credit, reservation and earnings commands, and the `receipts` group."""

    @hub_command(cli, epilog=AMOUNTS_HELP)
    @click.argument("amount", type=AMOUNT)
    def deposit(session: Session, amount) -> None:
        """Move AMOUNT fee tokens from your wallet into prepaid credit for calls."""
        base = session.base(amount)
        _moved(session, "deposited", base, "credit", session.hub.deposit(base))

    @hub_command(cli, epilog=RESERVE_HELP)
    def balance(session: Session) -> None:
        """Show your free credit, the fee tokens in your wallet, and your reservations for
        relayers (what fast calls are paid from), with any announced release."""
        hub = session.hub
        credit, wallet = hub.balance(), hub.token_balance()
        reservations = [r for r in hub.reservations() if r.reserved or r.releasing]
        now = chain_now()
        data = {"account": hub.address, "credit": session.money_json(credit),
                "wallet": session.money_json(wallet),
                "reserved": session.money_json(sum(r.reserved for r in reservations)),
                "reservations": [_reservation_json(session, r, now) for r in reservations]}
        lines = [hub.address, f"  credit  {session.money(credit)}", f"  wallet  {session.money(wallet)}"]
        for held in reservations:
            lines.append(f"  reserved for relayer {held.relayer}  {session.money(held.reserved)}")
            if held.release_at:
                lines.append(f"    release of {session.money(held.releasing)} announced, "
                             + when(held.release_at, now))
        session.emit(data, "\n".join(lines))

    @hub_command(cli, epilog=AMOUNTS_HELP + "\n" + RESERVE_HELP)
    @click.argument("amount", type=AMOUNT)
    def withdraw(session: Session, amount) -> None:
        """Take AMOUNT of free credit back to your wallet (at once). Reserved credit is not
        free: release it first (`modelhub release --help`)."""
        hub = session.hub
        base = session.base(amount)
        if base <= 0:
            raise HubError("the amount to withdraw is zero; give a positive amount")
        credit = hub.balance()
        if credit < base:
            raise _short_to_withdraw(session, credit, base)
        try:
            left = hub.withdraw(base)
        except e.InsufficientCreditError:  # spent meanwhile (say, by a call from another shell)
            raise _short_to_withdraw(session, hub.balance(), base) from None
        _moved(session, "withdrawn", base, "credit", left)

    @hub_command(cli, epilog=AMOUNTS_HELP + "\n" + RESERVE_HELP)
    @click.argument("amount", type=AMOUNT)
    @click.option("--relayer", "relayer", metavar="URL|ADDRESS", required=True,
                  help="The relayer whose receipts the reservation pays (its URL or address).")
    def reserve(session: Session, amount, relayer: str) -> None:
        """Set AMOUNT of free credit aside for fast calls at one relayer."""
        hub = session.hub
        base = session.base(amount)
        if base <= 0:
            raise HubError("the amount to reserve is zero; give a positive amount")
        address, _ = _active_relayer(session, relayer)
        credit = hub.balance()
        if credit < base:
            raise e.InsufficientCreditError(
                f"{hub.address} has {session.money(credit)} of free credit, less than the "
                f"{session.money(base)} to reserve; deposit {session.money(base - credit)} more "
                "first (`modelhub deposit`)")
        held = hub.reserve(address, base)
        session.emit({"account": hub.address, "relayer": address, "reservedNow": session.money_json(base),
                      **_reservation_json(session, held, chain_now()),
                      "credit": session.money_json(hub.balance())},
                     f"Reserved {session.money(base)} for relayer {address}: reservation now "
                     f"{session.money(held.reserved)}. Fast calls there are paid from it; it "
                     f"comes back with `modelhub release --relayer {address} --announce AMOUNT`")

    @hub_command(cli, epilog=AMOUNTS_HELP + "\n" + RESERVE_HELP)
    @click.option("--relayer", "relayer", metavar="URL|ADDRESS", required=True,
                  help="The relayer the reservation is for (its URL or address).")
    @click.option("--announce", "announce", type=AMOUNT, metavar="AMOUNT",
                  help="Announce the release of AMOUNT instead of making it (0 cancels).")
    def release(session: Session, relayer: str, announce) -> None:
        """Bring reserved credit back to free credit: announce it (--announce AMOUNT), then,
        once the withdrawal delay has passed, run again without --announce."""
        hub = session.hub
        address = _relayer_address(session, relayer)
        held = hub.reservation(relayer=address)
        now = chain_now()
        if announce is not None:
            base = session.base(announce)
            if base and not held.reserved:
                raise HubError(f"{hub.address} has no reservation for relayer {address}; "
                               "`modelhub balance` lists your reservations")
            if base > held.reserved:
                raise HubError(f"the reservation for relayer {address} holds "
                               f"{session.money(held.reserved)}, less than the {session.money(base)} "
                               "to release; announce at most that")
            held = hub.announce_release(address, base)
            data = {"account": hub.address, **_reservation_json(session, held, now)}
            if not base:
                session.emit(data, f"Cancelled the release of the reservation for relayer {address}")
                return
            session.emit(data, f"Announced the release of {session.money(base)} reserved for relayer "
                               f"{address}: possible {when(held.release_at, chain_now())}; then run "
                               f"`modelhub release --relayer {relayer}`. The relayer settles your "
                               "receipts meanwhile and serves only against the rest")
            return
        if not held.release_at:
            what = (f"announce one first: `modelhub release --relayer {relayer} --announce AMOUNT`"
                    if held.reserved else "`modelhub balance` lists your reservations")
            raise e.NothingToReleaseError(
                f"{hub.address} has announced no release of its reservation for relayer "
                f"{address} ({session.money(held.reserved)} reserved); {what}")
        if now < held.release_at:
            raise e.ReleaseNotReadyError(
                f"the release of {session.money(held.releasing)} reserved for relayer {address} is "
                f"possible {when(held.release_at, now)}; run `modelhub release --relayer "
                f"{relayer}` again then")
        released = hub.release(address)
        credit = hub.balance()
        session.emit({"account": hub.address, "relayer": address,
                      "released": session.money_json(released),
                      "reserved": session.money_json(hub.reservation(relayer=address).reserved),
                      "credit": session.money_json(credit)},
                     f"Released {session.money(released)} from the reservation for relayer {address}; "
                     f"free credit now {session.money(credit)}")

    @hub_command(cli, epilog=AMOUNTS_HELP)
    @click.argument("amount", type=AMOUNT)
    def faucet(session: Session, amount) -> None:
        """Mint AMOUNT test fee tokens to your wallet (dev chains only)."""
        base = session.base(amount)
        _moved(session, "minted", base, "wallet", session.hub.faucet(base))

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


_PAST = {"deposited": "Deposited", "withdrawn": "Withdrew", "minted": "Minted"}


def _moved(session: Session, moved: str, amount: int, held: str, balance: int) -> None:
    """Reports `amount` tokens `moved` ("deposited", "withdrawn", "minted") and the `held`
    balance ("credit", "wallet") they leave."""
    session.emit({"account": session.hub.address, moved: session.money_json(amount), held: session.money_json(balance)},
                 f"{_PAST[moved]} {session.money(amount)}; {held} now {session.money(balance)}")


def _short_to_withdraw(session: Session, credit: int, amount: int) -> e.InsufficientCreditError:
    """Free credit below what `withdraw` asked for: what there is, and where the rest is (it is
    money to take back, so nothing about depositing)."""
    hub = session.hub
    reserved = sum(r.reserved for r in hub.reservations())
    where = (f"; {session.money(reserved)} more is reserved for relayers: "
             "`modelhub release --relayer ... --announce AMOUNT` brings it back after the "
             "withdrawal delay" if reserved else "")
    held = (f"has {session.money(credit)} of free credit, less than the {session.money(amount)} asked for"
            if credit else f"has no free credit to withdraw (asked for {session.money(amount)})")
    return e.InsufficientCreditError(f"{hub.address} {held}{where}")


# --- relayers --------------------------------------------------------------------------------


def _active_relayer(session: Session, relayer: str) -> tuple[str, str]:
    """(address, URL) of an active relayer given by URL or address, or a one-line error."""
    try:
        return session.hub.resolve_relayer(relayer)
    except e.NotActiveRelayerError as error:
        raise e.NotActiveRelayerError(f"--relayer {relayer}: {error}; reserving for it would lock "
                                      "credit nobody can serve against") from None


def _relayer_address(session: Session, relayer: str) -> str:
    """The address of a relayer given by URL (asked through its /healthz) or address; it need
    not be active: a reservation can be released from a relayer that stopped."""
    from eth_utils import is_address, to_checksum_address

    text = relayer.strip()
    if is_address(text):
        return to_checksum_address(text)
    if "://" not in text:
        raise click.BadParameter(f"{relayer!r} is neither a relayer's URL (http://...) nor its "
                                 "address (0x...)", param_hint="--relayer")
    from modelhub.relayer_client import relayer_at

    try:
        return relayer_at(session.hub, text, timeout=10)
    except e.RelayerUnreachableError as error:
        raise e.RelayerUnreachableError(f"{error}; or pass the relayer's address") from None


def _reservation_json(session: Session, held, now: int) -> dict:
    return {"relayer": held.relayer, "reserved": session.money_json(held.reserved),
            "releasing": session.money_json(held.releasing), "releaseAt": held.release_at,
            "releaseReady": bool(held.release_at) and now >= held.release_at}


# --- receipts ----------------------------------------------------------------------------------


@click.group(epilog=RESERVE_HELP)
def receipts() -> None:
    """Paying by signed receipts: what fast calls (`modelhub infer --fast`) use.

    A fast call goes straight to a relayer over HTTP, paid with a receipt your account signs
    (the running totals of your channel with that relayer and model); the relayer settles the
    receipts on chain later, out of the credit you reserved for it (`modelhub reserve`).
    """


@hub_command(receipts)
@click.option("--relayer", metavar="URL|ADDRESS",
              help="Show your reservation for this relayer and, with --model, your channel.")
@click.option("--model", "model_id", type=MODEL,
              help="The model of the channel to show, by id or OWNER/NAME (needs --relayer).")
def status(session: Session, relayer: str | None, model_id: int | None) -> None:
    """Show your receipt signer key, your reservations and, with --relayer and --model, your
    channel: what the chain has settled and what the relayer holds."""
    from modelhub.relayer_client import RelayerClient

    if model_id is not None and relayer is None:
        raise click.UsageError("--model needs --relayer: a channel is (you, a relayer, a model)")
    hub = session.hub
    now = chain_now()
    key = hub.receipt_signer()
    held_all = [r for r in hub.reservations() if r.reserved or r.releasing]
    data: dict = {"account": hub.address, "withdrawalDelay": hub.withdrawal_delay,
                  "receiptSigner": key.signer, "nextReceiptSigner": key.next_signer,
                  "nextReceiptSignerAt": key.next_at,
                  "reservations": [_reservation_json(session, r, now) for r in held_all]}
    lines = [f"{hub.address}: receipts signed by its own key"
             + (f" or by {key.signer}" if key.signer else "")]
    if key.next_at:
        lines.append(f"  receipt signer changes to {key.next_signer or 'none'} {when(key.next_at, now)}")
    if not held_all and relayer is None:
        lines.append("  no reservations: `modelhub reserve AMOUNT --relayer URL|ADDRESS` (or the "
                     "first `modelhub infer --fast`) makes one")
    for held in held_all:
        lines.append(f"  reserved for relayer {held.relayer}  {session.money(held.reserved)}"
                     + (f"; release of {session.money(held.releasing)} {when(held.release_at, now)}"
                        if held.release_at else ""))
    if relayer is not None:
        address = _relayer_address(session, relayer)
        url = relayer.rstrip("/") if "://" in relayer else hub.relayer_info(address).endpoint
        held = hub.reservation(relayer=address)
        data["reservation"] = _reservation_json(session, held, now)
        if not (held.reserved or held.releasing):
            lines.append(f"  no reservation for relayer {address}")
        if model_id is not None:
            held_channel = None
            calls, amount = hub.channel(hub.address, address, model_id)
            channel = {"relayer": address, "modelId": model_id, "settledCalls": str(calls),
                       "settledAmount": session.money_json(amount)}
            lines.append(f"  channel with relayer {address}, model {model_id}:")
            lines.append(f"    settled on chain    {calls} calls, {session.money(amount)}")
            try:
                if not url:
                    raise e.RelayerMismatchError(f"{address} registered no endpoint")
                held_channel = RelayerClient(url, timeout=10).channel(hub.address, model_id).state
            except e.ModelHubError as error:
                lines.append(f"    at the relayer      unknown: {error}")
            if held_channel is not None:
                channel.update({"calls": str(held_channel.calls),
                                "amount": session.money_json(held_channel.amount)})
                lines.append(f"    signed (relayer)    {held_channel.calls} calls, "
                             f"{session.money(held_channel.amount)}; "
                             f"{session.money(max(held_channel.amount - amount, 0))} not settled yet")
            data["channel"] = channel
    session.emit(data, "\n".join(lines))
