"""Reading the hub's events fast: raw `eth_getLogs` over the three contracts, decoded by
contracts.py's event decoders (built from the build's ABIs, the package's one source of them),
and the timestamps of the blocks they are in, each in one JSON-RPC round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from ..contracts import ESCROW, REGISTRY, RELAYERS, EventDecoder, event_decoders
from ..errors import ChainUnreachableError, ModelHubError


@dataclass(frozen=True)
class Event:
    """One decoded log: the event's name, its arguments by name, and where it happened."""

    name: str
    args: dict[str, Any]
    block: int
    log_index: int


class EventSource:
    """The hub's events between two blocks, in chain order."""

    def __init__(self, rpc_url: str, addresses: dict[str, str], timeout: float = 30.0) -> None:
        self.rpc_url = rpc_url
        self.timeout = timeout
        self.session = requests.Session()
        self.addresses = {name: address.lower() for name, address in addresses.items()}
        self.decoders: dict[tuple[str, str], EventDecoder] = {}
        for name in (REGISTRY, RELAYERS, ESCROW):
            for topic, decoder in event_decoders(name).items():
                self.decoders[(self.addresses[name], topic)] = decoder

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
            args = decoder.decode([bytes.fromhex(topic[2:]) for topic in log["topics"][1:]],
                                  bytes.fromhex(log["data"][2:]))
            found.append(Event(decoder.name, args, int(log["blockNumber"], 16),
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
