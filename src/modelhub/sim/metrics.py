"""What a run says: headline figures computed from the days and the agents (who entered, who
earned, caller surplus, relayer margin, the uploader earnings Gini) and whether the loop took off.

The criterion (docs/simulator.md), over the last `w` days against the first `w` (w = 30, or a third
of a shorter run): paid calls per day at least doubled, at least as many models are active as
after the first `w` days, good models took most of the calls, most established good models
earned their running costs, and relayers' fees covered their costs.
"""

from __future__ import annotations

import numpy as np

from .market import Market
from .scenario import TOKEN

GROWTH = 2.0  # paid calls per day must at least double
GOOD_MAJORITY = 0.5  # good models' share of the calls at the end


def gini(values: np.ndarray) -> float:
    """The Gini coefficient of non-negative `values`: 0 all equal, towards 1 one takes all."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0 or x.sum() <= 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * x).sum()) / (n * x.sum()) - (n + 1) / n)


def lorenz(values: np.ndarray) -> tuple[list[float], list[float]]:
    """The Lorenz curve of `values`: shares of agents (poorest first) and of the total."""
    x = np.sort(np.asarray(values, dtype=float))
    if len(x) == 0 or x.sum() <= 0:
        return [0.0, 1.0], [0.0, 1.0]
    people = np.arange(0, len(x) + 1) / len(x)
    wealth = np.concatenate([[0.0], np.cumsum(x) / x.sum()])
    return people.tolist(), wealth.tolist()


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def took_off(market: Market) -> dict:
    """The loop's verdict, with each of its conditions and the figures behind them."""
    days, u = market.days, market.u
    w = window_days(len(days))
    first, last = days[:w], days[-w:]
    calls_first = sum(d.calls for d in first) / w
    calls_last = sum(d.calls for d in last) / w
    demand = calls_last >= GROWTH * calls_first and calls_last > 0
    supply = days[-1].active_models >= first[-1].active_models and days[-1].active_models > 0
    good_share = _share(sum(d.calls_good for d in last), sum(d.calls for d in last))
    quality = good_share > GOOD_MAJORITY
    # Established good models: active, good, at least a window old; paid: the window earned a month's costs.
    established = ((u.entered >= 0) & (u.left < 0) & (u.quality >= market.s.uploaders.quality.good_threshold)
                   & (len(days) - u.entered >= w))
    earned = market.recent_earnings(w) * (30 / w)
    paid_share = _share(float((earned[established] >= u.monthly_cost[established]).sum()), float(established.sum()))
    uploading = paid_share >= GOOD_MAJORITY and established.any()
    fees = sum(d.relayer_earned for d in last)
    serving = fees > sum(d.relayer_costs for d in last)
    return {
        "took_off": bool(demand and supply and quality and uploading and serving), "window_days": w,
        "demand_grew": bool(demand), "calls_per_day_first": calls_first, "calls_per_day_last": calls_last,
        "supply_held": bool(supply), "active_models_after_first_window": first[-1].active_models,
        "active_models_at_end": days[-1].active_models,
        "good_models_won": bool(quality), "good_call_share_last": good_share,
        "uploading_paid": bool(uploading), "established_good_models": int(established.sum()),
        "established_good_paid_share": paid_share,
        "serving_paid": bool(serving), "relayer_margin_last": _share(fees - sum(d.relayer_costs for d in last), fees),
    }


def window_days(days: int) -> int:
    """The first and last stretch a run's verdict compares: 30 days, or a third of a shorter run."""
    return max(1, min(30, days // 3))


def summary(market: Market) -> dict:
    """The headline figures of a finished run (floats in tokens where amounts)."""
    days, u, s = market.days, market.u, market.s
    entered = u.entered >= 0
    good = u.quality >= s.uploaders.quality.good_threshold
    w = window_days(len(days))
    last = days[-w:]
    earned = u.earned[entered]
    months_active = np.where(u.left >= 0, u.left, len(days)) - u.entered
    costs = u.upload_cost + u.monthly_cost * months_active / 30
    profit = (u.earned - costs)[entered]
    n = market.n_callers
    calls = sum(d.calls for d in days)
    paid = sum(d.paid for d in days)
    surplus = market.c_surplus[:n]
    joined = market.r_joined >= 0
    r_earned, r_costs = market.r_earned[joined], market.r_costs[joined]
    active_good = (u.left < 0) & entered & good
    return {
        "verdict": took_off(market),
        "models": {
            "entered": int(entered.sum()), "left": int((u.left >= 0).sum()), "active_at_end": days[-1].active_models,
            "good_entered": int((entered & good).sum()), "good_active_at_end": int(active_good.sum()),
            "good_with_calls_last_window": _good_with_calls(market, w),
            "potential_good": int(good.sum()), "potential": len(u.quality),
        },
        "calls": {
            "total": calls, "per_day_last_window": sum(d.calls for d in last) / w,
            "share_to_good": _share(sum(d.calls_good for d in days), calls),
            "share_to_good_last_window": _share(sum(d.calls_good for d in last), sum(d.calls for d in last)),
            "share_to_top_tenth": _share(sum(d.calls_top for d in days), calls),
        },
        "uploaders": {
            "earned": float(earned.sum()) / TOKEN, "gini": gini(earned),
            "share_of_earnings_to_good": _share(sum(d.payee_earned_good for d in days), sum(d.payee_earned for d in days)),
            "share_of_earnings_to_top_tenth": _share(sum(d.payee_earned_top for d in days),
                                                      sum(d.payee_earned for d in days)),
            "profitable_share": _share(float((profit > 0).sum()), float(entered.sum())),
            "median_profit": float(np.median(profit)) / TOKEN if len(profit) else 0.0,
            "top_tenth_quality": market.top_quality,
        },
        "callers": {
            "arrived": n, "active_at_end": days[-1].active_callers,
            "paid": paid / TOKEN, "value": sum(d.caller_value for d in days) / TOKEN,
            "surplus": float(surplus.sum()) / TOKEN,
            "surplus_per_call": _share(float(surplus.sum()), calls) / TOKEN,
            "positive_share": _share(float((surplus > 0).sum()), float(n)),
        },
        "relayers": {
            "bonded": int(joined.sum()), "earned": float(r_earned.sum()) / TOKEN, "costs": float(r_costs.sum()) / TOKEN,
            "margin": _share(float(r_earned.sum() - r_costs.sum()), float(r_earned.sum())),
            "profitable": int((r_earned > r_costs).sum()),
        },
        "treasury": {"earned": sum(d.treasury_earned for d in days) / TOKEN},
    }


def _good_with_calls(market: Market, window: int) -> int:
    """Good models with at least one repeat caller over the last window: the good ones found."""
    repeat = market.board.signal("repeat_callers", "30d" if window >= 30 else "7d", len(market.days))
    good = market.u.quality >= market.s.uploaders.quality.good_threshold
    return int(((repeat > 0) & good & (market.u.entered >= 0)).sum())
