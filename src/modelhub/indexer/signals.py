"""The hub's signals, each defined once, here (DEFINITIONS), and read from the index. Every one
of them counts only what somebody paid for on chain, so faking it costs real fees.

Per model, over all time or the last 7 or 30 days (by settlement time): the DEFINITIONS below.
Per account: earnings by role (payee, relayer, treasury) and per day. Per relayer: calls served,
calls it rejected, its earnings, its bond. docs/hub.md gives the same definitions, word for word
(tests/web/test_pages.py holds them to it), and the hub's pages show them beside the numbers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, case, delete, func, literal, or_, select, union_all
from sqlalchemy.engine import Connection

from . import SORT_KEYS, WINDOWS
from . import schema as t
from .rollups import ENDED

DAY = 86_400


# What each signal of a model counts, over all time or a window of the last 7 or 30 days.
DEFINITIONS = {
    "calls": "paid calls settled (an on-chain call counts 1; a receipt counts the calls it adds)",
    "revenue": "what those calls paid, in token base units",
    "callers": "distinct accounts that paid for a call",
    "repeat_callers": "callers who paid for calls on at least two different (UTC) days",
    "organic_calls": "calls whose caller was neither the model's owner nor one of its payees when the call "
                     "settled (self-dealing excluded)",
    "success_rate": "of on-chain calls that ended, the share fulfilled (rejected and refunded are the failures); "
                    "none before any ended",
    "median_settle_seconds": "the median time from an on-chain request to its settlement",
    "relayers": "distinct relayers that were paid for serving it",
}


class UnknownEntityError(LookupError):
    """No such model, account or relayer in the index."""


@dataclass
class ModelSignals:
    calls: int = 0
    revenue: int = 0
    callers: int = 0
    repeat_callers: int = 0
    organic_calls: int = 0
    success_rate: float | None = None
    median_settle_seconds: float | None = None
    relayers: int = 0


@dataclass
class ModelSummary:
    model_id: int
    name: str
    owner: str
    price: int
    latest_version: int
    active: bool
    registered_at: int
    signals: ModelSignals = field(default_factory=ModelSignals)

    def as_json(self) -> dict[str, Any]:
        # by hand rather than asdict: the list asks this of every model it shows
        return _jsonable({**vars(self), "signals": dict(vars(self.signals))})


def _since(window: str, now: int) -> int | None:
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}: choose one of {', '.join(WINDOWS)}")
    days = WINDOWS[window]
    return None if days is None else now - days * DAY


def model_signals(db: Connection, model_id: int, now: int, window: str = "all") -> ModelSignals:
    """The signals of one model over `window` ("all", "7d" or "30d") as of time `now`."""
    since = _since(window, now)
    if _windows_as_of(db) == now:
        return _stored(db, window, [model_id]).get(model_id) or ModelSignals()
    return _signals_of(db, since, [model_id]).get(model_id) or ModelSignals()


def list_models(db: Connection, now: int, sort: str = "calls", window: str = "all", search: str | None = None,
                limit: int = 50, offset: int = 0, descending: bool = True) -> list[ModelSummary]:
    """Models with their signals, sorted by one of SORT_KEYS (ties: oldest first; models with no
    success rate or settle time yet last), optionally filtered by a search of the name or the
    owner's address."""
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort {sort!r}: choose one of {', '.join(SORT_KEYS)}")
    if not 1 <= limit <= 500 or offset < 0:
        raise ValueError("limit must be 1 to 500 and offset at least 0")
    since = _since(window, now)
    m = t.models.c
    matching = _matching(search)
    stored = _windows_as_of(db) == now
    if stored:
        key, joined = _stored_sort_key(sort, window)
    elif sort == "median_settle_seconds":
        key, joined = None, None
    else:
        key, joined = _sort_key(db, sort, since)
    if key is None:  # the median over every model, computed here
        ids = [row[0] for row in db.execute(select(m.model_id).where(*matching))]
        medians = _medians(db, since, ids)
        known = sorted((i for i in ids if i in medians),
                       key=lambda i: (-medians[i][0] if descending else medians[i][0], i))
        page = (known + sorted(i for i in ids if i not in medians))[offset:offset + limit]
    else:
        order = key.desc() if descending else key.asc()
        if sort in ("success_rate", "median_settle_seconds"):
            order = order.nulls_last()
        query = select(m.model_id).select_from(joined).where(*matching).order_by(order, m.model_id.asc())
        page = [row[0] for row in db.execute(query.limit(limit).offset(offset))]
    found = _stored(db, window, page) if stored else _signals_of(db, since, page)
    rows = {row.model_id: row for row in db.execute(select(t.models).where(m.model_id.in_(page)))}
    return [ModelSummary(i, rows[i].name, rows[i].owner, rows[i].price, rows[i].latest_version, rows[i].active,
                         rows[i].registered_at, found.get(i) or ModelSignals()) for i in page]


