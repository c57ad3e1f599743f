"""`modelhub hub serve`: the hub's pages and JSON API over the index database (see `modelhub index`)."""

from __future__ import annotations

from pathlib import Path

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
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A model store folder (a relayer's <store>/artifacts, say): the model pages read each "
                   "model's tensors from its ONNX file there.")
@click.option("--fetch-from", multiple=True, metavar="URL",
              help="A relayer to fetch model files from when the store lacks them (checked against their "
                   "digest); repeatable. Needs --store.")
@click.option("--cards", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="The folder file:// model cards are read from (e.g. the project root for the examples); "
                   "nothing outside it is read.")
@click.option("--chain-id", type=click.IntRange(1), default=None,
              help="Refuse (503) an index that holds another deployment than deployments/<CHAIN_ID>.json.")
@click.option("--chain-url", default=None, help="The node URL to show in the calls a model page suggests.")
def serve(db_url: str, host: str, port: int, store: Path | None, fetch_from: tuple[str, ...], cards: Path | None,
          chain_id: int | None, chain_url: str | None) -> None:
    """Serve the hub's pages (/: models ranked by every signal, /models/ID, /leaderboards,
    /accounts/ADDRESS, /relayers/ADDRESS) and the same data as JSON under /api/, until Ctrl-C.
    Run `modelhub index` beside it to keep the data current."""
    from aiohttp import web

    from ..errors import ModelHubError
    from ..indexer.schema import open_database
    from ..web.app import create_app

    if fetch_from and store is None:
        raise click.UsageError("--fetch-from needs --store: the folder fetched model files are kept in")
    try:
        expect = None
        if chain_id is not None:
            from ..deployments import load_deployment

            deployment = load_deployment(chain_id)
            expect = (deployment.chain_id, deployment.inference_escrow)
        engine = open_database(db_url)
    except ModelHubError as error:
        raise click.ClickException(str(error)) from error
    app = create_app(engine, store=store, fetch_from=fetch_from, cards=cards, expect=expect, chain_url=chain_url)
    where = engine.url.render_as_string(hide_password=True)
    web.run_app(app, host=host, port=port, access_log=None, print=lambda *_: click.echo(
        f"hub on http://{host}:{port}/ (JSON under /api/) over {where} (Ctrl-C stops it)", err=True))
