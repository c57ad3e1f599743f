"""Paid calls: `infer` on chain (request, wait, fetch and verify the output) or `--fast` (paid
by signed receipts, straight to a relayer over HTTP); `requests`, `output` and `refund`."""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from pathlib import Path

import click

from modelhub import errors as e

from .common import (
    AMOUNT,
    AMOUNTS_HELP,
    MODEL,
    MODELS_HELP,
    HubError,
    Interrupted,
    Session,
    StopOnCtrlC,
    chain_now,
    cli_wording,
    ctrl_c_raises,
    hub_command,
    print_table,
    short_address,
    utc,
)

# Request ids are (caller << 96) | n: any real id is at least this, so a smaller number is n,
# the current account's n-th request.
SHORT_ID_LIMIT = 2**96


class RequestIdType(click.ParamType):
    name = "request_id"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        try:
            number = int(str(value).lstrip("#"), 0)
        except ValueError:
            self.fail(f"{value!r} is not a request id (a decimal or 0x-hex number)", param, ctx)
        if number <= 0:
            self.fail("request ids are positive", param, ctx)
        return number


REQUEST_ID = RequestIdType()

REQUEST_ID_HELP = """\b
REQUEST_ID is the id `modelhub infer` printed, or, for your own calls, their
number in `modelhub requests` (the # column: 3 is your third call).
"""

FAST_HELP = """\b
On chain, --relayer designates the relayer: only it may serve the call, and it may reject
it (bad input, model error) with a refund at once. Without --relayer the call is open to
every relayer, none may reject it, and unserved it is refunded after its deadline.

\b
Before paying on chain, the input is checked against the model file (fetched by its content
id from a relayer, checked against the digest on chain and kept in ~/.cache/modelhub or
$MODELHUB_CACHE): an input that does not fit is refused with the tensors the model expects.
--no-check skips that, for when no relayer can send the file.

\b
Ctrl-C after paying stops the waiting only: the call stays paid, and the request id printed
gets its output later (`modelhub output ID`; `modelhub requests` lists your calls).

\b
Fast calls (--fast) skip the transaction per call: the CLI signs a receipt (the channel's
running totals with that relayer and model) and the relayer answers at once over HTTP, signs
an attestation the CLI verifies, and settles your receipts on chain later, out of the credit
you reserved for it. If your reservation for the relayer cannot pay the calls, the CLI first
reserves --reserve (default: 100 calls' worth) from your free credit, in one transaction;
reserved credit comes back through `modelhub release` (see `modelhub reserve --help`).

\b
Each fast call is kept, for a challenge, in your data folder ($XDG_DATA_HOME/modelhub/
kept-calls, by default ~/.local/share/modelhub/kept-calls; --keep FILE writes the last one
there too, --no-keep keeps none): its receipt, attestation and exact input and output bytes.
`modelhub dispute open --fast CALL_ID` challenges one once its receipt has settled.

\b
--spot-check SHARE (0 to 1) re-runs that share of the calls on your machine with the model's
registered file (fetched once, kept in the cache) and judges each output by the jurors' rule.
An output found wrong is challenged: on chain at once (posting the challenge bond from your
wallet), a fast call once the relayer has settled its receipt (the court requires it): later
in the run, at its end, by the next `infer --fast` on the channel, or by `modelhub dispute
open --waiting`.
"""


