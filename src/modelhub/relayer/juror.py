"""The relayer as a juror: draws the juries of disputes once their draw block comes, re-runs the
model of each dispute it is drawn to and votes with commit and reveal, resolves and claims.

Runs in the daemon's rounds, after the calls are served, at most `jury_actions_per_round`
actions (a judgment or a transaction) per round. Every step is driven by the state file and the
chain, so a crash anywhere is safe: the vote and its salt are on disk before the commitment is
sent, and before each commit or reveal the juror reads its ballot on chain, so after a restart
it sends again only what did not land, and never reveals twice. Deadlines are the chain's
clock (the head block's time), not this machine's. Races lost to another relayer (a draw or a
resolution someone else sent first) are expected and fine: anyone may send them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..disputes import new_vote_salt
from ..errors import (DisputeStateError, InferenceTimeoutError, ModelFileUnavailableError, NothingToWithdrawError,
                      NotJurorError, UnknownModelError, UnknownVersionError, VoteRefusedError)
from ..runtime import ModelRuntime
from ..store import digest_to_cid
from ..typed_data import VOTE_OUTPUT_MATCHES, VOTE_OUTPUT_WRONG, vote_commitment
from ..verdict import Verdict, judge
from .court_events import CourtEvents
from .file_fetcher import FileFetcher
from .metrics import RelayerMetrics
from .model_cards import CardTolerances
from .registered_files import RegisteredFiles
from .state import JurorPart, RelayerState, StoredDispute

log = logging.getLogger("modelhub.relayer")

VOTE_NAMES = {VOTE_OUTPUT_MATCHES: "matches", VOTE_OUTPUT_WRONG: "wrong"}
_NO_COMMITMENT = bytes(32)
# Disputes looked at per step and round, at most: each costs its challenger a bond, so few are
# open at once; those waiting for something (a file, a deadline) must not hide the others.
_SCAN = 200
WEIGHT_CHECK_ROUNDS = 600  # rounds between two reads of its pool weight with no court event (minutes)


class Juror:
    """One relayer's jury duty on the deployment's court; `step` does one round's share."""

    def __init__(self, hub: Any, state: RelayerState, court: CourtEvents, runtime: ModelRuntime,
                 fetcher: FileFetcher, files: RegisteredFiles, cards: CardTolerances, metrics: RelayerMetrics,
                 actions_per_round: int, stopping: Callable[[], bool] = lambda: False) -> None:
        self.hub, self.state, self.court, self.runtime = hub, state, court, runtime
        self.fetcher, self.files, self.cards, self.metrics = fetcher, files, cards, metrics
        self.actions_per_round = actions_per_round
        self.stopping = stopping
        self.address = hub.address
        self.head = 0
        self.chain_time = 0
        self._claimed_through = -1  # court.resolved when it last claimed (-1: never, so at start)
        self._past_draw: set[int] = set()  # disputes drawn (by anyone) whose JuryDrawn is not read yet
        self._waiting_for_file: set[int] = set()  # disputes whose wait for a file was logged
        self._weight_checked_at = -1  # court.drawn + court.resolved when it last read its pool weight
        self._rounds = 0

    def step(self, head: int, chain_time: int) -> int:
        """One round: draws, verdicts and commits, reveals, resolutions, then a claim if one may
        be due, at most `actions_per_round` of them; returns how many it did."""
        self.head, self.chain_time = head, chain_time
        self._rounds += 1
        done = 0
        for part in (self.draw, self.vote, self.commit, self.reveal, self.resolve, self.claim, self.sync_weight):
            if self.stopping():
                break
            done += part(self.actions_per_round - done)
            if done >= self.actions_per_round:
                break
        return done

    # ------------------------------------------------------------------ the draw

    def draw(self, budget: int) -> int:
        """Draws the jury of every dispute whose draw block the head reached (the transaction's
        gas is estimated at the head, where the court checks the block number too)."""
        done = 0
        due = self.state.disputes_awaiting_draw(self.head, _SCAN)
        self._past_draw &= {d.dispute_id for d in due}  # the rest: their JuryDrawn was read
        for d in due:
            if done >= budget or self.stopping():
                break
            if d.dispute_id in self._past_draw:
                continue
            self._past_draw.add(d.dispute_id)
            try:
                info = self.hub.draw_jury(d.dispute_id)
            except DisputeStateError as error:
                if error.error_name == "DisputeCourt_DrawTooEarly":  # a node behind the one read
                    self._past_draw.discard(d.dispute_id)
                    continue
                log.info("dispute %d: its jury was drawn by another relayer first", d.dispute_id)
                continue
            done += 1
            self.metrics.jury_draws.inc()
            log.info("drew the jury of dispute %d: %s", d.dispute_id, ", ".join(info.jurors) or "nobody (no jury)")
        return done

    # ------------------------------------------------------------------ the verdict

    def vote(self, budget: int) -> int:
        """Re-runs the model of each dispute it sits on without a verdict yet; stores the vote with
        a new salt, then commits it. A dispute whose model file is still being fetched waits."""
        done = 0
        for d in self.state.disputes_with_part(JurorPart.SEATED, _SCAN):
            if done >= budget or self.stopping():
                break
            if self._past(d.commit_deadline):
                self._miss(d, "the commit period ended before it reached a verdict")
                continue
            try:
                verdict = self._verdict(d)
            except InferenceTimeoutError as error:
                done += 1
                why = f"the model did not finish in time, so there is no verdict: {error}"
                self.state.set_part(d.dispute_id, (JurorPart.SEATED,), JurorPart.ABSTAINED, why)
                self.metrics.juror_abstentions.labels(reason="no_verdict").inc()
                log.warning("dispute %d: does not vote: %s", d.dispute_id, why)
                continue
            if verdict is None:
                continue
            done += 1
            # On disk before the commitment is sent: a crash after the send can still reveal.
            self.state.store_vote(d.dispute_id, verdict.vote, new_vote_salt(), verdict.reason)
            self.metrics.juror_verdicts.labels(vote=VOTE_NAMES[verdict.vote]).inc()
            log.info("dispute %d: the attested output %s (%s); committing that vote", d.dispute_id,
                     "is what the model gives" if verdict.matches else "is not what the model gives", verdict.reason)
            done += self._commit(self.state.dispute(d.dispute_id))
        return done

    def _verdict(self, d: StoredDispute) -> Verdict | None:
        """What the juror finds under the version's tolerance, or None while the model file or
        the version's card is fetched; InferenceTimeoutError when the model runs out of time
        (no verdict)."""
        try:
            digest = self.files.digest(d.model_id, d.version) or self.hub.version_digest(d.model_id, d.version)
        except (UnknownModelError, UnknownVersionError) as error:
            return Verdict(VOTE_OUTPUT_WRONG, f"the attested model version does not exist ({error})")
        fetch = self.fetcher.want(digest)
        policy = self.cards.policy(d.model_id, d.version)  # its card's fetch starts with the file's
        if not fetch.held or policy is None:
            if d.dispute_id not in self._waiting_for_file:
                self._waiting_for_file.add(d.dispute_id)
                log.info("dispute %d: waiting for %s, which this relayer is fetching", d.dispute_id,
                         f"the model file {digest_to_cid(digest)}" if not fetch.held
                         else f"the model card {self.files.card_uri(d.model_id, d.version)}")
            return None
        try:
            return judge(self.runtime, digest, d.input, d.output, policy)
        except ModelFileUnavailableError:
            return None  # the store lost the file: the fetcher gets it again

    # ------------------------------------------------------------------ commit and reveal

    def commit(self, budget: int) -> int:
        """Sends the commitment of each stored vote not seen on chain (after a restart, say)."""
        done = 0
        for d in self.state.disputes_with_part(JurorPart.VOTED, _SCAN):
            if done >= budget or self.stopping():
                break
            done += self._commit(d)
        return done

    def _commit(self, d: StoredDispute) -> int:
        ours = vote_commitment(d.dispute_id, self.address, d.vote, d.salt)
        ballot = self.hub.ballot(d.dispute_id)
        if ballot.commitment == ours:  # it landed before a crash, or a receipt that timed out
            self.state.set_part(d.dispute_id, (JurorPart.VOTED,), JurorPart.COMMITTED)
            log.info("dispute %d: its commitment is on chain already", d.dispute_id)
            return 0
        if ballot.commitment != _NO_COMMITMENT:
            self._miss(d, "the commitment on chain is not that of the vote stored here (another store for this "
                       "account?): it cannot be revealed")
            return 0
        if self._past(d.commit_deadline):
            self._miss(d, "the commit period ended before its commitment was sent")
            return 0
        try:
            self.hub.commit_vote(d.dispute_id, d.vote, d.salt)
        except VoteRefusedError as error:
            if error.error_name == "DisputeCourt_AlreadyCommitted":
                return 1  # sent in a round whose receipt was lost: the ballot says which next round
            raise
        except (DisputeStateError, NotJurorError) as error:
            self._miss(d, f"the court refused the commitment: {error}")
            return 1
        self.state.set_part(d.dispute_id, (JurorPart.VOTED,), JurorPart.COMMITTED)
        self.metrics.juror_commits.inc()
        log.info("dispute %d: committed its vote; it reveals after %d (chain time)", d.dispute_id, d.commit_deadline)
        return 1

    def reveal(self, budget: int) -> int:
        """Reveals each committed vote once the head block is past the commit deadline."""
        done = 0
        for d in self.state.disputes_with_part(JurorPart.COMMITTED, _SCAN, commit_deadline_before=self.chain_time):
            if done >= budget or self.stopping():
                break
            done += self._reveal(d)
        return done

    def _reveal(self, d: StoredDispute) -> int:
        if self.hub.ballot(d.dispute_id).vote != 0:  # it landed before a crash
            self._revealed(d, "its vote is revealed on chain already")
            return 0
        if self._past(d.reveal_deadline):
            self._miss(d, "the reveal period ended before its vote was revealed")
            return 0
        try:
            self.hub.reveal_vote(d.dispute_id, d.vote, d.salt)
        except VoteRefusedError as error:
            if error.error_name == "DisputeCourt_AlreadyRevealed":
                self._revealed(d, "its vote is revealed on chain already")
                return 1
            raise
        except DisputeStateError as error:
            if error.error_name == "DisputeCourt_RevealNotOpen":
                return 1  # the next block is past the deadline
            self._miss(d, f"the court refused the reveal: {error}")
            return 1
        self.metrics.juror_reveals.inc()
        self._revealed(d, f"revealed its vote: the output {VOTE_NAMES[d.vote]}")
        return 1

    def _revealed(self, d: StoredDispute, what: str) -> None:
        self.state.set_part(d.dispute_id, (JurorPart.COMMITTED,), JurorPart.REVEALED)
        log.info("dispute %d: %s", d.dispute_id, what)

    # ------------------------------------------------------------------ resolution and payouts

    def resolve(self, budget: int) -> int:
        """Resolves the disputes past their reveal deadline, and those whose whole jury revealed."""
        done = 0
        for d in self.state.disputes_to_resolve(self.chain_time, set(self.court.revealed), _SCAN):
            if done >= budget or self.stopping():
                break
            if not self._past(d.reveal_deadline):
                self.court.revealed.discard(d.dispute_id)  # looked at: revealed again by a new reveal
                info = self.hub.get_dispute(d.dispute_id)
                if info.revealed < len(info.jurors):
                    continue
            done += 1
            try:
                info = self.hub.resolve_dispute(d.dispute_id)
            except DisputeStateError as error:
                if error.error_name == "DisputeCourt_WrongPhase":
                    log.info("dispute %d: resolved by another relayer first", d.dispute_id)
                    self.state.record_resolved([d.dispute_id])
                    continue
                if error.error_name == "DisputeCourt_TooEarlyToResolve":
                    continue  # the next block is past the deadline
                raise
            self.state.record_resolved([d.dispute_id])
            self.metrics.disputes_resolved.inc()
            log.info("resolved dispute %d: %s (%d votes that the output matches, %d that it is wrong)",
                     d.dispute_id, info.outcome.name.lower(), info.votes_match, info.votes_wrong)
        return done

    def claim(self, budget: int) -> int:
        """After a resolution (or at start), claims whatever the court owes this relayer."""
        resolved = self.court.resolved
        if budget <= 0 or resolved == self._claimed_through:
            return 0
        if self.hub.dispute_claimable() == 0:
            self._claimed_through = resolved
            return 0
        try:
            amount = self.hub.claim_dispute_payouts()
        except NothingToWithdrawError:  # claimed meanwhile by another process of this account
            amount = 0
        self._claimed_through = resolved
        if not amount:
            return 1
        self.metrics.dispute_payouts.inc(amount)
        log.info("claimed %d base units of dispute payouts from the court", amount)
        return 1

    # ------------------------------------------------------------------ the pool weight

    def sync_weight(self, budget: int) -> int:
        """Keeps this relayer's weight in the jury pool what the registry's rule gives (its bond
        while active, else 0). A bond changed or slashed while a draw was pending keeps its old
        weight until someone syncs it, and the pool thaws only at a draw: so the weight is read
        at start, after each draw or resolution seen, and every WEIGHT_CHECK_ROUNDS rounds (a new
        minimum bond comes in force with no event); a stale one is synced once no draw is pending."""
        events = self.court.drawn + self.court.resolved
        if budget <= 0 or (events == self._weight_checked_at and self._rounds % WEIGHT_CHECK_ROUNDS):
            return 0
        self._weight_checked_at = events
        weight = self.hub.pool_weight()
        if not weight.stale or weight.frozen:
            return 0  # up to date, or frozen: the draw that thaws it is seen, and it is read again
        try:
            synced = self.hub.sync_pool_weight()
        except DisputeStateError:  # a challenge froze the pool since the read: its draw is seen
            return 1
        self.metrics.pool_weight_syncs.inc()
        log.info("synced its weight in the jury pool: %d -> %d (its bond while active, else 0)", weight.weight,
                 synced.weight)
        return 1

    # ------------------------------------------------------------------ helpers

    def _past(self, deadline: int | None) -> bool:
        """The head block is past `deadline` (so the next block is too)."""
        return deadline is not None and self.chain_time > deadline

    def _miss(self, d: StoredDispute, why: str) -> None:
        self.state.set_part(d.dispute_id, (JurorPart.SEATED, JurorPart.VOTED, JurorPart.COMMITTED), JurorPart.MISSED,
                            why)
        self.metrics.juror_abstentions.labels(reason="missed").inc()
        log.warning("dispute %d: does not vote: %s", d.dispute_id, why)
