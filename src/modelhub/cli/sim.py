"""`modelhub sim`: the market simulator from the command line: run a scenario (fast, or on a
local chain), sweep parameters, list and check scenario files; reports go to --out."""

from __future__ import annotations

from pathlib import Path

import click

SIM_DIR = Path("var/sim")


def _say(text: str) -> None:
    click.echo(text, err=True)


def _progress(total: int):
    every = max(1, total // 10)

    def show(day) -> None:
        if (day.day + 1) % every == 0 or day.day + 1 == total:
            _say(f"day {day.day + 1:>4}/{total}  models {day.active_models:>5} active ({day.active_good_models} good)  "
                 f"callers {day.active_callers:>6}  relayers {day.active_relayers:>3}  paid calls {day.calls:>9,}")
    return show


def _load(scenario: str, days: int | None):
    from modelhub.sim import scenario as scenarios

    loaded = scenarios.load(scenario)
    return loaded.with_overrides({"days": days}) if days is not None else loaded


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def sim() -> None:
    """Simulate the market: can the loop get going with these fees and these agents?

    Uploaders enter when expected earnings beat their costs and leave when not; callers find
    models through the hub's signals (or at random) and drop models whose outputs were bad for
    them; relayers bond when serving pays. Money moves by the contracts' rules: receipts,
    reservations, batch settlement, the fee split and its rounding, price notices.

    SCENARIO is a .toml or .yaml file, or the name of a bundled scenario (`modelhub sim list`).
    A seed gives the same report byte for byte. See docs/simulator.md.
    """


@sim.command("run")
@click.argument("scenario")
@click.option("--mode", type=click.Choice(["fast", "chain"]), default="fast", show_default=True,
              help="fast: in memory, thousands of agents over months. chain: every transaction on the "
                   "deployed contracts on a local anvil of its own (small scenarios; run from the checkout).")
@click.option("--seed", type=click.IntRange(0), default=None, help="Overrides the scenario's seed.")
@click.option("--days", type=click.IntRange(1), default=None, help="Overrides the scenario's length.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder (report.html, report.json, figures/). Default: var/sim/<scenario>.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def run_command(scenario: str, mode: str, seed: int | None, days: int | None, out: Path | None, quiet: bool) -> None:
    """Run one scenario and write its report.

    \b
    Examples:
      modelhub sim run defaults
      modelhub sim run cold-start --seed 7 --out var/sim/cold
      modelhub sim run small --mode chain
    """
    from modelhub.sim.report import write_run
    from modelhub.sim.run import simulate

    loaded = _load(scenario, days)
    if not quiet:
        _say(f"simulating {loaded.name}: {loaded.days} days, {mode} mode")
    outcome = simulate(loaded, mode, seed, progress=None if quiet else _progress(loaded.days))
    path = write_run(outcome, out or SIM_DIR / loaded.name)
    verdict = outcome.summary["verdict"]
    rate = outcome.calls / outcome.seconds if outcome.seconds else 0.0
    _say(f"{outcome.calls:,} paid calls in {outcome.seconds:.1f} s ({rate:,.0f} per second)")
    click.echo(f"the loop {'took off' if verdict['took_off'] else 'did not take off'}; report: {path}")


@sim.command("sweep")
@click.argument("scenario")
@click.option("--param", "params", multiple=True, required=True, metavar="NAME=V1,V2,...",
              help="A scenario field and the values to try, e.g. protocol_fee_bps=0,100,500 or "
                   "callers.discovery=signals,random. Repeat for a grid of every combination.")
@click.option("--seed", type=click.IntRange(0), default=None, help="Overrides the scenario's seed (the same for every point).")
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True,
              help="Runs per point, with seeds counting up from --seed; the report shows their means.")
@click.option("--days", type=click.IntRange(1), default=None, help="Overrides the scenario's length.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder (sweep.html, sweep.json, sweep.png, a folder per point). "
                   "Default: var/sim/<scenario>-sweep.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def sweep_command(scenario: str, params: tuple[str, ...], seed: int | None, seeds: int, days: int | None,
                  out: Path | None, quiet: bool) -> None:
    """Sweep parameters: a fast run per value, compared in one report.

    \b
    Examples:
      modelhub sim sweep defaults --param protocol_fee_bps=0,100,500,1000 --seeds 5
      modelhub sim sweep defaults --param callers.discovery=signals,random --param callers.explore=0,0.1
    """
    from modelhub.sim.report import write_sweep
    from modelhub.sim.run import parse_param, sweep

    loaded = _load(scenario, days)
    points = sweep(loaded, [parse_param(p) for p in params], seed, seeds, progress=None if quiet else _say)
    path = write_sweep(loaded.name, points, out or SIM_DIR / f"{loaded.name}-sweep")
    for point in points:
        took_off = sum(run.summary["verdict"]["took_off"] for run in point.runs)
        calls = sum(run.calls for run in point.runs) / len(point.runs)
        click.echo(f"{point.label}: took off in {took_off} of {len(point.runs)} runs, {calls:,.0f} paid calls per run")
    click.echo(f"report: {path}")


@sim.command("list")
def list_command() -> None:
    """The bundled scenarios, with what each asks."""
    from modelhub.sim import scenario as scenarios

    for name in scenarios.bundled_names():
        loaded = scenarios.load(name)
        click.echo(f"{name:<18} {loaded.description}")


@sim.command("check")
@click.argument("scenario")
def check_command(scenario: str) -> None:
    """Validate a scenario file; errors name the field."""
    loaded = _load(scenario, None)
    click.echo(f"{scenario}: valid scenario {loaded.name!r}, {loaded.days} days")
