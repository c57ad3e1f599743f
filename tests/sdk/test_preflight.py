"""The SDK's check of an on-chain call's input before paying (`Hub.request`, preflight.py): the
model file fetched by its content id from the registered relayers over real HTTP (fetch.py),
kept only if its sha-256 is the digest on chain, cached, and the runtime's own input check on
the real ONNX file. Relayers that send another file, too much, or nothing are not trusted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelhub import errors as e
from modelhub.hub import Hub
from modelhub.store import ModelStore
from tests.support.sdk import DIABETES, IRIS, IRIS_INPUT, PRICE


@pytest.fixture
def file_server() -> Iterator[dict]:
    """A relayer's GET /v1/artifacts/{cid}: `state["files"]` maps a CID to the bytes it sends
    (whatever they are), and counts the requests it answered."""
    state: dict = {"files": {}, "asked": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state["asked"] += 1
            body = state["files"].get(self.path.removeprefix("/v1/artifacts/"))
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def served_iris(uploader_hub, relayer_hub, file_server):
    """Iris registered (its file kept nowhere but at the file server) and a relayer bonded with
    the file server's URL as its endpoint."""
    upload = uploader_hub.upload_model(IRIS, "iris", PRICE)
    bond = relayer_hub.min_bond
    relayer_hub.faucet(bond)
    relayer_hub.relayer_register(file_server["url"], bond)
    return upload


@pytest.fixture
def caller_with_cache(deployment, caller, tmp_path: Path) -> Hub:
    hub = Hub(deployment, caller, model_files=tmp_path / "cache")
    hub.faucet(10 * PRICE)
    hub.deposit(10 * PRICE)
    return hub


def test_a_fitting_input_is_paid_after_the_file_is_fetched_checked_and_cached(
        caller_with_cache, served_iris, file_server, tmp_path):
    file_server["files"][served_iris.cid] = IRIS.read_bytes()
    call = caller_with_cache.request(served_iris.model_id, IRIS_INPUT)
    assert call.price == PRICE
    assert ModelStore(tmp_path / "cache").get(served_iris.cid) == IRIS.read_bytes()
    # Cached: the next check needs no relayer.
    file_server["files"].clear()
    asked = file_server["asked"]
    caller_with_cache.request(served_iris.model_id, IRIS_INPUT)
    assert file_server["asked"] == asked


def test_an_input_that_does_not_fit_is_refused_before_paying(caller_with_cache, served_iris, file_server):
    file_server["files"][served_iris.cid] = IRIS.read_bytes()
    hub = caller_with_cache
    credit, next_id = hub.balance(), hub.next_request_id()
    with pytest.raises(e.InvalidInputError, match=r"expects \[N, 4\] \(float32\)"):
        hub.request(served_iris.model_id, {"X": [[5.1, 3.5, 1.4]]})
    with pytest.raises(e.InvalidInputError, match="lacks 'X'"):
        hub.request(served_iris.model_id, {"features": [[5.1, 3.5, 1.4, 0.2]]})
    assert (hub.balance(), hub.next_request_id()) == (credit, next_id)
    # Paying past the check is the caller's choice.
    assert hub.request(served_iris.model_id, {"X": [[5.1, 3.5, 1.4]]}, check_input=False).price == PRICE


def test_a_relayer_that_sends_another_file_is_not_believed(caller_with_cache, served_iris, file_server, tmp_path):
    file_server["files"][served_iris.cid] = DIABETES.read_bytes()  # a real model, but not this one
    hub = caller_with_cache
    credit = hub.balance()
    with pytest.raises(e.InputCheckUnavailableError, match="served another file"):
        hub.request(served_iris.model_id, IRIS_INPUT)
    assert hub.balance() == credit
    assert not ModelStore(tmp_path / "cache").has(served_iris.cid)


def test_a_relayer_that_sends_too_much_is_cut_off(deployment, caller, served_iris, file_server, tmp_path):
    hub = Hub(deployment, caller, model_files=ModelStore(tmp_path / "small", max_size=1024))
    file_server["files"][served_iris.cid] = b"\0" * 10_000
    with pytest.raises(e.InputCheckUnavailableError, match="more than the limit of 1024"):
        hub.check_input(served_iris.model_id, 0, IRIS_INPUT)


def test_no_file_anywhere_says_so_and_how_to_go_on(caller_with_cache, served_iris, file_server):
    with pytest.raises(e.InputCheckUnavailableError) as missing:
        caller_with_cache.request(served_iris.model_id, IRIS_INPUT)
    assert f"{file_server['url']}/v1/artifacts/{served_iris.cid} answered HTTP 404" in str(missing.value)
    assert "nothing was paid" in str(missing.value) and "check_input=False" in str(missing.value)


def test_a_damaged_cached_file_is_fetched_again(caller_with_cache, served_iris, file_server, tmp_path):
    store = ModelStore(tmp_path / "cache")
    store.put(IRIS.read_bytes())
    store.path(served_iris.cid).write_bytes(b"tampered")
    file_server["files"][served_iris.cid] = IRIS.read_bytes()
    caller_with_cache.check_input(served_iris.model_id, 0, IRIS_INPUT)
    assert store.get(served_iris.cid) == IRIS.read_bytes()
