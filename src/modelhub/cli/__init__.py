"""The `modelhub` command line: models, credit, paid calls (on chain or fast, by receipt) and
earnings on a Model Hub deployment, built on the SDK's `Hub` and Ape's CLI helpers."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from . import calls, credit, index
from .demo import demo, up
from .dev import dev
from .disputes import dispute
from .hubweb import hub
from .common import AMOUNTS_HELP, EXIT_CODES_HELP, EXIT_USER_ERROR, MODELS_HELP, deployment_option, report_error
from .models import models
from .relayer import relayer
from .sim import sim

__all__ = ["cli", "main"]


@click.group(epilog=AMOUNTS_HELP + "\n" + MODELS_HELP + "\n" + EXIT_CODES_HELP,
             context_settings={"help_option_names": ["-h", "--help"]})
@deployment_option
def cli() -> None:
    """Model Hub: an open market for AI models, paid per call.

    A call is paid on chain (`infer`: one transaction, served once a relayer sees it) or, with
    `infer --fast`, by a receipt your account signs, straight to a relayer over HTTP and paid
    from credit you reserve for that relayer (`reserve --help` says how it comes back).
    `requests` lists your calls on chain and their state; `output ID` prints the verified
    output of one, also after Ctrl-C or a timeout. `dispute open` challenges an output you
    believe wrong (`infer --spot-check` re-runs calls locally to find them).

    Every command takes --network (an Ape network choice or a node URL; default: the local
    chain at 127.0.0.1:8545), --account (an Ape account alias or TEST::<n>; default on dev
    chains: TEST::0), --deployment FILE (default: found by chain id; also before the command)
    and --json (one JSON object on stdout). Errors are one line on stderr; set
    MODELHUB_DEBUG=1 for a traceback.
    """


cli.add_command(models)
cli.add_command(relayer)
cli.add_command(demo)
cli.add_command(up)
cli.add_command(dev)
cli.add_command(hub)
cli.add_command(sim)
cli.add_command(dispute)
credit.register(cli)
calls.register(cli)
index.register(cli)


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the CLI and exits with its code (see `modelhub --help`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _quiet_ape()
    try:
        cli.main(args, prog_name="modelhub", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 -- every error becomes one line and an exit code
        sys.exit(report_error(error, as_json="--json" in args))
    sys.exit(0)


def _quiet_ape() -> None:
    """Keeps stdout for the command's own output: Ape logs info lines (connecting, transaction
    confirmed) and prints a call trace on stdout for every revert, which would break --json.
    The revert itself still reaches us as an exception, with a message (MODELHUB_DEBUG=1
    keeps Ape's output)."""
    import os

    if os.environ.get("MODELHUB_DEBUG"):
        return
    from ape.logging import logger
    from ape_ethereum.trace import Trace

    logger.set_level("WARNING")
    Trace.show = lambda self, *args, **kwargs: None
