"""The relayer's durable memory: every paid call it has seen, what it answered, and how each
call ended, in SQLite (WAL), so that a crash at any point loses nothing and repeats nothing.

A call moves NEW -> ANSWERED -> SETTLED, or NEW -> REJECTING -> REJECTED, or to DROPPED when it
ended without us (settled by another relayer, refunded, or past its deadline). A call whose model
file the relayer lacks waits (NEW -> WAITING -> NEW) while the file is fetched. An answer is
written before it is ever settled, and the chain cursor advances in the same transaction as the
calls it covers.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..typed_data import Attestation


class CallState(str, Enum):
    NEW = "new"  # seen on chain, not run yet
    WAITING = "waiting"  # the model file is being fetched; back to NEW once it is held
    ANSWERED = "answered"  # output and signed attestation stored, settlement pending
    REJECTING = "rejecting"  # unservable; the on-chain rejection is pending
    SETTLED = "settled"  # fulfilled on chain with our attestation
    REJECTED = "rejected"  # rejected on chain by us, caller refunded
    DROPPED = "dropped"  # ended without us: settled by another relayer, refunded, or expired

    @property
    def open(self) -> bool:
        return self in (CallState.NEW, CallState.WAITING, CallState.ANSWERED, CallState.REJECTING)


@dataclass(frozen=True)
class SeenCall:
    """A paid call as the chain announced it."""

    request_id: int
    model_id: int
    version: int
    caller: str
    price: int
    input: bytes
    input_hash: bytes
    block_number: int
    deadline: int  # unix time after which the caller may take a refund
    # The relayer a designated request (requestInferenceVia) names, lowercase; None: open to all.
    designated: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoredCall(SeenCall):
    """A call with what the relayer made of it."""

    state: CallState
    output: bytes | None
    output_hash: bytes | None
    signature: bytes | None
    reject_reason: int | None
    note: str | None  # why it was rejected or dropped
    seen_at: float
    answered_at: float | None
    ended_at: float | None

    def attestation(self) -> Attestation:
        if self.output_hash is None:
            raise ValueError(f"request {self.request_id} has not been answered")
        return Attestation(self.request_id, self.model_id, self.version, self.input_hash, self.output_hash)


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    request_id TEXT PRIMARY KEY,          -- uint256 as decimal text
    model_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    caller TEXT NOT NULL,
    price TEXT NOT NULL,                  -- token base units, decimal text
    input BLOB NOT NULL,
    input_hash BLOB NOT NULL,
    block_number INTEGER NOT NULL,
    deadline INTEGER NOT NULL,
    state TEXT NOT NULL,
    output BLOB,
    output_hash BLOB,
    signature BLOB,
    reject_reason INTEGER,
    note TEXT,
    seen_at REAL NOT NULL,
    answered_at REAL,
    ended_at REAL,
    designated TEXT                       -- relayer of a designated request; NULL: open to all
);
CREATE INDEX IF NOT EXISTS calls_by_state ON calls (state, block_number);
"""

_COLUMNS = (
    "request_id, model_id, version, caller, price, input, input_hash, block_number, deadline, "
    "state, output, output_hash, signature, reject_reason, note, seen_at, answered_at, ended_at, designated"
)


