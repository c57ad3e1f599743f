"""The command line of fast calls as a user runs it: `infer --fast` against a real relayer
process (reserving for it first), `reserve`, `release` (announce, then after the delay),
`receipts status`, one-step `withdraw` and a `balance` that lists reservations, on an anvil of
the module's own (time moved forward with anvil's evm_increaseTime)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.relayers import RelayerProcess
from tests.cli.test_cli import (  # the module's anvil, deployment and subprocess helpers
    ADDRESSES,
    IRIS,
    IRIS_INPUT,
    RELAYER,
    TOKEN,
    UPLOADER,
    cast_send,
    fails,
    hub_env,  # noqa: F401  (a fixture)
    modelhub,
    ok_json,
)

FAST_CALLER, WITHDRAWER, PLAIN = 4, 6, 7  # TEST::<n> accounts of this module
PRICE = 10**15


@pytest.fixture(scope="module")
def fast_relayer(hub_env, tmp_path_factory) -> Iterator[RelayerProcess]:
    """TEST::3 bonded with its own URL as endpoint and running `modelhub relayer run`."""
    folder = tmp_path_factory.mktemp("relayer")
    process = RelayerProcess(hub_env["url"], f"TEST::{RELAYER}", folder / "store", hub_env["folder"])
    deployment = hub_env["deployment"]
    bond = str(100 * TOKEN)
    cast_send(hub_env, RELAYER, deployment["token"], "mint(address,uint256)", ADDRESSES[RELAYER], bond)
    cast_send(hub_env, RELAYER, deployment["token"], "approve(address,uint256)",
              deployment["RelayerRegistry"], bond)
    cast_send(hub_env, RELAYER, deployment["RelayerRegistry"], "register(string,uint256)", process.url, bond)
    process.start()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def fast_model(hub_env, fast_relayer) -> int:
    """The iris example at 0.001 tOPG per call, its file at the relayer; TEST::4 holds 1 tOPG credit."""
    upload = ok_json(modelhub(hub_env, "models", "upload", str(IRIS), "--name", "iris", "--price", "0.001",
                              "--relayer", fast_relayer.url, "--json", account=UPLOADER))
    ok_json(modelhub(hub_env, "faucet", "1", "--json", account=FAST_CALLER))
    ok_json(modelhub(hub_env, "deposit", "1", "--json", account=FAST_CALLER))
    return upload["modelId"]


# ---------------------------------------------------------------- reservations


def test_reserved_credit_comes_back_only_after_an_announced_release(hub_env, fast_relayer):
    ok_json(modelhub(hub_env, "faucet", "1", "--json", account=WITHDRAWER))
    ok_json(modelhub(hub_env, "deposit", "1", "--json", account=WITHDRAWER))
    relayer = ADDRESSES[RELAYER]
    reserved = ok_json(modelhub(hub_env, "reserve", "0.4", "--relayer", fast_relayer.url, "--json",
                                account=WITHDRAWER))
    assert (reserved["relayer"], reserved["reserved"], reserved["credit"]) == (
        relayer, str(4 * TOKEN // 10), str(6 * TOKEN // 10))

    balance = ok_json(modelhub(hub_env, "balance", "--json", account=WITHDRAWER))
    assert balance["reserved"] == str(4 * TOKEN // 10)
    assert balance["reservations"] == [{"relayer": relayer, "reserved": str(4 * TOKEN // 10),
                                        "releasing": "0", "releaseAt": 0, "releaseReady": False}]
    assert f"reserved for relayer {relayer}  0.4 tOPG" in modelhub(hub_env, "balance", account=WITHDRAWER).stdout

    # Free credit leaves at once; reserved credit does not.
    assert ok_json(modelhub(hub_env, "withdraw", "0.1", "--json", account=WITHDRAWER))["credit"] == str(TOKEN // 2)
    fails(modelhub(hub_env, "withdraw", "0.6", account=WITHDRAWER), 1,
          "less than the 0.6 tOPG", "0.4 tOPG", "is reserved for relayers", "modelhub release")

    fails(modelhub(hub_env, "release", "--relayer", relayer, account=WITHDRAWER), 1,
          "announced no release", "--announce AMOUNT")
    fails(modelhub(hub_env, "release", "--relayer", relayer, "--announce", "0.5", account=WITHDRAWER), 1,
          "holds 0.4 tOPG", "announce at most that")
    announced = modelhub(hub_env, "release", "--relayer", relayer, "--announce", "0.3", account=WITHDRAWER)
    assert announced.returncode == 0, announced.stderr
    assert "possible from" in announced.stdout and "in 1 h" in announced.stdout
    human = modelhub(hub_env, "balance", account=WITHDRAWER).stdout
    assert "release of 0.3 tOPG" in human and "announced" in human
    fails(modelhub(hub_env, "release", "--relayer", fast_relayer.url, account=WITHDRAWER), 1,
          "is possible from", "again then")

    hub_env["anvil"].advance_time(3601)
    status = ok_json(modelhub(hub_env, "receipts", "status", "--relayer", relayer, "--json", account=WITHDRAWER))
    assert status["reservation"]["releaseReady"] is True
    released = ok_json(modelhub(hub_env, "release", "--relayer", relayer, "--json", account=WITHDRAWER))
    assert (released["released"], released["reserved"], released["credit"]) == (
        str(3 * TOKEN // 10), str(TOKEN // 10), str(8 * TOKEN // 10))


def test_reserve_refuses_bad_input_with_one_line(hub_env, fast_relayer):
    fails(modelhub(hub_env, "reserve", "5", "--relayer", fast_relayer.url, account=PLAIN), 1,
          "free credit", "`modelhub deposit`")
    fails(modelhub(hub_env, "reserve", "0.1", "--relayer", ADDRESSES[PLAIN], account=PLAIN), 1,
          "is not an active relayer", "not registered")
    fails(modelhub(hub_env, "reserve", "0.1", "--relayer", "http://127.0.0.1:9", account=PLAIN), 1,
          "cannot reach the relayer")
    fails(modelhub(hub_env, "reserve", "0", "--relayer", fast_relayer.url, account=PLAIN), 1, "zero")
    fails(modelhub(hub_env, "release", "--relayer", ADDRESSES[PLAIN], account=PLAIN), 1,
          "`modelhub balance` lists your reservations")
    assert modelhub(hub_env, "reserve", "0.1", account=PLAIN).returncode == 2  # --relayer is required
    assert modelhub(hub_env, "release", "--relayer", "relayer-one", account=PLAIN).returncode == 2


def test_accounts_without_reservations_have_a_plain_balance(hub_env):
    ok_json(modelhub(hub_env, "faucet", "1", "--json", account=PLAIN))
    ok_json(modelhub(hub_env, "deposit", "1", "--json", account=PLAIN))
    assert ok_json(modelhub(hub_env, "withdraw", "0.5", "--json", account=PLAIN))["credit"] == str(TOKEN // 2)
    balance = ok_json(modelhub(hub_env, "balance", "--json", account=PLAIN))
    assert (balance["reservations"], balance["reserved"]) == ([], "0")
    assert "reserved" not in modelhub(hub_env, "balance", account=PLAIN).stdout
    status = modelhub(hub_env, "receipts", "status", account=PLAIN)
    assert status.returncode == 0 and "no reservations" in status.stdout


def test_fast_usage_errors_exit_with_2(hub_env):
    assert modelhub(hub_env, "infer", "1", "--input", IRIS_INPUT, IRIS_INPUT).returncode == 2
    assert modelhub(hub_env, "infer", "1", "--input", IRIS_INPUT, "--repeat", "3").returncode == 2
    assert modelhub(hub_env, "receipts", "status", "--model", "1").returncode == 2
    assert "--fast" in modelhub(hub_env, "infer", "--help", network=False).stdout


# ---------------------------------------------------------------- infer --fast


def test_a_fast_call_is_paid_by_receipt_verified_and_counted_in_the_channel(hub_env, fast_relayer, fast_model):
    served = ok_json(modelhub(hub_env, "infer", str(fast_model), "--input", IRIS_INPUT, "--fast",
                              "--relayer", fast_relayer.url, "--json", account=FAST_CALLER))
    # The first fast call reserved the default (100 calls at the price) from free credit.
    assert (served["reservedNow"], served["reservation"]) == (str(100 * PRICE), str(100 * PRICE))
    assert (served["status"], served["paidBy"], served["output"]["label"]) == ("served", "receipt", [0])
    assert (served["relayer"], served["relayerUrl"]) == (ADDRESSES[RELAYER], fast_relayer.url)
    assert served["channel"] == {"calls": "1", "amount": str(PRICE), "settledCalls": "0", "settledAmount": "0"}
    assert (served["receipt"]["calls"], served["receipt"]["amount"], served["price"]) == ("1", str(PRICE), str(PRICE))
    assert served["attestation"]["requestId"] == served["callId"]

    repeated = modelhub(hub_env, "infer", str(fast_model), IRIS_INPUT, "--fast", "--relayer", ADDRESSES[RELAYER],
                        "--repeat", "5", account=FAST_CALLER)
    assert repeated.returncode == 0, repeated.stderr
    assert json.loads(repeated.stdout)["label"] == [0]
    assert "Paid by receipt: 5 calls of model" in repeated.stderr and "for 0.005 tOPG" in repeated.stderr
    assert f"Channel with relayer {ADDRESSES[RELAYER]}: 6 calls, 0.006 tOPG" in repeated.stderr
    assert "Reserving" not in repeated.stderr  # the reservation still pays

    status = ok_json(modelhub(hub_env, "receipts", "status", "--relayer", fast_relayer.url, "--model",
                              str(fast_model), "--json", account=FAST_CALLER))
    assert int(status["reservation"]["reserved"]) <= 100 * PRICE
    assert (status["channel"]["calls"], status["channel"]["amount"]) == ("6", str(6 * PRICE))
    assert int(status["channel"]["settledCalls"]) <= 6


def test_a_fast_call_that_cannot_be_paid_fails_with_what_to_do(hub_env, fast_relayer, fast_model):
    broke = 8
    line = fails(modelhub(hub_env, "infer", str(fast_model), "--input", IRIS_INPUT, "--fast",
                          "--relayer", fast_relayer.url, account=broke), 1, "deposit more", "`modelhub deposit`")
    assert "Hub." not in line
    ok_json(modelhub(hub_env, "faucet", "0.01", "--json", account=broke))
    ok_json(modelhub(hub_env, "deposit", "0.01", "--json", account=broke))
    fails(modelhub(hub_env, "infer", str(fast_model), "--input", IRIS_INPUT, "--fast", "--reserve", "0.02",
                   "--relayer", fast_relayer.url, account=broke), 1, "free credit", "`modelhub deposit`")
    fails(modelhub(hub_env, "infer", str(fast_model), "--input", IRIS_INPUT, "--fast", "--max-price", "0.0005",
                   "--relayer", fast_relayer.url, account=broke), 1, "above your --max-price", "raise --max-price")
    refused = modelhub(hub_env, "infer", str(fast_model), "--input", '{"X": [[1, 2]]}', "--fast", "--json",
                       "--relayer", fast_relayer.url, account=broke)
    fails(refused, 1, "does not fit the model")
    assert json.loads(refused.stdout)["error"]["type"] == "InvalidInputError"


def test_a_first_fast_call_says_it_reserves(hub_env, fast_relayer, fast_model):
    caller = 9
    ok_json(modelhub(hub_env, "faucet", "0.01", "--json", account=caller))
    ok_json(modelhub(hub_env, "deposit", "0.01", "--json", account=caller))
    served = modelhub(hub_env, "infer", str(fast_model), IRIS_INPUT, "--fast", "--reserve", "0.003",
                      "--relayer", fast_relayer.url, account=caller)
    assert served.returncode == 0, served.stderr
    assert f"Reserving 0.003 tOPG (3000000000000000) of free credit for relayer {ADDRESSES[RELAYER]}" in served.stderr
    balance = ok_json(modelhub(hub_env, "balance", "--json", account=caller))
    # The reservation came out of free credit; the relayer's settle round may already have paid
    # the one call from it (it runs on its own clock), and nothing else.
    assert balance["credit"] == str(10**16 - 3 * PRICE)
    assert balance["reserved"] in (str(3 * PRICE), str(2 * PRICE))
