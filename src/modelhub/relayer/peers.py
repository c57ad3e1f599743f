"""The other relayers' endpoints, as the RelayerRegistry's events announce them: where a relayer
fetches a model file it lacks (GET /v1/artifacts/{cid}). A consumer of the chain follower.

Any registered relayer may be asked, active or not (a file is checked against its digest, so
whoever serves it cannot make it wrong); one that withdrew its bond has no endpoint any more.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..contracts import RELAYERS

if TYPE_CHECKING:
    from .chain_follower import ChainEvent


class RelayerEndpoints:
    """Registered relayer -> its endpoint. Memory: one entry per registration, each paid for
    with a bond. Fed by the follower's thread, read by the file fetcher's."""

    events = ((RELAYERS, "RelayerRegistered"), (RELAYERS, "EndpointChanged"), (RELAYERS, "BondWithdrawn"))

    def __init__(self, own_address: str) -> None:
        self.own = own_address.lower()
        self._endpoints: dict[str, str] = {}
        self._lock = threading.Lock()

    def take(self, events: list[ChainEvent], start: int, end: int) -> None:
        with self._lock:
            for event in events:
                relayer = event.args["relayer"]
                if event.name == "BondWithdrawn":
                    self._endpoints.pop(relayer, None)
                else:
                    self._endpoints[relayer] = event.args["endpoint"]

    def others(self) -> list[str]:
        """The endpoints of every registered relayer but this one, oldest registration first."""
        with self._lock:
            return [url for relayer, url in self._endpoints.items() if relayer != self.own and url]
