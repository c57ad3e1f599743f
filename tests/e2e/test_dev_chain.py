"""Dev-chain life with `modelhub up` as a user lives it: Ctrl-C and `up` again go on with the same
models and balances, `--fresh` starts afresh, and `modelhub dev advance-time` moves a dev chain's
clock past a delay but refuses any chain that is not a local dev chain."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from modelhub.devchain import Anvil, advance_time, rpc
from modelhub.errors import NotADevChainError
from tests.support.json_http import send_json
from tests.support.up import ROOT, UpProcess

IRIS = str(ROOT / "examples" / "iris" / "iris.onnx")
IRIS_INPUT = '{"X": [[5.1, 3.5, 1.4, 0.2]]}'
SEPOLIA = 11155111


def ok_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def error_line(result: subprocess.CompletedProcess, code: int = 1) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_restarted_up_goes_on_with_its_models_and_balances_and_fresh_starts_afresh(tmp_path):
    up = UpProcess(tmp_path)
    try:
        up.start()
        uploaded = ok_json(up.modelhub("models", "upload", IRIS, "--name", "kept-iris", "--price", "0.01",
                                       "--relayer", up.relayer_url, "--account", "TEST::1", "--json"))
        ok_json(up.modelhub("faucet", "3", "--account", "TEST::6", "--json"))
        ok_json(up.modelhub("deposit", "2", "--account", "TEST::6", "--json"))
        models = ok_json(up.modelhub("models", "list", "--json"))["models"]
        balance = ok_json(up.modelhub("balance", "--account", "TEST::6", "--json"))
        deployment_file = (tmp_path / "deployments" / "31337.json").read_text()
        assert [model["name"] for model in models] == ["iris-classifier", "diabetes-regressor", "kept-iris"]
        assert balance["credit"] == str(2 * 10**18) and balance["wallet"] == str(10**18)
        assert up.stop() == 0, up.output
        assert (up.state_dir / "chain-state.json").is_file()

        resumed = up.start()
        assert f"from the state saved in {up.state_dir}" in resumed
        assert "Deploying Model Hub" not in resumed and "Uploading the example models" not in resumed
        assert ok_json(up.modelhub("models", "list", "--json"))["models"] == models
        assert ok_json(up.modelhub("balance", "--account", "TEST::6", "--json")) == balance
        # The deployment file written before the restart still describes the chain.
        assert (tmp_path / "deployments" / "31337.json").read_text() == deployment_file
        # The chain kept its history and the relayer its files: the new model serves a paid call.
        called = ok_json(up.modelhub("infer", str(uploaded["modelId"]), IRIS_INPUT, "--account", "TEST::6",
                                     "--timeout", "120", "--json"))
        assert called["status"] == "fulfilled" and called["output"]["label"] == [0]
        assert up.stop() == 0, up.output

        fresh = up.start("--fresh")
        assert f"Discarded the saved state in {up.state_dir}" in fresh and "Deploying Model Hub" in fresh
        names = [model["name"] for model in ok_json(up.modelhub("models", "list", "--json"))["models"]]
        assert names == ["iris-classifier", "diabetes-regressor"]
        assert ok_json(up.modelhub("balance", "--account", "TEST::6", "--json"))["credit"] == "0"
        assert up.stop() == 0, up.output
    finally:
        up.kill()


def test_advance_time_lets_a_release_that_waits_the_withdrawal_delay_proceed_at_once(tmp_path):
    up = UpProcess(tmp_path)
    try:
        up.start()
        caller = ("--account", "TEST::7")
        ok_json(up.modelhub("faucet", "2", *caller, "--json"))
        ok_json(up.modelhub("deposit", "2", *caller, "--json"))
        ok_json(up.modelhub("reserve", "1", "--relayer", up.relayer_url, *caller, "--json"))
        ok_json(up.modelhub("release", "--relayer", up.relayer_url, "--announce", "1", *caller, "--json"))
        too_early = error_line(up.modelhub("release", "--relayer", up.relayer_url, *caller))
        assert "possible" in too_early

        moved = ok_json(up.modelhub("dev", "advance-time", "1h", "--json"))
        assert moved["advancedBy"] == 3600

        released = ok_json(up.modelhub("release", "--relayer", up.relayer_url, *caller, "--json"))
        assert released["released"] == str(10**18) and released["credit"] == str(2 * 10**18)
        assert ok_json(up.modelhub("withdraw", "2", *caller, "--json"))
        assert up.stop() == 0, up.output
    finally:
        up.kill()


def test_advance_time_is_refused_on_a_chain_with_a_public_network_id(tmp_path):
    with Anvil(chain_id=SEPOLIA) as sepolia:
        head = int(rpc(sepolia.url, "eth_blockNumber"), 16)
        refused = subprocess.run([sys.executable, "-m", "modelhub.cli", "dev", "advance-time", "1h",
                                  "--network", sepolia.url], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        line = error_line(refused)
        assert f"chain {SEPOLIA} is not a local dev chain" in line
        assert int(rpc(sepolia.url, "eth_blockNumber"), 16) == head  # no block mined, no clock moved


class _NotAnvil(BaseHTTPRequestHandler):
    """A JSON-RPC node that says it is chain 31337 but is no anvil: it forwards every call to a
    real anvil except anvil's own methods, which it does not know (as geth --dev would not)."""

    upstream = ""
    seen: list[str] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body["method"])
        if body["method"].startswith("anvil_"):
            answer = {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32601, "message": "method not found"}}
        else:
            answer = requests.post(self.upstream, json=body, timeout=10).json()
        send_json(self, 200, answer)

    def log_message(self, *args) -> None:
        pass


def test_advance_time_is_refused_by_a_dev_chain_id_on_a_node_that_is_not_anvil():
    with Anvil() as anvil:
        _NotAnvil.upstream, _NotAnvil.seen = anvil.url, []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _NotAnvil)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            before = rpc(anvil.url, "eth_getBlockByNumber", "latest", False)
            with pytest.raises(NotADevChainError, match="does not answer anvil's methods"):
                advance_time(url, 3600)
            assert rpc(anvil.url, "eth_getBlockByNumber", "latest", False) == before
            assert "evm_increaseTime" not in _NotAnvil.seen and "evm_mine" not in _NotAnvil.seen
        finally:
            server.shutdown()
            server.server_close()


def test_advance_time_moves_a_dev_chain_clock_by_the_duration(tmp_path):
    with Anvil() as anvil:
        before = int(rpc(anvil.url, "eth_getBlockByNumber", "latest", False)["timestamp"], 16)
        moved = subprocess.run([sys.executable, "-m", "modelhub.cli", "dev", "advance-time", "1h30m",
                                "--network", anvil.url, "--json"], cwd=tmp_path, capture_output=True, text=True,
                               timeout=120)
        assert moved.returncode == 0, moved.stderr
        assert json.loads(moved.stdout)["timestamp"] >= before + 5400
        bad = subprocess.run([sys.executable, "-m", "modelhub.cli", "dev", "advance-time", "soon",
                              "--network", anvil.url], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_a_restarted_anvil_resumes_its_clock_where_the_saved_chain_left_it(tmp_path):
    state = tmp_path / "state.json"
    with Anvil(state_path=state) as anvil:
        moved_to = anvil.advance_time(7200)
    assert state.is_file()
    with Anvil(state_path=state) as anvil:
        rpc(anvil.url, "evm_mine")
        # Without resuming, anvil would mine at the wall clock, two hours before the saved head.
        assert int(rpc(anvil.url, "eth_getBlockByNumber", "latest", False)["timestamp"], 16) > moved_to
