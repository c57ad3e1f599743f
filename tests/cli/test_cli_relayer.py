"""A relayer operator's command line as one runs it: `relayer register`, `status`, `bond`,
`unbond`, `withdraw-bond` (refused before the delay, then after it), `list`, and `relayer run`
refusing to start while not active, each a subprocess against an anvil of the module's own."""

from __future__ import annotations

import re

from tests.cli.test_cli import (  # the module's anvil, deployment and subprocess helpers
    ADDRESSES,
    TOKEN,
    cast_send,
    fails,
    hub_env,  # noqa: F401  (a fixture)
    modelhub,
    ok_json,
)
from modelhub.cli.common import utc
from modelhub.devchain import free_port
from modelhub.deployments import DeployParams

OPERATOR, NEWCOMER, STRANGER, DEPLOYER = 8, 9, 7, 0  # TEST::<n> accounts of this module
UNBOND_DELAY = DeployParams().unbond_delay  # the module deploys with `ape run deploy`'s defaults
MIN_BOND = 100 * TOKEN


def run_relayer(hub_env, account: int, tmp_path) -> object:
    """`modelhub relayer run` as the operator would start it; it must not get as far as serving."""
    return modelhub(hub_env, "relayer", "run", "--port", str(free_port()), "--store", str(tmp_path / "store"),
                    account=account)


def test_every_relayer_command_explains_itself_and_takes_token_amounts(hub_env):
    group = modelhub(hub_env, "relayer", "--help", network=False).stdout
    for command in ("register", "status", "bond", "unbond", "withdraw-bond", "run", "list", "set-endpoint"):
        assert f"  {command} " in group, command
    assert "modelhub relayer register --endpoint" in group  # the life of a relayer, in order
    for command in ("register", "bond"):
        text = modelhub(hub_env, "relayer", command, "--help", network=False).stdout
        assert "1500wei" in text and "AMOUNT" in text, command
    assert "time left" in modelhub(hub_env, "relayer", "withdraw-bond", "--help", network=False).stdout


