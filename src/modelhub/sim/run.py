"""Running scenarios: one run in the fast or the chain mode, and sweeps over parameters; each
returns what the report needs (days, headline figures, final balances) and its wall time.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ModelHubError
from .market import Day, Market
from .metrics import summary
from .scenario import Scenario

MODES = ("fast", "chain")


@dataclass
class Outcome:
    """One finished run."""

    scenario: Scenario
    mode: str
    seed: int
    market: Market
    balances: dict
    summary: dict
    seconds: float  # wall time of the run (not in the report: reports are reproducible)
    receipts_signed: int = 0  # chain mode: one per call
    transactions: int = 0  # chain mode: every transaction the run sent

    @property
    def days(self) -> list[Day]:
        return self.market.days

    @property
    def calls(self) -> int:
        return sum(d.calls for d in self.market.days)

    def as_json(self) -> dict:
        return {
            "scenario": self.scenario.model_dump(mode="json"), "mode": self.mode, "seed": self.seed,
            "summary": self.summary, "balances": self.balances, "days": [asdict(d) for d in self.days],
        }


def simulate(scenario: Scenario, mode: str = "fast", seed: int | None = None,
             progress: Callable[[Day], None] | None = None,
             on_day: Callable[[Market, Day], None] | None = None) -> Outcome:
    """Runs `scenario` (with `seed`, else the scenario's); conservation is checked after every day."""
    if mode not in MODES:
        raise ModelHubError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    seed = scenario.seed if seed is None else seed

    def each_day(market: Market, day: Day) -> None:
        market.ledger.check_conservation()
        if on_day is not None:
            on_day(market, day)

    if mode == "fast":
        started = time.perf_counter()
        market = Market(scenario, seed=seed)
        market.run(progress, each_day)
        seconds = time.perf_counter() - started
        balances = market.ledger.balances(market.registration_order, market.bonding_order)
        return Outcome(scenario, mode, seed, market, balances, summary(market), seconds)

    from .chain import ChainDivergedError, deployed

    up, rel = scenario.uploaders, scenario.relayers
    with deployed(scenario, up.initial + up.potential, rel.initial + rel.potential) as ledger:
        started = time.perf_counter()
        market = Market(scenario, ledger=ledger, seed=seed)
        market.run(progress, each_day)
        balances = ledger.chain_balances(market.registration_order, market.bonding_order)
        seconds = time.perf_counter() - started
        transactions = ledger.transactions
    mirror = ledger.balances(market.registration_order, market.bonding_order)
    if balances != mirror:
        raise ChainDivergedError("the chain's balances at the end differ from the fast ledger's: "
                                 + _first_difference(balances, mirror))
    return Outcome(scenario, mode, seed, market, balances, summary(market), seconds, ledger.receipts_signed,
                   transactions)


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if a[key] != b.get(key):
                return _first_difference(a[key], b.get(key), f"{where}.{key}" if where else key)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{where}[{index}]")
    return f"{where}: chain {a!r}, fast {b!r}"


def parse_param(text: str) -> tuple[str, list[str]]:
    """"protocol_fee_bps=0,100,500" -> ("protocol_fee_bps", ["0", "100", "500"])."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise ModelHubError(f"--param wants NAME=VALUE[,VALUE...], not {text!r}")
    return name.strip(), [value.strip() for value in values.split(",")]


def grid(scenario: Scenario, params: list[tuple[str, list[str]]]) -> list[tuple[dict[str, str], Scenario]]:
    """Every combination of the swept values, each as (overrides, validated scenario)."""
    names = [name for name, _ in params]
    points = []
    for values in itertools.product(*(values for _, values in params)):
        overrides = dict(zip(names, values))
        points.append((overrides, scenario.with_overrides(overrides)))
    return points


@dataclass
class Point:
    """One point of a sweep: its overrides and a run per seed."""

    overrides: dict[str, str]
    runs: list[Outcome]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.overrides.items())

    @property
    def summary(self) -> dict:
        """The runs' headline figures, each the mean over the seeds (a yes/no: the share of yes)."""
        return mean_summary([run.summary for run in self.runs])


def mean_summary(summaries: list[dict]) -> dict:
    """Field by field means of summaries of the same shape."""
    first = summaries[0]
    if isinstance(first, dict):
        return {key: mean_summary([s[key] for s in summaries]) for key in first}
    return sum(float(s) for s in summaries) / len(summaries)


def sweep(scenario: Scenario, params: list[tuple[str, list[str]]], seed: int | None = None, seeds: int = 1,
          progress: Callable[[str], None] | None = None) -> list[Point]:
    """Runs the scenario in the fast mode at every point of the grid, each with the same
    `seeds` seeds (from `seed`, else the scenario's, counting up)."""
    first = scenario.seed if seed is None else seed
    points = []
    grid_points = grid(scenario, params)
    for number, (overrides, point) in enumerate(grid_points, 1):
        if progress is not None:
            progress(f"[{number}/{len(grid_points)}] " + ", ".join(f"{k}={v}" for k, v in overrides.items())
                     + (f" ({seeds} seeds)" if seeds > 1 else ""))
        points.append(Point(overrides, [simulate(point, "fast", first + k) for k in range(seeds)]))
    return points
