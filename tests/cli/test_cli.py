"""The `modelhub` command line as a user runs it: a subprocess against a real deployment on an
anvil of its own, checked through exit codes, `--json` outputs and one-line errors. Relayers
are played by Foundry's `cast` and a small HTTP stand-in for GET /v1/requests/{id}."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from tests.support.cast import DEV_KEYS
from modelhub.cli.common import format_tokens
from modelhub.codec import encode_output
from modelhub.devchain import Anvil, free_port, rpc
from modelhub.store import digest_to_cid
from modelhub.typed_data import Attestation
from modelhub.typed_data import sign as sign_attestation

ROOT = Path(__file__).resolve().parents[2]
IRIS = ROOT / "examples" / "iris" / "iris.onnx"
IRIS_INPUT = '{"X": [[5.1, 3.5, 1.4, 0.2]]}'
IRIS_INPUT_BYTES = b'{"X":[[5.1,3.5,1.4,0.2]]}'  # what the CLI sends: compact JSON
IRIS_BYTES = IRIS.read_bytes()
IRIS_CID = digest_to_cid(hashlib.sha256(IRIS_BYTES).digest())
TOKEN = 10**18
KEYS = DEV_KEYS  # anvil's dev accounts: TEST::<n> is KEYS[n]
ADDRESSES = [Account.from_key(key).address for key in KEYS]
UPLOADER, CALLER, RELAYER, BROKE = 1, 2, 3, 5  # TEST::<n> accounts


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory):
    """An anvil with Model Hub deployed; yields what commands need to reach it."""
    folder = tmp_path_factory.mktemp("deployments")
    # The model files the CLI fetches to check inputs are cached in the module's own folder.
    env = {**os.environ, "MODELHUB_DEPLOYMENTS": str(folder),
           "MODELHUB_CACHE": str(tmp_path_factory.mktemp("cache"))}
    env.pop("MODELHUB_NETWORK", None)
    env.pop("MODELHUB_ACCOUNT", None)
    with Anvil() as anvil:
        deployed = subprocess.run(["ape", "run", "deploy", "--network", anvil.url], cwd=ROOT,
                                  env=env, capture_output=True, text=True, timeout=300)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        deployment = json.loads((folder / "31337.json").read_text())
        yield {"anvil": anvil, "env": env, "url": anvil.url, "deployment": deployment,
               "folder": folder}


def modelhub(hub_env, *args: str, account: int | None = None, env: dict | None = None,
             network: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "modelhub.cli", *args]
    if network:
        command += ["--network", hub_env["url"]]
    if account is not None:
        command += ["--account", f"TEST::{account}"]
    return subprocess.run(command, cwd=ROOT, env={**hub_env["env"], **(env or {})},
                          capture_output=True, text=True, timeout=120)


def ok_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def fails(result: subprocess.CompletedProcess, code: int, *phrases: str) -> str:
    """Checks the exit code and the one-line error (never a traceback); returns the line."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def cast(hub_env, *args: str) -> str:
    command, *rest = args
    result = subprocess.run(["cast", command, "--rpc-url", hub_env["url"], *rest],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def cast_send(hub_env, who: int, to: str, signature: str, *args: str) -> None:
    cast(hub_env, "send", "--private-key", KEYS[who], to, signature, *args)


@pytest.fixture(scope="module")
def iris_model(hub_env) -> int:
    """The iris example uploaded by TEST::1 at 0.001 tOPG per call; TEST::2 holds 1 tOPG credit."""
    upload = ok_json(modelhub(hub_env, "models", "upload", str(IRIS), "--name", "iris",
                              "--price", "0.001", "--metadata-uri", "ipfs://iris-card", "--json",
                              account=UPLOADER))
    assert ok_json(modelhub(hub_env, "faucet", "5", "--json", account=CALLER))["wallet"] == str(5 * TOKEN)
    assert ok_json(modelhub(hub_env, "deposit", "1", "--json", account=CALLER))["credit"] == str(TOKEN)
    return upload["modelId"]


@pytest.fixture(scope="module")
def bonded_relayer(hub_env) -> str:
    """TEST::3 registered as a relayer (through cast: relaying is not the CLI's business)."""
    deployment = hub_env["deployment"]
    bond = str(100 * TOKEN)
    cast_send(hub_env, RELAYER, deployment["token"], "mint(address,uint256)", ADDRESSES[RELAYER], bond)
    cast_send(hub_env, RELAYER, deployment["token"], "approve(address,uint256)",
              deployment["RelayerRegistry"], bond)
    cast_send(hub_env, RELAYER, deployment["RelayerRegistry"], "register(string,uint256)",
              "http://127.0.0.1:9", bond)
    return ADDRESSES[RELAYER]


# ---------------------------------------------------------------- help and usage


def test_help_documents_exit_codes_amounts_and_every_command(hub_env):
    result = modelhub(hub_env, "--help", network=False)
    assert result.returncode == 0
    for text in ("Exit codes", "3  the chain cannot be reached", "4  timed out", "1500wei",
                 "infer", "refund", "withdraw-earnings", "models", "relayer", "faucet"):
        assert text in result.stdout
    models_help = modelhub(hub_env, "models", "--help", network=False).stdout
    for command in ("upload", "list", "show", "publish", "price", "payees", "activate", "deactivate"):
        assert command in models_help


def test_bad_usage_exits_with_2(hub_env):
    assert modelhub(hub_env, "models", "show", "0").returncode == 2  # ids start at 1
    assert modelhub(hub_env, "deposit", "lots").returncode == 2
    assert modelhub(hub_env, "infer", "1").returncode == 2  # no input given


# ---------------------------------------------------------------- uploaders


def test_an_uploader_registers_shows_reprices_shares_and_switches_off_a_model(hub_env, iris_model):
    listed = ok_json(modelhub(hub_env, "models", "list", "--json"))["models"]
    assert [m["name"] for m in listed if m["id"] == iris_model] == ["iris"]

    shown = ok_json(modelhub(hub_env, "models", "show", str(iris_model), "--json"))
    assert shown["owner"] == ADDRESSES[UPLOADER]
    assert shown["price"] == str(10**15)
    assert shown["metadataURI"] == "ipfs://iris-card"
    assert shown["versions"][0]["cid"].startswith("bafkrei")
    assert shown["payees"] == [{"account": ADDRESSES[UPLOADER], "bps": 10_000}]

    price = modelhub(hub_env, "models", "price", str(iris_model), "2000000000000000wei", account=UPLOADER)
    assert price.returncode == 0, price.stderr
    assert "0.002 tOPG (2000000000000000)" in price.stdout
    payees = ok_json(modelhub(hub_env, "models", "payees", str(iris_model), f"TEST::{UPLOADER}:7000",
                              f"{ADDRESSES[6]}:3000", "--json", account=UPLOADER))
    assert payees["payees"][1] == {"account": ADDRESSES[6], "bps": 3000}
    assert ok_json(modelhub(hub_env, "models", "deactivate", str(iris_model), "--json",
                            account=UPLOADER))["active"] is False
    try:
        fails(modelhub(hub_env, "infer", str(iris_model), IRIS_INPUT, account=CALLER), 1, "inactive")
    finally:
        assert ok_json(modelhub(hub_env, "models", "activate", str(iris_model), "--json",
                                account=UPLOADER))["active"] is True
        modelhub(hub_env, "models", "price", str(iris_model), "0.001", account=UPLOADER)

    shown = ok_json(modelhub(hub_env, "models", "show", str(iris_model), "--json"))
    assert (shown["price"], shown["active"], len(shown["payees"])) == (str(10**15), True, 2)


def test_only_the_owner_may_change_a_model(hub_env, iris_model):
    fails(modelhub(hub_env, "models", "price", str(iris_model), "1", account=CALLER), 1,
          "does not own model")


def test_a_file_that_is_not_an_onnx_model_is_refused(hub_env):
    fails(modelhub(hub_env, "models", "upload", str(ROOT / "README.md"), "--name", "readme",
                   "--price", "1", account=UPLOADER), 1, "not an ONNX model")


# ---------------------------------------------------------------- callers


def test_amounts_read_as_tokens_or_base_units_and_print_as_both(hub_env, iris_model):
    before = int(ok_json(modelhub(hub_env, "balance", "--json", account=CALLER))["credit"])
    deposit = modelhub(hub_env, "deposit", "1500wei", account=CALLER)
    assert deposit.returncode == 0, deposit.stderr
    assert "0.0000000000000015 tOPG (1500)" in deposit.stdout
    withdrawn = ok_json(modelhub(hub_env, "withdraw", "0.0000000000000015", "--json", account=CALLER))
    assert withdrawn["withdrawn"] == "1500"
    assert int(withdrawn["credit"]) == before
    balance = modelhub(hub_env, "balance", account=CALLER)
    assert f"credit  {format_tokens(before, 18)} tOPG ({before})" in balance.stdout
    fails(modelhub(hub_env, "deposit", "0.0000000000000000001", account=CALLER), 1, "decimals")


def test_an_unknown_model_is_named(hub_env, iris_model):
    line = fails(modelhub(hub_env, "infer", "99", IRIS_INPUT, "--json", account=CALLER), 1,
                 "model 99 does not exist")
    assert "modelhub models list" in line


def test_a_price_above_max_price_is_refused_before_paying(hub_env, iris_model):
    result = modelhub(hub_env, "infer", str(iris_model), IRIS_INPUT, "--max-price", "999wei",
                      "--json", account=CALLER)
    fails(result, 1, "above your --max-price")
    assert json.loads(result.stdout)["error"]["type"] == "PriceAboveMaxError"


def test_a_caller_without_credit_is_told_to_deposit(hub_env, iris_model):
    fails(modelhub(hub_env, "infer", str(iris_model), IRIS_INPUT, account=BROKE), 1,
          "credit", "modelhub deposit")


def test_input_that_is_not_a_json_object_of_tensors_is_refused_before_paying(hub_env, iris_model):
    fails(modelhub(hub_env, "infer", str(iris_model), "[1, 2]", account=CALLER), 1, "JSON object")


def test_an_unserved_call_times_out_with_exit_4_and_is_refunded_after_its_deadline(hub_env, iris_model):
    credit = int(ok_json(modelhub(hub_env, "balance", "--json", account=CALLER))["credit"])
    # No relayer runs here to send the model file for the input check: pay without it.
    result = modelhub(hub_env, "infer", str(iris_model), IRIS_INPUT, "--timeout", "1", "--json",
                      "--no-check", account=CALLER)
    fails(result, 4, "still pending", "modelhub refund")
    error = json.loads(result.stdout)["error"]
    request_id = error["requestId"]
    assert error["status"] == "pending" and error["exitCode"] == 4
    assert int(ok_json(modelhub(hub_env, "balance", "--json", account=CALLER))["credit"]) == credit - 10**15

    fails(modelhub(hub_env, "refund", request_id, account=CALLER), 1, "only after its deadline")
    hub_env["anvil"].advance_time(601)
    refunded = ok_json(modelhub(hub_env, "refund", request_id, "--json", account=CALLER))
    assert (refunded["status"], refunded["refunded"], int(refunded["credit"])) == ("refunded", str(10**15), credit)


def _infer_in_background(hub_env, model_id: int, *extra: str) -> tuple[subprocess.Popen, int]:
    """Starts `modelhub infer` as the caller; returns the process and its request id once sent."""
    escrow = hub_env["deployment"]["InferenceEscrow"]

    def next_id() -> int:
        return int(cast(hub_env, "call", escrow, "nextRequestId(address)(uint256)",
                        ADDRESSES[CALLER]).split()[0])

    request_id = next_id()
    process = subprocess.Popen(
        [sys.executable, "-m", "modelhub.cli", "infer", str(model_id), IRIS_INPUT, "--timeout", "60",
         "--network", hub_env["url"], "--account", f"TEST::{CALLER}", *extra],
        cwd=ROOT, env=hub_env["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    give_up = time.monotonic() + 60
    while next_id() == request_id:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < give_up, "the request was never sent"
        time.sleep(0.3)
    return process, request_id


def test_a_rejected_call_reports_the_reason_and_the_refund(hub_env, iris_model, bonded_relayer):
    credit = int(ok_json(modelhub(hub_env, "balance", "--json", account=CALLER))["credit"])
    # Only the relayer a call is designated to may reject it. It is played by cast, which sends
    # no model file for the input check: pay without it.
    process, request_id = _infer_in_background(hub_env, iris_model, "--relayer", bonded_relayer, "--no-check")
    cast_send(hub_env, RELAYER, hub_env["deployment"]["InferenceEscrow"], "reject(uint256,uint8)",
              str(request_id), "1")
    stdout, stderr = process.communicate(timeout=60)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    fails(result, 1, f"rejected by relayer {bonded_relayer}", "reason 1: the input does not fit the model",
          "refunded")
    assert int(ok_json(modelhub(hub_env, "balance", "--json", account=CALLER))["credit"]) == credit


class StandInRelayer:
    """Serves GET /v1/requests/{id} from `answers` (request id -> JSON object), the iris file
    at GET /v1/artifacts/{its cid}, and a /healthz naming TEST::3 (the bonded relayer) on chain
    31337."""

    def __init__(self) -> None:
        self.answers: dict[int, dict] = {}
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path == f"/v1/artifacts/{IRIS_CID}":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(IRIS_BYTES)))
                    self.end_headers()
                    self.wfile.write(IRIS_BYTES)
                    return
                if self.path == "/healthz":
                    answer, found = {"status": "ok", "relayer": ADDRESSES[RELAYER], "chainId": 31337}, True
                else:
                    request_id = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/v1/requests/") else 0
                    answer = answers.get(request_id, {"error": "unknown request"})
                    found = request_id in answers
                body = json.dumps(answer).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    server = StandInRelayer()
    yield server
    server.close()


def _serve(hub_env, stand_in, model_id: int, request_id: int, output: dict, delivered: dict) -> None:
    """Settles the call on chain for `output` and has the stand-in deliver `delivered`."""
    deployment = hub_env["deployment"]
    output_bytes = encode_output(output)
    att = Attestation(request_id, model_id, 1, keccak(IRIS_INPUT_BYTES), keccak(output_bytes))
    signature = sign_attestation(KEYS[RELAYER], att, 31337, deployment["InferenceEscrow"])
    stand_in.answers[request_id] = {
        "requestId": str(request_id), "status": "fulfilled", "output": delivered,
        "outputHash": "0x" + att.output_hash.hex(), "attestation": att.as_json(),
        "signature": "0x" + signature.hex()}
    cast_send(hub_env, RELAYER, deployment["InferenceEscrow"],
              "fulfill((uint256,uint256,uint32,bytes32,bytes32),bytes)",
              f"({request_id},{model_id},1,0x{att.input_hash.hex()},0x{att.output_hash.hex()})",
              "0x" + signature.hex())


def test_a_fulfilled_call_prints_the_output_checked_against_the_chain(hub_env, iris_model,
                                                                      bonded_relayer, stand_in):
    process, request_id = _infer_in_background(hub_env, iris_model, "--relayer", stand_in.url, "--json")
    output = {"label": [0], "probabilities": [{"0": 0.9, "1": 0.1, "2": 0.0}]}
    _serve(hub_env, stand_in, iris_model, request_id, output, output)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stdout + stderr
    answer = json.loads(stdout)
    assert answer["requestId"] == str(request_id)
    assert answer["output"] == output
    assert answer["relayer"] == bonded_relayer
    assert answer["attestation"]["inputHash"] == "0x" + keccak(IRIS_INPUT_BYTES).hex()


def test_an_output_that_does_not_match_the_settled_hash_is_refused(hub_env, iris_model,
                                                                   bonded_relayer, stand_in):
    process, request_id = _infer_in_background(hub_env, iris_model, "--relayer", stand_in.url)
    _serve(hub_env, stand_in, iris_model, request_id, {"label": [0]}, {"label": [2]})
    stdout, stderr = process.communicate(timeout=60)
    fails(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), 1,
          "fails verification", "do not trust it")