def test_an_operator_registers_adds_bond_unbonds_and_withdraws_the_bond_after_the_delay(hub_env, tmp_path):
    me = ADDRESSES[OPERATOR]
    ok_json(modelhub(hub_env, "faucet", "200", "--json", account=OPERATOR))
    registered = ok_json(modelhub(hub_env, "relayer", "register", "--endpoint", "http://127.0.0.1:8788/",
                                  "--bond", "100", "--json", account=OPERATOR))
    assert (registered["relayer"], registered["endpoint"], registered["bond"], registered["active"]) == (
        me, "http://127.0.0.1:8788", str(MIN_BOND), True)
    assert ok_json(modelhub(hub_env, "balance", "--json", account=OPERATOR))["wallet"] == str(100 * TOKEN)
    fails(modelhub(hub_env, "relayer", "register", "--endpoint", "http://127.0.0.1:8788", account=OPERATOR), 1,
          "is registered already", "modelhub relayer status")

    added = ok_json(modelhub(hub_env, "relayer", "bond", "0.5", "--json", account=OPERATOR))
    assert added["bond"] == str(MIN_BOND + TOKEN // 2) and added["active"] is True
    human = modelhub(hub_env, "relayer", "status", account=OPERATOR).stdout
    for line in ("endpoint   http://127.0.0.1:8788", "bond       100.5 tOPG (100500000000000000000)",
                 "(minimum 100 tOPG (100000000000000000000))", "active     yes", "unbonding  no",
                 "earnings   0 tOPG (0)"):
        assert line in human, human
    listed = ok_json(modelhub(hub_env, "relayer", "list", "--json"))["relayers"]
    assert {"relayer": me, "endpoint": "http://127.0.0.1:8788", "bond": str(MIN_BOND + TOKEN // 2),
            "active": True, "unbondAt": 0} in listed

    left = modelhub(hub_env, "relayer", "unbond", account=OPERATOR)
    assert left.returncode == 0, left.stderr
    assert "is unbonding: inactive now" in left.stdout and "can be withdrawn from" in left.stdout
    assert "modelhub relayer withdraw-bond" in left.stdout
    status = ok_json(modelhub(hub_env, "relayer", "status", me, "--json"))
    assert (status["active"], status["unbonding"]) == (False, True)
    # The exact moment, and the time left as the CLI counted it: the delay less the second or
    # two the command took after its transaction was mined (floored to the minute).
    assert f"can be withdrawn from {utc(status['unbondAt'])} (in " in left.stdout
    assert re.search(rf"\(in ({UNBOND_DELAY // 3600} h|{UNBOND_DELAY // 3600 - 1} h 59 min)\)", left.stdout)
    assert 0 < status["unbondSecondsLeft"] <= UNBOND_DELAY

    # Too early: refused with the time left, and nothing moves.
    fails(modelhub(hub_env, "relayer", "withdraw-bond", account=OPERATOR), 1,
          "can be withdrawn from", "UTC (in ", "run `modelhub relayer withdraw-bond` again then")
    fails(modelhub(hub_env, "relayer", "bond", "1", account=OPERATOR), 1, "is unbonding", "withdraw-bond")
    fails(modelhub(hub_env, "relayer", "unbond", account=OPERATOR), 1, "is unbonding already")
    fails(run_relayer(hub_env, OPERATOR, tmp_path), 1, "is unbonding and may serve no more",
          "modelhub relayer withdraw-bond", "modelhub relayer register --endpoint URL --bond AMOUNT")
    assert ok_json(modelhub(hub_env, "balance", "--json", account=OPERATOR))["wallet"] == str(99_500 * TOKEN // 1000)

    hub_env["anvil"].advance_time(UNBOND_DELAY + 1)
    withdrawn = ok_json(modelhub(hub_env, "relayer", "withdraw-bond", "--json", account=OPERATOR))
    assert withdrawn["withdrawn"] == str(MIN_BOND + TOKEN // 2) and withdrawn["wallet"] == str(200 * TOKEN)
    gone = ok_json(modelhub(hub_env, "relayer", "status", "--json", account=OPERATOR))
    assert (gone["registered"], gone["bond"], gone["active"]) == (False, "0", False)
    fails(modelhub(hub_env, "relayer", "withdraw-bond", account=OPERATOR), 1, "is not a registered relayer",
          "modelhub relayer register")


def test_relayer_run_refuses_to_start_unregistered_and_says_what_to_run(hub_env, tmp_path):
    line = fails(run_relayer(hub_env, NEWCOMER, tmp_path), 1, f"{ADDRESSES[NEWCOMER]} is not a registered relayer",
                 "modelhub relayer register --endpoint URL --bond AMOUNT", "at least 100 tOPG")
    assert "relayer_register" not in line and "Hub." not in line  # no SDK names at the command line
    assert not (tmp_path / "store").exists()  # it did not get as far as making its store


def test_relayer_run_refuses_a_bond_below_the_minimum_until_bond_tops_it_up(hub_env, tmp_path):
    registry = hub_env["deployment"]["RelayerRegistry"]
    ok_json(modelhub(hub_env, "faucet", "300", "--json", account=NEWCOMER))
    ok_json(modelhub(hub_env, "relayer", "register", "--endpoint", "http://127.0.0.1:8789", "--json",
                     account=NEWCOMER))  # the minimum, by default
    # The owner raises the minimum; it applies one unbonding delay later.
    cast_send(hub_env, DEPLOYER, registry, "setMinBond(uint256)", str(150 * TOKEN))
    assert ok_json(modelhub(hub_env, "relayer", "status", "--json", account=NEWCOMER))["active"] is True
    hub_env["anvil"].advance_time(UNBOND_DELAY + 1)
    try:
        status = modelhub(hub_env, "relayer", "status", account=NEWCOMER).stdout
        assert "active     no: the bond is below the minimum of 150 tOPG" in status, status
        fails(run_relayer(hub_env, NEWCOMER, tmp_path), 1, "below the minimum of 150 tOPG",
              "`modelhub relayer bond 50`")
        topped = ok_json(modelhub(hub_env, "relayer", "bond", "50", "--json", account=NEWCOMER))
        assert topped["bond"] == str(150 * TOKEN) and topped["active"] is True
    finally:
        cast_send(hub_env, DEPLOYER, registry, "setMinBond(uint256)", str(MIN_BOND))  # a cut applies at once


def test_bad_relayer_input_gets_one_line_and_changes_nothing(hub_env):
    for args in (["register", "--endpoint", "ftp://127.0.0.1"], ["register", "--endpoint", "127.0.0.1:8700"],
                 ["bond", "0"], ["bond", "lots"], ["status", "not-an-address"], ["bond", "-5"]):
        result = modelhub(hub_env, "relayer", *args, account=STRANGER)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
    fails(modelhub(hub_env, "relayer", "register", "--endpoint", "http://127.0.0.1:8700", "--bond", "99.9",
                   account=STRANGER), 1, "below the minimum of 100 tOPG", "--bond 100")
    fails(modelhub(hub_env, "relayer", "register", "--endpoint", "http://127.0.0.1:8700", "--bond", "10000",
                   account=STRANGER), 1, "holds", "modelhub faucet")
    fails(modelhub(hub_env, "relayer", "unbond", account=STRANGER), 1, "is not a registered relayer")
    assert ok_json(modelhub(hub_env, "relayer", "status", ADDRESSES[STRANGER], "--json"))["registered"] is False
