"""`modelhub relayer ...`: running a relayer."""

import logging

import click

from ..relayer.settings import RelayerConfig, click_options
from .common import Session, hub_command


@click.group()
def relayer():
    """Run a relayer."""


@hub_command(relayer, "run")
@click_options
def run(session: Session, **options):
    """Serve paid calls: follow the chain, run models, settle with signed attestations.

    Also serves fast calls paid with signed receipts (POST /v1/models/{id}/infer): each accepted
    receipt is stored before the answer and settled later with settleReceipts, many per
    transaction (see the --settle-* options and docs/fast-calls.md).

    Runs until SIGTERM or Ctrl-C, finishing the batch in flight. Its state lives in --store, so it
    can be stopped or killed at any point and started again without losing or repeating a call.
    """
    from modelhub.relayer.service import run_service

    config = RelayerConfig.from_options(**options)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
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
    run_service(hub, config,
                on_ready=lambda url: session.note(f"relayer {hub.address} serving on {url}, store {config.store_dir}"))
