"""The SDK's dispute methods, end to end on the session chain: a challenger opens a dispute by
request id and from a fast call's kept receipt and attestation, jurors commit and reveal through
their own Hubs, anyone resolves, everyone claims; refusals are the SDK's own exceptions."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from modelhub import errors as e
from modelhub.contracts import DisputeOutcome, DisputePhase
from modelhub.deployments import Deployment
from modelhub.disputes import new_vote_salt
from modelhub.hub import Hub
from modelhub.results import PoolWeight
from modelhub.typed_data import VOTE_OUTPUT_MATCHES, VOTE_OUTPUT_WRONG

from tests.conftest import PARAMS
from tests.support.disputes import BAD_OUTPUT

PRICE = 10**15


@pytest.fixture
def juror_hubs(deployment, jury_pool):
    """Hubs of five bonded jurors, by address."""
    return {account.address: Hub(deployment, account) for account in jury_pool()}


@pytest.fixture
def lie(kit, juror_hubs, caller, active_relayer):
    """A call `active_relayer` settled on chain with a made-up output (its facts)."""
    facts, _ = kit.settle_on_chain(caller, active_relayer, kit.model(PRICE), PRICE, output=BAD_OUTPUT)
    return facts


def _vote(chain, stranger_hub, juror_hubs, dispute_id, vote):
    """Every drawn juror commits `vote` and reveals it; returns the dispute after the draw."""
    mine_to(chain, stranger_hub.get_dispute(dispute_id).draw_block)
    info = stranger_hub.draw_jury(dispute_id)
    salts = {}
    for juror in info.jurors:
        salts[juror] = new_vote_salt()
        juror_hubs[juror].commit_vote(dispute_id, vote, salts[juror])
    chain.pending_timestamp = info.commit_deadline + 1
    for juror in info.jurors:
        juror_hubs[juror].reveal_vote(dispute_id, vote, salts[juror])
    return info


def mine_to(chain, block: int) -> None:
    """Mines until the head is `block` (the SDK estimates a draw's gas at the head)."""
    head = chain.blocks.head.number
    if head < block:
        chain.mine(block - head)


def test_a_challenge_by_request_id_reads_the_facts_from_the_events_and_opens_a_dispute(
    stranger_hub, lie, active_relayer, caller, escrow
):
    assert stranger_hub.settled_call(lie.request_id) == lie
    stranger_hub.faucet(PARAMS.challenge_bond)
    case = stranger_hub.challenge_request(lie.request_id, BAD_OUTPUT)
    assert (case.dispute_id, case.request_id, case.accused, case.caller) == (
        1, lie.request_id, active_relayer.address, caller.address)
    assert (case.output_hash, case.refund, case.input_hash) == (lie.output_hash, PRICE, lie.input_hash)
    assert keccak(case.input) == lie.input_hash
    assert stranger_hub.dispute_case(1) == case
    assert stranger_hub.dispute_of(case.attestation) == 1
    info = stranger_hub.get_dispute(1)
    assert info.phase is DisputePhase.AWAITING_DRAW and info.outcome is DisputeOutcome.NONE
    assert stranger_hub.dispute_terms().challenge_bond == PARAMS.challenge_bond


def test_a_lie_is_slashed_and_every_party_claims_its_payout_through_the_sdk(
    chain, stranger_hub, juror_hubs, lie, caller_hub, treasury, hub_for
):
    stranger_hub.faucet(PARAMS.challenge_bond)
    dispute_id = stranger_hub.challenge_request(lie.request_id, BAD_OUTPUT).dispute_id
    info = _vote(chain, stranger_hub, juror_hubs, dispute_id, VOTE_OUTPUT_WRONG)
    juror = info.jurors[1]
    assert juror_hubs[juror].ballot(dispute_id).vote == VOTE_OUTPUT_WRONG
    resolved = stranger_hub.resolve_dispute(dispute_id)
    assert resolved.phase is DisputePhase.RESOLVED and resolved.outcome is DisputeOutcome.OUTPUT_WRONG
    assert resolved.votes_wrong == 5 and resolved.jurors == info.jurors

    assert caller_hub.dispute_claimable() == PRICE
    assert caller_hub.claim_dispute_payouts() == PRICE
    expected = PARAMS.challenge_bond + PARAMS.challenger_reward
    assert stranger_hub.claim_dispute_payouts() == expected
    share = PARAMS.juror_reward // 5
    assert juror_hubs[juror].claim_dispute_payouts() == share
    with pytest.raises(e.NothingToWithdrawError, match="nothing to claim"):
        caller_hub.claim_dispute_payouts()
    assert hub_for(treasury).dispute_claimable() == PARAMS.slash_amount - PARAMS.challenger_reward - PARAMS.juror_reward


def test_a_fast_call_is_challenged_from_what_its_caller_kept(kit, stranger_hub, juror_hubs, caller, active_relayer):
    call = kit.settle_fast(caller, active_relayer, kit.model(PRICE), 1, PRICE, output=BAD_OUTPUT)
    stranger_hub.faucet(PARAMS.challenge_bond)
    case = stranger_hub.challenge_fast_call(call.receipt, call.receipt_signature, call.attestation,
                                            call.attestation_signature, call.input, call.output)
    assert case.request_id == call.attestation.request_id and case.input == call.input
    assert case.output == BAD_OUTPUT
    assert case.refund == PRICE and case.accused == active_relayer.address


def test_refused_challenges_say_what_was_wrong(kit, stranger, stranger_hub, juror_hubs, caller_hub, fund, request_call,
                                               caller, active_relayer, lie):
    fund(caller, PRICE)
    pending = request_call(lie.model_id, PRICE)
    with pytest.raises(e.ChallengeRefusedError, match=r"has not settled \(pending\)"):
        stranger_hub.challenge_request(pending.request_id, b"{}")
    with pytest.raises(e.RequestNotFoundError):
        stranger_hub.challenge_request(pending.request_id + 1, b"{}")
    call = kit.settle_fast(caller, active_relayer, lie.model_id, 1, PRICE, settle=False)
    stranger_hub.faucet(2 * PARAMS.challenge_bond)
    sent = stranger.nonce
    with pytest.raises(e.ChallengeRefusedError, match="once its receipt is settled"):
        stranger_hub.challenge_fast_call(call.receipt, call.receipt_signature, call.attestation,
                                         call.attestation_signature, call.input, call.output)
    with pytest.raises(e.ChallengeRefusedError, match="give the exact bytes the call ran on"):
        stranger_hub.challenge_fast_call(call.receipt, call.receipt_signature, call.attestation,
                                         call.attestation_signature, call.input + b" ", call.output)
    with pytest.raises(e.ChallengeRefusedError, match="give the exact bytes the relayer delivered"):
        stranger_hub.challenge_fast_call(call.receipt, call.receipt_signature, call.attestation,
                                         call.attestation_signature, call.input, call.output + b" ")
    # Each refusal came from a rehearsal: nothing was sent, not even the bond's approval.
    assert stranger.nonce == sent
    assert stranger_hub.contracts.token.allowance(stranger.address, stranger_hub.court.address) == 0
    stranger_hub.challenge_request(lie.request_id, BAD_OUTPUT)
    with pytest.raises(e.ChallengeRefusedError, match="already disputed in dispute 1"):
        stranger_hub.challenge_request(lie.request_id, BAD_OUTPUT)
    assert stranger_hub.token_balance() == PARAMS.challenge_bond  # a refused challenge keeps its bond


def test_votes_out_of_turn_are_refused_with_the_deadline(chain, stranger_hub, juror_hubs, lie):
    stranger_hub.faucet(PARAMS.challenge_bond)
    dispute_id = stranger_hub.challenge_request(lie.request_id, BAD_OUTPUT).dispute_id
    with pytest.raises(e.DisputeStateError, match="can be drawn from block"):
        stranger_hub.draw_jury(dispute_id)
    mine_to(chain, stranger_hub.get_dispute(dispute_id).draw_block)
    info = stranger_hub.draw_jury(dispute_id)
    juror = juror_hubs[info.jurors[0]]
    salt = new_vote_salt()
    with pytest.raises(e.NotJurorError, match="was not drawn"):
        stranger_hub.commit_vote(dispute_id, VOTE_OUTPUT_MATCHES, salt)
    juror.commit_vote(dispute_id, VOTE_OUTPUT_MATCHES, salt)
    with pytest.raises(e.VoteRefusedError, match="commits once"):
        juror.commit_vote(dispute_id, VOTE_OUTPUT_MATCHES, salt)
    with pytest.raises(e.DisputeStateError, match="after its commit deadline"):
        juror.reveal_vote(dispute_id, VOTE_OUTPUT_MATCHES, salt)
    chain.pending_timestamp = info.commit_deadline + 1
    with pytest.raises(e.VoteRefusedError, match="not those it committed to"):
        juror.reveal_vote(dispute_id, VOTE_OUTPUT_WRONG, salt)
    with pytest.raises(e.DisputeStateError, match="after its reveal deadline"):
        stranger_hub.resolve_dispute(dispute_id)
    juror.reveal_vote(dispute_id, VOTE_OUTPUT_MATCHES, salt)
    chain.pending_timestamp = info.reveal_deadline + 1
    assert stranger_hub.resolve_dispute(dispute_id).outcome is DisputeOutcome.NO_DECISION


def test_a_bond_changed_while_a_draw_is_pending_gets_its_weight_by_a_sync_after_the_draw(
    chain, stranger_hub, juror_hubs, lie
):
    juror = next(iter(juror_hubs.values()))
    assert juror.pool_weight() == PoolWeight(juror.address, PARAMS.min_bond, PARAMS.min_bond, 0)
    stranger_hub.faucet(PARAMS.challenge_bond)
    dispute_id = stranger_hub.challenge_request(lie.request_id, BAD_OUTPUT).dispute_id
    juror.faucet(PARAMS.min_bond)
    juror.relayer_add_bond(PARAMS.min_bond)  # while the draw is pending: the weight stays
    frozen = stranger_hub.pool_weight(juror.address)
    assert (frozen.weight, frozen.due, frozen.draws_pending) == (PARAMS.min_bond, 2 * PARAMS.min_bond, 1)
    assert frozen.stale and frozen.frozen
    with pytest.raises(e.DisputeStateError, match="frozen while 1 jury draw"):
        stranger_hub.sync_pool_weight(juror.address)

    mine_to(chain, stranger_hub.get_dispute(dispute_id).draw_block)
    stranger_hub.draw_jury(dispute_id)
    assert stranger_hub.pool_weight(juror.address).stale  # the draw thaws the pool; nothing syncs it
    synced = stranger_hub.sync_pool_weight(juror.address)  # anyone may, for any relayer
    assert synced == PoolWeight(juror.address, 2 * PARAMS.min_bond, 2 * PARAMS.min_bond, 0)
    head = chain.blocks.head.number
    assert juror.sync_pool_weight() == synced and chain.blocks.head.number == head  # up to date: nothing sent
    assert stranger_hub.pool_weight() == PoolWeight(stranger_hub.address, 0, 0, 0)  # not a relayer


def test_a_deployment_without_a_court_says_so(deployment, caller):
    old = Deployment.model_validate(deployment.model_dump(by_alias=True, exclude={"dispute_court"}))
    assert "DisputeCourt" not in old.to_json()
    with pytest.raises(e.NoDisputeCourtError, match="no dispute court"):
        Hub(old, caller).dispute_terms()
