"""What the command line says, as a user reads it: amounts as tokens and base units, huge and
negative amounts, an unset RPC variable, `withdraw` without credit, and `--help` of every
command free of Ape's own texts. `modelhub` runs as a subprocess on an anvil of the module's own."""

from __future__ import annotations

import click
import pytest

from modelhub.cli import cli
from tests.cli.test_cli import (  # the module's anvil, deployment and subprocess helpers
    IRIS,
    UPLOADER,
    cast,
    fails,
    hub_env,  # noqa: F401  (a fixture)
    modelhub,
    ok_json,
)

BROKE, MINTER = 5, 6  # TEST::<n> accounts of this module
UINT256_MAX = 2**256 - 1


@pytest.fixture(scope="module")
def model(hub_env) -> int:
    return ok_json(modelhub(hub_env, "models", "upload", str(IRIS), "--name", "iris", "--price", "0.01",
                            "--json", account=UPLOADER))["modelId"]


def test_amounts_in_errors_are_tokens_and_base_units(hub_env, model):
    result = modelhub(hub_env, "infer", str(model), '{"X": [[5.1, 3.5, 1.4, 0.2]]}', account=BROKE)
    fails(result, 1, "has 0 tOPG (0) in credit but this needs 0.01 tOPG (10000000000000000)",
          "deposit 0.01 tOPG (10000000000000000) more first (`modelhub deposit`)")
    assert "waiting for a relayer" not in result.stderr  # refused before it was paid
    fails(modelhub(hub_env, "deposit", "2", account=BROKE), 1,
          "holds 0 tOPG (0) but wants to deposit 2 tOPG (2000000000000000000)", "`modelhub faucet`")
    fails(modelhub(hub_env, "models", "price", str(model), "1e30", account=UPLOADER), 1,
          f"the price {10**30} tOPG ({10**48})",
          "cap of 340282366920938463463.374607431768211455 tOPG (340282366920938463463374607431768211455)")


def test_huge_amounts_are_too_large_with_the_maximum(hub_env, model):
    most = "115792089237316195423570985008687907853269984665640564039457.584007913129639935 tOPG"
    for command in (("faucet", "1e75"), ("models", "price", str(model), "1e60"), ("deposit", "1e80")):
        line = fails(modelhub(hub_env, *command, account=UPLOADER), 1, "is too large (max ", most)
        assert "Encoder" not in line and "Value" not in line
    # Under 2**256, but past what the token's supply can still grow by.
    ok_json(modelhub(hub_env, "faucet", "1", "--json", account=MINTER))
    supply = int(cast(hub_env, "call", hub_env["deployment"]["token"], "totalSupply()(uint256)").split()[0])
    line = fails(modelhub(hub_env, "faucet", f"{UINT256_MAX}wei", account=MINTER), 1, "is too large (max ",
                 f"({UINT256_MAX - supply}))", "supply")
    assert "Panic" not in line


def test_negative_numbers_are_refused_as_such_not_as_options(hub_env, model):
    for command in (("deposit", "-1"), ("withdraw", "-0.5"), ("faucet", "-3wei"),
                    ("infer", str(model), "{}", "--max-price", "-1"), ("models", "price", str(model), "-2")):
        result = modelhub(hub_env, *command, account=BROKE)
        assert result.returncode == 2, result.stderr
        assert "negative numbers are not accepted" in result.stderr and "No such option" not in result.stderr


def test_withdraw_without_credit_does_not_suggest_depositing(hub_env):
    line = fails(modelhub(hub_env, "withdraw", "1", account=BROKE), 1, "has no free credit to withdraw",
                 "1 tOPG (1000000000000000000)")
    assert "deposit" not in line
    fails(modelhub(hub_env, "withdraw", "0", account=BROKE), 1, "zero", "positive amount")


def test_an_unset_node_url_variable_says_which_to_set(hub_env):
    env = {key: value for key, value in hub_env["env"].items() if key != "MODELHUB_SEPOLIA_RPC"}
    result = modelhub({**hub_env, "env": env}, "balance", "--network", "ethereum:sepolia:node", network=False)
    line = fails(result, 3, "MODELHUB_SEPOLIA_RPC, which is not set", "export MODELHUB_SEPOLIA_RPC=https://")
    assert "$MODELHUB_SEPOLIA_RPC" not in line


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_and_option_has_help_of_its_own(hub_env):
    commands = list(_commands(cli))
    assert len(commands) > 25
    for path, command in commands:
        shown = modelhub(hub_env, *path, "--help", network=False)
        assert shown.returncode == 0, (path, shown.stderr)
        for leak in ("provide settings", "[ecosystem-name]", "network-name", "provider-name"):
            assert leak not in shown.stdout, (path, leak)
        # Ape adds --provider-settings when the command is parsed; it carries our help by then.
        for option in (p for p in command.params if isinstance(p, click.Option)):
            assert option.help or option.hidden or option.name == "help", (path, option.name)
            assert option.help is None or option.help.strip(), (path, option.name)
    up = modelhub(hub_env, "up", "--help", network=False).stdout
    assert "--relayer-port" in up and "Port of the relayer's HTTP API" in up
    assert "OWNER/NAME" in modelhub(hub_env, "--help", network=False).stdout
