"""A raw JSON-RPC client of the node behind Ape's provider: eth_getLogs and eth_blockNumber in
one round trip each, with no ABI work (contracts.py's event decoders read the logs).

The relayer's follower reads through it: each block range once, for all its consumers, without
Ape's per-log decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    """The node behind Ape's provider, spoken to directly through the provider's connection."""

    def __init__(self) -> None:
        self.calls = 0  # JSON-RPC round trips (tests and /healthz read it)

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
