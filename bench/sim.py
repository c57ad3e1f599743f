"""The market simulator's speed: paid calls per minute in the fast mode (the issue asks for at
least 1,000,000 on this machine) and paid calls per second in the chain mode (every receipt
signed, settled in batches on a local anvil), side by side in one run.

The fast mode runs the bundled `defaults` and `many-bad-models` scenarios; the chain mode runs
`small` as shipped and with ten times the calls per caller (the same agents: the chain's cost is
per transaction, and receipts batch calls). Chain times include every transaction, not anvil's
start or the deployment; no time includes writing reports. Run with `make bench-sim`; results
also go to bench/results/sim.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from modelhub.sim.run import simulate
from modelhub.sim.scenario import load

ROOT = Path(__file__).resolve().parents[1]
FAST_SCENARIOS = ("defaults", "many-bad-models")
CHAIN_SCENARIO = "small"
CHAIN_VARIANTS = ({}, {"callers.calls_per_day": "60", "callers.budget_per_month": "2"})
TARGET_PER_MINUTE = 1_000_000


def main() -> int:
    results: dict = {"cpus": os.cpu_count(), "fast": [], "target_per_minute": TARGET_PER_MINUTE}
    for name in FAST_SCENARIOS:
        outcome = simulate(load(name))
        row = {"scenario": name, "days": outcome.scenario.days, "calls": outcome.calls,
               "seconds": round(outcome.seconds, 3), "calls_per_minute": round(outcome.calls / outcome.seconds * 60)}
        results["fast"].append(row)
        print(f"fast {name}: {row['calls']:,} paid calls in {row['seconds']} s", file=sys.stderr)
    results["chain"] = []
    for overrides in CHAIN_VARIANTS:
        print(f"chain {CHAIN_SCENARIO} {overrides or ''}: starting anvil ...", file=sys.stderr)
        chain = simulate(load(CHAIN_SCENARIO).with_overrides(overrides), "chain")
        results["chain"].append({
            "scenario": CHAIN_SCENARIO, "overrides": overrides, "days": chain.scenario.days, "calls": chain.calls,
            "transactions": chain.transactions, "seconds": round(chain.seconds, 3),
            "calls_per_second": round(chain.calls / chain.seconds, 1)})
    slowest = min(row["calls_per_minute"] for row in results["fast"])
    fastest_chain = max(row["calls_per_second"] for row in results["chain"])
    results["ratio_fast_to_chain"] = round(slowest / 60 / fastest_chain)

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sim.json").write_text(json.dumps(results, indent=2) + "\n")

    print("| mode | scenario | days | paid calls | transactions | seconds | paid calls per minute | per second |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in results["fast"]:
        print(f"| fast | {row['scenario']} | {row['days']} | {row['calls']:,} | | {row['seconds']} | "
              f"{row['calls_per_minute']:,} | {row['calls_per_minute'] / 60:,.0f} |")
    for c in results["chain"]:
        name = c["scenario"] + "".join(f", {k}={v}" for k, v in c["overrides"].items())
        print(f"| chain | {name} | {c['days']} | {c['calls']:,} | {c['transactions']:,} | {c['seconds']} | "
              f"{c['calls_per_second'] * 60:,.0f} | {c['calls_per_second']:,} |")
    print(f"\nfast mode / chain mode: {results['ratio_fast_to_chain']:,}x (the slowest fast run against the "
          "fastest chain run)")
    met = slowest >= TARGET_PER_MINUTE
    print(f"target of {TARGET_PER_MINUTE:,} paid calls per minute in the fast mode: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
