"""What the fast path knows of the chain, in memory so that a call makes no RPC: callers (read
into the book), models' prices and floors, announcements that force settlements.

A consumer of the chain follower.

Events followed: this relayer's Reserved / ReleaseAnnounced / Released (the caller is re-read),
ReceiptSignerChanged of followed callers, the registry's price, notice, active and version
events of models read already, FeesEffectiveAt and MinBondEffectiveAt.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ...contracts import ESCROW, REGISTRY, RELAYERS
from ..chain_follower import ChainEvent
from .book import CallerView, ReceiptBook

log = logging.getLogger("modelhub.relayer")


@dataclass(frozen=True)
class ModelView:
    """What the hot path knows of a model (Hub.receipt_terms)."""

    price: int
    floor_price: int  # the last price rise's floor (the price before it), <= price
    floor_ends_at: int  # when that rise's notice ends (kept after it ended; 0: never a rise)
    active: bool
    latest_version: int


_RESERVATIONS = ("Reserved", "ReleaseAnnounced", "Released")
_MODEL_CHANGES = ("PriceChanged", "PriceNoticeStarted", "ModelActiveChanged", "VersionPublished")


class ChainView:
    """The chain as the fast path reads it. `models` and the book's callers are written by the
    daemon thread (and by the loader pool for a model read on first use)."""

    events = (*((ESCROW, name) for name in (*_RESERVATIONS, "ReceiptSignerChanged", "FeesEffectiveAt")),
              *((REGISTRY, name) for name in _MODEL_CHANGES), (RELAYERS, "MinBondEffectiveAt"))

    def __init__(self, hub: Any, book: ReceiptBook, refresh_interval: float) -> None:
        self.hub = hub
        self.book = book
        self.relayer = hub.address.lower()
        self.refresh_interval = refresh_interval
        self.models: dict[int, ModelView] = {}
        self.chain_time = 0  # latest block timestamp the daemon saw
        self.live = False  # past the first round: announcements are news, worth a log line
        self._last_refresh = time.monotonic()
        # Announcements that force settlements (settlement.py clears `releasing` once acted on).
        self.releasing: set[str] = set()  # callers who announced a release of their reservation here
        self.fee_change_at = 0  # a fee change announced for this time
        self.min_bond_change: tuple[int, int] = (0, 0)  # (new minimum bond, effective at)

    def now(self) -> int:
        """Unix time as the escrow will judge deadlines: a dev chain's clock may run ahead."""
        return max(int(time.time()), self.chain_time)

    # ------------------------------------------------------------------ events

    def take(self, events: list[ChainEvent], start: int, end: int) -> None:
        touched: set[str] = set()  # callers of this relayer's reservation events
        signers: set[str] = set()  # accounts whose receipt signer key changed
        models: set[int] = set()
        for event in events:
            args = event.args
            if event.name in _RESERVATIONS:
                if args["relayer"] != self.relayer:
                    continue
                caller = args["caller"]
                touched.add(caller)
                if event.name == "ReleaseAnnounced" and args["amount"] > 0:
                    self.releasing.add(caller)
                    if self.live:
                        log.info("%s announced a release of %d of its reservation here: settling its channels "
                                 "now", caller, args["amount"])
                elif event.name == "ReleaseAnnounced":
                    self.releasing.discard(caller)
            elif event.name == "ReceiptSignerChanged":
                signers.add(args["account"])
            elif event.name == "FeesEffectiveAt":
                self.fee_change_at = args["effectiveAt"]
            elif event.name == "MinBondEffectiveAt":
                self.min_bond_change = (args["minBond"], args["effectiveAt"])
            else:
                models.add(args["modelId"])
        # A caller with nothing reserved here any more is dropped by read_callers; a signer
        # change matters only for callers followed already (a new one is read whole).
        self.read_callers(sorted(touched | (signers & set(self.book.callers))))
        for model_id in models & set(self.models):
            self.read_model(model_id)

    # ------------------------------------------------------------------ reads

    def read_model(self, model_id: int) -> ModelView | None:
        """Reads a model's price, receipt floor, state and latest version; caches it. None if unknown."""
        terms = self.hub.receipt_terms(model_id)
        if not terms.exists:
            return None
        view = ModelView(terms.price, terms.floor_price, terms.floor_ends_at, terms.active, terms.latest_version)
        self.models[model_id] = view
        return view

    def read_callers(self, callers: list[str]) -> None:
        """Reads the reservations for this relayer and the receipt signer keys of `callers`, in
        one JSON-RPC batch, and keeps the callers that have something reserved here."""
        if not callers:
            return
        for caller, (held, key) in zip(callers, self.hub.reservations_and_signers(callers, self.relayer)):
            view = CallerView(held.reserved, held.releasing, held.release_at, _raw(key.signer), _raw(key.next_signer),
                              key.next_at)
            self.book.keep_caller(caller, view)

    def refresh_if_due(self) -> bool:
        """Re-reads every cached model every `refresh_interval` (belt and braces: their events
        already keep them); True if it did."""
        if time.monotonic() - self._last_refresh < self.refresh_interval:
            return False
        self._last_refresh = time.monotonic()
        for model_id in list(self.models):
            self.read_model(model_id)
        return True


def _raw(address: str | None) -> bytes | None:
    return bytes.fromhex(address[2:]) if address else None
