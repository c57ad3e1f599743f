"""`modelhub demo` and `modelhub up`: the whole hub on a local chain of its own, in one command."""

import shutil
import signal
from pathlib import Path

import click

from .common import HubError

DEMO_DIR = Path("var/demo")
UP_DIR = Path("var/up")


def _ctrl_c_raises() -> None:
    # Importing Ape turns SIGINT into sys.exit(130); these commands want KeyboardInterrupt, so
    # that Ctrl-C is `up`'s normal way out and stops what they started in order.
    signal.signal(signal.SIGINT, signal.default_int_handler)


@click.command()
def demo() -> None:
    """Show the hub working, then stop everything.

    Starts a local chain, deploys, starts a relayer, uploads the example models (one shared with
    two co-authors), makes paid calls as a caller, prints each output, and ends with who earned
    what, which sums exactly to what the caller paid. Logs go to var/demo/.
    """
    from modelhub import demo as runner

    _ctrl_c_raises()
    click.echo("Model Hub demo: an open market for AI models, paid per call")
    runner.run(click.echo, workdir=DEMO_DIR, deployments=DEMO_DIR / "deployments")
    click.echo("\nDone: the chain and the relayer are stopped. `modelhub up` does the same and keeps them running.")


@click.command()
@click.option("--chain-port", type=click.IntRange(1, 65535), default=8545, show_default=True,
              help="Port of the local chain (the CLI's default network).")
@click.option("--relayer-port", type=click.IntRange(1, 65535), default=8700, show_default=True,
              help="Port of the relayer's HTTP API (registered on chain: keep it between runs).")
@click.option("--hub-port", type=click.IntRange(1, 65535), default=8800, show_default=True,
              help="Port of the hub's pages and JSON API (the models ranked by their signals).")
@click.option("--fresh", is_flag=True,
              help="Discard the saved state and start afresh: a new chain, deployment and market.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=UP_DIR, show_default=True,
              help="Folder of the saved state: the chain's (anvil), the relayer's and the index's.")
def up(chain_port: int, relayer_port: int, hub_port: int, fresh: bool, state_dir: Path) -> None:
    """The demo, left running: a local chain, a deployment, a relayer, the example models and
    the hub's pages over an index that follows the chain.

    Ctrl-C stops the hub, the relayer and the chain, and keeps their state in --state-dir
    (var/up): the next `modelhub up` goes on from it, with the same deployment, models and
    balances. --fresh discards it first. Writes the deployment file into deployments/ and
    ~/.config/modelhub/deployments/, so every other `modelhub` command (and the SDK) finds this
    hub without options, from any folder.
    """
    from modelhub import demo as runner
    from modelhub.deployments import deployments_dir
    from modelhub.devchain import port_is_free

    _ctrl_c_raises()
    for name, port in (("chain", chain_port), ("relayer", relayer_port), ("hub", hub_port)):
        if not port_is_free(port):
            raise HubError(f"port {port} for the {name} is taken (a hub already up?); stop it, or pick "
                           f"another with --{name}-port")
    if fresh and state_dir.exists():
        shutil.rmtree(state_dir)
        click.echo(f"Discarded the saved state in {state_dir}: starting afresh")
    runner.run(click.echo, chain_port=chain_port, relayer_port=relayer_port, workdir=state_dir,
               deployments=deployments_dir(), keep_running=True, hub_port=hub_port, keep_state=True)
