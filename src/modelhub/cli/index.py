"""`modelhub index`: follow the deployment's events into the hub's database (SQLite in var/ by
default, or PostgreSQL by URL), restart-safe, until Ctrl-C or, with --once, up to the head."""

from __future__ import annotations

import signal
import threading
import time

import click

from .common import hub_command

DEFAULT_DB = "sqlite:///var/index.sqlite"


def register(cli: click.Group) -> None:
    @hub_command(cli, "index")
    @click.option("--db", "db_url", default=DEFAULT_DB, show_default=True, envvar="MODELHUB_INDEX_DB",
                  help="Database URL: sqlite:///PATH or postgresql://USER@HOST:PORT/NAME.")
    @click.option("--confirmations", type=click.IntRange(0), default=0, show_default=True,
                  help="Index only blocks this far behind the head (for chains that reorganise).")
    @click.option("--once", is_flag=True, help="Index up to the head (less --confirmations) and exit.")
    @click.option("--interval", type=click.FloatRange(0.05), default=1.0, show_default=True,
                  help="Seconds between polls once caught up.")
    def index(session, db_url: str, confirmations: int, once: bool, interval: float) -> None:
        """Follow the hub's contract events into a database, exactly in step with the chain.

        Each batch of blocks is written with the cursor that covers it, in one transaction:
        stopped at any point (even kill -9), it resumes where it was. A database holds one
        deployment; pointed at another chain's, it refuses and changes nothing.
        """
        from ape import chain

        from ..deployments import load_deployment
        from ..indexer.follow import Indexer
        from ..indexer.schema import open_database

        deployment = load_deployment(chain.chain_id)  # reads only: no account needed
        engine = open_database(db_url)
        indexer = Indexer(engine, deployment, chain.provider.http_uri, confirmations=confirmations)
        where = engine.url.render_as_string(hide_password=True)
        session.note(f"indexing chain {deployment.chain_id} into {where}, from block {indexer.cursor + 1}")
        started, total = time.monotonic(), 0

        def show(result) -> None:
            nonlocal total
            total += result.events
            rate = total / max(time.monotonic() - started, 1e-9)
            session.note(f"  blocks {result.from_block}-{result.to_block}: {result.events} events "
                         f"({total} in all, {rate:,.0f}/s)")

        if once:
            while not (result := indexer.step()).idle:
                show(result)
        else:
            stopping = threading.Event()
            previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
            try:
                indexer.run(stopping.is_set, interval=interval, progress=show)
            except KeyboardInterrupt:
                pass
            finally:
                signal.signal(signal.SIGTERM, previous)
        session.emit({"chainId": deployment.chain_id, "block": indexer.cursor, "events": total},
                     f"indexed up to block {indexer.cursor} ({total} events this run)")
