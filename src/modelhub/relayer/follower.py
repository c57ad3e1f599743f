"""What the relayer learns from the chain's events instead of asking per request.

* `RegisteredFiles`: every model version's digest (ModelRegistered / VersionPublished), so that
  the fast path knows a model's versions and files without an RPC, and POST /v1/artifacts takes
  only files somebody registered (a registration costs its sender a transaction).
* `ChainLogs` / `Rpc`: raw eth_getLogs with topic filters and eth_call batches, one JSON-RPC
  round trip each, decoded by hand (the events and views read here are a few words).

Both are read from the deployment's start block at start, then incrementally.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from eth_utils import keccak

from ..contracts import chain_errors

log = logging.getLogger("modelhub.relayer")

_WORD = 32


def topic(signature: str) -> str:
    """The topic 0 of an event, from its canonical signature."""
    return "0x" + keccak(signature.encode()).hex()


def selector(signature: str) -> str:
    return "0x" + keccak(signature.encode()).hex()[:8]


def address_topic(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


def hex_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def hex_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(str(value), 16) if str(value)[:2] in ("0x", "0X") else int(value)


def word(data: bytes, index: int) -> int:
    return int.from_bytes(data[index * _WORD:(index + 1) * _WORD], "big")


def word_address(value: bytes | int) -> str:
    number = value if isinstance(value, int) else int.from_bytes(value, "big")
    return "0x" + (number & ((1 << 160) - 1)).to_bytes(20, "big").hex()


@dataclass(frozen=True)
class Log:
    address: str  # lowercase
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int

    @property
    def name_topic(self) -> str:
        return "0x" + self.topics[0].hex() if self.topics else ""


class Rpc:
    """The node behind Ape's provider, spoken to directly."""

    def __init__(self) -> None:
        self._session = requests.Session()
        self.calls = 0  # JSON-RPC round trips (tests and /healthz read it)

    def _uri(self) -> str | None:
        from ape import chain

        uri = getattr(chain.provider, "http_uri", None)
        return uri if isinstance(uri, str) and uri.startswith("http") else None

    def request(self, method: str, params: list) -> Any:
        from ape import chain

        self.calls += 1
        with chain_errors():
            return chain.provider.make_request(method, params)

    def logs(self, addresses: Sequence[str], topics: list, start: int, end: int) -> list[Log]:
        result = self.request("eth_getLogs", [{"address": list(addresses), "topics": topics,
                                               "fromBlock": hex(start), "toBlock": hex(end)}])
        found = []
        for item in result or []:
            get = item.get if isinstance(item, dict) else (lambda key, item=item: getattr(item, key))
            found.append(Log(str(get("address")).lower(), tuple(hex_bytes(t) for t in get("topics")),
                             hex_bytes(get("data")), hex_int(get("blockNumber"))))
        found.sort(key=lambda entry: entry.block_number)  # nodes answer in order; be sure
        return found

    def eth_calls(self, to: str, datas: Sequence[str]) -> list[bytes | None]:
        """eth_call of each `data` on `to` at the latest block, in one JSON-RPC batch when the
        node speaks HTTP; None for an item that failed."""
        if not datas:
            return []
        uri = self._uri()
        results: list[bytes | None] = [None] * len(datas)
        if uri is not None:
            batch = [{"jsonrpc": "2.0", "id": index, "method": "eth_call",
                      "params": [{"to": to, "data": data}, "latest"]} for index, data in enumerate(datas)]
            self.calls += 1
            try:
                replies = self._session.post(uri, json=batch, timeout=30).json()
            except (requests.RequestException, ValueError):
                replies = []
            for reply in replies if isinstance(replies, list) else []:
                index = reply.get("id") if isinstance(reply, dict) else None
                if isinstance(index, int) and 0 <= index < len(datas) and isinstance(reply.get("result"), str):
                    results[index] = hex_bytes(reply["result"])
        for index, data in enumerate(datas):  # a node that refuses batches, or an item that failed
            if results[index] is None:
                results[index] = hex_bytes(self.request("eth_call", [{"to": to, "data": data}, "latest"]))
        return results


MODEL_REGISTERED = topic("ModelRegistered(uint256,address,string,bytes32,uint256,string)")
VERSION_PUBLISHED = topic("VersionPublished(uint256,uint32,bytes32,string)")


class RegisteredFiles:
    """The digest of every published model version, followed from the registry's events.

    Memory: one entry per published version; each costs its publisher a transaction, so the
    size is bounded by what the chain's gas lets anyone publish. Thread-safe: the daemon
    follows it every round, and an upload of a file not known yet makes it catch up at once
    (at most one catch-up every `min_gap` seconds, shared by all the uploads waiting for it).
    """

    def __init__(self, rpc: Rpc, registry: str, start_block: int, max_blocks: int = 2_000,
                 min_gap: float = 0.25) -> None:
        self.rpc = rpc
        self.registry = registry
        self.max_blocks = max_blocks
        self.min_gap = min_gap
        self._cursor = start_block
        self._lock = threading.Lock()
        self._last_catch_up = 0.0
        self.versions: dict[tuple[int, int], bytes] = {}  # (model id, version) -> sha-256
        self.latest: dict[int, int] = {}  # model id -> latest version
        self.digests: set[bytes] = set()

    def knows(self, digest: bytes) -> bool:
        return digest in self.digests

    def digest(self, model_id: int, version: int) -> bytes | None:
        return self.versions.get((model_id, version))

    def catch_up(self, head: int | None = None) -> set[int]:
        """Reads new registrations up to `head` (default: the node's head); returns the models
        that gained a version."""
        with self._lock:
            self._last_catch_up = time.monotonic()
            if head is None:
                head = hex_int(self.rpc.request("eth_blockNumber", []))
            changed: set[int] = set()
            while self._cursor <= head:
                end = min(head, self._cursor + self.max_blocks - 1)
                for entry in self.rpc.logs([self.registry], [[MODEL_REGISTERED, VERSION_PUBLISHED]], self._cursor, end):
                    model_id = int.from_bytes(entry.topics[1], "big")
                    if entry.name_topic == MODEL_REGISTERED:
                        version, digest = 1, entry.data[_WORD:2 * _WORD]
                    else:
                        version, digest = word(entry.data, 0), entry.data[_WORD:2 * _WORD]
                    self.versions[(model_id, version)] = digest
                    self.digests.add(digest)
                    self.latest[model_id] = max(self.latest.get(model_id, 0), version)
                    changed.add(model_id)
                self._cursor = end + 1
            return changed

    def catch_up_soon(self, asked_at: float) -> None:
        """Catches up unless a catch-up started after `asked_at` (monotonic time); waits for
        the gap since the last one first, so a flood of unknown uploads costs at most one
        eth_getLogs every `min_gap` seconds."""
        with self._lock:
            if self._last_catch_up > asked_at:
                return
            wait = self._last_catch_up + self.min_gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        with self._lock:
            if self._last_catch_up > asked_at:
                return
        self.catch_up()


def decode_words(data: bytes, count: int) -> list[int]:
    return [word(data, index) for index in range(count)]


def encode_call(signature: str, args: Iterable[int | str]) -> str:
    body = "".join(address_topic(a)[2:] if isinstance(a, str) else f"{a:064x}" for a in args)
    return selector(signature) + body
