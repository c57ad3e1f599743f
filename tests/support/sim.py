"""What the simulator's tests share: small scenarios built in code, and reading a report folder."""

from __future__ import annotations

from pathlib import Path

from modelhub.sim.scenario import Scenario, load


def tiny(**sections) -> Scenario:
    """A market of a few dozen agents over a few weeks, with co-authors, price changes, leavers
    and odd fees, so that every money rule runs; `sections` override parts of it."""
    data = {
        "name": "tiny", "days": 40, "seed": 11, "tasks": 2,
        "protocol": {"protocol_fee_bps": 437, "relayer_fee_bps": 1_111, "price_notice_period": 40_000},
        "uploaders": {"initial": 4, "potential": 30, "consider_per_day": 0.1, "price": "0.00123",
                      "upload_cost": "0.05", "monthly_cost": "0.05", "prior_monthly_earnings": "0.2",
                      "grace_days": 10, "reprice_every_days": 4, "reprice_step": 0.2,
                      "payee_shares": [5_000, 3_333, 1_667], "withdraw_every_days": 9},
        "callers": {"initial": 30, "arrivals_per_day": 1.0, "calls_per_day": 15, "budget_per_month": "0.3",
                    "patience": 5, "leave_after_days": 8, "give_up_days": 4},
        "relayers": {"initial": 1, "potential": 3, "fixed_cost_per_day": "0.001", "settle_every_days": 3,
                     "withdraw_every_days": 7},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            data[section] = {**data.get(section, {}), **values}
        else:
            data[section] = values
    return Scenario.model_validate(data)


def small() -> Scenario:
    """The bundled scenario the chain mode is tested on."""
    return load("small")


def report_files(folder: Path) -> dict[str, bytes]:
    """Every file of a report folder, by path relative to it."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
