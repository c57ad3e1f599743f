"""Reports: a seed gives the same report byte for byte (JSON, HTML and every PNG), another seed
another one; sweeps compare their runs; the command line writes both."""

from __future__ import annotations

import json

from click.testing import CliRunner

from modelhub.cli.sim import sim
from modelhub.sim.report import write_run, write_sweep
from modelhub.sim.run import simulate, sweep

from tests.support.sim import report_files, tiny


def test_the_same_seed_gives_the_same_report_byte_for_byte(tmp_path):
    scenario = tiny()
    write_run(simulate(scenario, seed=5), tmp_path / "a")
    write_run(simulate(scenario, seed=5), tmp_path / "b")
    write_run(simulate(scenario, seed=6), tmp_path / "c")
    a, b, c = (report_files(tmp_path / name) for name in "abc")
    assert set(a) >= {"report.json", "report.html", "figures/models.png", "figures/calls.png", "figures/earnings.png",
                      "figures/callers.png", "figures/relayers.png", "figures/prices.png"}
    assert a == b
    assert a["report.json"] != c["report.json"]


def test_the_report_holds_the_headline_figures_and_the_exact_balances(tmp_path):
    outcome = simulate(tiny())
    html_path = write_run(outcome, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["balances"] == outcome.balances
    assert set(report["summary"]) == {"verdict", "models", "calls", "uploaders", "callers", "relayers", "treasury"}
    assert 0 <= report["summary"]["uploaders"]["gini"] <= 1
    assert len(report["days"]) == outcome.scenario.days
    page = html_path.read_text()
    assert "The loop" in page and "figures/models.png" in page and "uploaders.gini" in page


def test_a_sweep_runs_every_value_with_the_same_seeds_and_compares_their_means(tmp_path):
    points = sweep(tiny(days=20), [("protocol_fee_bps", ["0", "1000"])], seed=4, seeds=2)
    assert [point.overrides for point in points] == [{"protocol_fee_bps": "0"}, {"protocol_fee_bps": "1000"}]
    assert [[run.seed for run in point.runs] for point in points] == [[4, 5], [4, 5]]
    free, dear = points
    assert free.summary["treasury"]["earned"] == 0 < dear.summary["treasury"]["earned"]
    calls = [run.summary["calls"]["total"] for run in dear.runs]
    assert dear.summary["calls"]["total"] == sum(calls) / 2
    assert 0 <= dear.summary["verdict"]["took_off"] <= 1  # the share of seeds where it took off
    page = write_sweep("tiny", points, tmp_path)
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["seeds"] == [4, 5]
    assert [p["overrides"] for p in data["points"]] == [{"protocol_fee_bps": "0"}, {"protocol_fee_bps": "1000"}]
    for point in data["points"]:
        assert (tmp_path / point["folder"] / "report.html").is_file() and len(point["runs"]) == 2
    assert (tmp_path / "sweep.png").is_file() and "protocol_fee_bps=1000" in page.read_text()


def test_modelhub_sim_run_and_sweep_write_their_reports(tmp_path):
    runner = CliRunner()
    ran = runner.invoke(sim, ["run", "small", "--days", "6", "--out", str(tmp_path / "run")])
    assert ran.exit_code == 0, ran.output
    assert "report:" in ran.output and (tmp_path / "run" / "report.html").is_file()
    swept = runner.invoke(sim, ["sweep", "small", "--days", "6", "--param", "callers.discovery=signals,random",
                                "--out", str(tmp_path / "sweep"), "--quiet"])
    assert swept.exit_code == 0, swept.output
    assert "callers.discovery=random: took off in" in swept.output and (tmp_path / "sweep" / "sweep.html").is_file()
