"""The index's summary tables (model_totals, model_days, model_callers, model_relayers,
relayer_totals, settle_times, settle_seconds in schema.py): each batch's settlements and ended
calls added in its transaction. (The windows as of the cursor's time: signals.refresh_windows.)

Every summary is a commutative merge of the rows it covers (sums, counts, latest times), so the
order the rows arrive in does not matter, and `rebuild` recomputes them all from the base tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from . import schema as t

DAY = 86_400
ENDED = {2: "fulfilled", 3: "rejected", 4: "refunded"}  # request status -> counter
_SUMS = ("calls", "revenue", "organic_calls", "fulfilled", "rejected", "refunded")
_TOTALS = dict.fromkeys((*_SUMS, "callers", "repeat_callers", "relayers"), 0)
_DAYS = dict.fromkeys((*_SUMS, "settled"), 0)


def record(db: Connection, settlements: Sequence[Mapping[str, Any]], ended: Iterable[Mapping[str, Any]]) -> None:
    """Adds new settlement rows and requests that ended (fulfilled, rejected or refunded) to the
    summaries; each row must be given once, whenever it was written."""
    batch = _Summaries()
    # the (model, caller) and (model, relayer) rows these settlements fold into, as they are now
    batch.callers = _load(db, t.model_callers, {(s["model_id"], s["caller"]) for s in settlements})
    batch.relayers = _load(db, t.model_relayers, {(s["model_id"], s["relayer"]) for s in settlements})
    batch.add(settlements, ended)
    _upsert(db, t.model_callers, {key: batch.callers[key] for key in batch.touched_callers})
    _upsert(db, t.model_relayers, {key: batch.relayers[key] for key in batch.touched_relayers})
    for table, deltas in batch.sums():
        existing = _load(db, table, set(deltas))
        _upsert(db, table, {key: _plus(existing.get(key), delta) for key, delta in deltas.items()})


def rebuild(db: Connection, chunk: int = 50_000) -> None:
    """Recomputes every summary from `settlements` and `requests` (for a migration, or rows
    written in bulk without the indexer): all of them summed in memory, then written at once."""
    for table in (t.model_totals, t.model_days, t.model_callers, t.model_relayers, t.relayer_totals, t.settle_times,
                  t.settle_seconds):
        db.execute(delete(table))
    everything = _Summaries()
    for part in _pages(db, t.settlements, t.settlements.c.id, None, chunk):
        everything.add(part, ())
    for part in _pages(db, t.requests, t.requests.c.request_id, t.requests.c.status.in_(tuple(ENDED)), chunk):
        everything.add((), part)
    written = [(t.model_callers, everything.callers), (t.model_relayers, everything.relayers), *everything.sums()]
    for table, rows in written:
        names = [c.name for c in _keys(table)]
        rows = [{**dict(zip(names, key)), **values} for key, values in rows.items()]
        for begin in range(0, len(rows), chunk):
            db.execute(table.insert(), rows[begin:begin + chunk])


def _pages(db: Connection, table: Any, key: Any, where: Any, size: int) -> Iterable[list]:
    """The rows of `table` in pages of `size`, in `key` order (no cursor held open across writes)."""
    last = None
    while True:
        query = select(table).order_by(key).limit(size)
        if where is not None:
            query = query.where(where)
        if last is not None:
            query = query.where(key > last)
        page = db.execute(query).mappings().all()
        if not page:
            return
        yield page
        last = page[-1][key.name]


class _Summaries:
    """What some settlements and ended calls add to the summaries: sums and counts to add, and
    the (model, caller) and (model, relayer) rows they fold into (start: those rows as stored)."""

    def __init__(self) -> None:
        self.totals: dict[tuple, dict] = defaultdict(lambda: dict(_TOTALS))
        self.days: dict[tuple, dict] = defaultdict(lambda: dict(_DAYS))
        self.times: dict[tuple, dict] = defaultdict(lambda: {"count": 0})
        self.seconds: dict[tuple, dict] = defaultdict(lambda: {"count": 0})
        self.served: dict[tuple, dict] = defaultdict(lambda: dict(calls=0, rejected=0))
        self.callers: dict[tuple, dict] = {}
        self.relayers: dict[tuple, dict] = {}
        self.touched_callers: set[tuple] = set()
        self.touched_relayers: set[tuple] = set()

    def sums(self) -> list[tuple[Any, dict]]:
        return [(t.model_totals, self.totals), (t.model_days, self.days), (t.settle_times, self.times),
                (t.settle_seconds, self.seconds), (t.relayer_totals, self.served)]

    def add(self, settlements: Iterable[Mapping[str, Any]], ended: Iterable[Mapping[str, Any]]) -> None:
        for row in settlements:
            model = row["model_id"]
            organic = 0 if row["self_dealing"] else row["calls"]
            day = self.days[(model, row["day"])]
            day["settled"] += 1
            for part in (self.totals[(model,)], day):
                part["calls"] += row["calls"]
                part["revenue"] += row["amount"]
                part["organic_calls"] += organic
            self.served[(row["relayer"],)]["calls"] += row["calls"]
            if row["kind"] == "request":
                took = row["time"] - row["requested_at"]
                self.times[(model, row["day"], took)]["count"] += 1
                self.seconds[(model, took)]["count"] += 1
            self._fold_caller(model, row["caller"], row["time"])
            self._fold_relayer(model, row["relayer"], row["time"])
        for row in ended:
            counter = ENDED[row["status"]]
            self.totals[(row["model_id"],)][counter] += 1
            self.days[(row["model_id"], row["ended_at"] // DAY)][counter] += 1
            if row["status"] == 3:
                self.served[(row["relayer"],)]["rejected"] += 1

    def _fold_caller(self, model: int, caller: str, when: int) -> None:
        """Folds a settlement into its (model, caller) row: the latest time and day, and the latest
        time on an earlier day; counts the callers that are new and those that just came back."""
        key, day = (model, caller), when // DAY
        self.touched_callers.add(key)
        row = self.callers.get(key)
        totals = self.totals[(model,)]
        if row is None:
            self.callers[key] = {"last_time": when, "last_day": day, "prev_time": None}
            totals["callers"] += 1
        elif day > row["last_day"]:
            if row["prev_time"] is None:
                totals["repeat_callers"] += 1
            row.update(prev_time=row["last_time"], last_time=when, last_day=day)
        elif day == row["last_day"]:
            row["last_time"] = max(row["last_time"], when)
        else:  # an earlier day than the latest: only the earlier-day time can move
            if row["prev_time"] is None:
                totals["repeat_callers"] += 1
            row["prev_time"] = when if row["prev_time"] is None else max(row["prev_time"], when)

    def _fold_relayer(self, model: int, relayer: str, when: int) -> None:
        key = (model, relayer)
        self.touched_relayers.add(key)
        row = self.relayers.get(key)
        if row is None:
            self.relayers[key] = {"last_time": when}
            self.totals[(model,)]["relayers"] += 1
        else:
            row["last_time"] = max(row["last_time"], when)


def _plus(row: dict | None, delta: Mapping[str, int]) -> dict:
    """A stored row of sums (None: none yet) with `delta` added."""
    return {name: (row or {}).get(name, 0) + amount for name, amount in delta.items()}


def _keys(table: Any) -> list[Any]:
    return list(table.primary_key.columns)


def _load(db: Connection, table: Any, keys: set[tuple]) -> dict[tuple, dict]:
    """The existing rows of `keys` (primary-key tuples), as key -> {other column: value}."""
    names = [c.name for c in _keys(table)]
    return {tuple(row[n] for n in names): {k: v for k, v in row.items() if k not in names}
            for row in t.rows_by_key(db, table, names, list(keys))}


def _upsert(db: Connection, table: Any, rows: Mapping[tuple, Mapping[str, Any]]) -> None:
    """Writes `rows` (key -> other columns), replacing the rows with the same key."""
    if not rows:
        return
    names = [c.name for c in _keys(table)]
    insert = postgres_insert if db.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    others = [c.name for c in table.columns if c.name not in names]
    statement = statement.on_conflict_do_update(index_elements=names,
                                                set_={n: statement.excluded[n] for n in others})
    db.execute(statement, [{**dict(zip(names, key)), **values} for key, values in rows.items()])
