"""Fixtures for the relayer tests: an HTTP API without a chain, and real relayer processes
against the test chain (`start_relayer`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelhub.deployments import save_deployment
from modelhub.relayer.http import HttpServer, create_app
from modelhub.relayer.metrics import RelayerMetrics
from modelhub.relayer.state import RelayerState
from modelhub.store import ModelStore

from tests.support.relayers import RelayerProcess

# ---------------------------------------------------------------- HTTP API (test_http.py)

HTTP_STORE_LIMIT = 4096  # bytes: small, so that "too large" is cheap to test


class HealthStatus:
    """The status callable behind /healthz; set `.failure` to make it raise, `.delay` to stall."""

    def __init__(self, state: RelayerState) -> None:
        self.state = state
        self.failure: Exception | None = None
        self.delay = 0.0

    def __call__(self) -> dict[str, Any]:
        if self.delay:
            time.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        return {
            "chainId": 31337,
            "relayer": "0x" + "ab" * 20,
            "chainHead": 120,
            "nextBlock": self.state.next_block,
            "pending": 0,
            "calls": self.state.counts(),
        }


@pytest.fixture
def relayer_store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models", max_size=HTTP_STORE_LIMIT)


@pytest.fixture
def relayer_state(tmp_path: Path) -> Iterator[RelayerState]:
    state = RelayerState(tmp_path / "relayer.sqlite")
    yield state
    state.close()


@pytest.fixture
def relayer_metrics() -> RelayerMetrics:
    return RelayerMetrics()


@pytest.fixture
def health_status(relayer_state: RelayerState) -> HealthStatus:
    return HealthStatus(relayer_state)


@pytest.fixture
def http_server(
    relayer_store: ModelStore, relayer_state: RelayerState, relayer_metrics: RelayerMetrics, health_status: HealthStatus
) -> Iterator[HttpServer]:
    """The HTTP API listening on 127.0.0.1 on a free port, stopped after the test."""
    app = create_app(relayer_store, relayer_state, relayer_metrics, health_status, status_timeout=1.0)
    server = HttpServer(app, host="127.0.0.1", port=0, shutdown_timeout=2.0)
    server.start()
    yield server
    server.stop()


# ---------------------------------------------------------------- relayer processes (end-to-end tests)


@pytest.fixture
def deployments_dir(deployment, tmp_path):
    folder = tmp_path / "deployments"
    save_deployment(deployment, folder)
    return folder


@pytest.fixture
def start_relayer(chain, deployments_dir, tmp_path):
    """start_relayer(*extra, account="TEST::3", name="a", env=None, port=None) -> a running `modelhub
    relayer run` process on the test chain; `extra` are command-line options, `env` environment
    settings (MODELHUB_RELAYER_*), `port` the one its registered endpoint names. Killed after the test."""
    started: list[RelayerProcess] = []

    def start(*extra: str, account: str = "TEST::3", name: str = "a",
              env: dict[str, str] | None = None, port: int | None = None) -> RelayerProcess:
        process = RelayerProcess(chain.provider.http_uri, account, tmp_path / f"store-{name}", deployments_dir,
                                 *extra, env=env, port=port).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
