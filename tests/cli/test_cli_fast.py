"""The command line of fast calls as a user runs it: `infer --fast` against a real relayer
process, `receipts enable/status`, and the two-step `withdraw` of accounts that sign receipts,
on an anvil of the module's own (time moved forward with anvil's evm_increaseTime)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from relayer.relayer_support import RelayerProcess
from test_cli import (  # the module's anvil, deployment and subprocess helpers
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


# ---------------------------------------------------------------- withdrawals


def test_an_account_that_signs_receipts_withdraws_in_two_steps(hub_env):
    ok_json(modelhub(hub_env, "faucet", "1", "--json", account=WITHDRAWER))
    ok_json(modelhub(hub_env, "deposit", "1", "--json", account=WITHDRAWER))
    fails(modelhub(hub_env, "withdraw", "0.1", "--announce", account=WITHDRAWER), 1,
          "has not enabled receipts", "without --announce")

    enabled = ok_json(modelhub(hub_env, "receipts", "enable", "--json", account=WITHDRAWER))
    assert (enabled["changed"], enabled["withdrawalDelay"]) == (True, 3600)
    again = modelhub(hub_env, "receipts", "enable", account=WITHDRAWER)
    assert again.returncode == 0 and "already enabled" in again.stdout

    fails(modelhub(hub_env, "withdraw", "0.1", account=WITHDRAWER), 1,
          "signs receipts", "`modelhub withdraw 0.1 --announce`, then `modelhub withdraw 0.1` 1 h later")

    announced = modelhub(hub_env, "withdraw", "0.1", "--announce", account=WITHDRAWER)
    assert announced.returncode == 0, announced.stderr
    assert "possible from" in announced.stdout and "in 1 h" in announced.stdout
    assert "then run `modelhub withdraw 0.1`" in announced.stdout

    balance = ok_json(modelhub(hub_env, "balance", "--json", account=WITHDRAWER))
    assert (balance["receiptsEnabled"], balance["announcedWithdrawal"]) == (True, str(TOKEN // 10))
    assert balance["withdrawalReady"] is False and balance["withdrawalReadyAt"] > 0
    human = modelhub(hub_env, "balance", account=WITHDRAWER).stdout
    assert "announced 0.1 tOPG" in human and "possible from" in human

    fails(modelhub(hub_env, "withdraw", "0.1", account=WITHDRAWER), 1,
          "is possible from", "run `modelhub withdraw 0.1` again then")
    fails(modelhub(hub_env, "withdraw", "0.2", account=WITHDRAWER), 1, "(announced: 0.1 tOPG")

    hub_env["anvil"].advance_time(3601)
    assert ok_json(modelhub(hub_env, "balance", "--json", account=WITHDRAWER))["withdrawalReady"] is True
    withdrawn = ok_json(modelhub(hub_env, "withdraw", "0.1", "--json", account=WITHDRAWER))
    assert withdrawn["credit"] == str(9 * TOKEN // 10)
    status = ok_json(modelhub(hub_env, "receipts", "status", "--json", account=WITHDRAWER))
    assert (status["receiptsEnabled"], status["announcedWithdrawal"]) == (True, "0")


def test_accounts_without_receipts_keep_one_step_withdrawals_and_a_plain_balance(hub_env):
    ok_json(modelhub(hub_env, "faucet", "1", "--json", account=PLAIN))
    ok_json(modelhub(hub_env, "deposit", "1", "--json", account=PLAIN))
    assert ok_json(modelhub(hub_env, "withdraw", "0.5", "--json", account=PLAIN))["credit"] == str(TOKEN // 2)
    balance = ok_json(modelhub(hub_env, "balance", "--json", account=PLAIN))
    assert balance["receiptsEnabled"] is False and "announcedWithdrawal" not in balance
    assert "receipts" not in modelhub(hub_env, "balance", account=PLAIN).stdout
    status = modelhub(hub_env, "receipts", "status", account=PLAIN)
    assert status.returncode == 0 and "receipts not enabled" in status.stdout


def test_fast_usage_errors_exit_with_2(hub_env):
    assert modelhub(hub_env, "infer", "1", "--input", IRIS_INPUT, IRIS_INPUT).returncode == 2
    assert modelhub(hub_env, "infer", "1", "--input", IRIS_INPUT, "--repeat", "3").returncode == 2
    assert modelhub(hub_env, "receipts", "status", "--model", "1").returncode == 2
    assert "--fast" in modelhub(hub_env, "infer", "--help", network=False).stdout


# ---------------------------------------------------------------- infer --fast


def test_a_fast_call_is_paid_by_receipt_verified_and_counted_in_the_channel(hub_env, fast_relayer, fast_model):
    served = ok_json(modelhub(hub_env, "infer", str(fast_model), "--input", IRIS_INPUT, "--fast",
                              "--relayer", fast_relayer.url, "--json", account=FAST_CALLER))
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

    status = ok_json(modelhub(hub_env, "receipts", "status", "--relayer", fast_relayer.url, "--model",
                              str(fast_model), "--json", account=FAST_CALLER))
    assert status["receiptsEnabled"] is True
    assert (status["channel"]["calls"], status["channel"]["amount"]) == ("6", str(6 * PRICE))
    assert int(status["channel"]["settledCalls"]) <= 6


def test_a_fast_call_that_cannot_be_paid_fails_with_what_to_do(hub_env, fast_relayer, fast_model):
    broke = 8
    line = fails(modelhub(hub_env, "infer", str(fast_model), "--input", IRIS_INPUT, "--fast",
                          "--relayer", fast_relayer.url, account=broke), 1, "deposit more", "`modelhub deposit`")
    assert "Hub." not in line
    ok_json(modelhub(hub_env, "faucet", "0.01", "--json", account=broke))
    ok_json(modelhub(hub_env, "deposit", "0.01", "--json", account=broke))
    fails(modelhub(hub_env, "infer", str(fast_model), "--input", IRIS_INPUT, "--fast", "--max-price", "0.0005",
                   "--relayer", fast_relayer.url, account=broke), 1, "above your --max-price", "raise --max-price")
    refused = modelhub(hub_env, "infer", str(fast_model), "--input", '{"X": [[1, 2]]}', "--fast", "--json",
                       "--relayer", fast_relayer.url, account=broke)
    fails(refused, 1, "does not fit the model")
    assert json.loads(refused.stdout)["error"]["type"] == "InvalidInputError"