def register(cli: click.Group) -> None:
    """Adds `infer`, `requests`, `output` and `refund` to the top-level group."""

    @hub_command(cli, epilog=AMOUNTS_HELP + "\n" + MODELS_HELP + "\n" + FAST_HELP)
    @click.argument("model_id", type=MODEL)
    @click.argument("input_json", required=False)
    @click.option("--input", "input_option", metavar="JSON",
                  help="The input JSON (the same as INPUT_JSON).")
    @click.option("--input-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Read the input JSON from this file instead.")
    @click.option("--version", "model_version", type=click.IntRange(0), default=0,
                  help="Model version to call (0, the default: the latest).")
    @click.option("--max-price", type=AMOUNT,
                  help="Refuse to pay more than this per call (default: the current price).")
    @click.option("--timeout", type=click.FloatRange(min=0), default=120.0, show_default=True,
                  help="Seconds to wait for a relayer to serve the call (--fast: for each "
                       "HTTP answer).")
    @click.option("--relayer", "relayer", metavar="URL|ADDRESS",
                  help="On chain: designate this relayer (only it serves or rejects the call; "
                       "the output is fetched from it). Default: an open call any relayer may "
                       "serve. --fast: the relayer to call (default: the first active relayer "
                       "that answers).")
    @click.option("--no-check", "no_check", is_flag=True,
                  help="On chain: pay without checking the input against the model file first "
                       "(when no relayer can send the file).")
    @click.option("--fast", is_flag=True,
                  help="Pay by signed receipt and call the relayer directly over HTTP: no "
                       "transaction per call (see below).")
    @click.option("--repeat", type=click.IntRange(1), default=1, show_default=True,
                  help="With --fast: make the call N times in a row on one connection, showing "
                       "progress.")
    @click.option("--reserve", "reserve", type=AMOUNT, metavar="AMOUNT",
                  help="With --fast: what to reserve from free credit for the relayer when the "
                       "reservation cannot pay (default: 100 calls at --max-price).")
    @click.option("--spot-check", "spot_check", type=click.FloatRange(0, 1), metavar="SHARE",
                  help="Re-run this share of the calls locally (1: all, 0.1: one in ten) and challenge "
                       "the outputs found wrong (see below).")
    @click.option("--keep", "keep_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="With --fast: also write the last call, as kept for a challenge, to this file.")
    @click.option("--no-keep", is_flag=True, help="With --fast: keep no calls for challenges.")
    def infer(session: Session, model_id: int, input_json: str | None, input_option: str | None,
              input_file: Path | None, model_version: int, max_price, timeout: float,
              relayer: str | None, no_check: bool, fast: bool, repeat: int, reserve,
              spot_check: float | None, keep_file: Path | None, no_keep: bool) -> None:
        """Pay for one call of model MODEL_ID on INPUT_JSON and print its verified output.

        INPUT_JSON maps the model's input tensors to values, e.g. '{"X": [[5.1, 3.5, 1.4, 0.2]]}'.
        The price comes from your prepaid credit (see `modelhub deposit`); a call a relayer
        rejects is refunded at once, one nobody serves can be refunded after its deadline.
        """
        from modelhub.codec import decode_input, encode_input

        given = [source for source in (input_json, input_option, input_file) if source is not None]
        if len(given) != 1:
            raise click.UsageError("give the input once: as INPUT_JSON, with --input or with --input-file")
        if repeat > 1 and not fast:
            raise click.UsageError("--repeat makes fast calls only: add --fast")
        if reserve is not None and not fast:
            raise click.UsageError("--reserve is for fast calls only: add --fast")
        if no_check and fast:
            raise click.UsageError("--no-check is for calls on chain: the relayer checks a fast call's "
                                   "input before it is paid")
        if (keep_file is not None or no_keep) and not fast:
            raise click.UsageError("--keep and --no-keep are for fast calls: a call on chain is kept by the chain")
        if keep_file is not None and no_keep:
            raise click.UsageError("--keep FILE and --no-keep contradict each other: give one")
        raw = input_file.read_bytes() if input_file is not None else given[0].encode("utf-8")
        data = encode_input(decode_input(raw))  # compact: calldata costs gas per byte
        if fast:
            reserve_base = session.base(reserve)
            if reserve_base is not None and reserve_base <= 0:
                raise click.BadParameter("reserve a positive amount", param_hint="--reserve")
            _infer_fast(session, model_id, data, model_version, session.base(max_price), timeout,
                        relayer, repeat, reserve_base, spot_check, None if no_keep else (keep_file or True))
            return
        _infer_on_chain(session, model_id, data, model_version, session.base(max_price), timeout,
                        relayer, not no_check, spot_check)

    @hub_command(cli, name="requests", epilog=MODELS_HELP)
    @click.option("--model", "model_id", type=MODEL, help="Only calls of this model (its id or OWNER/NAME).")
    @click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
                  help="Show the newest N calls.")
    def list_requests(session: Session, model_id: int | None, limit: int) -> None:
        """List your calls paid on chain, newest first: model, price, state (pending,
        fulfilled, rejected with its reason, refunded), the relayer that served or rejected
        it, and when it was paid.

        Read from the escrow's events, scanning back from the chain's head to the deployment's
        first block in spans of 10,000 blocks until --limit calls are found: quick on a dev
        chain, slow on a long public one (there, `modelhub index` keeps them in a database).
        """
        from modelhub.contracts import RequestStatus
        from modelhub.errors import REJECT_MEANINGS, RejectReason

        hub = session.hub
        records = hub.caller_requests(model_id=model_id, limit=limit)
        now = chain_now()

        def state(record) -> str:
            if record.status is RequestStatus.REJECTED:
                meaning = REJECT_MEANINGS.get(RejectReason(record.reason), "an unknown reason") \
                    if record.reason in RejectReason._value2member_map_ else "an unknown reason"
                return f"rejected ({record.reason}: {meaning})"
            if record.status is RequestStatus.PENDING:
                return "pending (refundable now)" if now > record.deadline else f"pending until {utc(record.deadline)}"
            return record.status.name.lower()

        rows = [{"requestId": str(r.request_id), "number": r.request_id % SHORT_ID_LIMIT, "modelId": r.model_id,
                 "version": r.version, "price": session.money_json(r.price), "status": r.status.name.lower(),
                 "reason": r.reason, "relayer": r.relayer, "block": r.block_number,
                 "requestedAt": r.requested_at, "deadline": r.deadline or None, "transaction": r.transaction}
                for r in records]

        def human() -> None:
            scope = "" if model_id is None else f" of model {session.model_label(model_id)}"
            if not records:
                click.echo(f"No calls on chain from {hub.address}{scope} yet (`modelhub infer` makes one).")
                return
            click.echo(f"Calls on chain from {hub.address}{scope}, newest first:")
            table = [("#", "MODEL", "VERSION", "PRICE", "STATE", "RELAYER", "PAID AT", "REQUEST ID")]
            table += [(str(r.request_id % SHORT_ID_LIMIT), session.model_label(r.model_id), str(r.version),
                       session.money(r.price), state(r), short_address(r.relayer) if r.relayer else "-",
                       utc(r.requested_at), str(r.request_id)) for r in records]
            print_table(table)
            click.echo("`modelhub output N` prints the verified output of a fulfilled call (N: its # or its "
                       "REQUEST ID).")

        session.emit({"account": hub.address, "requests": rows}, human)

    @hub_command(cli, epilog=REQUEST_ID_HELP)
    @click.argument("request_id", type=REQUEST_ID)
    @click.option("--relayer", "relayer_url", metavar="URL",
                  help="Ask the relayer at this URL instead of the endpoint the settling relayer "
                       "registered (the answer is verified against the chain all the same).")
    def output(session: Session, request_id: int, relayer_url: str | None) -> None:
        """Print the verified output of call REQUEST_ID, paid on chain and settled: fetched
        from the relayer that settled it, whose attestation and output hash must match the
        chain (as `modelhub infer` checks them)."""
        hub = session.hub
        request_id = _full_id(session, request_id)
        try:
            call = hub.requested_call(request_id)
        except e.RequestNotFoundError:
            raise e.RequestNotFoundError(f"no request has id {request_id} on this deployment; "
                                         "`modelhub requests` lists your calls") from None
        _refuse_unsettled(session, request_id)
        try:
            verified = hub.fetch_output(request_id, relayer_url)
        except e.RelayerUnreachableError:
            relayer, _ = hub.fulfilled_by(request_id)
            url = relayer_url or hub.relayer_info(relayer).endpoint or "(no endpoint registered)"
            raise e.RelayerUnreachableError(
                f"relayer {relayer}, which settled request {request_id}, does not answer at {url}; try "
                "again later, or ask it at another address with --relayer URL (the output is checked "
                "against the chain all the same)") from None
        _emit_verified(session, call.model_id, call.version, verified, {})

    @hub_command(cli, epilog=REQUEST_ID_HELP)
    @click.argument("request_id", type=REQUEST_ID)
    def refund(session: Session, request_id: int) -> None:
        """Take back the price of request REQUEST_ID, unserved past its deadline."""
        hub = session.hub
        request_id = _full_id(session, request_id)
        price = hub.get_request(request_id).price
        hub.refund(request_id)
        credit = hub.balance()
        session.emit({"requestId": str(request_id), "status": "refunded",
                      "refunded": session.money_json(price), "credit": session.money_json(credit)},
                     f"Refunded request {request_id}: {session.money(price)} back; "
                     f"credit now {session.money(credit)}")


