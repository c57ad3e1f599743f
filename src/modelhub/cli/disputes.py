"""Disputes at the command line: `dispute open` (a call on chain by its request id, a fast call
from what `infer --fast` kept, or the wrong calls spot checks found), `status`, `list`, `draw`,
`resolve` and `claim`, on the SDK's dispute methods (`modelhub.disputes`, `modelhub.challenges`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelhub import errors as e

from .calls import REQUEST_ID, _full_id
from .common import (HubError, Session, chain_now, cli_wording, hub_command, local_time, print_table, relative,
                     short_address)

DISPUTES_HELP = """\b
A settled call's attestation can be challenged for the dispute window (1 day by default)
after it settled: you post the challenge bond (10 tOPG by default, from your wallet's fee
tokens), a jury of bonded relayers is drawn some blocks later, re-runs the model and votes.
If the output is found wrong, the relayer is slashed, the caller refunded, and you get your
bond back with a reward; if not, your bond pays the jurors and the relayer.

\b
  modelhub dispute open REQUEST_ID          a call paid on chain (its output is fetched from
                                            its relayer, or given with --output FILE)
  modelhub dispute open --fast CALL_ID      a fast call, from what `infer --fast` kept
  modelhub dispute open --waiting           the wrong fast calls spot checks found, once the
                                            relayer has settled their receipts
  modelhub dispute status ID                where a dispute stands, and what comes next
  modelhub dispute claim                    what the court owes you

\b
Fast calls are kept in the user's data folder ($XDG_DATA_HOME/modelhub/kept-calls, by
default ~/.local/share/modelhub/kept-calls): the receipt and attestation with their
signatures and the exact input and output bytes, all a challenge needs. A fast call can be
challenged once its receipt has settled on chain, for the dispute window after its
channel's last settlement. A challenge the court would refuse is refused before anything
is sent: it costs nothing.
"""

PHASES = {0: "none", 1: "awaiting its jury", 2: "voting", 3: "resolved"}
OUTCOMES = {1: "the output is wrong", 2: "the output is right", 3: "no decision"}


class DisputeIdType(click.ParamType):
    name = "dispute_id"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        text = str(value).lstrip("#")
        if not text.isdigit() or int(text) < 1:
            self.fail(f"{value!r} is not a dispute id (1, 2, ...: `modelhub dispute list` lists yours)", param, ctx)
        return int(text)


DISPUTE_ID = DisputeIdType()


@click.group(epilog=DISPUTES_HELP)
def dispute() -> None:
    """Challenge a relayer's attested output, and follow the dispute to its payouts."""


# --- open ----------------------------------------------------------------------------------


@hub_command(dispute, name="open", epilog=DISPUTES_HELP)
@click.argument("request_id", type=REQUEST_ID, required=False)
@click.option("--output", "output_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The output the relayer delivered, as JSON (what `modelhub output ID` prints, or its "
                   "--json); default: fetched from the relayer and checked against the chain.")
@click.option("--fast", "fast_call", metavar="CALL_ID|FILE",
              help="Challenge a fast call: its call id (or its first hex digits) as `infer --fast` "
                   "printed it, or a kept call's file.")
@click.option("--waiting", is_flag=True,
              help="Challenge the fast calls spot checks found wrong whose receipts have settled.")