def count_models(db: Connection, search: str | None = None) -> int:
    """How many models list_models ranks (those the search matches)."""
    return db.execute(select(func.count()).select_from(t.models).where(*_matching(search))).scalar()


def _matching(search: str | None) -> list[Any]:
    """Models whose name (any case) or owner address contains `search`."""
    if not search:
        return []
    m = t.models.c
    return [or_(func.lower(m.name).contains(search.lower(), autoescape=True),
                m.owner.contains(search.lower(), autoescape=True))]


def top_relayers(db: Connection, limit: int = 10) -> list[dict[str, Any]]:
    """Relayers by calls served (relayer_page's numbers), most first, with their rejections and bond."""
    rt, rel = t.relayer_totals.c, t.relayers.c
    rows = db.execute(select(rt.relayer, rt.calls, rt.rejected, rel.bond, rel.endpoint)
                      .select_from(t.relayer_totals.outerjoin(t.relayers, rel.relayer == rt.relayer))
                      .order_by(rt.calls.desc(), rt.relayer).limit(limit)).all()
    return _jsonable([{"relayer": r.relayer, "calls_served": r.calls, "calls_rejected": r.rejected,
                       "bond": r.bond or 0, "endpoint": r.endpoint} for r in rows])


def top_earners(db: Connection, limit: int = 10) -> list[dict[str, Any]]:
    """Accounts by all they ever earned (withdrawn or not: the sum of account_page's earnings by
    role), most first."""
    a = t.accounts.c
    zero = literal(0, type_=t.Amount())
    rows = db.execute(select(a.account, a.earnings, a.withdrawn_earnings).where(
        or_(a.earnings > zero, a.withdrawn_earnings > zero))).all()
    ranked = sorted(((r.earnings + r.withdrawn_earnings, r.account, r.earnings) for r in rows),
                    key=lambda row: (-row[0], row[1]))[:limit]
    return _jsonable([{"account": account, "earned": total, "earnings_unwithdrawn": left}
                      for total, account, left in ranked])