# --- on chain --------------------------------------------------------------------------------


def _infer_on_chain(session: Session, model_id: int, data: bytes, version: int, max_price: int | None,
                    timeout: float, relayer: str | None, check_input: bool, spot_check: float | None = None) -> None:
    """`infer` on chain: pay (after the checks), wait, fetch and verify, print. Whatever stops
    it once the call is paid (Ctrl-C, a timeout, a relayer that does not answer) says the
    request id and how to get the output."""
    hub = session.hub
    label = session.model_label(model_id)  # also: an unknown model fails here, before anything
    paid: list = []
    next_id = hub.next_request_id()  # the id the request will have: known before it is sent
    progress = Progress(session)

    def requested(call) -> None:
        paid.append(call)
        how = (f"designated to relayer {call.relayer}" if call.relayer
               else "open to every relayer")
        session.note(f"Requested call {call.id} of model {label} version {call.version} "
                     f"for {session.money(call.price)}, {how}")
        progress.start("waiting for a relayer to serve the call")  # the checks have passed

    ctrl_c_raises()
    try:
        result = hub.infer(model_id, data, version=version, max_price=max_price, timeout=timeout,
                           relayer=relayer, on_requested=requested, check_input=check_input,
                           spot_check=spot_check)
    except KeyboardInterrupt:
        progress.stop()
        raise _interrupted(session, paid[0].id if paid else _sent_meanwhile(session, next_id)) from None
    except e.RequestWaitTimeoutError as error:
        call = error.request
        timed_out = e.RequestWaitTimeoutError(
            f"request {call.id} is still pending after {timeout:g} s: no relayer served it yet. It is "
            f"paid and may still be served until its deadline ({utc(call.deadline)}): then "
            f"`modelhub output {call.id}` prints its output; after the deadline, take the price back "
            f"with `modelhub refund {call.id}`"
        )
        timed_out.details = {"requestId": str(call.id), "status": "pending", "deadline": call.deadline}
        raise timed_out from None
    except e.CallRejectedError as error:
        rejected = e.ModelHubError(
            f"request {error.request_id} was rejected by relayer {error.relayer} with reason {error.reason}: "
            f"{error.meaning}; the price ({session.money(error.price)}) was refunded to your credit"
        )
        rejected.details = {"requestId": str(error.request_id), "status": "rejected", "reason": error.reason,
                            "reasonText": error.meaning, "relayer": error.relayer}
        raise rejected from None
    except e.CallRefundedError as error:
        refunded = e.ModelHubError(f"request {error.request_id} was refunded before a relayer served it; "
                                   f"the price ({session.money(error.price)}) is back in your credit")
        refunded.details = {"requestId": str(error.request_id), "status": "refunded"}
        raise refunded from None
    except e.ModelHubError as error:
        from modelhub.contracts import RequestStatus

        if not paid or hub.get_request(paid[0].id).status is not RequestStatus.FULFILLED:
            raise
        call = paid[0]
        unfetched = HubError(
            f"request {call.id} is paid and settled on chain, but its output could not be fetched: "
            f"{session.explain(error)}. The output stays reachable: `modelhub output {call.id}` fetches it "
            "again from the relayer that settled it (`--relayer URL` asks another address of it)")
        unfetched.details = {"requestId": str(call.id), "status": "fulfilled", "cause": type(error).__name__}
        raise unfetched from None
    finally:
        progress.stop()
    call = result.request
    extra = {"price": session.money_json(call.price), "transaction": call.transaction}
    if spot_check is not None:
        extra["spotCheck"] = _spot_check_json(session, result.spot_check)
    _emit_verified(session, model_id, call.version, result.verified, extra)
    if spot_check is not None:
        _note_spot_check(session, result.spot_check, spot_check, call.id)


