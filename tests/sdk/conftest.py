"""Fixtures of the SDK tests: a Hub per role on the session deployment, the example model files,
an uploaded iris model, a funded caller, a bonded relayer, and a tiny artifact server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelhub.hub import Hub, Upload
from modelhub.store import ModelStore

from tests.support.sdk import IRIS, PRICE
from tests.support.disputes import court, juror_accounts, jury_pool, kit  # noqa: F401 (fixtures)


@pytest.fixture
def hub_for(deployment, store):
    """hub_for(account) -> a Hub acting as `account` on the session deployment. Model files for
    its input checks come from the test's `store`, where the fixtures' uploads put them."""
    return lambda account: Hub(deployment, account, model_files=store)


@pytest.fixture
def uploader_hub(hub_for, uploader) -> Hub:
    return hub_for(uploader)


@pytest.fixture
def caller_hub(hub_for, caller) -> Hub:
    return hub_for(caller)


@pytest.fixture
def relayer_hub(hub_for, relayer) -> Hub:
    return hub_for(relayer)


@pytest.fixture
def stranger_hub(hub_for, stranger) -> Hub:
    return hub_for(stranger)


@pytest.fixture
def wallet_hub(project, deployment, caller, store) -> Hub:
    """A TestWallet (ERC-1271, owned by the caller's key) with 10 calls of credit, as a Hub
    that acts as the wallet (transactions go through its `execute`)."""
    wallet = project.TestWallet.deploy(caller.address, sender=caller)
    hub = Hub(deployment, caller, wallet=wallet.address, model_files=store)
    assert hub.address == wallet.address != caller.address
    hub.faucet(10 * PRICE)
    hub.deposit(10 * PRICE)
    return hub


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


@pytest.fixture
def iris(uploader_hub: Hub, store: ModelStore) -> Upload:
    """The iris example registered by the uploader at PRICE per call."""
    return uploader_hub.upload_model(IRIS, "iris", PRICE, "ipfs://iris-card", store=store)


@pytest.fixture
def funded_caller(caller_hub: Hub) -> Hub:
    """The caller with 10 calls' worth of credit."""
    caller_hub.faucet(10 * PRICE)
    caller_hub.deposit(10 * PRICE)
    return caller_hub


@pytest.fixture
def bonded_relayer(relayer_hub: Hub) -> Hub:
    bond = relayer_hub.min_bond
    relayer_hub.faucet(bond)
    relayer_hub.relayer_register("http://127.0.0.1:8700", bond)
    return relayer_hub


@pytest.fixture
def artifact_server(tmp_path: Path) -> Iterator[dict]:
    """A stand-in for a relayer's POST /v1/artifacts, backed by a ModelStore. Set
    `server["lie"] = True` to make it answer with another file's digest."""
    state: dict = {"store": ModelStore(tmp_path / "relayer-store"), "lie": False}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            stored = state["store"].put(b"other" + body if state["lie"] else body)
            answer = json.dumps({"cid": stored.cid, "digest": stored.digest_hex,
                                 "size": stored.size}).encode()
            self.send_response(200 if self.path == "/v1/artifacts" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