def refresh_windows(db: Connection, now: int) -> None:
    """Brings window_signals to time `now` (the indexer, with each new cursor, in its
    transaction): recomputes the windows of the models whose rows entered a window since the last
    refresh (new settlements, calls ended) or left one (its start moved past them)."""
    state = db.execute(select(t.window_state)).first()
    newest = db.execute(select(func.max(t.settlements.c.id))).scalar() or 0
    s, r = t.settlements.c, t.requests.c
    if state is None or now < state.now:
        everything = [row[0] for row in db.execute(select(t.models.c.model_id))]
        changed = {window: set(everything) for window in WINDOWS}
    else:
        entered = {row[0] for row in db.execute(select(s.model_id).where(s.id > state.settlement_id).distinct())}
        entered |= {row[0] for row in db.execute(select(r.model_id).where(
            r.ended_at >= state.now, r.status.in_(tuple(ENDED))).distinct())}
        changed = {}
        for window in WINDOWS:
            changed[window] = set(entered)
            if WINDOWS[window] is not None:  # what the window's start passed over left it
                start, end = _since(window, state.now), _since(window, now)
                changed[window] |= {row[0] for row in db.execute(select(s.model_id).where(
                    s.time >= start, s.time < end).distinct())}
                changed[window] |= {row[0] for row in db.execute(select(r.model_id).where(
                    r.ended_at >= start, r.ended_at < end, r.status.in_(tuple(ENDED))).distinct())}
    w = t.window_signals.c
    for window, models in changed.items():
        ordered = sorted(models)
        for begin in range(0, len(ordered), 500):
            part = ordered[begin:begin + 500]
            db.execute(delete(t.window_signals).where(w.span == window, w.model_id.in_(part)))
            rows = [_stored_row(window, model_id, signals, ended)
                    for model_id, (signals, ended) in _signals_of(db, _since(window, now), part, True).items()]
            if rows:
                db.execute(t.window_signals.insert(), rows)
    db.execute(delete(t.window_state))
    db.execute(t.window_state.insert().values(id=1, now=now, settlement_id=newest))


def model_page(db: Connection, model_id: int, now: int) -> dict[str, Any]:
    """Everything a model page shows: the model, its signals in every window, its versions,
    price history, calls and revenue per day, and who earned what from it."""
    model = db.execute(select(t.models).where(t.models.c.model_id == model_id)).first()
    if model is None:
        raise UnknownEntityError(f"no model {model_id} in the index")
    d, e = t.model_days.c, t.earnings.c
    sum_ = _summer(db)
    daily = db.execute(select(d.day, d.calls, d.revenue).where(d.model_id == model_id, d.settled > 0)
                       .order_by(d.day)).all()
    earners = db.execute(select(e.account, e.role, sum_(e.amount)).where(e.model_id == model_id)
                         .group_by(e.account, e.role).order_by(e.account, e.role)).all()
    payees = db.execute(select(t.payee_sets).where(t.payee_sets.c.model_id == model_id)
                        .order_by(t.payee_sets.c.effective_at)).all()
    return _jsonable({
        "model": dict(model._mapping),
        "signals": {window: asdict(model_signals(db, model_id, now, window)) for window in WINDOWS},
        "versions": [dict(v._mapping) for v in db.execute(
            select(t.versions).where(t.versions.c.model_id == model_id).order_by(t.versions.c.version))],
        "prices": [dict(p._mapping) for p in db.execute(
            select(t.prices).where(t.prices.c.model_id == model_id).order_by(t.prices.c.id))],
        "payees": [{"accounts": json.loads(p.accounts), "shares": json.loads(p.shares),
                    "effective_at": p.effective_at} for p in payees],
        "daily": [{"day": day * DAY, "calls": calls, "revenue": revenue} for day, calls, revenue in daily],
        "earned": [{"account": account, "role": role, "amount": amount} for account, role, amount in earners],
    })


# ---------------------------------------------------------------- reading the summaries
#
# The signals are read from the summary tables the indexer keeps (rollups.py) instead of every
# settlement: a window from `since` is its whole days from `model_days` and `settle_times`, plus
# the rows of the day it starts in that fall at or after `since`, read from `settlements` and
# `requests` themselves; distinct callers, repeat callers and relayers are the `model_callers`
# and `model_relayers` rows whose times fall in the window. Each number is the same as counting
# the settlements one by one (tests/web/test_summaries.py checks it against that reading).