def _sent_meanwhile(session: Session, next_id: int) -> int | None:
    """The id of a request sent before Ctrl-C came but not yet seen confirmed, if it was."""
    try:
        return next_id if session.hub.next_request_id() > next_id else None
    except (e.ModelHubError, KeyboardInterrupt):
        return None


def _interrupted(session: Session, request_id: int | None) -> Interrupted:
    if request_id is None:
        error = Interrupted("Interrupted before paying: no request was sent, nothing was paid")
        error.details = {"status": "not sent"}
        return error
    error = Interrupted(
        f"Interrupted: request {request_id} is paid and on chain (Ctrl-C stops only the waiting). "
        f"Once a relayer serves it, `modelhub output {request_id}` prints its output; `modelhub "
        "requests` shows its state; unserved, `modelhub refund` with that id takes the price back "
        "after its deadline")
    error.details = {"requestId": str(request_id), "status": "pending"}
    return error


def _full_id(session: Session, request_id: int) -> int:
    """A request id as typed: the full id, or n for the current account's n-th request."""
    if request_id >= SHORT_ID_LIMIT:
        return request_id
    return (int(session.hub.address, 16) << 96) | request_id


def _refuse_unsettled(session: Session, request_id: int) -> None:
    """A one-line error for a request that has no output (pending, rejected, refunded)."""
    from modelhub.contracts import RequestStatus
    from modelhub.errors import REJECT_MEANINGS

    hub = session.hub
    request = hub.get_request(request_id)
    details = {"requestId": str(request_id), "status": request.status.name.lower()}
    if request.status is RequestStatus.PENDING:
        later = (f"its deadline has passed: `modelhub refund {request_id}` takes the price back"
                 if chain_now() > request.deadline else
                 f"run `modelhub output {request_id}` again later; it may be served until its deadline "
                 f"({utc(request.deadline)}), and refunded after it (`modelhub refund {request_id}`)")
        error = HubError(f"request {request_id} is still pending: no relayer has served it yet; {later}")
    elif request.status is RequestStatus.REJECTED:
        relayer, reason = hub.rejection(request_id) or ("a relayer", e.RejectReason.OTHER)
        details.update(reason=int(reason), relayer=relayer)
        error = HubError(f"request {request_id} was rejected by relayer {relayer} with reason {int(reason)}: "
                         f"{REJECT_MEANINGS.get(reason, 'an unknown reason')}; it has no output, and its price "
                         "went back to the caller's credit")
    elif request.status is RequestStatus.REFUNDED:
        error = HubError(f"request {request_id} was refunded: no relayer served it before its deadline, so "
                         "it has no output")
    else:
        return
    error.details = details
    raise error


