"""The relayer's durable memory: every paid call it has seen, what it answered, and how each
call ended, and the disputes it follows as a juror, in SQLite (WAL), so that a crash at any point
loses nothing and repeats nothing.

A call moves NEW -> ANSWERED -> SETTLED, or NEW -> REJECTING -> REJECTED, or to DROPPED when it
ended without us (settled by another relayer, refunded, or past its deadline). A call whose model
file the relayer lacks waits (NEW -> WAITING -> NEW) while the file is fetched. An answer is
written before it is ever settled, and the chain cursor advances in the same transaction as the
calls it covers.

A dispute (relayer/court_events.py, relayer/juror.py) is stored as the court opened it, with
its phase as the court's events say and this relayer's part in it, if drawn: SEATED -> VOTED
(vote and salt stored, and committed to disk, before the commitment is sent) -> COMMITTED ->
REVEALED, or ABSTAINED (no verdict) or MISSED (a deadline passed first).
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

from ..contracts import DisputePhase
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


class JurorPart(str, Enum):
    """This relayer's part in a dispute whose jury it was drawn to."""

    SEATED = "seated"  # drawn; no verdict yet (its model file may be on its way)
    VOTED = "voted"  # vote and salt stored; its commitment not seen on chain yet
    COMMITTED = "committed"  # its commitment is on chain; the reveal waits for the commit deadline
    REVEALED = "revealed"  # its vote is revealed on chain
    ABSTAINED = "abstained"  # no verdict (the model ran out of time): it does not vote
    MISSED = "missed"  # a deadline passed before it could commit or reveal


@dataclass(frozen=True)
class OpenedDispute:
    """A dispute as its DisputeOpened event announced it: what the jury re-runs and compares."""

    dispute_id: int
    request_id: int
    accused: str
    challenger: str
    caller: str
    model_id: int
    version: int
    input: bytes
    output: bytes
    draw_block: int


