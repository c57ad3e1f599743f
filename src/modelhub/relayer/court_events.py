"""The juror's consumer of the chain follower: the dispute court's events become disputes in the
state file (relayer/state.py), each with its phase and this relayer's seat on its jury, if any.

Every update is idempotent (a round that dies before the follower saves its cursor is read
again). Which disputes had votes revealed is kept in memory only: it lets the juror resolve a
dispute as soon as its whole jury revealed; after a restart the reveal deadline does the same.
A state file from a relayer that predates the juror has a cursor past the disputes opened
before the upgrade: the daemon has their events read once (`is_new`, `mark_complete`).
"""

from __future__ import annotations

import logging

from eth_utils import to_checksum_address

from ..contracts import COURT
from .chain_follower import ChainEvent
from .metrics import RelayerMetrics
from .state import OpenedDispute, RelayerState

log = logging.getLogger("modelhub.relayer")

COMPLETE = "court_events"  # the state file's meta key saying it had the court's events from the start


class CourtEvents:
    """The disputes of the deployment's court, as its events tell them."""

    events = ((COURT, "DisputeOpened"), (COURT, "JuryDrawn"), (COURT, "VoteRevealed"), (COURT, "DisputeResolved"))

    def __init__(self, state: RelayerState, relayer: str, metrics: RelayerMetrics) -> None:
        self.state = state
        self.relayer = relayer.lower()
        self.metrics = metrics
        self.revealed: set[int] = set()  # disputes with reveals since the juror last looked at them
        self.resolved = 0  # resolutions seen, in all: the juror claims what they may have paid it
        self.drawn = 0  # draws seen, in all: each may thaw the jury pool's weights

    def is_new(self) -> bool:
        """Whether the state file never had the court's events from its first block on."""
        return self.state.get_meta(COMPLETE) is None

    def mark_complete(self) -> None:
        """Records that the state file holds the court's events up to its cursor."""
        self.state.set_meta(COMPLETE, "complete")

    def take(self, events: list[ChainEvent], start: int, end: int) -> None:
        opened = [_opened(event) for event in events if event.name == "DisputeOpened"]
        added = set(self.state.record_disputes(opened)) if opened else set()
        self.metrics.disputes_seen.inc(len(added))
        for dispute in opened:
            if dispute.dispute_id in added:
                log.info("dispute %d opened against %s (model %d version %d); its jury is drawn from block %d",
                         dispute.dispute_id, dispute.accused, dispute.model_id, dispute.version, dispute.draw_block)
        resolved = []
        for event in events:
            args = event.args
            if event.name == "JuryDrawn":
                self.drawn += 1
                seated = self.relayer in args["jurors"]
                if self.state.record_jury(args["disputeId"], args["commitDeadline"], args["revealDeadline"], seated) \
                        and seated:
                    self.metrics.jury_seats.inc()
                    log.info("drawn to the jury of dispute %d (%d seats); commits until %d, reveals until %d",
                             args["disputeId"], len(args["jurors"]), args["commitDeadline"], args["revealDeadline"])
            elif event.name == "VoteRevealed":
                self.revealed.add(args["disputeId"])
            elif event.name == "DisputeResolved":
                resolved.append(args["disputeId"])
        if resolved:
            self.state.record_resolved(resolved)
            self.revealed.difference_update(resolved)
            self.resolved += len(resolved)


def _opened(event: ChainEvent) -> OpenedDispute:
    args = event.args
    return OpenedDispute(args["disputeId"], args["requestId"], to_checksum_address(args["accused"]),
                         to_checksum_address(args["challenger"]), to_checksum_address(args["caller"]),
                         args["modelId"], args["version"], bytes.fromhex(args["input"][2:]),
                         bytes.fromhex(args["output"][2:]), args["drawBlock"])
