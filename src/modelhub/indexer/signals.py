"""The hub's signals, each defined once, here, and read from the index. Every one of them counts
only what somebody paid for on chain, so faking it costs real fees.

Per model, over all time or the last 7 or 30 days (by settlement time):
- calls: paid calls settled (an on-chain call counts 1; a receipt counts the calls it adds);
- revenue: what those calls paid, in token base units;
- callers: distinct accounts that paid for a call;
- repeat_callers: callers who paid for calls on at least two different (UTC) days;
- organic_calls: calls whose caller was neither the model's owner nor one of its payees when
  the call settled (self-dealing excluded);
- success_rate: of on-chain calls that ended, the share fulfilled (rejected and refunded are
  the failures); None before any ended;
- median_settle_seconds: the median time from an on-chain request to its settlement;
- relayers: distinct relayers that were paid for serving it.
Per account: earnings by role (payee, relayer, treasury) and per day. Per relayer: calls served,
calls it rejected, its earnings, its bond.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, distinct, func, literal, or_, select
from sqlalchemy.engine import Connection

from . import SORT_KEYS, WINDOWS
from . import schema as t

DAY = 86_400


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
        return _jsonable(asdict(self))


def _since(window: str, now: int) -> int | None:
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}: choose one of {', '.join(WINDOWS)}")
    days = WINDOWS[window]
    return None if days is None else now - days * DAY


def model_signals(db: Connection, model_id: int, now: int, window: str = "all") -> ModelSignals:
    """The signals of one model over `window` ("all", "7d" or "30d") as of time `now`."""
    since = _since(window, now)
    s = t.settlements.c
    where = [s.model_id == model_id] + ([s.time >= since] if since is not None else [])
    sum_ = _summer(db)
    row = db.execute(select(
        sum_(s.calls), sum_(s.amount), func.count(distinct(s.caller)), func.count(distinct(s.relayer)),
    ).where(*where)).one()
    organic = db.execute(select(sum_(s.calls)).where(*where, s.self_dealing.is_(False))).scalar()
    repeat = db.execute(select(func.count()).select_from(
        select(s.caller).where(*where).group_by(s.caller).having(func.count(distinct(s.day)) >= 2).subquery()
    )).scalar()
    durations = [r[0] for r in db.execute(select(s.time - s.requested_at).where(*where, s.kind == "request"))]
    r = t.requests.c
    ended = [r.model_id == model_id, r.status.in_((2, 3, 4))] + ([r.ended_at >= since] if since is not None else [])
    counts = dict(db.execute(select(r.status, func.count()).where(*ended).group_by(r.status)).all())
    total = sum(counts.values())
    return ModelSignals(
        calls=row[0] or 0, revenue=row[1] or 0, callers=row[2], relayers=row[3], organic_calls=organic or 0,
        repeat_callers=repeat, success_rate=(counts.get(2, 0) / total) if total else None,
        median_settle_seconds=statistics.median(durations) if durations else None,
    )


def list_models(db: Connection, now: int, sort: str = "calls", window: str = "all", search: str | None = None,
                limit: int = 50, offset: int = 0, descending: bool = True) -> list[ModelSummary]:
    """Models with their signals, sorted by one of SORT_KEYS, optionally filtered by a search
    of the name or the owner's address."""
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort {sort!r}: choose one of {', '.join(SORT_KEYS)}")
    if not 1 <= limit <= 500 or offset < 0:
        raise ValueError("limit must be 1 to 500 and offset at least 0")
    since = _since(window, now)
    s, m = t.settlements.c, t.models.c
    sum_ = _summer(db)
    in_window = [s.time >= since] if since is not None else []
    totals = select(
        s.model_id.label("model_id"), sum_(s.calls).label("calls"), sum_(s.amount).label("revenue"),
        func.count(distinct(s.caller)).label("callers"), func.count(distinct(s.relayer)).label("relayers"),
    ).where(*in_window).group_by(s.model_id).subquery()
    organic = select(s.model_id.label("model_id"), sum_(s.calls).label("organic_calls")).where(
        *in_window, s.self_dealing.is_(False)).group_by(s.model_id).subquery()
    per_caller = select(s.model_id.label("model_id"), s.caller).where(*in_window).group_by(s.model_id, s.caller).having(
        func.count(distinct(s.day)) >= 2).subquery()
    repeat = select(per_caller.c.model_id, func.count().label("repeat_callers")).group_by(per_caller.c.model_id).subquery()
    query = (
        select(t.models, totals.c.calls, totals.c.revenue, totals.c.callers, totals.c.relayers,
               organic.c.organic_calls, repeat.c.repeat_callers)
        .select_from(t.models.outerjoin(totals, totals.c.model_id == m.model_id)
                     .outerjoin(organic, organic.c.model_id == m.model_id)
                     .outerjoin(repeat, repeat.c.model_id == m.model_id))
    )
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(func.lower(m.name).like(pattern), m.owner.like(pattern)))
    column = {
        "calls": totals.c.calls, "revenue": totals.c.revenue, "callers": totals.c.callers,
        "relayers": totals.c.relayers, "organic_calls": organic.c.organic_calls,
        "repeat_callers": repeat.c.repeat_callers, "price": m.price, "newest": m.model_id,
    }[sort]
    # Models without settlements have no totals row: they count as zero.
    zero = literal(0) if sort in ("callers", "relayers", "repeat_callers") else literal(0, type_=t.Amount())
    key = func.coalesce(column, zero) if sort not in ("price", "newest") else column
    query = query.order_by(key.desc() if descending else key.asc(), m.model_id.asc()).limit(limit).offset(offset)
    summaries = []
    for row in db.execute(query):
        summaries.append(ModelSummary(
            row.model_id, row.name, row.owner, row.price, row.latest_version, row.active, row.registered_at,
            ModelSignals(calls=row.calls or 0, revenue=row.revenue or 0, callers=row.callers or 0,
                         repeat_callers=row.repeat_callers or 0, organic_calls=row.organic_calls or 0,
                         relayers=row.relayers or 0)))
    return summaries


def model_page(db: Connection, model_id: int, now: int) -> dict[str, Any]:
    """Everything a model page shows: the model, its signals in every window, its versions,
    price history, calls and revenue per day, and who earned what from it."""
    model = db.execute(select(t.models).where(t.models.c.model_id == model_id)).first()
    if model is None:
        raise UnknownEntityError(f"no model {model_id} in the index")
    s, e = t.settlements.c, t.earnings.c
    sum_ = _summer(db)
    daily = db.execute(select(s.day, sum_(s.calls), sum_(s.amount)).where(s.model_id == model_id)
                       .group_by(s.day).order_by(s.day)).all()
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
    s, r, e = t.settlements.c, t.requests.c, t.earnings.c
    sum_ = _summer(db)
    info = db.execute(select(t.relayers).where(t.relayers.c.relayer == relayer)).first()
    served = db.execute(select(sum_(s.calls)).where(s.relayer == relayer)).scalar()
    rejected = db.execute(select(func.count()).where(and_(r.relayer == relayer, r.status == 3))).scalar()
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
