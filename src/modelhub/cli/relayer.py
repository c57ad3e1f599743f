"""`modelhub relayer ...`: running a relayer."""

import logging
from pathlib import Path

import click

from .common import Session, hub_command


@click.group()
def relayer():
    """Run a relayer."""


@hub_command(relayer, "run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the HTTP API listens on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True,
              help="Port of the HTTP API (0: any free port).")
@click.option("--store", "store_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("var/relayer"),
              show_default=True, help="Folder for model files and the relayer's state (one per deployment).")
@click.option("--confirmations", type=click.IntRange(0), default=0, show_default=True,
              help="Follow the chain this many blocks behind its head (0 on dev chains; a few on public ones).")
@click.option("--batch-size", type=click.IntRange(1, 500), default=100, show_default=True,
              help="Attestations settled per fulfillBatch transaction, at most.")
@click.option("--poll-interval", type=click.FloatRange(0), default=0.5, show_default=True,
              help="Seconds between polls of the chain when idle.")
@click.option("--fetch-from", multiple=True, metavar="URL",
              help="Another relayer to fetch missing model files from (repeatable); files are checked against their digest.")
@click.option("--max-input-bytes", type=click.IntRange(1), default=64 * 1024, show_default=True,
              help="Larger inputs are rejected (reason 1) without being run.")
@click.option("--time-limit", type=click.FloatRange(0.001), default=10.0, show_default=True,
              help="Seconds a model may run on one call before the call is rejected (reason 2).")
@click.option("--settle-threshold", type=click.IntRange(0), default=10**18, show_default=True,
              help="Fast calls: settle a channel as soon as its unsettled receipts reach this many token base units.")
@click.option("--settle-interval", type=click.FloatRange(0.1), default=60.0, show_default=True,
              help="Fast calls: every this many seconds, settle every channel holding an unsettled receipt.")
@click.option("--min-receipt-lifetime", type=click.IntRange(2), default=600, show_default=True,
              help="Fast calls: refuse receipts whose deadline is sooner than this many seconds from now "
                   "(deadline_too_soon); a channel is settled when its receipt has half of this left, and receipts "
                   "pay the new price within half of this before a price notice ends.")
@click.option("--settle-batch-size", type=click.IntRange(1, 500), default=100, show_default=True,
              help="Fast calls: receipts per settleReceipts transaction, at most.")
@click.option("--chain-refresh-interval", type=click.FloatRange(0.1), default=2.0, show_default=True,
              help="Fast calls: seconds between re-reads of known callers' credit and models' prices (the window "
                   "in which credit spent elsewhere is not seen; withdrawals are announced and seen at once).")
@click.option("--min-settle-amount", type=click.IntRange(0), default=None,
              help="Fast calls: settle a channel by threshold or interval only once its unsettled receipts are worth "
                   "this many token base units (default 10**15, or $MODELHUB_RELAYER_MIN_SETTLE_AMOUNT); deadlines, "
                   "releases, notices and shutdown settle it whatever it is worth.")
@click.option("--max-receipt-lifetime", type=click.IntRange(1), default=None,
              help="Fast calls: refuse receipts whose deadline is further than this many seconds away "
                   "(deadline_too_far; default 2 days, or $MODELHUB_RELAYER_MAX_RECEIPT_LIFETIME).")
@click.option("--max-upload-bytes", type=click.IntRange(1), default=None,
              help="Model files larger than this are refused at upload (default: $MODELHUB_RELAYER_MAX_UPLOAD_BYTES).")
@click.option("--max-callers", type=click.IntRange(1), default=None,
              help="Fast calls: callers followed in memory at most (default 200,000, or $MODELHUB_RELAYER_MAX_CALLERS).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
def run(session: Session, host, port, store_dir, confirmations, batch_size, poll_interval, fetch_from,
        max_input_bytes, time_limit, settle_threshold, settle_interval, min_receipt_lifetime, settle_batch_size,
        chain_refresh_interval, min_settle_amount, max_receipt_lifetime, max_upload_bytes, max_callers, log_level):
    """Serve paid calls: follow the chain, run models, settle with signed attestations.

    Also serves fast calls paid with signed receipts (POST /v1/models/{id}/infer): each accepted
    receipt is stored before the answer and settled later with settleReceipts, many per
    transaction (see the --settle-* options and docs/fast-calls.md).

    Runs until SIGTERM or Ctrl-C, finishing the batch in flight. Its state lives in --store, so it
    can be stopped or killed at any point and started again without losing or repeating a call.
    """
    from modelhub.relayer.daemon import RelayerConfig
    from modelhub.relayer.service import run_service

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    # One line per event that matters: not one per health check or metrics scrape.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    account = session.account
    if hasattr(account, "set_autosign"):
        # A daemon cannot stop to ask before each signature; the passphrase may come from
        # APE_ACCOUNTS_<alias>_PASSPHRASE.
        account.set_autosign(True)
    hub = session.hub
    info = hub.relayer_info()
    if not info.active:
        session.note(
            f"warning: {hub.address} is not an active relayer: its attestations and rejections will be refused "
            f"until it registers with a bond of at least {session.money(hub.min_bond)}"
        )
    config = RelayerConfig(store_dir=store_dir, confirmations=confirmations, batch_size=batch_size,
                           poll_interval=poll_interval, fetch_from=list(fetch_from),
                           max_input_bytes=max_input_bytes, inference_time_limit=time_limit,
                           settle_threshold=settle_threshold, settle_interval=settle_interval,
                           min_receipt_lifetime=min_receipt_lifetime, settle_batch_size=settle_batch_size,
                           chain_refresh_interval=chain_refresh_interval,
                           **{name: value for name, value in (("min_settle_amount", min_settle_amount),
                                                              ("max_receipt_lifetime", max_receipt_lifetime),
                                                              ("max_upload_bytes", max_upload_bytes),
                                                              ("max_callers", max_callers)) if value is not None})
    run_service(hub, config, host, port,
                on_ready=lambda url: session.note(f"relayer {hub.address} serving on {url}, store {store_dir}"))