# ---------------------------------------------------------------- earnings


def test_earnings_show_and_withdraw_and_say_when_there_is_nothing(hub_env, iris_model):
    earned = int(ok_json(modelhub(hub_env, "earnings", "--json", account=UPLOADER))["earnings"])
    if earned:
        assert ok_json(modelhub(hub_env, "withdraw-earnings", "--json", account=UPLOADER))["withdrawn"] == str(earned)
    fails(modelhub(hub_env, "withdraw-earnings", account=UPLOADER), 1, "no earnings to withdraw")


# ---------------------------------------------------------------- the chain and the deployment


def test_no_deployment_file_for_the_chain_says_how_to_deploy(hub_env, tmp_path):
    result = modelhub(hub_env, "models", "list", "--json", env={"MODELHUB_DEPLOYMENTS": str(tmp_path)})
    fails(result, 1, "no Model Hub deployment for chain 31337", "ape run deploy")
    assert json.loads(result.stdout)["error"]["exitCode"] == 1


def test_an_unreachable_chain_exits_with_3(hub_env):
    dead = f"http://127.0.0.1:{free_port()}"
    fails(modelhub(hub_env, "balance", "--network", dead, network=False), 3, dead)


def test_without_network_the_local_chain_is_used_and_none_is_started(hub_env):
    local_up = True
    try:
        rpc("http://127.0.0.1:8545", "eth_chainId", timeout=1)
    except Exception:
        local_up = False
    result = modelhub(hub_env, "balance", network=False)
    if local_up:  # someone runs a chain there (say `modelhub up`): it is the one used
        assert result.returncode in (0, 1), result.stderr
    else:
        fails(result, 3, "no local chain at http://127.0.0.1:8545", "modelhub up", "--network")


