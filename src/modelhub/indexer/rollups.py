"""The index's summary tables (model_totals, model_days, model_callers, model_relayers,
relayer_totals, settle_times, settle_seconds in schema.py): each batch's settlements and ended calls added in its
transaction. (The windows as of the cursor's time are signals.refresh_windows.)

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
_CHUNK = 500  # keys per lookup query


def record(db: Connection, settlements: Sequence[Mapping[str, Any]], ended: Iterable[Mapping[str, Any]]) -> None:
    """Adds new settlement rows and requests that ended (fulfilled, rejected or refunded) to the
    summaries; each row must be given once, whenever it was written."""
    totals: dict[int, dict] = defaultdict(lambda: dict(_TOTALS))
    days: dict[tuple, dict] = defaultdict(lambda: dict(_DAYS))
    times: dict[tuple, int] = defaultdict(int)
    seconds: dict[tuple, int] = defaultdict(int)
    served: dict[tuple, dict] = defaultdict(lambda: dict(calls=0, rejected=0))
    for row in settlements:
        organic = 0 if row["self_dealing"] else row["calls"]
        day = days[(row["model_id"], row["day"])]
        day["settled"] += 1
        for part in (totals[row["model_id"]], day):
            part["calls"] += row["calls"]
            part["revenue"] += row["amount"]
            part["organic_calls"] += organic
        served[(row["relayer"],)]["calls"] += row["calls"]
        if row["kind"] == "request":
            took = row["time"] - row["requested_at"]
            times[(row["model_id"], row["day"], took)] += 1
            seconds[(row["model_id"], took)] += 1
    for row in ended:
        counter = ENDED[row["status"]]
        totals[row["model_id"]][counter] += 1
        days[(row["model_id"], row["ended_at"] // DAY)][counter] += 1
        if row["status"] == 3:
            served[(row["relayer"],)]["rejected"] += 1
    _add_callers(db, settlements, totals)
    _add_relayers(db, settlements, totals)
    _add(db, t.model_totals, {(model,): part for model, part in totals.items()})
    _add(db, t.model_days, days)
    _add(db, t.settle_times, {key: {"count": n} for key, n in times.items()})
    _add(db, t.settle_seconds, {key: {"count": n} for key, n in seconds.items()})
    _add(db, t.relayer_totals, served)


def rebuild(db: Connection, chunk: int = 50_000) -> None:
    """Recomputes every summary from `settlements` and `requests` (for a migration, or rows
    written in bulk without the indexer)."""
    for table in (t.model_totals, t.model_days, t.model_callers, t.model_relayers, t.relayer_totals, t.settle_times,
                  t.settle_seconds):
        db.execute(delete(table))
    for part in _pages(db, t.settlements, t.settlements.c.id, None, chunk):
        record(db, part, ())
    for part in _pages(db, t.requests, t.requests.c.request_id, t.requests.c.status.in_(tuple(ENDED)), chunk):
        record(db, (), part)


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


def _add_callers(db: Connection, settlements: Sequence[Mapping[str, Any]], totals: dict) -> None:
    """Folds each settlement into its (model, caller) row: latest time and day, and latest time on
    an earlier day; counts the callers that are new and those that just became repeat callers."""
    rows = _load(db, t.model_callers, {(s["model_id"], s["caller"]) for s in settlements})
    changed = {}
    for s in settlements:
        key = (s["model_id"], s["caller"])
        row = rows.get(key)
        when, day = s["time"], s["time"] // DAY
        if row is None:
            row = rows[key] = {"last_time": when, "last_day": day, "prev_time": None}
            totals[key[0]]["callers"] += 1
        elif day > row["last_day"]:
            if row["prev_time"] is None:
                totals[key[0]]["repeat_callers"] += 1
            row.update(prev_time=row["last_time"], last_time=when, last_day=day)
        elif day == row["last_day"]:
            row["last_time"] = max(row["last_time"], when)
        else:  # an earlier day than the latest: only the earlier-day time can move
            if row["prev_time"] is None:
                totals[key[0]]["repeat_callers"] += 1
            row["prev_time"] = when if row["prev_time"] is None else max(row["prev_time"], when)
        changed[key] = row
    _upsert(db, t.model_callers, changed)


def _add_relayers(db: Connection, settlements: Sequence[Mapping[str, Any]], totals: dict) -> None:
    rows = _load(db, t.model_relayers, {(s["model_id"], s["relayer"]) for s in settlements})
    changed = {}
    for s in settlements:
        key = (s["model_id"], s["relayer"])
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"last_time": s["time"]}
            totals[key[0]]["relayers"] += 1
        row["last_time"] = max(row["last_time"], s["time"])
        changed[key] = row
    _upsert(db, t.model_relayers, changed)


def _add(db: Connection, table: Any, deltas: Mapping[tuple, Mapping[str, int]]) -> None:
    """Adds `deltas` (key -> {column: amount}) to the rows of `table`, creating missing rows."""
    rows = _load(db, table, set(deltas))
    for key, delta in deltas.items():
        row = rows.setdefault(key, dict.fromkeys(delta, 0))
        for name, amount in delta.items():
            row[name] = row.get(name, 0) + amount
    _upsert(db, table, {key: rows[key] for key in deltas})


def _keys(table: Any) -> list[Any]:
    return list(table.primary_key.columns)


def _load(db: Connection, table: Any, keys: set[tuple]) -> dict[tuple, dict]:
    """The existing rows of `keys` (primary-key tuples), as key -> {other column: value}."""
    columns = _keys(table)
    names = [c.name for c in columns]
    found: dict[tuple, dict] = {}
    wanted = list(keys)
    for start in range(0, len(wanted), _CHUNK):
        part = wanted[start:start + _CHUNK]
        if len(columns) == 1:
            rows = db.execute(select(table).where(columns[0].in_([k[0] for k in part]))).mappings()
        else:
            rows = _lookup(db, table, names, part)
        for row in rows:
            found[tuple(row[n] for n in names)] = {k: v for k, v in row.items() if k not in names}
    return found


def _lookup(db: Connection, table: Any, names: list[str], keys: list[tuple]) -> list[dict]:
    """The rows of `table` whose primary key is one of `keys`, each found through the key's
    index: the keys are a VALUES list joined to the table. (SQLite scans the whole table for
    `(a, b) IN ((...), ...)`, and SQLAlchemy takes longer to build a VALUES list of hundreds of
    rows than the database takes to answer it, so this one statement is written out here.)"""
    mark = "?" if db.dialect.paramstyle == "qmark" else "%s"
    row = "(" + ", ".join([mark] * len(names)) + ")"
    key_names = ", ".join(f"k{i}" for i in range(len(names)))
    joined = " AND ".join(f"t.{name} = k.k{i}" for i, name in enumerate(names))
    statement = (f"WITH k({key_names}) AS (VALUES {', '.join([row] * len(keys))}) "
                 f"SELECT t.* FROM {table.name} AS t JOIN k ON {joined}")
    result = db.exec_driver_sql(statement, tuple(value for key in keys for value in key))
    columns = [d[0] for d in result.cursor.description]
    processors = [table.c[name].type.result_processor(db.dialect, None) for name in columns]
    return [{name: (process(value) if process else value) for name, process, value in zip(columns, processors, found)}
            for found in result]


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
