"""Every published model version's file digest and model card URI, learned from the registry's
events: the fast path knows a model's files without an RPC, the juror a version's card, and
uploads are taken only of registered files (a model file, or a card named by its content).

A consumer of the chain follower; a registration costs its sender a transaction.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from ..contracts import REGISTRY
from ..errors import InvalidContentIdError
from ..verdict import card_digest

if TYPE_CHECKING:
    from .chain_follower import ChainEvent, ChainFollower


class RegisteredFiles:
    """The digest and card URI of every published model version.

    Memory: one entry per published version; each costs its publisher a transaction, so the
    size is bounded by what the chain's gas lets anyone publish. Thread-safe: the follower feeds
    it every round, and an upload of a file not known yet makes it look ahead of the follower at
    once (at most one look-ahead every `min_gap` seconds, shared by all the uploads waiting for it).
    """

    events = ((REGISTRY, "ModelRegistered"), (REGISTRY, "VersionPublished"))

    def __init__(self, follower: ChainFollower, min_gap: float = 0.25) -> None:
        self.follower = follower
        self.min_gap = min_gap
        self._through = follower.start_block - 1  # the last block taken
        self._lock = threading.Lock()  # the tables, fed by the follower's thread and by uploads
        self._look_lock = threading.Lock()
        self._last_look = 0.0
        self.versions: dict[tuple[int, int], bytes] = {}  # (model id, version) -> sha-256
        self.latest: dict[int, int] = {}  # model id -> latest version
        self.digests: set[bytes] = set()
        self.cards: dict[tuple[int, int], str] = {}  # (model id, version) -> its metadata URI
        self.card_digests: set[bytes] = set()  # of the cards named by content (ipfs://CID)

    def knows(self, digest: bytes) -> bool:
        """Whether a file with this sha-256 is a version's model file or its content-addressed card."""
        return digest in self.digests or digest in self.card_digests

    def digest(self, model_id: int, version: int) -> bytes | None:
        return self.versions.get((model_id, version))

    def card_uri(self, model_id: int, version: int) -> str | None:
        """The version's metadata URI ("" when it has none); None for a version not seen."""
        return self.cards.get((model_id, version))

    def take(self, events: list[ChainEvent], start: int, end: int) -> None:
        with self._lock:
            for event in events:
                model_id = event.args["modelId"]
                version = 1 if event.name == "ModelRegistered" else event.args["version"]
                digest = bytes.fromhex(event.args["artifactDigest"][2:])
                self.versions[(model_id, version)] = digest
                self.digests.add(digest)
                uri = self.cards[(model_id, version)] = event.args["metadataURI"]
                try:
                    self.card_digests.add(card_digest(uri))
                except InvalidContentIdError:
                    pass  # not named by its content: no relayer stores it, no juror honours it
                self.latest[model_id] = max(self.latest.get(model_id, 0), version)
            self._through = max(self._through, end)

    def catch_up_soon(self, asked_at: float) -> None:
        """Reads the registrations the follower has not reached yet, unless a look-ahead started
        after `asked_at` (monotonic time); one at a time, and at most one every `min_gap`
        seconds, so a flood of unknown uploads costs at most one eth_getLogs per gap."""
        with self._look_lock:  # an upload waiting here sees the result of the look-ahead before it
            if self._last_look > asked_at:
                return
            wait = self._last_look + self.min_gap - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_look = time.monotonic()
            self.follower.look_ahead(self, self._through + 1)
