"""The relayer's one chain follower: each round it reads the deployment's events of the blocks
up to `confirmations` behind the head, once, and hands each consumer the events it asked for.

Consumers: the on-chain path's paid requests (paid_requests.py), the registered model files
(registered_files.py), the fast path's view of callers, models and announcements
(fast/chain_view.py) and the juror's court events (court_events.py). The cursor is saved with
the on-chain path's requests, in the same SQLite transaction (a round that dies is read again;
every consumer's update is idempotent). Consumers that keep what they learn only in memory are
fed again from the deployment's start block after each start, before the follower goes on from
the saved cursor; a durable consumer new to a saved cursor (added by an upgrade) may be fed the
blocks before it once (`backfill`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import contracts
from ..rpc import JsonRpc


@dataclass(frozen=True)
class ChainEvent:
    """One decoded event: the contract (contracts.ESCROW...), the event's name, its arguments
    (contracts.EventDecoder's forms: addresses lowercase, bytes as 0x-hex) and its block."""

    contract: str
    name: str
    args: dict[str, Any]
    block_number: int


class Consumer(Protocol):
    """What the follower feeds: `events` names the (contract, event name) pairs it takes."""

    events: Collection[tuple[str, str]]

    def take(self, events: list[ChainEvent], start: int, end: int) -> None:
        """The consumer's events of blocks start..end (inclusive), in chain order."""


class SavedCursor(Protocol):
    """Where the follower goes on from, saved with what the durable consumer saw."""

    @property
    def next_block(self) -> int | None:
        """The first block not read yet (None: nothing read yet)."""

    def save(self, next_block: int) -> None:
        """Saves `next_block` with what was taken from the blocks before it, in one transaction."""


@dataclass
class _Backfill:
    """Blocks a durable consumer new to the saved cursor is fed once (ChainFollower.backfill)."""

    consumer: Consumer
    next_block: int
    done: Callable[[], None]


def first_block_since(timestamp: int, low: int, high: int, block_time: Callable[[int], int]) -> int:
    """The first block of low..high whose time is at least `timestamp` (high if none is), by
    bisection: about log2(high - low) block reads. Block times never decrease."""
    while low < high:
        middle = (low + high) // 2
        if block_time(middle) >= timestamp:
            high = middle
        else:
            low = middle + 1
    return low


class ChainFollower:
    """Reads events of `addresses` ({contract name: address}) for its consumers."""

    def __init__(self, rpc: JsonRpc, addresses: dict[str, str], start_block: int, cursor: SavedCursor,
                 confirmations: int = 0, max_scan_blocks: int = 2_000) -> None:
        self.rpc = rpc
        self.addresses = {name: address.lower() for name, address in addresses.items()}
        self.start_block = start_block
        self.cursor = cursor
        self.confirmations = confirmations
        self.max_scan_blocks = max_scan_blocks
        self._consumers: list[tuple[Consumer, bool]] = []
        self._replay_from: int | None = None  # the next block to feed the memory consumers again
        self._backfills: list[_Backfill] = []

    def add(self, consumer: Consumer, in_memory: bool = False) -> Consumer:
        """Feeds `consumer` from the next round on; `in_memory`: it keeps what it learns only in
        memory, and is fed again from the start block first."""
        self._consumers.append((consumer, in_memory))
        if in_memory:
            self._replay_from = self.start_block
        return consumer

    def step(self, head: int) -> int:
        """Reads every block up to `head - confirmations` not read yet; returns how many."""
        target = head - self.confirmations
        start = self.cursor.next_block
        start = self.start_block if start is None else start
        self._replay(start - 1, target)
        self._backfill(start - 1, target)
        read = 0
        while start <= target:
            end = self._feed([consumer for consumer, _ in self._consumers], start, target)
            self.cursor.save(end + 1)
            read += end - start + 1
            start = end + 1
        return read

    def _replay(self, last: int, target: int) -> None:
        """Feeds the in-memory consumers the blocks before the saved cursor (up to `last`) after
        a start, as far as `target` (the head less confirmations) goes for now."""
        if self._replay_from is None:
            return
        memory = [consumer for consumer, in_memory in self._consumers if in_memory]
        while self._replay_from <= min(last, target):
            self._replay_from = self._feed(memory, self._replay_from, min(last, target)) + 1
        if self._replay_from > last:
            self._replay_from = None

    def backfill(self, consumer: Consumer, start: int, done: Callable[[], None]) -> None:
        """Feeds `consumer` (added already, durable, and new to the saved cursor: a consumer an
        upgrade added) the blocks from `start` to the saved cursor, once, in the next rounds
        before the follower goes on; then calls `done`, for the consumer to record that it has
        them (a start that dies first backfills again: consumers' updates are idempotent)."""
        self._backfills.append(_Backfill(consumer, start, done))

    def _backfill(self, last: int, target: int) -> None:
        for job in list(self._backfills):
            while job.next_block <= min(last, target):
                job.next_block = self._feed([job.consumer], job.next_block, min(last, target)) + 1
            if job.next_block > last:
                self._backfills.remove(job)
                job.done()

    def look_ahead(self, consumer: Consumer, start: int) -> None:
        """Feeds `consumer` its events from `start` to the node's head now, beyond the cursor and
        without moving it (an upload of a file registered a moment ago); the follower feeds
        those blocks again in its rounds."""
        head = self.rpc.block_number()
        while start <= head:
            start = self._feed([consumer], start, head) + 1

    def _feed(self, consumers: Sequence[Consumer], start: int, last: int) -> int:
        """Feeds `consumers` their events of blocks `start` to `last`, or of the first
        `max_scan_blocks` of them (one eth_getLogs); returns the last block fed."""
        end = min(last, start + self.max_scan_blocks - 1)
        events = self.read(consumers, start, end)
        for consumer in consumers:
            consumer.take(events.get(id(consumer), []), start, end)
        return end

    def read(self, consumers: Sequence[Consumer], start: int, end: int) -> dict[int, list[ChainEvent]]:
        """One eth_getLogs for the events `consumers` take in blocks start..end, decoded once;
        id(consumer) -> its events."""
        wanted: dict[tuple[str, str], tuple[str, contracts.EventDecoder]] = {}
        takers: dict[tuple[str, str], list[int]] = {}
        for consumer in consumers:
            for contract, name in consumer.events:
                decoder = contracts.event(contract, name)
                key = (self.addresses[contract], decoder.topic)
                wanted[key] = (contract, decoder)
                takers.setdefault(key, []).append(id(consumer))
        if not wanted:
            return {}
        addresses = sorted({address for address, _ in wanted})
        topics = sorted({topic for _, topic in wanted})
        found: dict[int, list[ChainEvent]] = {}
        for log in self.rpc.logs(addresses, [topics], start, end):
            key = (log.address, log.topic0)
            if key not in wanted:
                continue  # the same event name on another of the contracts
            contract, decoder = wanted[key]
            event = ChainEvent(contract, decoder.name, decoder.decode(log.topics[1:], log.data), log.block_number)
            for taker in takers[key]:
                found.setdefault(taker, []).append(event)
        return found