def open_dispute(session: Session, request_id: int | None, output_file: Path | None, fast_call: str | None,
                 waiting: bool) -> None:
    """Challenge the attestation of call REQUEST_ID (paid on chain), of a fast call (--fast),
    or of the wrong calls spot checks found (--waiting), posting the challenge bond."""
    from modelhub.challenges import challenge_kept
    from modelhub.kept import KeptCalls

    if (request_id is not None) + (fast_call is not None) + waiting != 1:
        raise click.UsageError("say what to challenge: REQUEST_ID, --fast CALL_ID|FILE, or --waiting")
    if output_file is not None and request_id is None:
        raise click.UsageError("--output goes with REQUEST_ID: a fast call's kept file holds its output")
    hub = session.hub
    hub.court  # noqa: B018 -- a deployment without a court says so before anything else
    if waiting:
        _open_waiting(session)
        return
    if request_id is not None:
        request_id = _full_id(session, request_id)
        output = _output_file(session, request_id, output_file) if output_file else None
        case = hub.challenge_request(request_id, output)
        _opened(session, case, f"request {request_id}")
        return
    store = KeptCalls.of(hub)
    kept = store.find(fast_call)
    case = challenge_kept(hub, kept)
    store.save(kept.with_changes(dispute_id=case.dispute_id))
    _opened(session, case, f"fast call {kept.call_hex}")


def _output_file(session: Session, request_id: int, path: Path) -> bytes:
    """The canonical bytes of the output in `path` (the output object, or `--json` output
    holding it under "output"), if they hash to what request `request_id` settled with."""
    from eth_utils import keccak

    from modelhub.codec import encode_output

    facts = session.hub.settled_call(request_id)  # unsettled or unknown: its own error first
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise HubError(f"{path} is not a JSON file ({error}); give the output `modelhub output "
                       f"{request_id}` prints") from None
    candidates = [document] + ([document["output"]] if isinstance(document, dict) and "output" in document else [])
    hashes = []
    for candidate in candidates:
        try:
            output = encode_output(candidate)
        except (e.ModelHubError, TypeError, ValueError):
            continue
        if keccak(output) == facts.output_hash:
            return output
        hashes.append("0x" + keccak(output).hex())
    found = f"hashes to {hashes[0]}" if hashes else "is not a JSON object of tensors"
    raise HubError(f"the output in {path} {found}, not to the output hash request {request_id} settled with "
                   f"(0x{facts.output_hash.hex()}): give the output its relayer delivered (`modelhub output "
                   f"{request_id} > FILE`), or leave --output out to fetch it")


def _opened(session: Session, case, what: str) -> None:
    from ape import chain

    hub = session.hub
    bond = hub.dispute_terms().challenge_bond
    head = chain.blocks.head.number
    session.emit(
        {"disputeId": case.dispute_id, "requestId": str(case.request_id), "attestation": "0x" + case.attestation.hex(),
         "accused": case.accused, "challenger": case.challenger, "caller": case.caller, "modelId": case.model_id,
         "version": case.version, "bond": session.money_json(bond), "refund": session.money_json(case.refund),
         "drawBlock": case.draw_block, "block": case.block_number},
        f"Opened dispute {case.dispute_id} on {what} (model {case.model_id} version {case.version}), "
        f"accusing relayer {case.accused}: posted the challenge bond of {session.money(bond)}. The jury "
        f"can be drawn from block {case.draw_block} ({_blocks(case.draw_block - head)}); "
        f"`modelhub dispute status {case.dispute_id}` follows it.")


def _open_waiting(session: Session) -> None:
    """`open --waiting`: the spot checks' wrong fast calls whose receipts have settled."""
    from modelhub.kept import KeptCalls
    from modelhub.spotcheck import SpotChecker

    hub = session.hub
    store = KeptCalls.of(hub)
    checker = SpotChecker(hub, 0.0, kept=store)
    for kept in store.pending(hub.address):
        checker.wait(kept)
    if not checker.waiting:
        session.emit({"opened": [], "waiting": []},
                     f"No wrong fast calls of {hub.address} wait to be challenged (spot checks keep them in "
                     f"{store.folder}).")
        return
    opened = checker.challenge_settled()
    if not opened and checker.blocked:
        raise next(iter(checker.blocked.values()))
    rows = [{"disputeId": case.dispute_id, "callId": f"0x{case.request_id:064x}", "accused": case.accused,
             "drawBlock": case.draw_block} for case in opened]
    left = [{"callId": kept.call_hex, "relayer": kept.receipt.relayer, "calls": str(kept.receipt.calls)}
            for kept in checker.waiting]
    lines = [f"Opened dispute {case.dispute_id} on fast call 0x{case.request_id:064x}, accusing relayer "
             f"{case.accused}; the jury can be drawn from block {case.draw_block}" for case in opened]
    for kept in checker.waiting:
        lines.append(f"Call {kept.call_hex} waits for relayer {kept.receipt.relayer} to settle its receipt "
                     f"({kept.receipt.calls} calls of model {kept.receipt.model_id}); run this again later")
    lines += [cli_wording(problem[:1].upper() + problem[1:]) for problem in checker.counts.problems
              if "cannot be challenged" in problem]
    session.emit({"opened": rows, "waiting": left, "problems": checker.counts.problems}, "\n".join(lines))