def _spot_check_json(session: Session, check) -> dict:
    """One call's spot check for --json: whether it was checked, the verdict, the dispute."""
    if check is None:
        return {"checked": False}
    return {"checked": check.verdict is not None,
            "verdict": None if check.verdict is None else ("matches" if check.verdict.matches else "wrong"),
            "reason": check.verdict.reason if check.verdict else check.note, "note": check.note,
            "disputeId": check.dispute.dispute_id if check.dispute else None, "waiting": check.waiting}


def _note_spot_check(session: Session, check, share: float, request_id: int) -> None:
    """What the spot check of an on-chain call found, on stderr."""
    if check is None:
        session.note(f"Spot check: this call was not among the {share:g} share re-run locally")
    elif check.verdict is None:
        session.note(f"Spot check: no verdict: {check.note}")
    elif check.verdict.matches:
        session.note(f"Spot check: re-ran the model locally: the attested output is its answer ({check.verdict.reason})")
    elif check.dispute is not None:
        session.note(f"Warning: spot check: the attested output is WRONG ({check.verdict.reason}); challenged in "
                     f"dispute {check.dispute.dispute_id}: `modelhub dispute status {check.dispute.dispute_id}`")
    else:
        session.note(f"Warning: spot check: the attested output is WRONG ({check.verdict.reason}), but it was "
                     f"not challenged: {session.explain(check.error)}; then `modelhub dispute open {request_id}`")


def _emit_verified(session: Session, model_id: int, version: int, verified, extra: dict) -> None:
    """Prints a call's checked output (JSON on stdout) and what checked it."""
    session.emit(
        {"requestId": str(verified.request_id), "status": "fulfilled", "modelId": model_id,
         "version": version, **extra, "output": verified.output,
         "outputHash": "0x" + verified.output_hash.hex(), "relayer": verified.relayer,
         "relayerUrl": verified.relayer_url, "attestation": verified.attestation.as_json(),
         "signature": "0x" + verified.signature.hex()},
        lambda: (click.echo(json.dumps(verified.output, indent=2)),
                 session.note(f"Verified: output hash 0x{verified.output_hash.hex()} "
                              f"attested by relayer {verified.relayer}")),
    )


