"""Reading the hub's events fast: raw `eth_getLogs` over the three contracts, decoded with the
event ABIs of the build (contracts.contract_type, the package's one source of ABIs), and the
timestamps of the blocks they are in, each in one JSON-RPC round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_utils import keccak

from ..contracts import ESCROW, REGISTRY, RELAYERS, contract_type
from ..errors import ChainUnreachableError, ModelHubError


@dataclass(frozen=True)
class Event:
    """One decoded log: the event's name, its arguments by name, and where it happened."""

    name: str
    args: dict[str, Any]
    block: int
    log_index: int


_STATIC = ("uint", "int", "address", "bool", "bytes32")


class _Decoder:
    """One event's decoder. Events whose fields are all one-word types (most of the hub's) are
    read word by word, several times faster than eth_abi; the others go through eth_abi."""

    def __init__(self, abi: Any) -> None:
        self.name = abi.name
        self.indexed = [(i.name, i.canonical_type) for i in abi.inputs if i.indexed]
        self.plain = [(i.name, i.canonical_type) for i in abi.inputs if not i.indexed]
        self.static = all(kind.startswith(_STATIC) and not kind.endswith("]") for _, kind in self.plain)

    def decode(self, log: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(self.indexed, log["topics"][1:]):
            args[name] = _word(kind, bytes.fromhex(topic[2:]))
        data = bytes.fromhex(log["data"][2:])
        if self.static:
            for index, (name, kind) in enumerate(self.plain):
                args[name] = _word(kind, data[32 * index:32 * index + 32])
            return args
        values = abi_decode([kind for _, kind in self.plain], data)
        for (name, kind), value in zip(self.plain, values):
            args[name] = _plain(kind, value)
        return args


def _word(kind: str, word: bytes) -> Any:
    """A one-word ABI value: addresses as lowercase hex, bytes32 as 0x-hex, ints, bools."""
    if kind == "address":
        return "0x" + word[12:].hex()
    if kind == "bool":
        return word[-1] == 1
    if kind == "bytes32":
        return "0x" + word.hex()
    if kind.startswith("int"):
        return int.from_bytes(word, "big", signed=True)
    return int.from_bytes(word, "big")


def _plain(kind: str, value: Any) -> Any:
    if kind == "address":
        return value.lower()
    if kind == "address[]":
        return [v.lower() for v in value]
    if kind.startswith("bytes"):
        return "0x" + bytes(value).hex()
    return value


class EventSource:
    """The hub's events between two blocks, in chain order."""

    def __init__(self, rpc_url: str, addresses: dict[str, str], timeout: float = 30.0) -> None:
        self.rpc_url = rpc_url
        self.timeout = timeout
        self.session = requests.Session()
        self.addresses = {name: address.lower() for name, address in addresses.items()}
        self.decoders: dict[tuple[str, str], _Decoder] = {}
        for name in (REGISTRY, RELAYERS, ESCROW):
            for abi in contract_type(name).events:
                topic = "0x" + keccak(text=abi.selector).hex()
                self.decoders[(self.addresses[name], topic)] = _Decoder(abi)

    def head(self) -> int:
        return int(self._call("eth_blockNumber", []), 16)

    def events(self, from_block: int, to_block: int) -> list[Event]:
        logs = self._call("eth_getLogs", [{
            "fromBlock": hex(from_block), "toBlock": hex(to_block),
            "address": list(self.addresses.values()),
        }])
        found = []
        for log in logs:
            decoder = self.decoders.get((log["address"].lower(), log["topics"][0]))
            if decoder is None:
                continue  # an event of a contract version this build does not know
            found.append(Event(decoder.name, decoder.decode(log), int(log["blockNumber"], 16),
                               int(log["logIndex"], 16)))
        found.sort(key=lambda event: (event.block, event.log_index))
        return found

    def timestamps(self, blocks: Sequence[int]) -> dict[int, int]:
        """Block number -> timestamp, for each of `blocks`, in one batched request."""
        if not blocks:
            return {}
        batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_getBlockByNumber", "params": [hex(b), False]}
                 for i, b in enumerate(blocks)]
        answers = self._post(batch)
        by_id = {answer["id"]: answer for answer in answers}
        stamps = {}
        for i, number in enumerate(blocks):
            result = by_id.get(i, {}).get("result")
            if result is None:
                raise ModelHubError(f"the node has no block {number}: is it the deployment's chain?")
            stamps[number] = int(result["timestamp"], 16)
        return stamps

    def _call(self, method: str, params: list) -> Any:
        answer = self._post({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        if "error" in answer:
            raise ModelHubError(f"the node refused {method}: {answer['error'].get('message', answer['error'])}")
        return answer["result"]

    def _post(self, body: Any) -> Any:
        try:
            response = self.session.post(self.rpc_url, json=body, timeout=self.timeout)
            response.raise_for_status()
            return response.json()
        except requests.RequestException as exc:
            raise ChainUnreachableError(f"the chain at {self.rpc_url} is unreachable: {exc}") from exc
