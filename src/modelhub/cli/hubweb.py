"""`modelhub hub serve`: the hub's JSON API over the index database (see `modelhub index`)."""

from __future__ import annotations

import click

from .index import DEFAULT_DB


@click.group("hub")
def hub() -> None:
    """The hub: what the index knows about models, accounts and relayers, over HTTP."""


@hub.command("serve")
@click.option("--db", "db_url", default=DEFAULT_DB, show_default=True, envvar="MODELHUB_INDEX_DB",
              help="The index database `modelhub index` keeps in step with the chain.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8800, show_default=True, help="Port to listen on.")
def serve(db_url: str, host: str, port: int) -> None:
    """Serve the JSON API under /api/ (models ranked by their signals, a model's page, accounts,
    relayers) until Ctrl-C. Run `modelhub index` beside it to keep the data current."""
    from aiohttp import web

    from ..indexer.schema import open_database
    from ..web.api import create_app

    engine = open_database(db_url)
    app = create_app(engine)
    where = engine.url.render_as_string(hide_password=True)
    web.run_app(app, host=host, port=port, print=lambda *_: click.echo(
        f"hub API on http://{host}:{port}/api/ over {where} (Ctrl-C stops it)", err=True))
