"""The on-chain path's consumer of the chain follower: InferenceRequested events become calls
in the state file (relayer/state.py), saved with the follower's cursor in one transaction.

A request designated to another relayer (RelayerDesignated, requestInferenceVia) is left out:
only that relayer may serve it. One designated to this relayer keeps its designation, so that
it is served or rejected with a reason; open requests are served, never rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from eth_utils import to_checksum_address

from ..contracts import ESCROW
from .chain_follower import ChainEvent
from .metrics import RelayerMetrics
from .state import RelayerState, SeenCall

log = logging.getLogger("modelhub.relayer")


class PaidRequests:
    """The requests seen on chain, and the cursor of the blocks read for them."""

    events = ((ESCROW, "InferenceRequested"), (ESCROW, "RelayerDesignated"))

    def __init__(self, state: RelayerState, relayer: str, request_timeout: Callable[[], int],
                 block_time: Callable[[int], int], metrics: RelayerMetrics) -> None:
        self.state = state
        self.relayer = relayer.lower()
        self.request_timeout = request_timeout  # seconds from a request's block to its deadline
        self.block_time = block_time
        self.metrics = metrics
        self._taken: list[SeenCall] = []
        self._blocks = (0, -1)
        self.added = 0  # calls new to the state file, in all (the daemon reads what a round added)

    @property
    def next_block(self) -> int | None:
        return self.state.next_block

    def take(self, events: list[ChainEvent], start: int, end: int) -> None:
        designated = {event.args["requestId"]: event.args["relayer"]
                      for event in events if event.name == "RelayerDesignated"}
        requests = [event for event in events if event.name == "InferenceRequested"]
        timeout = self.request_timeout() if requests else 0
        block_times: dict[int, int] = {}
        seen = []
        for event in requests:
            args = event.args
            relayer = designated.get(args["requestId"])
            if relayer is not None and relayer != self.relayer:
                continue  # only that relayer may serve it
            if event.block_number not in block_times:
                block_times[event.block_number] = self.block_time(event.block_number)
            seen.append(SeenCall(args["requestId"], args["modelId"], args["version"],
                                 to_checksum_address(args["caller"]), args["price"], bytes.fromhex(args["input"][2:]),
                                 bytes.fromhex(args["inputHash"][2:]), event.block_number,
                                 block_times[event.block_number] + timeout, relayer))
        self._taken, self._blocks = seen, (start, end)

    def save(self, next_block: int) -> None:
        added = self.state.record_seen(self._taken, next_block)
        if added:
            self.metrics.requests_seen.inc(added)
            log.info("saw %d new paid call(s) in blocks %d-%d", added, *self._blocks)
        self.added += added
        self._taken = []
