"""The indexer's database: the tables (SQLAlchemy Core, one schema for SQLite and PostgreSQL),
opening a database by URL with its migrations applied, and binding it to one deployment.

Token amounts and call counts exceed 64 bits, so they are `Amount`: NUMERIC(78, 0) on
PostgreSQL, and on SQLite a 78-digit zero-padded decimal string, which is exact, sorts in
numeric order, and is summed by the `bigsum` aggregate the connection registers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from ..errors import ModelHubError

AMOUNT_DIGITS = 78  # 2**256 has 78 decimal digits


class IndexDatabaseError(ModelHubError):
    """The index database cannot be opened, or holds another deployment's data."""


class Amount(TypeDecorator):
    """A non-negative integer of up to 256 bits, exact on both databases."""

    impl = String(AMOUNT_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(AMOUNT_DIGITS, 0))
        return dialect.type_descriptor(String(AMOUNT_DIGITS))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return int(value)
        return f"{int(value):0{AMOUNT_DIGITS}d}"

    def process_result_value(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else int(value)


metadata = MetaData()

# Which deployment the database follows, and the last block whose events it holds.
cursor = Table(
    "cursor", metadata,
    Column("id", Integer, primary_key=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("escrow", String(42), nullable=False),
    Column("block", BigInteger, nullable=False),
    Column("treasury", String(42)),  # the escrow's treasury as of `block`
    Column("time", BigInteger),  # the timestamp of `block`: "now" for the signals' windows
)

models = Table(
    "models", metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("owner", String(42), nullable=False),
    Column("name", Text, nullable=False),
    Column("metadata_uri", Text, nullable=False),
    Column("price", Amount, nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("registered_at", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False),
)

versions = Table(
    "versions", metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(66), nullable=False),
    Column("metadata_uri", Text, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False),
)

prices = Table(
    "prices", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", BigInteger, nullable=False, index=True),
    Column("old_price", Amount, nullable=False),
    Column("new_price", Amount, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False),
)

# Explicit payee lists of a model, each with the time it applies from (default payees: the owner).
payee_sets = Table(
    "payee_sets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", BigInteger, nullable=False, index=True),
    Column("accounts", Text, nullable=False),  # JSON list of addresses
    Column("shares", Text, nullable=False),  # JSON list of bps
    Column("effective_at", BigInteger, nullable=False),
    Column("time", BigInteger, nullable=False),
)

fee_terms = Table(
    "fee_terms", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("protocol_bps", Integer, nullable=False),
    Column("relayer_bps", Integer, nullable=False),
    Column("effective_at", BigInteger, nullable=False),
    Column("time", BigInteger, nullable=False),
)

# On-chain calls. status: 1 pending, 2 fulfilled, 3 rejected, 4 refunded (as getRequest).
requests = Table(
    "requests", metadata,
    Column("request_id", String(AMOUNT_DIGITS), primary_key=True),  # decimal
    Column("model_id", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("caller", String(42), nullable=False),
    Column("price", Amount, nullable=False),
    Column("designated", String(42)),
    Column("status", SmallInteger, nullable=False),
    Column("relayer", String(42)),  # who fulfilled or rejected it
    Column("reject_reason", SmallInteger),
    Column("requested_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Column("block", BigInteger, nullable=False),
    Index("ix_requests_model", "model_id", "requested_at"),
    Index("ix_requests_model_ended", "model_id", "ended_at"),
    Index("ix_requests_ended", "ended_at"),
)

channels = Table(
    "channels", metadata,
    Column("caller", String(42), primary_key=True),
    Column("relayer", String(42), primary_key=True),
    Column("model_id", BigInteger, primary_key=True),
    Column("calls", Amount, nullable=False),
    Column("amount", Amount, nullable=False),
)

# Every paid settlement: one fulfilled request, or one receipt's increase (many calls).
settlements = Table(
    "settlements", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", BigInteger, nullable=False),
    Column("kind", String(8), nullable=False),  # "request" | "receipt"
    Column("caller", String(42), nullable=False),
    Column("relayer", String(42), nullable=False),
    Column("calls", Amount, nullable=False),
    Column("amount", Amount, nullable=False),
    Column("self_dealing", Boolean, nullable=False),  # the caller is the owner or a payee
    Column("requested_at", BigInteger),  # on-chain calls: when paid for
    Column("time", BigInteger, nullable=False),
    Column("day", BigInteger, nullable=False),  # time // 86400
    Column("block", BigInteger, nullable=False),
    Index("ix_settlements_model_time", "model_id", "time"),
    Index("ix_settlements_caller", "caller", "model_id", "day"),
    Index("ix_settlements_relayer", "relayer"),
    Index("ix_settlements_time", "time"),
)

# What each account earned, per model, role ("payee", "relayer", "treasury") and UTC day.
earnings = Table(
    "earnings", metadata,
    Column("account", String(42), primary_key=True),
    Column("model_id", BigInteger, primary_key=True),
    Column("role", String(8), primary_key=True),
    Column("day", BigInteger, primary_key=True),  # time // 86400
    Column("amount", Amount, nullable=False),
    Index("ix_earnings_model", "model_id", "day"),
)

# Balances as the events tell them, compared with the chain's own by the tests.
accounts = Table(
    "accounts", metadata,
    Column("account", String(42), primary_key=True),
    Column("credit", Amount, nullable=False),
    Column("earnings", Amount, nullable=False),  # released, not yet withdrawn
    Column("withdrawn_earnings", Amount, nullable=False),
)

reservations = Table(
    "reservations", metadata,
    Column("caller", String(42), primary_key=True),
    Column("relayer", String(42), primary_key=True),
    Column("amount", Amount, nullable=False),
)

# Summaries of the rows above, kept by the indexer in the same transaction (rollups.py), so that
# the hub's pages read a few rows per model instead of every settlement.


def _sums() -> list[Column]:
    """What settlements and ended calls add up to: calls, revenue and organic calls settled, and
    on-chain calls fulfilled, rejected and refunded."""
    return [Column(name, Amount, nullable=False) for name in ("calls", "revenue", "organic_calls")] + [
        Column(name, BigInteger, nullable=False) for name in ("fulfilled", "rejected", "refunded")]


def _distinct_counts() -> list[Column]:
    return [Column(name, BigInteger, nullable=False) for name in ("callers", "repeat_callers", "relayers")]


# Per model, over all time: what `settlements` and ended `requests` add up to, and how many
# distinct callers, repeat callers and relayers `model_callers` and `model_relayers` hold.
model_totals = Table("model_totals", metadata, Column("model_id", BigInteger, primary_key=True),
                     *_sums(), *_distinct_counts())

# Per model and UTC day: settlements by their day, ended on-chain calls by the day they ended.
model_days = Table(
    "model_days", metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("day", BigInteger, primary_key=True),
    Column("settled", BigInteger, nullable=False),  # settlement rows
    *_sums(),
)

# Per model and caller: the caller's latest settlement, and its latest one on an earlier UTC day
# (None until it came back on another day). A window from `since` holds the caller iff
# last_time >= since, and holds it as a repeat caller iff prev_time >= since.
model_callers = Table(
    "model_callers", metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("caller", String(42), primary_key=True),
    Column("last_time", BigInteger, nullable=False),
    Column("last_day", BigInteger, nullable=False),
    Column("prev_time", BigInteger),
    Index("ix_model_callers_last", "model_id", "last_time"),
    Index("ix_model_callers_prev", "model_id", "prev_time"),
)

# Per model and relayer: when that relayer was last paid for serving it.
model_relayers = Table(
    "model_relayers", metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("relayer", String(42), primary_key=True),
    Column("last_time", BigInteger, nullable=False),
)

# Per relayer, over all time: the calls it was paid for serving, and the calls it rejected.
relayer_totals = Table(
    "relayer_totals", metadata,
    Column("relayer", String(42), primary_key=True),
    Column("calls", Amount, nullable=False),
    Column("rejected", BigInteger, nullable=False),
)

# How many on-chain calls of a model settled on a UTC day after exactly `seconds` (for medians).
settle_times = Table(
    "settle_times", metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("day", BigInteger, primary_key=True),
    Column("seconds", BigInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# The same over all time.
settle_seconds = Table(
    "settle_seconds", metadata,
    Column("model_id", BigInteger, primary_key=True),
    Column("seconds", BigInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# Every model's signals in each window (span "all", "7d", "30d") as of window_state.now (the cursor's
# time), recomputed by the indexer for the models whose rows entered or left a window
# (signals.refresh_windows); models with nothing in a window have no row.
window_signals = Table(
    "window_signals", metadata,
    Column("span", String(3), primary_key=True),
    Column("model_id", BigInteger, primary_key=True),
    *_sums(), *_distinct_counts(),
    Column("median_settle_x2", BigInteger),  # twice the median: exact for halves, and sorts like it
    Column("median_settle_odd", Boolean),  # an odd count: the median is a whole number of seconds
)

window_state = Table(
    "window_state", metadata,
    Column("id", Integer, primary_key=True),
    Column("now", BigInteger, nullable=False),  # the time window_signals is as of
    Column("settlement_id", BigInteger, nullable=False),  # the newest settlement it covers
)

relayers = Table(
    "relayers", metadata,
    Column("relayer", String(42), primary_key=True),
    Column("endpoint", Text, nullable=False),
    Column("bond", Amount, nullable=False),
    Column("unbond_at", BigInteger, nullable=False),  # 0 while serving
    Column("registered_at", BigInteger, nullable=False),
)


def _sqlite_bigsum() -> type:
    class BigSum:
        """sum() over Amount columns on SQLite: exact, and in the same zero-padded form."""

        def __init__(self) -> None:
            self.total = 0
            self.seen = False

        def step(self, value: Any) -> None:
            if value is not None:
                self.total += int(value)
                self.seen = True

        def finalize(self) -> str | None:
            return f"{self.total:0{AMOUNT_DIGITS}d}" if self.seen else None

    return BigSum


def bigsum(column: Any, dialect_name: str) -> Any:
    """SUM of an Amount column, exact on both databases (typed as Amount)."""
    if dialect_name == "sqlite":
        return func.bigsum(column, type_=Amount())
    return func.sum(column, type_=Amount())


MIGRATIONS = Path(__file__).with_name("migrations")


def rows_by_key(db: Connection, table: Any, names: list[str], keys: list[tuple], chunk: int = 500) -> list[dict]:
    """The rows of `table` whose columns `names` (its key) equal one of `keys`, a chunk of keys
    per query, each found through the key's index. For a key of several columns the keys are a
    VALUES list joined to the table: SQLite scans the whole table for `(a, b) IN ((...), ...)`,
    and SQLAlchemy takes longer to build a VALUES list of hundreds of rows than the database takes
    to answer it, so that one statement is written out here."""
    found: list[dict] = []
    for start in range(0, len(keys), chunk):
        part = keys[start:start + chunk]
        if len(names) == 1:
            found.extend(dict(row) for row in db.execute(select(table).where(table.c[names[0]].in_(
                [key[0] for key in part]))).mappings())
            continue
        mark = "?" if db.dialect.paramstyle == "qmark" else "%s"
        row = "(" + ", ".join([mark] * len(names)) + ")"
        key_names = ", ".join(f"k{i}" for i in range(len(names)))
        joined = " AND ".join(f"t.{name} = k.k{i}" for i, name in enumerate(names))
        statement = (f"WITH k({key_names}) AS (VALUES {', '.join([row] * len(part))}) "
                     f"SELECT t.* FROM {table.name} AS t JOIN k ON {joined}")
        result = db.exec_driver_sql(statement, tuple(value for key in part for value in key))
        columns = [d[0] for d in result.cursor.description]
        processors = [table.c[name].type.result_processor(db.dialect, None) for name in columns]
        found.extend({name: (process(value) if process else value)
                      for name, process, value in zip(columns, processors, values)} for values in result)
    return found


def open_database(url: str) -> Engine:
    """An engine on `url` (sqlite:///path or postgresql://...) with every migration applied."""
    from alembic import command
    from alembic.config import Config

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, future=True, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise IndexDatabaseError(f"cannot use the database URL {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise IndexDatabaseError(
            f"cannot reach the index database {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0]}; check that the server runs and the URL is right"
        ) from exc
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_aggregate("bigsum", 1, _sqlite_bigsum())
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def bind(engine: Engine, chain_id: int, escrow: str, start_block: int) -> int:
    """Binds an empty database to a deployment, or checks it holds that deployment's data.
    Returns the last block indexed (start_block - 1 when nothing is indexed yet)."""
    with engine.begin() as connection:
        row = connection.execute(select(cursor)).first()
        if row is None:
            connection.execute(cursor.insert().values(id=1, chain_id=chain_id, escrow=escrow.lower(),
                                                      block=start_block - 1))
            return start_block - 1
    if row.chain_id != chain_id or row.escrow != escrow.lower():
        raise IndexDatabaseError(
            f"the index database holds chain {row.chain_id}, escrow {row.escrow}, not chain {chain_id}, "
            f"escrow {escrow.lower()}: give --db another database (nothing was changed)"
        )
    return row.block
