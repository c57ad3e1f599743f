"""Runs a relayer as a service: the daemon loop in the main thread, the HTTP API beside it,
and SIGTERM/SIGINT turned into a clean stop (the batch in flight is finished first).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

from ..hub import Hub
from .daemon import Relayer
from .http import HttpServer, create_app
from .metrics import RelayerMetrics
from .settings import RelayerConfig

log = logging.getLogger("modelhub.relayer")


def run_service(hub: Hub, config: RelayerConfig, on_ready: Callable[[str], None] | None = None) -> None:
    """Serves until SIGTERM or SIGINT, the HTTP API on `config.host`:`config.port`. `on_ready`
    is told the HTTP base URL once it listens."""
    metrics = RelayerMetrics()
    relayer = Relayer(hub, config, metrics)
    server = HttpServer(create_app(relayer.store, relayer.state, metrics, relayer.status, fast=relayer.fast,
                                   settling=relayer.settling.__contains__),
                        config.host, config.port)
    server.start()
    url = f"http://{config.host}:{server.port}"
    if on_ready:
        on_ready(url)

    def request_stop(signum, _frame) -> None:
        log.info("%s received: finishing the current round, then stopping", signal.Signals(signum).name)
        relayer.stop()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        relayer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        relayer.fast.close()
        relayer.channels.close()  # after the server: receipts of calls in flight are committed first
        relayer.state.close()
