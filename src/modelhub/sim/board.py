"""What the hub's model list shows inside the simulator: each model's signals (paid calls,
revenue, distinct callers, repeat callers) over a window, counted by settlement day as
modelhub.indexer.signals defines them, and the list ordered by one of them.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..indexer import WINDOWS


class SignalBoard:
    """Settled receipts, day by day, and the signals they add up to."""

    def __init__(self, models: int) -> None:
        self.models = models
        longest = max(days for days in WINDOWS.values() if days is not None)
        self._days: deque[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = deque(maxlen=longest)
        self.calls_all = np.zeros(models, dtype=np.int64)
        self.revenue_all = np.zeros(models)
        # Every (caller, model) pair ever settled, with the number of its settlement days (at most 2).
        self._pairs_all = np.zeros(0, dtype=np.int64)
        self._pair_days_all = np.zeros(0, dtype=np.int64)
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def record(self, day: int, callers: np.ndarray, models: np.ndarray, calls: np.ndarray, paid: np.ndarray) -> None:
        """One day's settlements: a channel (caller, model) per row, with the calls it added and what it paid."""
        calls_by_model = np.bincount(models, weights=calls, minlength=self.models).astype(np.int64)
        revenue_by_model = np.bincount(models, weights=paid.astype(float), minlength=self.models)
        pairs = np.unique(callers.astype(np.int64) * self.models + models)
        self._days.append((day, pairs, calls_by_model, revenue_by_model))
        self.calls_all += calls_by_model
        self.revenue_all += revenue_by_model
        merged = np.concatenate([self._pairs_all, pairs])
        weights = np.concatenate([self._pair_days_all, np.ones(len(pairs), dtype=np.int64)])
        self._pairs_all, inverse = np.unique(merged, return_inverse=True)
        self._pair_days_all = np.minimum(np.bincount(inverse, weights=weights).astype(np.int64), 2)
        self._cache.clear()

    def signal(self, key: str, window: str, today: int) -> np.ndarray:
        """Per model, the signal `key` over `window` ("7d", "30d", "all") as of the start of `today`."""
        cached = self._cache.get((key, window))
        if cached is not None:
            return cached
        days = WINDOWS[window]
        if days is None:
            values = self._all_time(key)
        else:
            recent = [entry for entry in self._days if entry[0] >= today - days]
            values = self._windowed(key, recent)
        self._cache[(key, window)] = values
        return values

    def _all_time(self, key: str) -> np.ndarray:
        if key == "calls":
            return self.calls_all.astype(float)
        if key == "revenue":
            return self.revenue_all.copy()
        counted = self._pairs_all if key == "callers" else self._pairs_all[self._pair_days_all >= 2]
        return np.bincount(counted % self.models, minlength=self.models).astype(float)

    def _windowed(self, key: str, recent: list) -> np.ndarray:
        if key in ("calls", "revenue"):
            column = 2 if key == "calls" else 3
            total = np.zeros(self.models)
            for entry in recent:
                total += entry[column]
            return total
        if not recent:
            return np.zeros(self.models)
        pairs, days = np.unique(np.concatenate([entry[1] for entry in recent]), return_counts=True)
        counted = pairs if key == "callers" else pairs[days >= 2]  # repeat: paid on two days or more
        return np.bincount(counted % self.models, minlength=self.models).astype(float)


def listing(candidates: np.ndarray, scores: np.ndarray, model_ids: np.ndarray) -> np.ndarray:
    """`candidates` in the hub list's order: highest score first, then the older model (lower
    id), as `list_models` orders them."""
    order = np.lexsort((model_ids[candidates], -scores[candidates]))
    return candidates[order]