# --- reading ---------------------------------------------------------------------------------


@hub_command(dispute, epilog=DISPUTES_HELP)
@click.argument("dispute_id", type=DISPUTE_ID)
def status(session: Session, dispute_id: int) -> None:
    """Show where dispute DISPUTE_ID stands: its call, parties, refund, deadlines, jury, votes,
    outcome, and what happens next."""
    from ape import chain

    hub = session.hub
    info = _dispute(session, dispute_id)
    case = hub.dispute_case(dispute_id)
    terms = _terms(hub, info.terms_id)
    head, now = chain.blocks.head.number, chain_now()
    ballots = {juror: hub.ballot(dispute_id, juror) for juror in info.jurors}
    owed = hub.dispute_claimable()
    fast = (info.request_id >> 96) != int(info.caller, 16)  # an on-chain id begins with its caller
    jurors = [{"juror": juror, "seat": ballot.seat, "committed": any(ballot.commitment), "vote": ballot.vote or None}
              for juror, ballot in ballots.items()]
    data = {
        "disputeId": dispute_id, "phase": info.phase.name.lower(), "outcome": info.outcome.name.lower(),
        "kind": "fast" if fast else "on chain", "requestId": str(info.request_id),
        "attestation": "0x" + case.attestation.hex(), "modelId": case.model_id, "version": case.version,
        "outputHash": "0x" + case.output_hash.hex(), "accused": info.accused, "challenger": info.challenger,
        "caller": info.caller, "refund": session.money_json(info.refund), "bond": session.money_json(terms.challenge_bond),
        "slash": session.money_json(terms.slash_amount + info.refund), "drawBlock": info.draw_block, "head": head,
        "commitDeadline": info.commit_deadline or None, "revealDeadline": info.reveal_deadline or None,
        "jurySize": terms.jury_size, "jurors": jurors, "revealed": info.revealed, "votesMatch": info.votes_match,
        "votesWrong": info.votes_wrong, "next": _next_step(info, head, now), "claimable": session.money_json(owed),
    }

    def human() -> None:
        call = (f"fast call 0x{info.request_id:064x}" if fast else f"request {info.request_id} (on chain)")
        rows = [("dispute", f"{dispute_id}: {PHASES[int(info.phase)]}"
                 + (f", {OUTCOMES[int(info.outcome)]}" if info.outcome else "")),
                ("call", f"{call}, model {session.model_label(case.model_id)} version {case.version}"),
                ("accused", f"{info.accused} (the relayer that attested output 0x{case.output_hash.hex()[:16]}…)"),
                ("challenger", f"{info.challenger}, bond {session.money(terms.challenge_bond)}"),
                ("caller", f"{info.caller}, refunded {session.money(info.refund)} if the output is found wrong "
                           f"(the accused then loses {session.money(terms.slash_amount + info.refund)})"),
                ("draw", f"from block {info.draw_block} (the chain is at {head})")]
        if info.commit_deadline:
            rows.append(("commits", f"until {local_time(info.commit_deadline)} ({relative(info.commit_deadline, now)})"))
            rows.append(("reveals", f"until {local_time(info.reveal_deadline)} ({relative(info.reveal_deadline, now)})"))
        if info.jurors:
            rows.append(("jury", f"{len(info.jurors)} of {terms.jury_size} seats"))
            for row in jurors:
                vote = {1: "revealed: the output matches", 2: "revealed: the output is wrong"}.get(
                    row["vote"], "committed, not revealed" if row["committed"] else "no vote yet")
                rows.append(("", f"{row['seat']}. {row['juror']}  {vote}"))
            rows.append(("votes", f"{info.revealed} revealed: {info.votes_match} the output matches, "
                                  f"{info.votes_wrong} it is wrong (a verdict needs {terms.jury_size // 2 + 1})"))
        elif info.phase.value == 3:
            rows.append(("jury", "too few relayers could be drawn"))
        rows.append(("next", data["next"]))
        if owed:
            rows.append(("you", f"may claim {session.money(owed)} from the court: `modelhub dispute claim`"))
        width = max(len(label) for label, _ in rows)
        for label, text in rows:
            click.echo(f"{label.ljust(width)}  {text}")

    session.emit(data, human)


