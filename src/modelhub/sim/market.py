"""The simulated market, day by day: uploaders enter, reprice and leave, relayers bond, callers
arrive, top up reservations, pick models from the hub's list, pay by receipts and leave; the
ledger (fast, or on chain) moves the money. One seeded numpy Generator drives every draw.

Each day has fixed phases (seconds from the day's start), so the chain mode can put every
transaction at the time the fast mode assumed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import rules
from .board import SignalBoard, listing
from .ledger import Ledger, zeros
from .scenario import Scenario, wei

DAY = 86_400
PHASE_UPLOADERS = 0
PHASE_RELAYERS = 3_000
PHASE_CALLERS = 6_000
CALLS_START = 9_000  # calls are spread evenly over [CALLS_START, PHASE_SETTLE)
PHASE_SETTLE = 80_000
PHASE_RELEASE = 83_000
PHASE_ROOM = 3_000  # seconds of room a phase leaves for its transactions, one per second on chain
RELAYER_WINDOW = 7  # days of fees and calls a would-be relayer looks at


@dataclass
class Day:
    """What happened on one day, for the report."""

    day: int
    active_models: int = 0
    entered: int = 0
    left: int = 0
    active_good_models: int = 0
    active_callers: int = 0
    arrived_callers: int = 0
    leaving_callers: int = 0
    active_relayers: int = 0
    calls: int = 0
    calls_good: int = 0
    calls_top: int = 0
    calls_noticed: int = 0  # paid at the floor of a price rise still under notice
    paid: float = 0.0
    payee_earned: float = 0.0
    payee_earned_good: float = 0.0
    payee_earned_top: float = 0.0
    relayer_earned: float = 0.0
    relayer_costs: float = 0.0
    treasury_earned: float = 0.0
    caller_value: float = 0.0
    caller_surplus: float = 0.0
    median_price: float = 0.0


@dataclass
class Uploader:
    """The pre-drawn pool of uploaders, one model each (index = model slot)."""

    task: np.ndarray
    quality: np.ndarray
    price: np.ndarray  # starting price, base units
    upload_cost: np.ndarray
    monthly_cost: np.ndarray
    optimism: np.ndarray
    entered: np.ndarray  # day, -1: not (yet)
    left: np.ndarray  # day, -1: still active or never entered
    model_id: np.ndarray  # the registry's id, 0 before registration
    direction: np.ndarray  # +1 raising prices, -1 cutting
    earned: np.ndarray  # float, the uploader's own payee part so far


class Market:
    """One run of a scenario on a ledger. `run()` returns the days; the ledger holds the money."""

    def __init__(self, scenario: Scenario, ledger: Ledger | None = None, seed: int | None = None) -> None:
        self.s = scenario
        self.rng = np.random.default_rng(scenario.seed if seed is None else seed)
        up, rel = scenario.uploaders, scenario.relayers
        self.n_models = up.initial + up.potential
        self.n_relayers = rel.initial + rel.potential
        self.ledger = ledger or Ledger(scenario.protocol, self.n_models, self.n_relayers, up.payee_shares)
        self.board = SignalBoard(self.n_models)
        self.top_quality = 0.0
        self._draw_uploaders()
        self._draw_relayers()
        self.registered = 0  # models registered so far (their ids are 1..registered)
        self.registration_order: list[int] = []
        self.bonding_order: list[int] = []
        self.bond = wei(scenario.protocol.min_bond)
        # Rolling per-model uploader earnings (float) for leaving and repricing decisions.
        self._memory = max(rules.MONTH_DAYS, 2 * up.reprice_every_days) + 1
        self._earn_ring = np.zeros((self._memory, self.n_models))
        self._relayer_ring = np.zeros((RELAYER_WINDOW, 2))  # fees, calls per day
        self._callers_init()
        self.days: list[Day] = []

    # ------------------------------------------------------------------ agents

    def _lognormal(self, median: float, sigma: float, n: int) -> np.ndarray:
        # float(): a median in base units may be beyond int64, which numpy would turn into objects.
        return float(median) * self.rng.lognormal(0.0, sigma, n) if sigma > 0 else np.full(n, float(median))

    def _draw_uploaders(self) -> None:
        up, n = self.s.uploaders, self.n_models
        quality = up.quality
        task = self.rng.integers(0, self.s.tasks, n)
        good = self.rng.random(n) < quality.good_share
        good_q = self.rng.uniform(*quality.good, n)
        bad_q = self.rng.uniform(*quality.bad, n)
        price = self._lognormal(wei(up.price), up.price_spread, n)
        self.u = Uploader(
            task=task, quality=np.where(good, good_q, bad_q),
            price=np.array([int(round(p)) for p in price], dtype=object),
            upload_cost=self._lognormal(wei(up.upload_cost), up.cost_spread, n),
            monthly_cost=self._lognormal(wei(up.monthly_cost), up.cost_spread, n),
            optimism=self._lognormal(up.optimism, up.optimism_spread, n),
            entered=np.full(n, -1), left=np.full(n, -1), model_id=np.zeros(n, dtype=np.int64),
            direction=np.ones(n, dtype=np.int64), earned=np.zeros(n),
        )

    def _draw_relayers(self) -> None:
        rel, n = self.s.relayers, self.n_relayers
        self.r_cost_per_call = self._lognormal(wei(rel.cost_per_call), rel.cost_spread, n)
        self.r_fixed = self._lognormal(wei(rel.fixed_cost_per_day), rel.cost_spread, n)
        self.r_joined = np.full(n, -1)
        self.r_callers = np.zeros(n, dtype=np.int64)
        self.r_earned = np.zeros(n)
        self.r_costs = np.zeros(n)
        self.r_calls = np.zeros(n, dtype=np.int64)

    _CALLER_COLUMNS = {
        "c_task": (np.int64, 0), "c_value": (float, 0.0), "c_rate": (float, 0.0), "c_joined": (np.int64, -1),
        "c_left": (np.int64, -1), "c_model": (np.int64, -1), "c_good": (np.int64, 0), "c_bad": (np.int64, 0),
        "c_recent": (float, 0.0), "c_idle": (np.int64, 0), "c_topup": (np.int64, 0), "c_surplus": (float, 0.0),
        "c_calls": (np.int64, 0), "c_paid": (float, 0.0),
    }

    def _callers_init(self) -> None:
        self.n_callers = 0
        for name, (dtype, fill) in self._CALLER_COLUMNS.items():
            setattr(self, name, np.full(0, fill, dtype=dtype))
        self.c_budget = zeros(0)
        self.blocked = np.zeros((0, self.n_models), dtype=bool)

    def _add_callers(self, n: int, day: int) -> np.ndarray:
        cal = self.s.callers
        task = self.rng.integers(0, self.s.tasks, n)
        value = self._lognormal(wei(cal.value_per_call), cal.value_spread, n)
        rate = self._lognormal(cal.calls_per_day, cal.calls_spread, n)
        budget = np.array([int(round(b)) for b in self._lognormal(wei(cal.budget_per_month), cal.budget_spread, n)],
                          dtype=object)
        start, end = self.n_callers, self.n_callers + n
        if end > len(self.c_task):
            capacity = max(end, 2 * len(self.c_task), 64)
            for name, (dtype, fill) in self._CALLER_COLUMNS.items():
                old = getattr(self, name)
                grown = np.full(capacity, fill, dtype=dtype)
                grown[: len(old)] = old
                setattr(self, name, grown)
            budget_grown = zeros(capacity)
            budget_grown[: len(self.c_budget)] = self.c_budget
            self.c_budget = budget_grown
            blocked = np.zeros((capacity, self.n_models), dtype=bool)
            blocked[: len(self.blocked)] = self.blocked
            self.blocked = blocked
        self.c_task[start:end], self.c_value[start:end], self.c_rate[start:end] = task, value, rate
        self.c_budget[start:end] = budget
        self.c_joined[start:end] = day
        self.c_topup[start:end] = day
        relayers = np.empty(n, dtype=np.int64)
        active = np.flatnonzero(self.r_joined >= 0)
        for i in range(n):  # each to the bonded relayer with the fewest callers
            relayer = active[np.argmin(self.r_callers[active])]
            relayers[i] = relayer
            self.r_callers[relayer] += 1
        self.ledger.add_callers(relayers)
        self.n_callers = end
        return np.arange(start, end)

    # ------------------------------------------------------------------ the run

    def run(self, progress: Callable[[Day], None] | None = None,
            on_day: Callable[["Market", Day], None] | None = None) -> list[Day]:
        """Simulates every day of the scenario."""
        for day in range(self.s.days):
            record = self.step(day)
            self.days.append(record)
            if on_day is not None:
                on_day(self, record)
            if progress is not None:
                progress(record)
        return self.days

    def step(self, day: int) -> Day:
        start = day * DAY
        record = Day(day)
        self._uploaders(day, start + PHASE_UPLOADERS, record)
        self._relayers(day, start + PHASE_RELAYERS)
        self._callers(day, start, record)
        self._close(day, start, record)
        return record

    # ------------------------------------------------------------------ uploaders

    def _active_models(self) -> np.ndarray:
        return (self.u.entered >= 0) & (self.u.left < 0)

    def recent_earnings(self, days: int) -> np.ndarray:
        """Each uploader's own earnings over the last `days` days simulated (at most a month)."""
        return self._earnings(len(self.days), min(days, self._memory - 1))

    def _earnings(self, day: int, days: int, offset: int = 0) -> np.ndarray:
        """Each uploader's own earnings over the `days` days before `day - offset`."""
        rows = [(day - offset - k) % self._memory for k in range(1, days + 1) if day - offset - k >= 0]
        return self._earn_ring[rows].sum(axis=0) if rows else np.zeros(self.n_models)

    def _uploaders(self, day: int, time: int, record: Day) -> None:
        up, u = self.s.uploaders, self.u
        active = self._active_models()
        age = day - u.entered
        earn_30 = self._earnings(day, rules.MONTH_DAYS)
        leaving = np.flatnonzero(active & rules.uploader_leaves(age, earn_30, u.monthly_cost, up.grace_days))
        for model in leaving:
            self.ledger.deactivate(int(model), time)
            u.left[model] = day
        record.left = len(leaving)

        if up.reprice_every_days:
            period = up.reprice_every_days
            due = np.flatnonzero(self._active_models() & (age > 0) & (age % period == 0))
            if len(due):
                now = self._earnings(day, period)[due]
                before = self._earnings(day, period, offset=period)[due]
                prices = np.array([self.ledger.price[m] for m in due], dtype=object)
                new, u.direction[due] = rules.reprice(prices, u.direction[due], now, before, up.reprice_step)
                for model, old, price in zip(due, prices, new):
                    if price != old:
                        self.ledger.set_price(int(model), int(price), time)

        looks = self.rng.random(self.n_models) < up.consider_per_day
        candidates = np.flatnonzero((u.entered < 0) & (np.arange(self.n_models) >= up.initial) & looks)
        if day == 0:
            candidates = np.arange(up.initial)
            entering = candidates
        else:
            established = self._active_models() & (age >= rules.MONTH_DAYS)
            expected = np.array([rules.expected_monthly_earnings(
                earn_30[established & (u.task == task)], up.benchmark_quantile, float(wei(up.prior_monthly_earnings)))
                for task in range(self.s.tasks)])
            wants = rules.uploader_enters(expected[u.task[candidates]] * u.optimism[candidates],
                                          u.upload_cost[candidates], u.monthly_cost[candidates], up.horizon_days)
            entering = candidates[wants]
        for model in entering:
            self.registered += 1
            u.model_id[model] = self.registered
            u.entered[model] = day
            self.registration_order.append(int(model))
            self.ledger.register_model(int(model), int(u.price[model]), time)
        record.entered = len(entering)
        entered = u.entered >= 0
        if entered.any():
            # "The best models": the top tenth by quality of those that entered so far.
            self.top_quality = float(np.quantile(u.quality[entered], 0.9))

    # ------------------------------------------------------------------ relayers

    def _relayers(self, day: int, time: int) -> None:
        rel = self.s.relayers
        if day == 0:
            joining = list(range(rel.initial))
        else:
            joining = []
            waiting = np.flatnonzero(self.r_joined < 0)
            seen = min(day, RELAYER_WINDOW)
            fees, calls = self._relayer_ring.sum(axis=0) / seen
            if len(waiting):
                nxt = int(waiting[0])
                active = int((self.r_joined >= 0).sum())
                if rules.relayer_joins(fees, calls, active, self.r_cost_per_call[nxt], self.r_fixed[nxt],
                                       float(self.bond), rel.capital_cost_per_year):
                    joining = [nxt]
        for relayer in joining:
            self.r_joined[relayer] = day
            self.bonding_order.append(relayer)
            self.ledger.bond_relayer(relayer, self.bond, time)

    # ------------------------------------------------------------------ callers

    def _callers(self, day: int, start: int, record: Day) -> None:
        cal = self.s.callers
        n = self.n_callers
        live = (self.c_joined[:n] >= 0) & (self.c_left[:n] < 0)
        satisfied = int((live & (self.c_recent[:n] > 0) & (self.c_model[:n] >= 0)).sum())
        arrivals = cal.initial if day == 0 else int(self.rng.poisson(cal.arrivals_per_day + cal.referrals_per_day * satisfied))
        record.arrived_callers = arrivals
        if arrivals:
            self._add_callers(arrivals, day)
        n = self.n_callers
        live = np.flatnonzero((self.c_left[:n] < 0))

        # Budgets: every 30 days a caller tops its reservation up to its monthly budget.
        due = live[self.c_topup[live] == day]
        if len(due):
            amounts = np.maximum(self.c_budget[due] - self.ledger.spendable(due), 0)
            paying = amounts > 0
            if paying.any():
                self.ledger.top_up(due[paying], amounts[paying], start + PHASE_CALLERS)
            self.c_topup[due] += rules.MONTH_DAYS

        self._choose(day, live)
        self._call(day, start, live, record)

    def _choose(self, day: int, live: np.ndarray) -> None:
        cal, u = self.s.callers, self.u
        active = self._active_models()
        price = self.ledger.price.astype(float)
        model = self.c_model[live]
        current = np.maximum(model, 0)
        keeps = ((model >= 0) & active[current] & ~self.blocked[live, current]
                 & (price[current] <= self.c_value[live] * cal.trust))
        switching = self.rng.random(len(live)) < cal.switch_per_day
        choosers = live[~keeps | switching]
        explore = self.rng.random(len(choosers)) < cal.explore
        position = self.rng.geometric(cal.attention, len(choosers)) - 1
        uniform = self.rng.random(len(choosers))
        if cal.discovery == "random":
            explore[:] = True
        chosen = np.full(len(choosers), -1)
        if cal.discovery == "signals":
            scores = (u.model_id.astype(float) if cal.sort == "newest"
                      else self.board.signal(cal.sort, cal.window, day))
        else:
            scores = np.zeros(self.n_models)
        for task in range(self.s.tasks):
            rows = np.flatnonzero(self.c_task[choosers] == task)
            listed = listing(np.flatnonzero(active & (u.task == task)), scores, u.model_id)
            if not len(rows) or not len(listed):
                continue
            who = choosers[rows]
            eligible = ~self.blocked[np.ix_(who, listed)] & (price[listed][None, :] <= (self.c_value[who] * cal.trust)[:, None])
            picks = rules.pick_models(eligible, explore[rows], position[rows], uniform[rows])
            chosen[rows] = np.where(picks >= 0, listed[np.maximum(picks, 0)], -1)
        changed = chosen != self.c_model[choosers]
        self.c_good[choosers[changed]] = 0
        self.c_bad[choosers[changed]] = 0
        self.c_model[choosers] = chosen

    def _call(self, day: int, start: int, live: np.ndarray, record: Day) -> None:
        cal, u, ledger = self.s.callers, self.u, self.ledger
        callers = live[self.c_model[live] >= 0]
        idle = live[self.c_model[live] < 0]
        self.c_idle[idle] += 1
        self.c_idle[callers] = 0
        models = self.c_model[callers]
        during, share, after = ledger.call_prices(start + CALLS_START, start + PHASE_SETTLE)
        wanted = self.rng.poisson(self.c_rate[callers])
        most = np.maximum(during[models], after[models])
        # Capped so that a huge budget at a 1-unit price still fits the call counts' int64.
        affordable = np.minimum(ledger.spendable(callers) // most, 10**12).astype(np.int64)
        calls = np.minimum(wanted, affordable)
        noticed = self.rng.binomial(calls, share[models])
        good = self.rng.binomial(calls, u.quality[models])
        making = calls > 0
        owed = np.zeros(len(callers))
        if making.any():
            deadline = start + DAY * self._days_to_settlement(day) + PHASE_SETTLE + DAY
            chosen = np.flatnonzero(making)
            owed_exact = ledger.pay(callers[chosen], models[chosen], noticed[chosen], during[models[chosen]],
                                    calls[chosen] - noticed[chosen], after[models[chosen]], deadline)
            owed[chosen] = owed_exact.astype(float)
        value = self.c_value[callers] * good
        surplus = value - owed
        self.c_good[callers] += good
        self.c_bad[callers] += calls - good
        self.c_calls[callers] += calls
        self.c_paid[callers] += owed
        self.c_surplus[callers] += surplus
        self.c_recent[live] *= 1 - 1 / rules.MONTH_DAYS
        self.c_recent[callers] += surplus / rules.MONTH_DAYS
        drops = rules.drops_model(self.c_good[callers], self.c_bad[callers], cal.patience, cal.tolerance)
        self.blocked[callers[drops], models[drops]] = True
        self.c_model[callers[drops]] = -1

        good_model = u.quality[models] >= self.s.uploaders.quality.good_threshold
        top_model = u.quality[models] >= self.top_quality
        record.calls = int(calls.sum())
        record.calls_good = int(calls[good_model].sum())
        record.calls_top = int(calls[top_model].sum())
        record.calls_noticed = int(noticed.sum())
        record.paid = float(owed.sum())
        record.caller_value = float(value.sum())
        record.caller_surplus = float(surplus.sum())
        served = np.bincount(ledger.caller_relayer[callers], weights=calls, minlength=self.n_relayers)
        self.r_calls += served.astype(np.int64)
        joined = self.r_joined >= 0
        costs = served * self.r_cost_per_call + joined * (
            self.r_fixed + float(self.bond) * self.s.relayers.capital_cost_per_year / 365)
        self.r_costs += costs
        record.relayer_costs = float(costs.sum())

    def _days_to_settlement(self, day: int) -> int:
        every = self.s.relayers.settle_every_days
        return min((every - 1 - day % every), self.s.days - 1 - day)

    # ------------------------------------------------------------------ settlement and leaving

    def _close(self, day: int, start: int, record: Day) -> None:
        cal, u, ledger = self.s.callers, self.u, self.ledger
        n = self.n_callers
        live = np.flatnonzero(self.c_left[:n] < 0)
        leaving = live[rules.caller_leaves(day - self.c_joined[live], self.c_recent[live], self.c_idle[live],
                                           cal.leave_after_days, cal.give_up_days)]
        settle_all = self._days_to_settlement(day) == 0
        only = None
        if not settle_all:
            only = np.zeros(n, dtype=bool)
            only[leaving] = True
        settled = ledger.settle(only, start + PHASE_SETTLE) if (settle_all or len(leaving)) else None
        ring_row = day % self._memory
        self._earn_ring[ring_row] = 0
        relayer_fees = 0.0
        if settled is not None and len(settled):
            self.board.record(day, settled.callers, settled.models, settled.calls, settled.paid)
            own = settled.payee_parts[0].astype(float)
            earned = np.bincount(settled.models, weights=own, minlength=self.n_models)
            self._earn_ring[ring_row] = earned
            u.earned += earned
            payees = sum(parts.astype(float) for parts in settled.payee_parts)
            record.payee_earned = float(payees.sum())
            quality = u.quality[settled.models]
            record.payee_earned_good = float(payees[quality >= self.s.uploaders.quality.good_threshold].sum())
            record.payee_earned_top = float(payees[quality >= self.top_quality].sum())
            fees = np.bincount(settled.relayers, weights=settled.relayer_parts.astype(float), minlength=self.n_relayers)
            self.r_earned += fees
            relayer_fees = float(fees.sum())
            record.relayer_earned = relayer_fees
            record.treasury_earned = float(settled.treasury_part)
        self._relayer_ring[day % RELAYER_WINDOW] = (relayer_fees, record.calls)

        release_time = start + PHASE_RELEASE
        if len(leaving):
            ledger.announce_release(leaving, release_time)
            self.c_left[leaving] = day
            self.c_model[leaving] = -1
            for relayer in ledger.caller_relayer[leaving]:
                self.r_callers[relayer] -= 1
        record.leaving_callers = len(leaving)
        ledger.release_due(release_time, PHASE_ROOM)
        up, rel = self.s.uploaders, self.s.relayers
        payees = np.zeros(0, dtype=np.int64)
        relayers = np.zeros(0, dtype=np.int64)
        if (day + 1) % up.withdraw_every_days == 0:
            payees = np.flatnonzero((ledger.payee_earnings > 0).any(axis=1))
        treasury = (day + 1) % rel.withdraw_every_days == 0
        if treasury:
            relayers = np.flatnonzero(ledger.relayer_earnings > 0)
        if len(payees) or len(relayers) or treasury:
            ledger.withdraw_earnings(payees, relayers, treasury and ledger.treasury_earnings > 0, release_time)

        active = self._active_models()
        record.active_models = int(active.sum())
        record.active_good_models = int((active & (u.quality >= up.quality.good_threshold)).sum())
        record.active_callers = int((self.c_left[:n] < 0).sum())
        record.active_relayers = int((self.r_joined >= 0).sum())
        prices = [self.ledger.price[m] for m in np.flatnonzero(active)]
        record.median_price = float(np.median(np.array(prices, dtype=float))) if prices else 0.0
