"""What a caller paid for is never lost, as a user meets it: Ctrl-C during `infer`, a timeout,
a relayer down or a wrong `--relayer` all leave the output reachable through `modelhub output
ID`; `modelhub requests` lists the calls; `--repeat` says what was paid and answered when it
stops; an input that does not fit is refused before paying; models are named OWNER/NAME.
The `modelhub` command runs as a subprocess against a real relayer process on an anvil of the
module's own."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys

import pytest
import requests

from modelhub.store import digest_to_cid
from tests.cli.test_cli import (  # the module's anvil, deployment and subprocess helpers
    ADDRESSES,
    CALLER,
    IRIS,
    IRIS_INPUT,
    RELAYER,
    ROOT,
    UPLOADER,
    StandInRelayer,
    _infer_in_background,
    cast_send,
    fails,
    hub_env,  # noqa: F401  (a fixture)
    modelhub,
    ok_json,
)
from tests.cli.test_cli_fast import fast_model, fast_relayer  # noqa: F401  (fixtures)
from tests.support.relayers import wait_until

PRICE = 10**15  # fast_model's price: 0.001 tOPG
WRONG_INPUT = '{"X": [[5.1, 3.5, 1.4]]}'  # 3 features; iris takes 4
IMPOSTOR, REPEATER = 5, 6  # TEST::<n> accounts of this module
IRIS_CID = digest_to_cid(hashlib.sha256(IRIS.read_bytes()).digest())


@pytest.fixture(scope="module")
def iris(hub_env, fast_model) -> int:
    """The iris model at the running relayer; TEST::2, the on-chain caller, holds 1 tOPG credit."""
    ok_json(modelhub(hub_env, "faucet", "2", "--json", account=CALLER))
    ok_json(modelhub(hub_env, "deposit", "1", "--json", account=CALLER))
    return fast_model


def credit_of(hub_env, account: int) -> int:
    return int(ok_json(modelhub(hub_env, "balance", "--json", account=account))["credit"])


def calls_of(hub_env, account: int = CALLER, *extra: str) -> list[dict]:
    return ok_json(modelhub(hub_env, "requests", "--json", *extra, account=account))["requests"]


def finished(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def fulfilled(hub_env, request_id: int) -> bool:
    return any(c["requestId"] == str(request_id) and c["status"] == "fulfilled" for c in calls_of(hub_env))


# ---------------------------------------------------------------- the input, checked before paying


def test_an_input_that_does_not_fit_is_refused_before_paying_with_the_tensors_it_needs(hub_env, iris):
    credit, made = credit_of(hub_env, CALLER), len(calls_of(hub_env))
    result = modelhub(hub_env, "infer", str(iris), WRONG_INPUT, "--json", account=CALLER)
    fails(result, 1, f"the input does not fit model {iris} version 1", "nothing was paid",
          "shape [1, 3]", "expects [N, 4] (float32)")
    assert json.loads(result.stdout)["error"]["type"] == "InvalidInputError"
    assert "waiting for a relayer" not in result.stderr  # printed only once the checks passed
    fails(modelhub(hub_env, "infer", str(iris), '{"x": [[5.1, 3.5, 1.4, 0.2]]}', account=CALLER), 1,
          "lacks 'X'", "unexpected 'x'", "'X' [N, 4] (float32)")
    assert (credit_of(hub_env, CALLER), len(calls_of(hub_env))) == (credit, made)
    # The file came from the relayer, checked against its digest, into the caller's cache.
    cached = hub_env["env"]["MODELHUB_CACHE"] + f"/models/{IRIS_CID}"
    assert open(cached, "rb").read() == IRIS.read_bytes()


def test_an_input_that_fits_is_paid_served_and_listed(hub_env, iris, fast_relayer):
    served = ok_json(modelhub(hub_env, "infer", str(iris), IRIS_INPUT, "--json", account=CALLER))
    assert served["output"]["label"] == [0] and served["price"] == str(PRICE)
    listed = calls_of(hub_env)[0]  # newest first
    assert (listed["requestId"], listed["modelId"], listed["status"], listed["relayer"], listed["price"]) == (
        served["requestId"], iris, "fulfilled", ADDRESSES[RELAYER], str(PRICE))
    human = modelhub(hub_env, "requests", account=CALLER)
    assert human.returncode == 0, human.stderr
    row = next(line for line in human.stdout.splitlines() if line.endswith(served["requestId"]))
    assert f"{iris} iris (0x7099…79C8)" in row and "0.001 tOPG (1000000000000000)" in row
    assert "fulfilled" in row and "0x90F7…b906" in row
    again = ok_json(modelhub(hub_env, "output", served["requestId"], "--json", account=CALLER))
    assert (again["output"], again["outputHash"]) == (served["output"], served["outputHash"])
    # For your own calls, the number in the list is enough.
    by_number = ok_json(modelhub(hub_env, "output", str(listed["number"]), "--json", account=CALLER))
    assert by_number["output"] == served["output"]


# ---------------------------------------------------------------- paid, and the CLI stopped early


def test_ctrl_c_a_timeout_and_a_relayer_down_leave_the_output_reachable(hub_env, iris, fast_relayer, tmp_path):
    credit = credit_of(hub_env, CALLER)
    fast_relayer.terminate()
    try:
        # No relayer answers and the cache is empty: the check cannot run, and nothing is paid.
        empty = {"MODELHUB_CACHE": str(tmp_path / "empty-cache")}
        fails(modelhub(hub_env, "infer", str(iris), IRIS_INPUT, env=empty, account=CALLER), 1,
              "cannot check the input", "did not answer", "nothing was paid", "--no-check")
        assert credit_of(hub_env, CALLER) == credit

        # Ctrl-C once the request is on chain: exit 130, the id and how to get the output.
        # (It may still be reading the request's receipt, or be waiting for a relayer already.)
        process, interrupted = _infer_in_background(hub_env, iris, "--no-check", "--json")
        process.send_signal(signal.SIGINT)
        stopped = finished(process)
        assert stopped.returncode == 130, stopped.stdout + stopped.stderr
        assert "Traceback" not in stopped.stderr
        assert f"request {interrupted} is paid and on chain" in stopped.stderr
        assert f"`modelhub output {interrupted}`" in stopped.stderr
        assert json.loads(stopped.stdout)["error"]["requestId"] == str(interrupted)

        # A timeout says the same.
        timed_out = modelhub(hub_env, "infer", str(iris), IRIS_INPUT, "--timeout", "1", account=CALLER)
        line = fails(timed_out, 4, "still pending", "modelhub output")
        waited = int(line.split("request ", 1)[1].split()[0])

        fails(modelhub(hub_env, "output", str(interrupted), account=CALLER), 1, "still pending",
              f"`modelhub output {interrupted}` again later")
        assert [c["status"] for c in calls_of(hub_env, CALLER, "--limit", "2")] == ["pending", "pending"]
    finally:
        fast_relayer.start()
    wait_until(lambda: fulfilled(hub_env, interrupted) and fulfilled(hub_env, waited), what="both calls served")
    for request_id in (interrupted, waited):
        shown = ok_json(modelhub(hub_env, "output", str(request_id), "--json", account=CALLER))
        assert (shown["output"]["label"], shown["relayer"]) == ([0], ADDRESSES[RELAYER])
    assert credit_of(hub_env, CALLER) == credit - 2 * PRICE  # each paid once

    # Settled, but the relayer that holds the output is down: said so, with what to do.
    fast_relayer.terminate()
    try:
        fails(modelhub(hub_env, "output", str(interrupted), account=CALLER), 1,
              f"relayer {ADDRESSES[RELAYER]}, which settled request {interrupted}, does not answer",
              "--relayer URL")
    finally:
        fast_relayer.start()


def test_a_wrong_relayer_url_leaves_the_output_reachable(hub_env, iris, fast_relayer):
    # A URL that claims to be the bonded relayer (its /healthz says so) but does not hold its
    # outputs: the call is designated to that relayer, which serves it at its own endpoint.
    stand_in = StandInRelayer()
    try:
        result = modelhub(hub_env, "infer", str(iris), IRIS_INPUT, "--relayer", stand_in.url, account=CALLER)
    finally:
        stand_in.close()
    line = fails(result, 1, "is paid and settled on chain, but its output could not be fetched",
                 "The output stays reachable", "modelhub output")
    request_id = line.split("request ", 1)[1].split()[0]
    assert ok_json(modelhub(hub_env, "output", request_id, "--json", account=CALLER))["output"]["label"] == [0]
    fails(modelhub(hub_env, "output", request_id, "--relayer", fast_relayer.url + "/nowhere", account=CALLER),
          1, "404")


def test_a_forged_output_is_refused_by_output_too(hub_env, iris, fast_relayer):
    request_id = calls_of(hub_env, CALLER, "--limit", "1")[0]["requestId"]
    stand_in = StandInRelayer()  # answers every request with a made-up output
    stand_in.answers[int(request_id)] = {**fast_relayer.result(int(request_id)), "output": {"label": [2]}}
    try:
        fails(modelhub(hub_env, "output", request_id, "--relayer", stand_in.url, account=CALLER), 1,
              "fails verification", "do not trust it")
    finally:
        stand_in.close()


def test_output_names_what_has_no_output(hub_env, iris, fast_relayer):
    fails(modelhub(hub_env, "output", "99", account=CALLER), 1, "no request has id",
          "`modelhub requests` lists your calls")
    fails(modelhub(hub_env, "output", "0x12", "--account", "TEST::7"), 1, "no request has id")
    assert modelhub(hub_env, "output", "first", account=CALLER).returncode == 2


def test_a_rejected_call_has_no_output_and_says_why(hub_env, iris, fast_relayer):
    # Paid past the check (--no-check), designated: the relayer rejects it with reason 1.
    result = modelhub(hub_env, "infer", str(iris), WRONG_INPUT, "--no-check", "--relayer", fast_relayer.url,
                      "--json", account=CALLER)
    fails(result, 1, "rejected by relayer", "reason 1")
    request_id = json.loads(result.stdout)["error"]["requestId"]
    fails(modelhub(hub_env, "output", request_id, account=CALLER), 1, "rejected by relayer", "reason 1",
          "has no output")
    listed = next(c for c in calls_of(hub_env) if c["requestId"] == request_id)
    assert (listed["status"], listed["reason"], listed["relayer"]) == ("rejected", 1, ADDRESSES[RELAYER])


# ---------------------------------------------------------------- --repeat


def _channel_calls(relayer, account: int, model_id: int) -> int:
    view = requests.get(f"{relayer.url}/v1/channels/{ADDRESSES[account]}/{model_id}", timeout=5).json()
    return int(view["calls"])


def test_repeat_shows_progress_and_what_was_paid_when_credit_runs_out(hub_env, iris, fast_relayer):
    ok_json(modelhub(hub_env, "faucet", "1", "--json", account=REPEATER))
    ok_json(modelhub(hub_env, "deposit", "0.005", "--json", account=REPEATER))
    # Reserving 2 calls at a time out of 5 calls' worth of credit: the third top-up cannot.
    result = modelhub(hub_env, "infer", str(iris), IRIS_INPUT, "--fast", "--repeat", "10", "--reserve", "0.002",
                      "--relayer", fast_relayer.url, account=REPEATER)
    fails(result, 1, "Stopped after 4 of 10 calls: 4 paid by receipt and answered (0.004 tOPG (4000000000000000))",
          "`modelhub deposit`")
    assert "1/10 calls answered, 0.001 tOPG (1000000000000000) paid" in result.stderr
    assert "4/10 calls answered" in result.stderr
    assert _channel_calls(fast_relayer, REPEATER, iris) == 4


def test_ctrl_c_during_repeat_says_how_many_calls_were_paid_and_answered(hub_env, iris, fast_relayer):
    ok_json(modelhub(hub_env, "deposit", "0.9", "--json", account=REPEATER))
    before = _channel_calls(fast_relayer, REPEATER, iris)
    process = subprocess.Popen(
        [sys.executable, "-m", "modelhub.cli", "infer", str(iris), IRIS_INPUT, "--fast", "--repeat", "100000",
         "--relayer", fast_relayer.url, "--network", hub_env["url"], "--account", f"TEST::{REPEATER}"],
        cwd=ROOT, env=hub_env["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: _channel_calls(fast_relayer, REPEATER, iris) > before + 5, what="fast calls answered")
    process.send_signal(signal.SIGINT)
    stopped = finished(process)
    assert stopped.returncode == 130, stopped.stderr
    line = next(line for line in stopped.stderr.splitlines() if line.startswith("Interrupted after "))
    answered = int(line.split(" calls: ", 1)[1].split()[0])
    assert line.startswith(f"Interrupted after {answered} of 100000 calls: {answered} paid by receipt and answered")
    assert "one more receipt" not in line  # Ctrl-C let the call in flight finish
    # What the relayer holds signed is exactly what the CLI says was paid and answered.
    assert _channel_calls(fast_relayer, REPEATER, iris) - before == answered


# ---------------------------------------------------------------- names and owners


def test_a_name_anyone_can_register_is_told_apart_by_its_owner(hub_env, iris, fast_relayer):
    impostor = ok_json(modelhub(hub_env, "models", "upload", str(IRIS), "--name", "iris", "--price", "0.001",
                                "--json", account=IMPOSTOR))["modelId"]
    listing = modelhub(hub_env, "models", "list")
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert rows[str(iris)].split()[1:3] == ["iris", "0x7099…79C8"]
    assert rows[str(impostor)].split()[1:3] == ["iris", "0x9965…A4dc"]

    line = fails(modelhub(hub_env, "infer", "iris", IRIS_INPUT, account=CALLER), 1, "only a name")
    assert f"{ADDRESSES[UPLOADER]}/iris (model {iris})" in line
    assert f"{ADDRESSES[IMPOSTOR]}/iris (model {impostor})" in line
    by_alias = ok_json(modelhub(hub_env, "infer", f"TEST::{UPLOADER}/iris", IRIS_INPUT, "--json", account=CALLER))
    assert by_alias["modelId"] == iris
    shown = ok_json(modelhub(hub_env, "models", "show", f"{ADDRESSES[IMPOSTOR].lower()}/iris", "--json"))
    assert shown["id"] == impostor
    mine = calls_of(hub_env, CALLER, "--model", f"TEST::{UPLOADER}/iris", "--limit", "1000")
    assert mine and {c["modelId"] for c in mine} == {iris}

    fails(modelhub(hub_env, "infer", f"TEST::{CALLER}/iris", IRIS_INPUT, account=CALLER), 1,
          "owns no model named 'iris'", f"{ADDRESSES[IMPOSTOR]}/iris (model {impostor})")
    assert "neither an address nor an account alias" in modelhub(
        hub_env, "models", "show", "nobody-here/iris").stderr
    again = ok_json(modelhub(hub_env, "models", "upload", str(IRIS), "--name", "iris", "--price", "0",
                             "--json", account=IMPOSTOR))["modelId"]
    fails(modelhub(hub_env, "models", "price", f"TEST::{IMPOSTOR}/iris", "0.002", account=IMPOSTOR), 1,
          "is ambiguous", f"ids {impostor}, {again}", "give the id")


# ---------------------------------------------------------------- last: moves the chain's clock


def test_a_call_nobody_served_is_listed_refundable_and_then_refunded(hub_env, iris):
    # Designated to a relayer that is bonded but never runs: nobody else may serve it.
    deployment, idle = hub_env["deployment"], 8
    bond = str(100 * 10**18)
    cast_send(hub_env, idle, deployment["token"], "mint(address,uint256)", ADDRESSES[idle], bond)
    cast_send(hub_env, idle, deployment["token"], "approve(address,uint256)", deployment["RelayerRegistry"], bond)
    cast_send(hub_env, idle, deployment["RelayerRegistry"], "register(string,uint256)", "http://127.0.0.1:9", bond)
    result = modelhub(hub_env, "infer", str(iris), IRIS_INPUT, "--relayer", ADDRESSES[idle], "--timeout", "0",
                      "--json", account=CALLER)
    fails(result, 4, "still pending")
    request_id = json.loads(result.stdout)["error"]["requestId"]
    listed = calls_of(hub_env, CALLER, "--limit", "1")[0]
    assert (listed["requestId"], listed["status"], listed["relayer"]) == (request_id, "pending", ADDRESSES[idle])
    assert "pending until" in modelhub(hub_env, "requests", "--limit", "1", account=CALLER).stdout

    hub_env["anvil"].advance_time(601)
    assert "pending (refundable now)" in modelhub(hub_env, "requests", "--limit", "1", account=CALLER).stdout
    fails(modelhub(hub_env, "output", request_id, account=CALLER), 1, "deadline has passed",
          f"modelhub refund {request_id}")
    ok_json(modelhub(hub_env, "refund", request_id, "--json", account=CALLER))
    fails(modelhub(hub_env, "output", request_id, account=CALLER), 1, "was refunded", "has no output")
    assert calls_of(hub_env, CALLER, "--limit", "1")[0]["status"] == "refunded"