def _sums(db: Connection, since: int | None, ids: list[int] | None) -> Any:
    """(model_id, calls, revenue, organic_calls, fulfilled, rejected, refunded) per model."""
    sum_ = _summer(db)
    if since is None:
        total = t.model_totals.c
        return select(total.model_id, total.calls, total.revenue, total.organic_calls, total.fulfilled,
                      total.rejected, total.refunded).where(*_among(total.model_id, ids)).subquery()
    first_day, day_end = since // DAY, (since // DAY + 1) * DAY
    d, s, r = t.model_days.c, t.settlements.c, t.requests.c
    zero, none = literal(0, type_=t.Amount()), literal(0)
    whole_days = select(d.model_id, d.calls, d.revenue, d.organic_calls, d.fulfilled, d.rejected, d.refunded).where(
        d.day > first_day, *_among(d.model_id, ids))
    settled = select(s.model_id, s.calls, s.amount, case((s.self_dealing.is_(False), s.calls), else_=zero),
                     none, none, none).where(s.time >= since, s.time < day_end, *_among(s.model_id, ids))
    ended = select(r.model_id, zero, zero, zero, *(case((r.status == status, 1), else_=0) for status in ENDED)).where(
        r.status.in_(tuple(ENDED)), r.ended_at >= since, r.ended_at < day_end, *_among(r.model_id, ids))
    rows = union_all(whole_days, settled, ended).subquery()
    c = list(rows.c)
    return select(c[0].label("model_id"), sum_(c[1]).label("calls"), sum_(c[2]).label("revenue"),
                  sum_(c[3]).label("organic_calls"), func.sum(c[4]).label("fulfilled"),
                  func.sum(c[5]).label("rejected"), func.sum(c[6]).label("refunded")).group_by(c[0]).subquery()


def _distinct(table: Any, column: str, since: int | None, ids: list[int] | None, label: str) -> Any:
    """(model_id, label): rows of `table` per model whose `column` time is in the window."""
    c = table.c
    where = [c[column].is_not(None)] if since is None else [c[column] >= since]
    return select(c.model_id, func.count().label(label)).where(*where, *_among(c.model_id, ids)).group_by(
        c.model_id).subquery()


def _sort_key(db: Connection, sort: str, since: int | None) -> tuple[Any, Any]:
    """The ORDER BY expression for `sort` over every model, and the models joined to it."""
    m = t.models.c
    if sort in ("price", "newest"):
        return (m.price if sort == "price" else m.model_id), t.models
    if sort in ("callers", "repeat_callers", "relayers"):
        if since is None:
            part = t.model_totals
        elif sort == "relayers":
            part = _distinct(t.model_relayers, "last_time", since, None, sort)
        else:
            part = _distinct(t.model_callers, "last_time" if sort == "callers" else "prev_time", since, None, sort)
        return func.coalesce(part.c[sort], literal(0)), t.models.outerjoin(part, part.c.model_id == m.model_id)
    part = _sums(db, since, None)
    joined = t.models.outerjoin(part, part.c.model_id == m.model_id)
    if sort == "success_rate":
        ended = part.c.fulfilled + part.c.rejected + part.c.refunded
        return part.c.fulfilled * 1.0 / func.nullif(ended, 0), joined
    # Models without settlements have no row: they count as zero.
    return func.coalesce(part.c[sort], literal(0, type_=t.Amount())), joined


def _signals_of(db: Connection, since: int | None, ids: list[int], with_counts: bool = False) -> dict[int, Any]:
    """The signals of the models `ids` over the window from `since` (None: all time); with
    `with_counts`, each with what window_signals stores beside them (ended calls, the median)."""
    if not ids:
        return {}
    found: dict[int, ModelSignals] = {}
    counts: dict[int, dict] = defaultdict(lambda: dict(fulfilled=0, rejected=0, refunded=0, median_settle_x2=None,
                                                       median_settle_odd=None))
    for row in db.execute(select(_sums(db, since, ids))):
        ended = row.fulfilled + row.rejected + row.refunded
        found[row.model_id] = ModelSignals(calls=row.calls or 0, revenue=row.revenue or 0,
                                           organic_calls=row.organic_calls or 0,
                                           success_rate=row.fulfilled / ended if ended else None)
        counts[row.model_id].update(fulfilled=row.fulfilled, rejected=row.rejected, refunded=row.refunded)
    distinct_counts = ((t.model_callers, "last_time", "callers"), (t.model_callers, "prev_time", "repeat_callers"),
                       (t.model_relayers, "last_time", "relayers"))
    for table, column, label in distinct_counts:
        for model_id, n in db.execute(select(_distinct(table, column, since, ids, label))):
            setattr(found.setdefault(model_id, ModelSignals()), label, n)
    for model_id, (twice, odd) in _medians(db, since, ids).items():
        found.setdefault(model_id, ModelSignals()).median_settle_seconds = _half(twice, odd)
        counts[model_id].update(median_settle_x2=twice, median_settle_odd=odd)
    if with_counts:
        return {model_id: (signals, counts[model_id]) for model_id, signals in found.items()}
    return found


