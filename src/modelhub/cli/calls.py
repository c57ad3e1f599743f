"""Paid calls: `infer` on chain (request, wait, fetch and verify the output) or `--fast` (paid
by signed receipts, straight to a relayer over HTTP), and `refund`."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from modelhub import errors as e

from .common import AMOUNT, AMOUNTS_HELP, Session, hub_command

class RequestIdType(click.ParamType):
    name = "request_id"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        try:
            number = int(str(value), 0)
        except ValueError:
            self.fail(f"{value!r} is not a request id (a decimal or 0x-hex number)", param, ctx)
        if number <= 0:
            self.fail("request ids are positive", param, ctx)
        return number


REQUEST_ID = RequestIdType()

FAST_HELP = """\b
On chain, --relayer designates the relayer: only it may serve the call, and it may reject
it (bad input, model error) with a refund at once. Without --relayer the call is open to
every relayer, none may reject it, and unserved it is refunded after its deadline.

\b
Fast calls (--fast) skip the transaction per call: the CLI signs a receipt (the channel's
running totals with that relayer and model) and the relayer answers at once over HTTP, signs
an attestation the CLI verifies, and settles your receipts on chain later, out of the credit
you reserved for it. If your reservation for the relayer cannot pay the calls, the CLI first
reserves --reserve (default: 100 calls' worth) from your free credit, in one transaction;
reserved credit comes back through `modelhub release` (see `modelhub reserve --help`).
"""


def register(cli: click.Group) -> None:
    """Adds `infer` and `refund` to the top-level group."""

    @hub_command(cli, epilog=AMOUNTS_HELP + "\n" + FAST_HELP)
    @click.argument("model_id", type=click.IntRange(1))
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
    @click.option("--fast", is_flag=True,
                  help="Pay by signed receipt and call the relayer directly over HTTP: no "
                       "transaction per call (see below).")
    @click.option("--repeat", type=click.IntRange(1), default=1, show_default=True,
                  help="With --fast: make the call N times in a row on one connection.")
    @click.option("--reserve", "reserve", type=AMOUNT, metavar="AMOUNT",
                  help="With --fast: what to reserve from free credit for the relayer when the "
                       "reservation cannot pay (default: 100 calls at --max-price).")
    def infer(session: Session, model_id: int, input_json: str | None, input_option: str | None,
              input_file: Path | None, model_version: int, max_price, timeout: float,
              relayer: str | None, fast: bool, repeat: int, reserve) -> None:
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
        raw = input_file.read_bytes() if input_file is not None else given[0].encode("utf-8")
        data = encode_input(decode_input(raw))  # compact: calldata costs gas per byte
        if fast:
            reserve_base = session.base(reserve)
            if reserve_base is not None and reserve_base <= 0:
                raise click.BadParameter("reserve a positive amount", param_hint="--reserve")
            _infer_fast(session, model_id, data, model_version, session.base(max_price), timeout,
                        relayer, repeat, reserve_base)
            return

        hub = session.hub

        def requested(call) -> None:
            how = (f"designated to relayer {call.relayer}" if call.relayer
                   else "open to every relayer")
            session.note(f"Requested call {call.id} of model {model_id} version {call.version} "
                         f"for {session.money(call.price)}, {how}")

        try:
            with _progress(session, "waiting for a relayer to serve the call"):
                result = hub.infer(model_id, data, version=model_version, max_price=session.base(max_price),
                                   timeout=timeout, relayer=relayer, on_requested=requested)
        except e.RequestWaitTimeoutError as error:
            call = error.request
            timed_out = e.RequestWaitTimeoutError(
                f"request {call.id} is still pending after {timeout:g} s: no relayer served it. "
                f"It may still be served until its deadline ({_utc(call.deadline)}); after that, take the "
                f"price back with `modelhub refund {call.id}`"
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

        import json

        call, verified = result.request, result.verified
        session.emit(
            {"requestId": str(call.id), "status": "fulfilled", "modelId": model_id,
             "version": call.version, "price": session.money_json(call.price),
             "output": verified.output, "outputHash": "0x" + verified.output_hash.hex(),
             "relayer": verified.relayer, "relayerUrl": verified.relayer_url,
             "attestation": verified.attestation.as_json(),
             "signature": "0x" + verified.signature.hex(), "transaction": call.transaction},
            lambda: (click.echo(json.dumps(verified.output, indent=2)),
                     session.note(f"Verified: output hash 0x{verified.output_hash.hex()} "
                                  f"attested by relayer {verified.relayer}")),
        )

    @hub_command(cli)
    @click.argument("request_id", type=REQUEST_ID)
    def refund(session: Session, request_id: int) -> None:
        """Take back the price of request REQUEST_ID, unserved past its deadline."""
        hub = session.hub
        price = hub.get_request(request_id).price
        hub.refund(request_id)
        credit = hub.balance()
        session.emit({"requestId": str(request_id), "status": "refunded",
                      "refunded": session.money_json(price), "credit": session.money_json(credit)},
                     f"Refunded request {request_id}: {session.money(price)} back; "
                     f"credit now {session.money(credit)}")


def _infer_fast(session: Session, model_id: int, data: bytes, version: int, max_price: int | None,
                timeout: float, relayer: str | None, repeat: int, reserve: int | None = None) -> None:
    """`infer --fast`: one FastSession, `repeat` calls on it, the last output printed."""
    import json

    from .common import cli_wording

    hub = session.hub
    started = time.monotonic()

    def progress(text: str) -> None:
        # The session speaks in base units; say it with the token too.
        import re

        text = re.sub(r"(\d+) base units", lambda m: session.money(int(m.group(1))), text)
        session.note(cli_wording(text.replace("`release`", "`modelhub release --announce`")))

    with hub.fast_session(model_id, relayer=relayer, version=version, max_price=max_price,
                          timeout=timeout, reserve=reserve, progress=progress) as fast:
        paid = 0
        with _progress(session, f"calling relayer {fast.relayer} at {fast.relayer_url}"):
            served = time.monotonic()
            for _ in range(repeat):
                result = fast.infer(data)
                paid += result.price
            seconds = time.monotonic() - served
    channel, receipt = result.channel, result.receipt
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
         "seconds": round(time.monotonic() - started, 3)},
        lambda: (
            click.echo(json.dumps(result.outputs, indent=2)),
            session.note(f"Verified: output hash 0x{result.output_hash.hex()} attested by relayer "
                         f"{result.relayer}"),
            session.note(
                f"Paid by receipt: {repeat} call{'s' if repeat > 1 else ''} of model {model_id} "
                f"version {result.version} for {session.money(paid)}"
                + (f" in {seconds:.2f} s ({repeat / seconds:.0f} calls/s)" if repeat > 1 and seconds else "")),
            session.note(
                f"Channel with relayer {result.relayer}: {channel.calls} calls, "
                f"{session.money(channel.amount)} signed; {channel.settled_calls} calls, "
                f"{session.money(channel.settled_amount)} settled on chain"),
        ),
    )


def _utc(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


@contextmanager
def _progress(session: Session, text: str) -> Iterator[None]:
    """A spinner on stderr while the block runs (a TTY), one line otherwise, nothing with --json."""
    if session.as_json:
        yield
        return
    if not sys.stderr.isatty():
        click.echo(f"{text}...", err=True)
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            if done.wait(0.1):
                break
            click.echo(f"\r{frame} {text} ({time.monotonic() - started:.0f}s)", err=True, nl=False)
        click.echo("\r\033[K", err=True, nl=False)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
