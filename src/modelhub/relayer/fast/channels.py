"""The relayer's durable record of fast-call channels: the newest receipt it accepted on each
(caller, model) channel and what of it has settled, in SQLite with group commit.

A receipt exists for the relayer from the moment its row is committed (WAL, synchronous=FULL);
the HTTP answer waits for that commit. One writer thread commits every receipt queued while
the previous commit was syncing, so concurrent calls share one fsync.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("modelhub.relayer")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS channels (
    caller TEXT NOT NULL,                 -- lowercase 0x-hex address
    model_id INTEGER NOT NULL,
    calls INTEGER NOT NULL,               -- totals of the newest accepted receipt
    amount TEXT NOT NULL,                 -- token base units, decimal text (up to 160 bits)
    deadline INTEGER NOT NULL,
    signature BLOB NOT NULL,
    settled_calls INTEGER NOT NULL DEFAULT 0,   -- totals the escrow has settled, as last seen
    settled_amount TEXT NOT NULL DEFAULT '0',
    updated_at REAL NOT NULL,
    PRIMARY KEY (caller, model_id)
);
"""

_UPSERT = (
    "INSERT INTO channels (caller, model_id, calls, amount, deadline, signature, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (caller, model_id) DO UPDATE SET calls = excluded.calls, "
    "amount = excluded.amount, deadline = excluded.deadline, signature = excluded.signature, "
    "updated_at = excluded.updated_at"
)


@dataclass
class Channel:
    """One channel (caller, this relayer, model) as the relayer holds it. Mutated in place:
    receipt fields by the HTTP thread after a commit, settled fields by the daemon thread."""

    caller: str  # lowercase 0x-hex
    model_id: int
    calls: int = 0
    amount: int = 0
    deadline: int = 0
    signature: bytes = b""
    settled_calls: int = 0
    settled_amount: int = 0
    # Not stored: the `calls` of a receipt the escrow refused for good (bad signature,
    # underpriced...); it is not submitted again, but a newer receipt of the channel is.
    refused_calls: int = 0

    @property
    def open(self) -> bool:
        """True while the newest receipt pays more than what has settled."""
        return self.calls > self.settled_calls and self.amount >= self.settled_amount

    @property
    def unsettled(self) -> int:
        return self.amount - self.settled_amount


class ChannelStore:
    """The channels table of one SQLite file, and the writer thread that commits receipts.

    `save()` is awaited on the HTTP event loop; `load()`, `record_settled()` run on the daemon
    thread with a connection of their own.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().executescript(SCHEMA)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._pending = 0  # receipts queued for, or being committed by, the writer
        self._pending_lock = threading.Lock()
        self.commits = 0  # transactions committed by the writer (tests and benchmarks read it)
        self.saved = 0  # receipts they carried
        self.commit_seconds = 0.0  # time spent in those transactions

    # ------------------------------------------------------------------ plumbing

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = _connect(self.path)
            self._local.db = db
        return db

    def close(self) -> None:
        """Stops the writer once every queued receipt is committed, and closes this thread's connection."""
        with self._writer_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join()
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def bind(self, chain_id: int, escrow: str, relayer: str) -> None:
        """Ties the file to one deployment and one relayer: receipts name the relayer that may settle them."""
        here = f"{chain_id}:{escrow.lower()}:{relayer.lower()}"
        db = self._db()
        row = db.execute("SELECT value FROM meta WHERE key = 'channels_of'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta (key, value) VALUES ('channels_of', ?)", (here,))
        elif row[0] != here:
            raise ValueError(
                f"{self.path} holds the receipts of {row[0]} (chain:escrow:relayer), not {here}: "
                "give each relayer account and deployment its own --store"
            )

    # ------------------------------------------------------------------ reads and settlement (daemon thread)

    def load(self) -> list[Channel]:
        rows = self._db().execute(
            "SELECT caller, model_id, calls, amount, deadline, signature, settled_calls, settled_amount FROM channels"
        ).fetchall()
        return [Channel(caller, model_id, calls, int(amount), deadline, bytes(signature), settled_calls,
                        int(settled_amount)) for caller, model_id, calls, amount, deadline, signature,
                settled_calls, settled_amount in rows]

    def record_settled(self, settled: list[tuple[str, int, int, int]]) -> None:
        """Stores (caller, model id, settled calls, settled amount) of channels, in one transaction."""
        if not settled:
            return
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "UPDATE channels SET settled_calls = ?, settled_amount = ? WHERE caller = ? AND model_id = ?",
                [(calls, str(amount), caller, model_id) for caller, model_id, calls, amount in settled],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # ------------------------------------------------------------------ the hot path (event loop thread)

    async def save(self, channel: Channel, calls: int, amount: int, deadline: int, signature: bytes,
                   alone: bool = False) -> None:
        """Commits a channel's new receipt; returns once it is on disk. Raises the writer's error
        (sqlite3.Error) if the commit failed: the receipt is then not kept.

        `alone`: the caller's is the only call in flight. If the writer is idle too, the commit
        runs right here, sparing the two thread hand-offs (about 0.2 ms) that group commit costs
        a lone call; under load receipts go to the writer and share its commits."""
        row = (channel.caller, channel.model_id, calls, str(amount), deadline, signature)
        if alone and self._pending == 0:
            error = self._commit(self._db(), [(row, None, None)])
            if error is not None:
                raise error
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._ensure_writer()
        with self._pending_lock:
            self._pending += 1
        self._queue.put((row, loop, future))
        await future

    def _ensure_writer(self) -> None:
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_loop, name="relayer-receipts", daemon=True)
                    self._writer.start()

    def _write_loop(self) -> None:
        db = _connect(self.path)
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is None:
                    break
                batch = [item]
                # Everything queued while the last commit synced goes into this one.
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                error = self._commit(db, batch)
                with self._pending_lock:
                    self._pending -= len(batch)
                by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
                for _, loop, future in batch:
                    by_loop.setdefault(loop, []).append(future)
                for loop, futures in by_loop.items():
                    try:
                        loop.call_soon_threadsafe(_resolve, futures, error)
                    except RuntimeError:  # that loop has closed: nobody waits for the answer
                        pass
        finally:
            db.close()

    def _commit(self, db: sqlite3.Connection, batch: list) -> BaseException | None:
        now = time.time()
        started = time.perf_counter()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(_UPSERT, [(*row, now) for row, _, _ in batch])
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as error:
            log.error("could not store %d receipt(s) in %s: %s; those calls are refused", len(batch), self.path, error)
            return error
        self.commits += 1
        self.saved += len(batch)
        self.commit_seconds += time.perf_counter() - started
        return None


def _resolve(futures: list[asyncio.Future], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # the request was cancelled (client gone): nothing to tell
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    # FULL: an accepted receipt survives a power cut, not only a process crash.
    db.execute("PRAGMA synchronous=FULL")
    return db
