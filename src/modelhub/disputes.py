"""The `Hub`'s dispute methods (DisputeCourt): challenging a settled call's attestation, the jury's
draw, commit and reveal, resolution, payouts, and reading a dispute. Mixed into `modelhub.hub.Hub`.
"""

from __future__ import annotations

import os
from typing import Any

from eth_utils import to_checksum_address

from . import errors as e
from .contracts import DisputeOutcome, DisputePhase, RequestStatus, refusal
from .results import Ballot, DisputeCase, DisputeInfo, DisputeTerms, PoolWeight
from .typed_data import Attestation, Receipt, SettledCall, vote_commitment

__all__ = ["DisputeMethods", "MAX_POOL_WEIGHT", "new_vote_salt"]

MAX_POOL_WEIGHT = 2**96 - 1  # RelayerRegistry.MAX_POOL_WEIGHT (a constant): no weight is above it


def new_vote_salt() -> bytes:
    """A fresh random 32-byte salt for a vote commitment (keep it until the reveal)."""
    return os.urandom(32)


class DisputeMethods:
    """Dispute methods of `Hub` (which provides `contracts`, `address`, `_send`, `_call`,
    `_batch_call`, `_event`, `_logs`, `_request_logs`, `_spend_tokens`, `get_request` and
    `requested_call`)."""

    contracts: Any
    address: str

    # ------------------------------------------------------------------ the court

    @property
    def court(self) -> Any:
        """The DisputeCourt of this deployment (NoDisputeCourtError if it has none)."""
        court = self.contracts.court
        if court is None:
            raise e.NoDisputeCourtError(
                "this deployment has no dispute court (it was made before disputes existed): "
                "redeploy with `ape run deploy` to challenge calls")
        return court

    def dispute_terms(self) -> DisputeTerms:
        """The terms challenges are opened under now."""
        return DisputeTerms(*(int(value) for value in self._call(self.court.terms)))

    # ------------------------------------------------------------------ challenges

    def settled_call(self, request_id: int) -> SettledCall:
        """The facts a settled on-chain call's record holds, read from its InferenceRequested
        and InferenceFulfilled events and its settlement block's time."""
        from ape import chain

        status = self.get_request(request_id).status
        fulfilled = self._request_logs("InferenceFulfilled", request_id)
        if status is not RequestStatus.FULFILLED or not fulfilled:
            raise refusal("DisputeCourt_NotSettled", requestId=request_id, status=int(status))
        call = self.requested_call(request_id)
        log = fulfilled[0]
        settled_at = int(chain.blocks[log.block_number].timestamp)
        return SettledCall(request_id, call.model_id, call.version, call.price, call.input_hash,
                           bytes(log.outputHash), to_checksum_address(log.relayer), settled_at)

    def challenge_request(self, request_id: int, output: bytes | None = None) -> DisputeCase:
        """Challenges the attestation that settled on-chain call `request_id`, posting the
        challenge bond (approving the court first if needed; a challenge the court would refuse
        raises its refusal and sends nothing); returns the dispute opened.
        `output` is the output bytes the relayer delivered (jurors compare theirs with them);
        by default they are fetched from that relayer and checked against the settled hash."""
        facts = self.settled_call(request_id)
        call = self.requested_call(request_id)
        if output is None:
            output = self.fetch_output(request_id).output_bytes
        return self._challenge(self.court.challengeRequest, facts.as_tuple(), call.input, bytes(output))

    def challenge_fast_call(self, receipt: Receipt, receipt_signature: bytes, attestation: Attestation,
                            attestation_signature: bytes, input_bytes: bytes, output: bytes) -> DisputeCase:
        """Challenges a fast call's attestation from what its caller kept: the receipt that paid
        for it and the caller's signature, the relayer's attestation and signature, and the
        input and output bytes; posts the challenge bond (a challenge the court would refuse
        raises its refusal and sends nothing). The receipt must be settled on chain."""
        return self._challenge(self.court.challengeReceipt, receipt.as_tuple(), bytes(receipt_signature),
                               attestation.as_tuple(), bytes(attestation_signature), bytes(input_bytes),
                               bytes(output))

    def _challenge(self, method: Any, *args: Any) -> DisputeCase:
        """Rehearses the challenge as an eth_call first, so a challenge the court would refuse
        raises its refusal having sent nothing (not even the bond's approval); then approves the
        bond if needed and sends it."""
        court = self.court
        try:
            self._simulate(method, *args)
        except e.ContractRevertError as error:
            # The court takes the bond last: a token revert (short of tokens, or not approved
            # yet) means every one of its own checks passed; _spend_tokens says which is short.
            if not error.error_name.startswith(("ERC20", "ExactTransfer_")):
                raise
        self._spend_tokens(court, self.dispute_terms().challenge_bond, "post as a challenge bond")
        tx = self._send(method, *args)
        return _case(self._event(tx, court.DisputeOpened))

    # ------------------------------------------------------------------ the jury

    def draw_jury(self, dispute_id: int) -> DisputeInfo:
        """Draws the jury of a dispute whose draw block has come (anyone may); returns it."""
        # The jury, and so the gas, depends on the randomness of the block the draw lands in,
        # which the estimate cannot know.
        self._send(self.court.drawJury, dispute_id, gas_margin=0.25)
        return self.get_dispute(dispute_id)

    def commit_vote(self, dispute_id: int, vote: int, salt: bytes) -> bytes:
        """Commits this juror's `vote` (VOTE_OUTPUT_MATCHES or VOTE_OUTPUT_WRONG) with `salt`
        (keep both until the reveal: store them before calling); returns the commitment."""
        commitment = vote_commitment(dispute_id, self.address, vote, salt)
        self._send(self.court.commitVote, dispute_id, commitment)
        return commitment

    def reveal_vote(self, dispute_id: int, vote: int, salt: bytes) -> None:
        """Reveals the vote this juror committed to, after the commit deadline."""
        self._send(self.court.revealVote, dispute_id, vote, salt)

    def resolve_dispute(self, dispute_id: int) -> DisputeInfo:
        """Ends a dispute after its reveal deadline (or once every juror revealed) and books its
        payouts (anyone may); returns it, resolved."""
        self._send(self.court.resolve, dispute_id)
        return self.get_dispute(dispute_id)

    # ------------------------------------------------------------------ the jury pool

    def pool_weight(self, relayer: Any = None) -> PoolWeight:
        """`relayer`'s (default: this account's) weight in the jury pool, the weight the registry's
        rule gives it now and the jury draws pending, in one batched read."""
        relayers = self.contracts.relayers
        who = self.address if relayer is None else to_checksum_address(getattr(relayer, "address", relayer))
        (weight,), (_, bond, active, _), (_, pending) = self._batch_call(
            [(relayers.poolWeight, (who,)), (relayers.relayerInfo, (who,)), (relayers.poolState, ())])
        return PoolWeight(who, int(weight), min(int(bond), MAX_POOL_WEIGHT) if active else 0, int(pending))

    def sync_pool_weight(self, relayer: Any = None) -> PoolWeight:
        """Brings `relayer`'s (default: this account's) weight in the jury pool up to date (anyone
        may, for any relayer): a bond changed or slashed while a jury draw was pending, or a new
        minimum bond, waits for this. Sends nothing when it is up to date; refused while a draw is
        pending (the weights are frozen until it is made). Returns the weight after."""
        before = self.pool_weight(relayer)
        if before.frozen:
            raise e.DisputeStateError(
                f"the jury pool's weights are frozen while {before.draws_pending} jury draw(s) are pending; "
                f"sync the weight of {before.relayer} after the draw (drawJury)",
                inputs={"relayer": before.relayer, "drawsPending": before.draws_pending})
        if not before.stale:
            return before
        self._send(self.contracts.relayers.syncWeight, before.relayer)
        return self.pool_weight(before.relayer)

    # ------------------------------------------------------------------ payouts

    def dispute_claimable(self, account: Any = None) -> int:
        """What `account` (default: this one) may claim from the court."""
        who = self.address if account is None else to_checksum_address(getattr(account, "address", account))
        return int(self._call(self.court.claimable, who))

    def claim_dispute_payouts(self) -> int:
        """Pays out all this account may claim from the court; returns the amount."""
        court = self.court
        tx = self._send(court.claim)
        return int(self._event(tx, court.Claimed).amount)

    # ------------------------------------------------------------------ reading

    def get_dispute(self, dispute_id: int) -> DisputeInfo:
        """A dispute as the court holds it now."""
        d = self._call(self.court.getDispute, dispute_id)
        return DisputeInfo(dispute_id, int(d.requestId), d.accused, d.challenger, d.caller, int(d.refund),
                           int(d.termsId), DisputePhase(d.phase), DisputeOutcome(d.outcome), int(d.drawBlock),
                           int(d.commitDeadline), int(d.revealDeadline),
                           tuple(to_checksum_address(j) for j in d.jurors), int(d.revealed),
                           int(d.votesMatch), int(d.votesWrong))

    def dispute_case(self, dispute_id: int) -> DisputeCase:
        """What a dispute is about: its DisputeOpened event (model, version, input, output hash)."""
        logs = self._logs(self.court, "DisputeOpened", {"disputeId": dispute_id})
        if not logs:
            raise refusal("DisputeCourt_UnknownDispute", disputeId=dispute_id)
        return _case(logs[0])

    def ballot(self, dispute_id: int, juror: Any = None) -> Ballot:
        """`juror`'s (default: this account's) seat, commitment and vote in a dispute."""
        who = self.address if juror is None else to_checksum_address(getattr(juror, "address", juror))
        seat, commitment, vote = self._call(self.court.ballotOf, dispute_id, who)
        return Ballot(int(seat), bytes(commitment), int(vote))

    def dispute_of(self, attestation_digest: bytes) -> int | None:
        """The dispute of the attestation with this EIP-712 digest, or None if never challenged."""
        dispute_id = int(self._call(self.court.disputeOf, attestation_digest))
        return dispute_id or None


def _case(log: Any) -> DisputeCase:
    return DisputeCase(int(log.disputeId), int(log.requestId), bytes(log.attestation),
                       to_checksum_address(log.accused), to_checksum_address(log.challenger),
                       to_checksum_address(log.caller), int(log.modelId), int(log.version),
                       bytes(log.inputHash), bytes(log.outputHash), int(log.refund), int(log.termsId),
                       int(log.drawBlock), bytes(log.input), bytes(log.output), int(log.block_number))
