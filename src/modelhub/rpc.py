"""A raw JSON-RPC client of the node behind Ape's provider: eth_getLogs, eth_blockNumber and
batches of eth_call in one round trip each, with no ABI work (contracts.py decodes the answers).

The relayer reads the chain through it where Ape's per-call overhead would show: its follower
reads each block range once for all its consumers, and the fast path reads many callers at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from .contracts import chain_errors


@dataclass(frozen=True)
class Log:
    """One raw log: the emitting contract (lowercase), its topics and data as bytes."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    log_index: int = 0

    @property
    def topic0(self) -> str:
        """The event's topic 0 as 0x-hex (contracts.event_topic gives the same for an event)."""
        return "0x" + self.topics[0].hex() if self.topics else ""


def hex_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def hex_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(str(value), 16) if str(value)[:2] in ("0x", "0X") else int(value)


class JsonRpc:
    """The node behind Ape's provider, spoken to directly: single requests through the
    provider's own connection, batches over HTTP when the node speaks it."""

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

    def block_number(self) -> int:
        return hex_int(self.request("eth_blockNumber", []))

    def logs(self, addresses: Sequence[str], topics: list, start: int, end: int) -> list[Log]:
        """The logs of `addresses` matching `topics` (eth_getLogs' filter) in blocks start..end, in chain order."""
        result = self.request("eth_getLogs", [{"address": list(addresses), "topics": topics,
                                               "fromBlock": hex(start), "toBlock": hex(end)}])
        found = []
        for item in result or []:
            get = item.get if isinstance(item, dict) else (lambda key, item=item: getattr(item, key))
            found.append(Log(str(get("address")).lower(), tuple(hex_bytes(t) for t in get("topics")),
                             hex_bytes(get("data")), hex_int(get("blockNumber")), hex_int(get("logIndex") or 0)))
        found.sort(key=lambda entry: (entry.block_number, entry.log_index))  # nodes answer in order; be sure
        return found

    def eth_calls(self, calls: Sequence[tuple[str, str]]) -> list[bytes]:
        """eth_call of each (to, data) at the latest block, in one JSON-RPC batch when the node
        speaks HTTP; an item the batch did not answer (or a node without batches) is asked alone."""
        if not calls:
            return []
        uri = self._uri()
        results: list[bytes | None] = [None] * len(calls)
        if uri is not None:
            batch = [{"jsonrpc": "2.0", "id": index, "method": "eth_call",
                      "params": [{"to": to, "data": data}, "latest"]} for index, (to, data) in enumerate(calls)]
            self.calls += 1
            try:
                replies = self._session.post(uri, json=batch, timeout=30).json()
            except (requests.RequestException, ValueError):
                replies = []
            for reply in replies if isinstance(replies, list) else []:
                index = reply.get("id") if isinstance(reply, dict) else None
                if isinstance(index, int) and 0 <= index < len(calls) and isinstance(reply.get("result"), str):
                    results[index] = hex_bytes(reply["result"])
        return [answer if answer is not None else hex_bytes(self.request("eth_call", [{"to": to, "data": data},
                                                                                      "latest"]))
                for (to, data), answer in zip(calls, results)]
