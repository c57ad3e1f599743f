"""The hub's JSON API as a program uses it: `modelhub hub serve` as a real process over an
index database, queried with a real HTTP client; the numbers are the signals' own, and bad
queries get a clear error and change nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.postgres import postgres_server, stop_postgres
from tests.support.histories import ALICE, BOB, CAROL, OWNER, RELAYER, T0, base, fresh_database
from modelhub.devchain import free_port
from modelhub.indexer.schema import bind, open_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "index.sqlite"
    engine = fresh_database(path)
    history = base()
    history.add("ModelRegistered", T0, modelId=2, owner=ALICE, name="wine-tree", artifactDigest="0x22",
                pricePerCall=5, metadataURI="")
    for caller in (ALICE, BOB, CAROL):
        history.paid_call(2, caller, T0 + 10, price=5)
    history.paid_call(1, BOB, T0 + 20)
    history.failed_call(1, CAROL, T0 + 30, "rejected")
    history.apply(engine)
    engine.dispose()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "modelhub.cli", "hub", "serve", "--db", f"sqlite:///{path}",
                               "--port", str(port)], cwd=ROOT, env=os.environ.copy(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/api"
    _wait_for(url)
    yield url
    server.terminate()
    server.wait(timeout=10)


def test_status_names_the_chain_and_the_block_indexed(api):
    body = requests.get(f"{api}/status", timeout=5).json()
    assert (body["chainId"], body["block"], body["time"]) == (1, 0, T0 + 40 * 86_400)


def test_models_are_ranked_by_the_signal_asked_for(api):
    by_calls = requests.get(f"{api}/models", params={"sort": "calls"}, timeout=5).json()
    assert [m["model_id"] for m in by_calls["models"]] == [2, 1]
    assert by_calls["models"][0]["signals"]["callers"] == 3
    by_revenue = requests.get(f"{api}/models", params={"sort": "revenue"}, timeout=5).json()
    assert [m["model_id"] for m in by_revenue["models"]] == [1, 2]  # 100 beats 3 x 5
    ascending = requests.get(f"{api}/models", params={"sort": "revenue", "order": "asc"}, timeout=5).json()
    assert [m["model_id"] for m in ascending["models"]] == [2, 1]
    found = requests.get(f"{api}/models", params={"search": "wine"}, timeout=5).json()
    assert [m["model_id"] for m in found["models"]] == [2]
    window = requests.get(f"{api}/models", params={"window": "7d"}, timeout=5).json()
    assert all(m["signals"]["calls"] == 0 for m in window["models"])  # all of it 40 days ago


def test_a_model_page_holds_its_card_signals_daily_points_and_earners(api):
    page = requests.get(f"{api}/models/1", timeout=5).json()
    assert page["model"]["name"] == "iris" and page["model"]["owner"] == OWNER
    assert page["signals"]["all"]["calls"] == 1 and page["signals"]["all"]["success_rate"] == 0.5
    assert [d["calls"] for d in page["daily"]] == [1]
    earned = {(e["account"], e["role"]): e["amount"] for e in page["earned"]}
    assert earned[(OWNER, "payee")] == 85 and earned[(RELAYER, "relayer")] == 10


def test_accounts_and_relayers_have_pages(api):
    assert requests.get(f"{api}/accounts/{OWNER}", timeout=5).json()["earned"]["payee"] == 85 + 0
    relayer = requests.get(f"{api}/relayers/{RELAYER}", timeout=5).json()
    assert (relayer["calls_served"], relayer["calls_rejected"]) == (4, 1)


@pytest.mark.parametrize("path, status, phrase", [
    ("/models?sort=popularity", 400, "sort must be one of"),
    ("/models?window=1y", 400, "window must be one of"),
    ("/models?limit=0", 400, "limit must be an integer from 1 to 500"),
    ("/models?limit=ten", 400, "limit must be an integer"),
    ("/models?order=up", 400, "order must be asc or desc"),
    ("/models/abc", 400, "positive integer"),
    ("/models/0", 400, "positive integer"),
    ("/models/99", 404, "no model 99"),
    ("/accounts/0x123", 400, "not an address"),
    ("/accounts/0x00000000000000000000000000000000000000ff", 404, "no account"),
    ("/relayers/0x00000000000000000000000000000000000000ff", 404, "no relayer"),
    ("/nothing-here", 404, "Not Found"),
])
def test_bad_queries_get_a_json_error_saying_what_was_wrong(api, path, status, phrase):
    response = requests.get(f"{api}{path}", timeout=5)
    assert response.status_code == status
    assert phrase in response.json()["error"]


def test_a_database_that_goes_down_is_a_503_not_a_crash():
    with postgres_server() as url:
        engine = open_database(url)
        bind(engine, 1, "0x" + "0" * 40, 1)
        engine.dispose()
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "modelhub.cli", "hub", "serve", "--db", url,
                                   "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            api = f"http://127.0.0.1:{port}/api"
            _wait_for(api)
            assert requests.get(f"{api}/models", timeout=5).status_code == 200
            stop_postgres(url)
            response = requests.get(f"{api}/models", timeout=30)
            assert response.status_code == 503 and "cannot be read" in response.json()["error"]
            assert requests.get(f"{api}/status", timeout=30).status_code == 503
        finally:
            server.terminate()
            server.wait(timeout=10)


def _wait_for(api: str) -> None:
    for _ in range(200):
        try:
            requests.get(f"{api}/status", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{api} never answered")