def _next_step(info, head: int, now: int) -> str:
    """What happens next in a dispute, and who may do it."""
    dispute_id = info.id
    if info.phase.value == 1:
        if head + 1 < info.draw_block:
            return (f"the jury is drawn from block {info.draw_block} ({_blocks(info.draw_block - head)}), by "
                    f"anyone: `modelhub dispute draw {dispute_id}` (relayers' daemons do it too)")
        return f"the jury can be drawn now, by anyone: `modelhub dispute draw {dispute_id}`"
    if info.phase.value == 2:
        if info.revealed == len(info.jurors) or now > info.reveal_deadline:
            return f"it can be resolved now, by anyone: `modelhub dispute resolve {dispute_id}`"
        if now <= info.commit_deadline:
            return (f"the jurors re-run the model and commit their votes until {local_time(info.commit_deadline)} "
                    f"({relative(info.commit_deadline, now)}), then reveal them")
        return (f"the jurors reveal their votes until {local_time(info.reveal_deadline)} "
                f"({relative(info.reveal_deadline, now)}); then anyone resolves it: "
                f"`modelhub dispute resolve {dispute_id}`")
    return "nothing: it is over; everyone paid claims with `modelhub dispute claim`"


def _blocks(count: int) -> str:
    return "the next block" if count <= 1 else f"in {count} blocks"


def _dispute(session: Session, dispute_id: int):
    try:
        return session.hub.get_dispute(dispute_id)
    except e.DisputeStateError as error:
        if error.error_name != "DisputeCourt_UnknownDispute":
            raise
        raise HubError(f"no dispute has id {dispute_id}; `modelhub dispute list` lists yours") from None


def _terms(hub, terms_id: int):
    from modelhub.contracts import chain_errors
    from modelhub.results import DisputeTerms

    with chain_errors():
        return DisputeTerms(*(int(value) for value in hub.court.termsById(terms_id)))


@hub_command(dispute, name="list", epilog=DISPUTES_HELP)
def list_disputes(session: Session) -> None:
    """List the disputes your account is in: as challenger, accused, caller or juror."""
    hub = session.hub
    court = hub.court
    me = hub.address
    # The court's events, read from the deployment's first block: quick on a dev chain.
    juries = {int(log.disputeId): list(log.jurors) for log in hub._logs(court, "JuryDrawn")}
    rows, states = [], []
    for log in hub._logs(court, "DisputeOpened"):
        dispute_id = int(log.disputeId)
        roles = [role for role, who in (("challenger", log.challenger), ("accused", log.accused),
                                        ("caller", log.caller)) if who == me]
        roles += ["juror"] if me in juries.get(dispute_id, []) else []
        if roles:
            info = hub.get_dispute(dispute_id)
            rows.append({"disputeId": dispute_id, "roles": roles, "phase": info.phase.name.lower(),
                         "outcome": info.outcome.name.lower(), "accused": info.accused,
                         "modelId": int(log.modelId), "refund": session.money_json(info.refund)})
            states.append(PHASES[int(info.phase)] + (f": {OUTCOMES[int(info.outcome)]}" if info.outcome else ""))

    def human() -> None:
        if not rows:
            click.echo(f"{me} is in no dispute.")
            return
        table = [("ID", "AS", "STATE", "ACCUSED", "MODEL")]
        table += [(str(row["disputeId"]), ", ".join(row["roles"]), state, short_address(row["accused"]),
                   str(row["modelId"])) for row, state in zip(rows, states)]
        print_table(table)
        click.echo("`modelhub dispute status ID` shows one.")

    session.emit({"account": me, "disputes": rows}, human)