class RelayerState:
    """One SQLite file; safe to use from several threads (one connection per thread)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # executescript runs in its own transaction (it commits whatever is open first).
        self._db().executescript(SCHEMA)
        columns = {row[1] for row in self._db().execute("PRAGMA table_info(calls)")}
        if "designated" not in columns:  # a state file from before designated requests
            self._db().execute("ALTER TABLE calls ADD COLUMN designated TEXT")

    # ------------------------------------------------------------------ plumbing

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed answer survives a power cut, not only a process crash.
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def bind(self, chain_id: int, escrow: str) -> None:
        """Ties the file to one deployment, so a state file is never replayed against another."""
        bound = self.get_meta("deployment")
        here = f"{chain_id}:{escrow.lower()}"
        if bound is None:
            self.set_meta("deployment", here)
        elif bound != here:
            raise ValueError(
                f"{self.path} belongs to deployment {bound}, not {here}: give this deployment its own --store"
            )

    @property
    def next_block(self) -> int | None:
        """The first block not yet scanned for calls."""
        value = self.get_meta("next_block")
        return int(value) if value is not None else None

    # ------------------------------------------------------------------ transitions

    def record_seen(self, calls: Iterable[SeenCall], next_block: int) -> int:
        """Stores newly seen calls and moves the cursor past them, atomically. Returns how many were new."""
        now = time.time()
        added = 0
        with self._tx() as db:
            for call in calls:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO calls (request_id, model_id, version, caller, price, input, input_hash, "
                    "block_number, deadline, state, seen_at, designated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(call.request_id), call.model_id, call.version, call.caller, str(call.price), call.input,
                     call.input_hash, call.block_number, call.deadline, CallState.NEW.value, now, call.designated),
                )
                added += cursor.rowcount
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('next_block', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(next_block),),
            )
        return added

    def mark_answered(self, answers: Iterable[tuple[int, bytes, bytes, bytes]]) -> None:
        """Stores answers (request id, output, output hash, signature) in one transaction: an
        answer exists from the moment it is committed, and only then is it served or settled."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "UPDATE calls SET state = ?, output = ?, output_hash = ?, signature = ?, answered_at = ? "
                "WHERE request_id = ? AND state = ?",
                [(CallState.ANSWERED.value, output, output_hash, signature, now, str(request_id), CallState.NEW.value)
                 for request_id, output, output_hash, signature in answers],
            )

    def mark_rejecting(self, request_id: int, reason: int, note: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE calls SET state = ?, reject_reason = ?, note = ? WHERE request_id = ? AND state IN (?, ?)",
                (CallState.REJECTING.value, reason, note, str(request_id), CallState.NEW.value,
                 CallState.WAITING.value),
            )

    def mark_waiting(self, request_ids: Iterable[int], note: str) -> None:
        """NEW calls wait for their model file (they are not picked up as NEW meanwhile)."""
        self._move(request_ids, CallState.NEW, CallState.WAITING, note)

    def mark_ready(self, request_ids: Iterable[int]) -> None:
        """Waiting calls whose file is held are NEW again, to be served."""
        self._move(request_ids, CallState.WAITING, CallState.NEW, None)

    def _move(self, request_ids: Iterable[int], old: CallState, new: CallState, note: str | None) -> None:
        with self._tx() as db:
            db.executemany("UPDATE calls SET state = ?, note = ? WHERE request_id = ? AND state = ?",
                           [(new.value, note, str(request_id), old.value) for request_id in request_ids])

    def mark_ended(self, request_ids: Iterable[int], state: CallState, note: str | None = None) -> None:
        """Moves open calls to an end state (SETTLED, REJECTED or DROPPED)."""
        assert not state.open
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "UPDATE calls SET state = ?, note = COALESCE(?, note), ended_at = ? "
                "WHERE request_id = ? AND state IN ('new', 'waiting', 'answered', 'rejecting')",
                [(state.value, note, now, str(request_id)) for request_id in request_ids],
            )

    # ------------------------------------------------------------------ queries

    def in_state(self, state: CallState, limit: int = 1_000) -> list[StoredCall]:
        """Calls in `state`, oldest first."""
        rows = self._db().execute(
            f"SELECT {_COLUMNS} FROM calls WHERE state = ? ORDER BY block_number, rowid LIMIT ?",
            (state.value, limit),
        ).fetchall()
        return [_row_to_call(row) for row in rows]

    def get(self, request_id: int) -> StoredCall | None:
        row = self._db().execute(f"SELECT {_COLUMNS} FROM calls WHERE request_id = ?", (str(request_id),)).fetchone()
        return _row_to_call(row) if row else None

    def counts(self) -> dict[str, int]:
        """Number of calls in each state (every state present, zero if none)."""
        counts = {state.value: 0 for state in CallState}
        for state, count in self._db().execute("SELECT state, COUNT(*) FROM calls GROUP BY state"):
            counts[state] = count
        return counts


def _row_to_call(row: tuple) -> StoredCall:
    (request_id, model_id, version, caller, price, input_, input_hash, block_number, deadline, state, output,
     output_hash, signature, reject_reason, note, seen_at, answered_at, ended_at, designated) = row
    return StoredCall(
        request_id=int(request_id), model_id=model_id, version=version, caller=caller, price=int(price),
        input=bytes(input_), input_hash=bytes(input_hash), block_number=block_number, deadline=deadline,
        state=CallState(state), output=bytes(output) if output is not None else None,
        output_hash=bytes(output_hash) if output_hash is not None else None,
        signature=bytes(signature) if signature is not None else None, reject_reason=reject_reason, note=note,
        seen_at=seen_at, answered_at=answered_at, ended_at=ended_at, designated=designated,
    )