@dataclass(frozen=True, kw_only=True)
class StoredDispute(OpenedDispute):
    """A dispute with what the court's events said since, and this relayer's part in it."""

    phase: DisputePhase
    commit_deadline: int | None  # unix times on chain, from JuryDrawn
    reveal_deadline: int | None
    part: JurorPart | None  # None: not on its jury (or not drawn yet)
    vote: int | None
    salt: bytes | None
    note: str | None  # the verdict's reason, or why it did not vote


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
CREATE TABLE IF NOT EXISTS disputes (
    dispute_id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,             -- uint256 as decimal text
    accused TEXT NOT NULL,
    challenger TEXT NOT NULL,
    caller TEXT NOT NULL,
    model_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    input BLOB NOT NULL,
    output BLOB NOT NULL,                 -- the attested output bytes the jury compares with
    draw_block INTEGER NOT NULL,
    phase INTEGER NOT NULL,               -- DisputePhase, as the court's events said
    commit_deadline INTEGER,
    reveal_deadline INTEGER,
    part TEXT,                            -- JurorPart; NULL: not on its jury
    vote INTEGER,
    salt BLOB,                            -- stored before the commitment is sent
    note TEXT,
    seen_at REAL NOT NULL,
    updated_at REAL
);
CREATE INDEX IF NOT EXISTS disputes_by_phase ON disputes (phase, dispute_id);
CREATE INDEX IF NOT EXISTS disputes_by_part ON disputes (part, dispute_id);
"""

_DISPUTE_COLUMNS = (
    "dispute_id, request_id, accused, challenger, caller, model_id, version, input, output, draw_block, phase, "
    "commit_deadline, reveal_deadline, part, vote, salt, note"
)

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


    # ------------------------------------------------------------------ disputes

    def record_disputes(self, opened: Iterable[OpenedDispute]) -> list[int]:
        """Stores newly opened disputes (those already stored are left as they are: the chain is
        read again after a crash). Returns the ids of the new ones."""
        now = time.time()
        added = []
        with self._tx() as db:
            for d in opened:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO disputes (dispute_id, request_id, accused, challenger, caller, model_id, "
                    "version, input, output, draw_block, phase, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (d.dispute_id, str(d.request_id), d.accused, d.challenger, d.caller, d.model_id, d.version,
                     d.input, d.output, d.draw_block, int(DisputePhase.AWAITING_DRAW), now))
                if cursor.rowcount:
                    added.append(d.dispute_id)
        return added

    def record_jury(self, dispute_id: int, commit_deadline: int, reveal_deadline: int, seated: bool) -> bool:
        """The jury of a dispute was drawn: it votes until the deadlines; `seated`: this relayer
        sits on it. True if the dispute moved to its vote now (False: known already, or unknown)."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE disputes SET phase = ?, commit_deadline = ?, reveal_deadline = ?, part = ?, updated_at = ? "
                "WHERE dispute_id = ? AND phase = ?",
                (int(DisputePhase.VOTING), commit_deadline, reveal_deadline, JurorPart.SEATED.value if seated else None,
                 time.time(), dispute_id, int(DisputePhase.AWAITING_DRAW)))
        return cursor.rowcount == 1

    def record_resolved(self, dispute_ids: Iterable[int]) -> None:
        with self._tx() as db:
            db.executemany("UPDATE disputes SET phase = ?, updated_at = ? WHERE dispute_id = ? AND phase != ?",
                           [(int(DisputePhase.RESOLVED), time.time(), dispute_id, int(DisputePhase.RESOLVED))
                            for dispute_id in dispute_ids])

    def store_vote(self, dispute_id: int, vote: int, salt: bytes, reason: str) -> None:
        """Stores a seated juror's vote and salt; they are on disk when this returns, before the
        commitment is sent, so that a crash after the send can still reveal."""
        self._set_part(dispute_id, (JurorPart.SEATED,), JurorPart.VOTED, reason, vote=vote, salt=salt)

    def set_part(self, dispute_id: int, old: Iterable[JurorPart], new: JurorPart, note: str | None = None) -> None:
        """Moves this relayer's part in a dispute from one of `old` to `new` (the note kept if None)."""
        self._set_part(dispute_id, tuple(old), new, note)

    def _set_part(self, dispute_id: int, old: tuple[JurorPart, ...], new: JurorPart, note: str | None,
                  vote: int | None = None, salt: bytes | None = None) -> None:
        marks = ", ".join("?" * len(old))
        with self._tx() as db:
            db.execute(
                "UPDATE disputes SET part = ?, note = COALESCE(?, note), vote = COALESCE(?, vote), "
                f"salt = COALESCE(?, salt), updated_at = ? WHERE dispute_id = ? AND part IN ({marks})",
                (new.value, note, vote, salt, time.time(), dispute_id, *(part.value for part in old)))

    def disputes_awaiting_draw(self, by_block: int, limit: int) -> list[StoredDispute]:
        """Disputes whose jury may be drawn in block `by_block`, oldest first."""
        return self._disputes("phase = ? AND draw_block <= ?", (int(DisputePhase.AWAITING_DRAW), by_block), limit)

    def disputes_with_part(self, part: JurorPart, limit: int,
                           commit_deadline_before: int | None = None) -> list[StoredDispute]:
        """Disputes still voting in which this relayer's part is `part` (and, if given, whose
        commit deadline is before that time), oldest first."""
        where, args = "part = ? AND phase = ?", (part.value, int(DisputePhase.VOTING))
        if commit_deadline_before is not None:
            where, args = where + " AND commit_deadline < ?", (*args, commit_deadline_before)
        return self._disputes(where, args, limit)

    def disputes_to_resolve(self, chain_time: int, ready: Iterable[int], limit: int) -> list[StoredDispute]:
        """Disputes voting past their reveal deadline at `chain_time`, or among `ready` (ids whose
        jurors may all have revealed), oldest first."""
        ready = list(ready)
        marks = ", ".join("?" * len(ready)) or "NULL"
        return self._disputes(f"phase = ? AND (reveal_deadline < ? OR dispute_id IN ({marks}))",
                              (int(DisputePhase.VOTING), chain_time, *ready), limit)

    def dispute(self, dispute_id: int) -> StoredDispute | None:
        found = self._disputes("dispute_id = ?", (dispute_id,), 1)
        return found[0] if found else None

    def dispute_counts(self) -> dict[str, int]:
        """Disputes followed by phase (awaiting_draw, voting, resolved) and, for those on whose
        jury this relayer sits, by its part."""
        counts = {phase.name.lower(): 0 for phase in DisputePhase if phase is not DisputePhase.NONE}
        for phase, count in self._db().execute("SELECT phase, COUNT(*) FROM disputes GROUP BY phase"):
            counts[DisputePhase(phase).name.lower()] = count
        counts.update({part.value: 0 for part in JurorPart})
        for part, count in self._db().execute("SELECT part, COUNT(*) FROM disputes WHERE part IS NOT NULL "
                                              "GROUP BY part"):
            counts[part] = count
        return counts

    def _disputes(self, where: str, args: tuple, limit: int) -> list[StoredDispute]:
        rows = self._db().execute(f"SELECT {_DISPUTE_COLUMNS} FROM disputes WHERE {where} ORDER BY dispute_id "
                                  "LIMIT ?", (*args, limit)).fetchall()
        return [_row_to_dispute(row) for row in rows]


def _row_to_dispute(row: tuple) -> StoredDispute:
    (dispute_id, request_id, accused, challenger, caller, model_id, version, input_, output, draw_block, phase,
     commit_deadline, reveal_deadline, part, vote, salt, note) = row
    return StoredDispute(
        dispute_id=dispute_id, request_id=int(request_id), accused=accused, challenger=challenger, caller=caller,
        model_id=model_id, version=version, input=bytes(input_), output=bytes(output), draw_block=draw_block,
        phase=DisputePhase(phase), commit_deadline=commit_deadline, reveal_deadline=reveal_deadline,
        part=JurorPart(part) if part is not None else None, vote=vote,
        salt=bytes(salt) if salt is not None else None, note=note,
    )


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