# --- moving a dispute on ---------------------------------------------------------------------


@hub_command(dispute, epilog=DISPUTES_HELP)
@click.argument("dispute_id", type=DISPUTE_ID)
def draw(session: Session, dispute_id: int) -> None:
    """Draw the jury of dispute DISPUTE_ID once its draw block has come (anyone may)."""
    from ape import chain

    hub = session.hub
    info = _dispute(session, dispute_id)
    head = chain.blocks.head.number
    if info.phase.value == 1 and head < info.draw_block:
        # The draw's gas is estimated at the head: it must have reached the draw block.
        raise HubError(f"the jury of dispute {dispute_id} can be drawn from block {info.draw_block} on; the "
                       f"chain is at block {head}: try again {_blocks(info.draw_block - head)}")
    info = hub.draw_jury(dispute_id)
    now = chain_now()
    if info.phase.value == 3:
        text = (f"Too few relayers could be drawn for dispute {dispute_id}: it ended with no decision, and the "
                "challenger's bond is back (`modelhub dispute claim`)")
    else:
        text = (f"Drew the jury of dispute {dispute_id}: {len(info.jurors)} jurors; they commit until "
                f"{local_time(info.commit_deadline)} ({relative(info.commit_deadline, now)}) and reveal until "
                f"{local_time(info.reveal_deadline)} ({relative(info.reveal_deadline, now)})")
    session.emit({"disputeId": dispute_id, "phase": info.phase.name.lower(), "jurors": list(info.jurors),
                  "commitDeadline": info.commit_deadline, "revealDeadline": info.reveal_deadline}, text)


@hub_command(dispute, epilog=DISPUTES_HELP)
@click.argument("dispute_id", type=DISPUTE_ID)
def resolve(session: Session, dispute_id: int) -> None:
    """End dispute DISPUTE_ID after its reveal deadline, or once every juror revealed (anyone
    may), booking everyone's payouts."""
    hub = session.hub
    _dispute(session, dispute_id)
    info = hub.resolve_dispute(dispute_id)
    owed = hub.dispute_claimable()
    session.emit({"disputeId": dispute_id, "outcome": info.outcome.name.lower(), "votesMatch": info.votes_match,
                  "votesWrong": info.votes_wrong, "claimable": session.money_json(owed)},
                 f"Resolved dispute {dispute_id}: {OUTCOMES[int(info.outcome)]} ({info.votes_wrong} votes wrong, "
                 f"{info.votes_match} right)."
                 + (f" You may claim {session.money(owed)}: `modelhub dispute claim`." if owed else ""))


@hub_command(dispute, epilog=DISPUTES_HELP)
def claim(session: Session) -> None:
    """Claim what the court owes your account (refunds, bonds back, rewards), into your wallet."""
    hub = session.hub
    owed = hub.dispute_claimable()
    if not owed:
        session.emit({"account": hub.address, "claimed": "0"},
                     f"The dispute court owes {hub.address} nothing; nothing was sent.")
        return
    claimed = hub.claim_dispute_payouts()
    wallet = hub.token_balance()
    session.emit({"account": hub.address, "claimed": session.money_json(claimed),
                  "wallet": session.money_json(wallet)},
                 f"Claimed {session.money(claimed)} from the dispute court; your wallet holds {session.money(wallet)}.")