def test_models_rank_by_the_signals_of_the_index_in_step_with_the_chain(hub_env, iris_model, tmp_path):
    db = f"sqlite:///{tmp_path / 'index.sqlite'}"
    shown = ok_json(modelhub(hub_env, "models", "show", str(iris_model), "--json"))
    ranked = ok_json(modelhub(hub_env, "models", "list", "--sort", "revenue", "--db", db, "--json"))
    assert ranked["sort"] == "revenue" and ranked["window"] == "all"
    iris = next(m for m in ranked["models"] if m["model_id"] == iris_model)
    assert int(iris["signals"]["calls"]) == int(shown["calls"])  # the index caught up with the chain first
    revenues = [int(m["signals"]["revenue"]) for m in ranked["models"]]
    assert revenues == sorted(revenues, reverse=True)
    human = modelhub(hub_env, "models", "list", "--search", "no-such-model", "--db", db)
    assert human.returncode == 0 and "No model matches." in human.stdout
    fails(modelhub(hub_env, "models", "list", "--sort", "popularity", "--db", db), 2, "popularity")
    detailed = ok_json(modelhub(hub_env, "models", "show", str(iris_model), "--signals", "--db", db, "--json"))
    assert int(detailed["signals"]["all"]["calls"]) == int(shown["calls"])
    assert set(detailed["signals"]) == {"all", "7d", "30d"}
    human = modelhub(hub_env, "models", "show", str(iris_model), "--signals", "--db", db)
    assert human.returncode == 0 and "signals" in human.stdout and "30d" in human.stdout