# --- fast calls --------------------------------------------------------------------------------


def _infer_fast(session: Session, model_id: int, data: bytes, version: int, max_price: int | None,
                timeout: float, relayer: str | None, repeat: int, reserve: int | None = None,
                spot_check: float | None = None, keep: Path | bool | None = True) -> None:
    """`infer --fast`: one FastSession, `repeat` calls on it with progress, the last output
    printed. Stopped early (Ctrl-C lets the call in flight finish; credit run out), it says
    how many calls were paid and answered. Each call is kept (`keep`: True, or a file for the
    last one besides) and a share `spot_check` of them re-run locally."""
    from modelhub.kept import KeptCall

    hub = session.hub
    started = time.monotonic()

    def progress_note(text: str) -> None:
        # The session speaks in base units; say it with the token too.
        import re

        text = re.sub(r"(\d+) base units", lambda m: session.money(int(m.group(1))), text)
        session.note(cli_wording(text.replace("`release`", "`modelhub release --announce`")))

    answered = paid = 0
    fast = None
    progress = Progress(session)
    try:
        with StopOnCtrlC() as ctrl_c, hub.fast_session(
                model_id, relayer=relayer, version=version, max_price=max_price, timeout=timeout,
                reserve=reserve, progress=progress_note, keep=keep is not None,
                spot_check=spot_check) as fast:
            progress.start(f"calling relayer {fast.relayer} at {fast.relayer_url}")
            served = time.monotonic()
            every = max(1, repeat // 10)
            for _ in range(repeat):
                if ctrl_c.requested:
                    raise KeyboardInterrupt
                result = fast.infer(data)
                answered += 1
                paid += result.price
                if repeat > 1:
                    progress.update(f"{answered}/{repeat} calls answered, {session.money(paid)} paid",
                                    milestone=answered % every == 0 and answered < repeat)
            seconds = time.monotonic() - served
    except KeyboardInterrupt:
        progress.stop()
        raise _stopped(session, Interrupted, "Interrupted", fast, answered, repeat, paid) from None
    except e.ModelHubError as error:
        if not answered:
            raise
        progress.stop()
        raise _stopped(session, HubError, "Stopped", fast, answered, repeat, paid,
                       session.explain(error)) from None
    finally:
        progress.stop()
    channel, receipt = result.channel, result.receipt
    kept_file = None
    if isinstance(keep, Path):
        kept_file = KeptCall.of(result, fast.chain_id, fast.escrow).write(keep)
    kept = fast.kept.path(result.call_id) if fast.kept is not None else None
    checks = fast.spot_checks.counts if fast.spot_checks is not None else None
    session.emit(
        {"status": "served", "paidBy": "receipt", "modelId": model_id, "version": result.version,
         "price": session.money_json(result.price), "output": result.outputs,
         "outputHash": "0x" + result.output_hash.hex(), "relayer": result.relayer,
         "relayerUrl": result.relayer_url, "callId": str(result.call_id),
         "attestation": result.attestation.as_json(), "signature": "0x" + result.signature.hex(),
         "receipt": receipt.as_json(), "receiptSignature": "0x" + result.receipt_signature.hex(),
         "channel": {"calls": str(channel.calls), "amount": session.money_json(channel.amount),
                     "settledCalls": str(channel.settled_calls),
                     "settledAmount": session.money_json(channel.settled_amount)},
         "calls": repeat, "paid": session.money_json(paid),
         "reservedNow": session.money_json(fast.reserved),
         "reservation": session.money_json(fast.reservation.reserved if fast.reservation else 0),
         "kept": None if kept is None else str(kept), "keptFile": None if kept_file is None else str(kept_file),
         **({} if checks is None else {"spotCheck": checks.as_json()}),
         "seconds": round(time.monotonic() - started, 3)},
        lambda: (
            click.echo(json.dumps(result.outputs, indent=2)),
            session.note(f"Verified: output hash 0x{result.output_hash.hex()} attested by relayer "
                         f"{result.relayer}"),
            session.note(
                f"Paid by receipt: {repeat} call{'s' if repeat > 1 else ''} of model {session.model_label(model_id)} "
                f"version {result.version} for {session.money(paid)}"
                + (f" in {seconds:.2f} s ({repeat / seconds:.0f} calls/s)" if repeat > 1 and seconds else "")),
            session.note(
                f"Channel with relayer {result.relayer}: {channel.calls} calls, "
                f"{session.money(channel.amount)} signed; {channel.settled_calls} calls, "
                f"{session.money(channel.settled_amount)} settled on chain"),
            kept is not None and session.note(
                f"Kept for a challenge: call {f'0x{result.call_id:064x}'} in {kept_file or kept}"
                + (f" (and the {repeat - 1} before it in {kept.parent})" if repeat > 1 else "")
                + "; `modelhub dispute open --fast CALL_ID` challenges one once its receipt has settled"),
            checks is not None and _note_fast_spot_checks(session, checks, spot_check),
        ),
    )


def _note_fast_spot_checks(session: Session, counts, share: float) -> None:
    """What the spot checks of a run of fast calls found, on stderr."""
    text = (f"Spot checks (share {share:g}): {counts.checked} of {counts.calls} calls re-run locally: "
            f"{counts.matched} match, {counts.wrong} wrong"
            + (f", {counts.no_verdict} without a verdict" if counts.no_verdict else ""))
    if counts.disputed:
        text += f"; {counts.disputed} challenged (`modelhub dispute list`)"
    if counts.waiting:
        text += (f"; {counts.waiting} wait for the relayer to settle their receipts before they can be "
                 "challenged: `modelhub dispute open --waiting` then (the next `infer --fast` on this channel "
                 "tries too)")
    session.note(("Warning: " if counts.wrong else "") + text)
    for problem in counts.problems:
        session.note(f"  {cli_wording(problem)}")


def _stopped(session: Session, kind: type[HubError], how: str, fast, answered: int, repeat: int, paid: int,
             cause: str | None = None) -> HubError:
    """What a run of fast calls stopped early leaves: the calls paid and answered, and a
    receipt whose answer never came (the relayer may hold it, and be paid for it)."""
    if fast is None:
        error = kind(f"{how} before the first call: no receipt was signed")
        error.details = {"calls": repeat, "answered": 0, "paid": "0"}
        return error
    doubt = fast.receipt_in_doubt
    text = (f"{how} after {answered} of {repeat} calls: {answered} paid by receipt and answered "
            f"({session.money(paid)})")
    if doubt is not None:
        text += (f"; one more receipt (call {doubt.calls} of the channel) was sent but not answered: "
                 f"relayer {fast.relayer} may hold it and be paid for it (`modelhub receipts status "
                 f"--relayer {fast.relayer} --model {fast.model_id}` shows what it holds)")
    error = kind(text + (f". The call after them failed: {cause}" if cause else ""))
    error.details = {"calls": repeat, "answered": answered, "paid": session.money_json(paid),
                     "unanswered": 0 if doubt is None else 1}
    return error


# --- progress ------------------------------------------------------------------------------------


class Progress:
    """A spinner line on stderr while something runs (a TTY), plain lines otherwise, nothing
    with --json. Its text can change as it goes (`update`)."""

    def __init__(self, session: Session) -> None:
        self.quiet = session.as_json
        self.tty = sys.stderr.isatty()
        self.text = ""
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def start(self, text: str) -> None:
        self.text = text
        if self.quiet:
            return
        if not self.tty:
            click.echo(f"{text}...", err=True)
            return
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def update(self, text: str, milestone: bool = False) -> None:
        """New text: the spinner shows it at once; without a TTY only `milestone`s are printed."""
        self.text = text
        if not self.quiet and not self.tty and milestone:
            click.echo(text, err=True)

    def stop(self) -> None:
        if self._thread is not None:
            self._done.set()
            self._thread.join()
            self._thread = None

    def _spin(self) -> None:
        for frame in itertools.cycle("|/-\\"):
            if self._done.wait(0.1):
                break
            click.echo(f"\r\033[K{frame} {self.text} ({time.monotonic() - self._started:.0f}s)", err=True, nl=False)
        click.echo("\r\033[K", err=True, nl=False)