def _medians(db: Connection, since: int | None, ids: list[int]) -> dict[int, tuple[int, bool]]:
    """Each model's median time from request to settlement of its on-chain calls in the window,
    as (twice the median, whether the count is odd)."""
    st, s = (t.settle_seconds.c if since is None else t.settle_times.c), t.settlements.c
    counts: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    some = ids if len(ids) <= 500 else None  # many models: read them all rather than list them
    whole = [] if since is None else [st.day > since // DAY]
    for model_id, seconds, n in db.execute(select(st.model_id, st.seconds, st.count).where(
            *whole, *_among(st.model_id, some))):
        counts[model_id][seconds] += n
    if since is not None:
        day_end = (since // DAY + 1) * DAY
        for model_id, seconds in db.execute(select(s.model_id, s.time - s.requested_at).where(
                s.kind == "request", s.time >= since, s.time < day_end, *_among(s.model_id, some))):
            counts[model_id][seconds] += 1
    wanted = set(ids)
    return {model_id: _median(histogram) for model_id, histogram in counts.items() if model_id in wanted}


def _median(histogram: dict[int, int]) -> tuple[int, bool]:
    """The median of the values a histogram {value: count} holds, as (twice it, odd count)."""
    n = sum(histogram.values())
    low_at, high_at = (n - 1) // 2, n // 2  # the middle positions, one when n is odd
    seen, low = 0, None
    for value in sorted(histogram):
        seen += histogram[value]  # positions up to seen - 1 are filled
        if low is None and seen > low_at:
            low = value
        if seen > high_at:
            return low + value, n % 2 == 1
    raise ValueError("the median of nothing")


def _half(twice: int | None, odd: bool | None) -> float | None:
    """The median from (twice it, odd count), as statistics.median gives it: an odd count's
    middle value as it is, an even count's two middle values averaged."""
    if twice is None:
        return None
    return twice // 2 if odd else twice / 2


# ---------------------------------------------------------------- the stored windows


def _windows_as_of(db: Connection) -> int | None:
    """The time window_signals is as of (None: never computed)."""
    return db.execute(select(t.window_state.c.now)).scalar()


def _stored_row(window: str, model_id: int, signals: ModelSignals, counts: dict) -> dict[str, Any]:
    return dict(span=window, model_id=model_id, calls=signals.calls, revenue=signals.revenue,
                organic_calls=signals.organic_calls, callers=signals.callers, repeat_callers=signals.repeat_callers,
                relayers=signals.relayers, **counts)


def _stored(db: Connection, window: str, ids: list[int]) -> dict[int, ModelSignals]:
    w = t.window_signals.c
    found = {}
    for row in db.execute(select(t.window_signals).where(w.span == window, w.model_id.in_(ids))):
        ended = row.fulfilled + row.rejected + row.refunded
        found[row.model_id] = ModelSignals(
            calls=row.calls, revenue=row.revenue, callers=row.callers, repeat_callers=row.repeat_callers,
            organic_calls=row.organic_calls, success_rate=row.fulfilled / ended if ended else None,
            median_settle_seconds=_half(row.median_settle_x2, row.median_settle_odd), relayers=row.relayers)
    return found


def _stored_sort_key(sort: str, window: str) -> tuple[Any, Any]:
    """The ORDER BY expression for `sort` over window_signals, and the models joined to it."""
    m, w = t.models.c, t.window_signals.c
    if sort in ("price", "newest"):
        return (m.price if sort == "price" else m.model_id), t.models
    joined = t.models.outerjoin(t.window_signals, and_(w.model_id == m.model_id, w.span == window))
    if sort == "success_rate":
        return w.fulfilled * 1.0 / func.nullif(w.fulfilled + w.rejected + w.refunded, 0), joined
    if sort == "median_settle_seconds":
        return w.median_settle_x2, joined
    zero = literal(0, type_=t.Amount()) if sort in ("calls", "revenue", "organic_calls") else literal(0)
    return func.coalesce(w[sort], zero), joined


def _among(column: Any, ids: list[int] | None) -> list[Any]:
    return [] if ids is None else [column.in_(ids)]


def account_page(db: Connection, account: str) -> dict[str, Any]:
    """An account's earnings by role and per day, what it paid for, and its balances."""
    account = account.lower()
    e, s = t.earnings.c, t.settlements.c
    sum_ = _summer(db)
    balances = db.execute(select(t.accounts).where(t.accounts.c.account == account)).first()
    by_role = dict(db.execute(select(e.role, sum_(e.amount)).where(e.account == account).group_by(e.role)).all())
    daily = db.execute(select(e.day, sum_(e.amount)).where(e.account == account).group_by(e.day).order_by(e.day)).all()
    paid = db.execute(select(sum_(s.calls), sum_(s.amount)).where(s.caller == account)).one()
    owned = [r[0] for r in db.execute(select(t.models.c.model_id).where(t.models.c.owner == account)
                                      .order_by(t.models.c.model_id))]
    if balances is None and not by_role and not owned and not paid[0]:
        raise UnknownEntityError(f"no account {account} in the index")
    return _jsonable({
        "account": account,
        "earned": {"payee": by_role.get("payee", 0), "relayer": by_role.get("relayer", 0),
                   "treasury": by_role.get("treasury", 0)},
        "earned_daily": [{"day": day * DAY, "amount": amount} for day, amount in daily],
        "paid_calls": paid[0] or 0, "paid": paid[1] or 0,
        "credit": balances.credit if balances else 0,
        "earnings_unwithdrawn": balances.earnings if balances else 0,
        "models": owned,
    })


def relayer_page(db: Connection, relayer: str) -> dict[str, Any]:
    """A relayer's calls served, calls it rejected, its earnings and bond."""
    relayer = relayer.lower()
    e = t.earnings.c
    sum_ = _summer(db)
    info = db.execute(select(t.relayers).where(t.relayers.c.relayer == relayer)).first()
    totals = db.execute(select(t.relayer_totals).where(t.relayer_totals.c.relayer == relayer)).first()
    served, rejected = (totals.calls, totals.rejected) if totals else (0, 0)
    earned = db.execute(select(sum_(e.amount)).where(and_(e.account == relayer, e.role == "relayer"))).scalar()
    if info is None and not served and not rejected:
        raise UnknownEntityError(f"no relayer {relayer} in the index")
    return _jsonable({
        "relayer": relayer, "endpoint": info.endpoint if info else None, "bond": info.bond if info else 0,
        "unbond_at": info.unbond_at if info else None, "registered": info is not None,
        "calls_served": served or 0, "calls_rejected": rejected, "earned": earned or 0,
    })


def _summer(db: Connection):
    dialect = db.engine.dialect.name
    return lambda column: t.bigsum(column, dialect)


def _jsonable(value: Any) -> Any:
    """Amounts beyond 2**53 as decimal strings, as the CLI's --json does."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    return value
