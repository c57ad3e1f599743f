"""How the simulator's agents decide: uploaders entering, leaving and repricing, callers picking
and dropping models and leaving, relayers bonding. Pure functions over arrays (one row per agent).

Amounts are in base units (floats where they only feed a decision); the tests try each rule on
hand-made cases, and docs/simulator.md states them in words.
"""

from __future__ import annotations

import numpy as np

from ..feesplit import BPS

MONTH_DAYS = 30
MIN_ESTABLISHED = 3  # established models needed before uploaders trust the hub's figures over their prior


def expected_monthly_earnings(established: np.ndarray, quantile: float, prior: float) -> float:
    """What a would-be uploader of a task expects to earn per 30 days (before its own optimism):
    the `quantile` of what the task's established models earned in the last 30 days, or the
    prior while fewer than MIN_ESTABLISHED exist."""
    if len(established) < MIN_ESTABLISHED:
        return prior
    return float(np.quantile(established, quantile))


def uploader_enters(expected_monthly: np.ndarray | float, upload_cost: np.ndarray, monthly_cost: np.ndarray,
                    horizon_days: int) -> np.ndarray:
    """Enter when the earnings expected over the horizon beat the upload cost plus running costs."""
    months = horizon_days / MONTH_DAYS
    return np.asarray(expected_monthly) * months > upload_cost + monthly_cost * months


def uploader_leaves(age_days: np.ndarray, earnings_30d: np.ndarray, monthly_cost: np.ndarray,
                    grace_days: int) -> np.ndarray:
    """Leave (deactivate the model) once past the grace period, when the last 30 days earned
    less than a month of running costs."""
    return (age_days >= grace_days) & (earnings_30d < monthly_cost)


def reprice(price: np.ndarray, direction: np.ndarray, revenue_now: np.ndarray, revenue_before: np.ndarray,
            step: float) -> tuple[np.ndarray, np.ndarray]:
    """Hill-climbing on revenue: keep moving the price the same way while the last period earned
    at least the one before, turn around when it earned less. Integer prices (base units),
    never below 1. Returns (new prices, new directions)."""
    direction = np.where(revenue_now < revenue_before, -direction, direction)
    step_bps = int(round(step * BPS))
    factor = np.where(direction > 0, BPS + step_bps, BPS - step_bps).astype(object)
    new = (np.asarray(price, dtype=object) * factor) // BPS
    return np.maximum(new, 1), direction


def pick_models(eligible: np.ndarray, explore: np.ndarray, position: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """For each caller (row), the column of the model it picks, or -1 when none is eligible.

    Columns are the hub's list in its order (best first). A caller that explores picks
    uniformly (`uniform` in [0, 1)) among its eligible models; otherwise it goes down the list
    and stops at its `position`-th eligible model (0: the first), or at the last one."""
    count = eligible.sum(axis=1)
    explored = np.minimum((uniform * count).astype(np.int64), np.maximum(count - 1, 0))
    target = np.where(explore, explored, np.minimum(position, np.maximum(count - 1, 0)))
    ranks = np.cumsum(eligible, axis=1)
    chosen = np.argmax(ranks > target[:, None], axis=1)
    return np.where(count > 0, chosen, -1)


def drops_model(good: np.ndarray, bad: np.ndarray, patience: int, tolerance: float) -> np.ndarray:
    """A caller drops a model for good once it has judged `patience` calls and more than
    `tolerance` of its outputs were bad."""
    judged = good + bad
    return (judged >= patience) & (bad > tolerance * judged)


def caller_leaves(age_days: np.ndarray, recent_surplus: np.ndarray, idle_days: np.ndarray,
                  leave_after_days: int, give_up_days: int) -> np.ndarray:
    """A caller leaves when, after `leave_after_days`, its recent surplus is negative, or when
    it has found no model worth calling for `give_up_days`."""
    return ((age_days >= leave_after_days) & (recent_surplus < 0)) | (idle_days >= give_up_days)


def relayer_margin_per_day(fees_per_day: float, calls_per_day: float, relayers: int, cost_per_call: float,
                           fixed_cost_per_day: float, bond: float, capital_cost_per_year: float) -> float:
    """A relayer's daily margin when `relayers` share the recent fees and calls evenly."""
    share = 1.0 / relayers
    capital = bond * capital_cost_per_year / 365
    return fees_per_day * share - calls_per_day * share * cost_per_call - fixed_cost_per_day - capital


def relayer_joins(fees_per_day: float, calls_per_day: float, active: int, cost_per_call: float,
                  fixed_cost_per_day: float, bond: float, capital_cost_per_year: float) -> bool:
    """Bond when serving pays: the margin with one more relayer sharing the recent market is positive."""
    return relayer_margin_per_day(fees_per_day, calls_per_day, active + 1, cost_per_call, fixed_cost_per_day,
                                  bond, capital_cost_per_year) > 0
