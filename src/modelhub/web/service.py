"""The hub as a running service inside another program (`modelhub up`): the indexer following
the chain and the web server over its database, each in a background thread, stopped together.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..deployments import Deployment
from ..errors import ModelHubError
from .app import create_app

log = logging.getLogger("modelhub.web")


def start_hub(deployment: Deployment, rpc_url: str, db_url: str, port: int = 8800, host: str = "127.0.0.1",
              store: Path | None = None, fetch_from: tuple[str, ...] = (), cards: Path | None = None,
              interval: float = 0.5) -> tuple[str, Callable[[], None]]:
    """Starts indexing `deployment` from `rpc_url` into `db_url` and serving the hub on
    host:port (0: any free port); returns the hub's URL and a function that stops both (it
    waits for the indexer's batch in flight, which commits whole or not at all)."""
    from ..indexer.follow import Indexer
    from ..indexer.schema import open_database

    engine = open_database(db_url)
    indexer = Indexer(engine, deployment, rpc_url)
    stopping = threading.Event()

    def follow() -> None:
        while not stopping.is_set():
            try:
                indexer.run(stopping.is_set, interval=interval)
            except Exception as error:  # the chain unreachable for a moment, say: retry, never die
                log.warning("indexer: %s; retrying", error)
                stopping.wait(2.0)

    app = create_app(engine, store=store, fetch_from=fetch_from, cards=cards,
                     expect=(deployment.chain_id, deployment.inference_escrow), chain_url=rpc_url)
    server = _Server(app, host, port)
    url = server.start()
    indexing = threading.Thread(target=follow, name="hub-indexer", daemon=True)
    indexing.start()

    def stop() -> None:
        stopping.set()
        server.stop()
        indexing.join(timeout=30)
        engine.dispose()

    return url, stop


class _Server:
    """An aiohttp application served from an event loop of its own, in a thread."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app, self.host, self.port = app, host, port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.done: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="hub-web", daemon=True)

    def start(self) -> str:
        self.thread.start()
        self.ready.wait(timeout=30)
        if self.failure is not None:
            raise ModelHubError(f"the hub cannot listen on {self.host}:{self.port}: {self.failure}")
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.done is not None:
            self.loop.call_soon_threadsafe(self.done.set)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())
        self.loop.close()

    async def _serve(self) -> None:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # the port taken, when asked for 0
        except OSError as error:
            self.failure = error
            self.ready.set()
            await runner.cleanup()
            return
        self.done = asyncio.Event()
        self.ready.set()
        await self.done.wait()
        await runner.cleanup()
