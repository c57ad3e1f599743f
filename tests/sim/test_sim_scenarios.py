"""Scenario files: the bundled ones validate, and a bad file is refused with an error that
names the field, from Python and from `modelhub sim check`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from modelhub.cli.sim import sim
from modelhub.sim import scenario as scenarios
from modelhub.sim.scenario import ScenarioError


def _refusal(tmp_path, text: str, suffix: str = ".toml") -> str:
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        scenarios.load(str(path))
    return str(caught.value)


def test_every_bundled_scenario_validates():
    names = scenarios.bundled_names()
    assert {"defaults", "random-discovery", "high-fee", "low-fee", "many-bad-models", "cold-start", "small"} <= set(names)
    for name in names:
        assert scenarios.load(name).name == name


def test_the_defaults_scenario_uses_the_deployment_defaults():
    from modelhub.deployments import DeployParams

    params = scenarios.load("defaults").protocol.deploy_params()
    assert params == DeployParams()


def test_a_value_of_the_wrong_type_is_refused_naming_its_field(tmp_path):
    message = _refusal(tmp_path, 'name = "x"\n[callers]\ncalls_per_day = "many"\n')
    assert "callers.calls_per_day" in message and "valid number" in message


def test_a_fee_beyond_the_contracts_cap_is_refused(tmp_path):
    message = _refusal(tmp_path, 'name = "x"\n[protocol]\nprotocol_fee_bps = 1500\n')
    assert "protocol.protocol_fee_bps" in message and "1000" in message


def test_a_misspelt_field_is_refused_rather_than_ignored(tmp_path):
    message = _refusal(tmp_path, 'name = "x"\n[uploaders]\nupload_costs = 3\n')
    assert "uploaders.upload_costs" in message and "Extra inputs" in message


def test_payee_shares_must_sum_to_ten_thousand(tmp_path):
    message = _refusal(tmp_path, 'name = "x"\n[uploaders]\npayee_shares = [5000, 4000]\n')
    assert "uploaders" in message and "payee_shares" in message and "10000" in message


def test_a_missing_name_and_a_bad_yaml_discovery_are_both_named(tmp_path):
    message = _refusal(tmp_path, "callers:\n  discovery: gossip\n", ".yaml")
    assert "name: Field required" in message
    assert "callers.discovery" in message and "'signals' or 'random'" in message


def test_a_file_that_does_not_parse_says_so(tmp_path):
    assert "cannot be parsed" in _refusal(tmp_path, "name = [unclosed\n")


def test_an_unknown_scenario_lists_the_bundled_ones():
    with pytest.raises(ScenarioError, match="bundled: .*defaults"):
        scenarios.load("no-such-scenario")


def test_sweep_overrides_take_dotted_or_unique_bare_names_and_are_validated():
    base = scenarios.load("small")
    assert base.with_overrides({"protocol_fee_bps": "100"}).protocol.protocol_fee_bps == 100
    assert base.with_overrides({"callers.discovery": "random"}).callers.discovery == "random"
    with pytest.raises(ScenarioError, match="ambiguous"):
        base.with_overrides({"initial": "3"})
    with pytest.raises(ScenarioError, match="protocol.relayer_fee_bps"):
        base.with_overrides({"relayer_fee_bps": "4000"})


def test_the_sim_commands_are_part_of_the_modelhub_command():
    from modelhub.cli import cli

    assert set(cli.commands["sim"].commands) == {"run", "sweep", "list", "check"}


def test_modelhub_sim_check_reports_the_bad_field_and_fails(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ndays = 0\n')
    result = CliRunner().invoke(sim, ["check", str(bad)])
    assert result.exit_code != 0
    assert "days" in str(result.exception) and "greater than or equal to 1" in str(result.exception)
    good = CliRunner().invoke(sim, ["check", "small"])
    assert good.exit_code == 0 and "valid scenario 'small'" in good.output
