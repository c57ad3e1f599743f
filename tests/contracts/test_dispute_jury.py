"""DisputeCourt's jury: the draw (when, from whom), commit and reveal (who, when, once, no
copying), and when a dispute can be resolved."""

from __future__ import annotations

import os

import pytest

from modelhub.typed_data import VOTE_OUTPUT_MATCHES, VOTE_OUTPUT_WRONG, vote_commitment

from tests.support.contracts import one_event, reverts, same
from tests.support.disputes import BAD_OUTPUT, NO_DECISION, PHASE_RESOLVED, PHASE_VOTING, TOKEN

PRICE = 10**15


@pytest.fixture
def open_dispute(kit, caller, active_relayer, stranger):
    """open_dispute() -> the id of a new challenge of a call `active_relayer` settled."""

    def open_():
        facts, input_bytes = kit.settle_on_chain(caller, active_relayer, kit.model(PRICE), PRICE, output=BAD_OUTPUT)
        return kit.challenge(facts, input_bytes, stranger)

    return open_


@pytest.fixture
def pool(jury_pool):
    return jury_pool()


@pytest.fixture
def opened(pool, open_dispute):
    """A challenged on-chain call, with five relayers in the jury pool: its dispute id."""
    return open_dispute()


@pytest.fixture
def drawn(kit, pool, opened, stranger):
    """A dispute whose jury of five is drawn: (dispute id, {address: juror account})."""
    jurors = kit.draw(opened, stranger)
    assert sorted(jurors) == sorted(a.address for a in pool)
    return opened, {a.address: a for a in pool}


# ---------------------------------------------------------------- the draw


def test_the_jury_is_drawn_from_the_draw_block_on_and_only_once(kit, court, chain, opened, stranger):
    draw_block = court.getDispute(opened).drawBlock
    assert chain.blocks.head.number + 1 < draw_block
    with reverts(court.DisputeCourt_DrawTooEarly, disputeId=opened, drawBlock=draw_block):
        court.drawJury(opened, sender=stranger)
    kit.to_draw_block(opened)
    tx = court.drawJury(opened, sender=stranger)
    assert tx.block_number == draw_block
    event = one_event(tx, court.JuryDrawn)
    assert len(event.jurors) == 5
    assert event.commitDeadline == tx.timestamp + court.terms().commitPeriod
    assert event.revealDeadline == event.commitDeadline + court.terms().revealPeriod
    with reverts(court.DisputeCourt_WrongPhase, disputeId=opened, phase=PHASE_VOTING):
        court.drawJury(opened, sender=stranger)


def test_the_jurors_are_distinct_bonded_relayers_and_their_bonds_are_held(kit, court, relayers, drawn):
    dispute, jurors = drawn
    info = court.getDispute(dispute)
    assert len(set(info.jurors)) == 5 and info.phase == PHASE_VOTING
    for seat, juror in enumerate(info.jurors, 1):
        assert relayers.bondHolds(juror) == 1
        assert court.ballotOf(dispute, juror) == (seat, b"\0" * 32, 0)
    assert relayers.poolState()[1] == 0  # the draw is made: weights move again


def test_the_accused_the_challenger_and_the_caller_are_never_drawn(
    kit, court, relayers, bond, jury_pool, caller, active_relayer, stranger
):
    # The challenger and the caller are relayers with far more bond than anyone else.
    bond(stranger, 10_000 * TOKEN)
    bond(caller, 10_000 * TOKEN)
    pool = jury_pool(3)
    relayers_of_parties = (caller, stranger)
    assert all(relayers.poolWeight(a) == 10_000 * TOKEN for a in relayers_of_parties)
    for _ in range(3):
        facts, input_bytes = kit.settle_on_chain(caller, active_relayer, kit.model(PRICE), PRICE)
        dispute = kit.challenge(facts, input_bytes, stranger)
        jurors = kit.draw(dispute, stranger)
        assert sorted(jurors) == sorted(a.address for a in pool)


def test_with_fewer_eligible_relayers_than_a_majority_of_seats_the_dispute_ends_at_the_draw(
    kit, court, relayers, jury_pool, open_dispute, stranger, active_relayer
):
    jury_pool(2)
    opened = open_dispute()
    bond = court.terms().challengeBond
    kit.to_draw_block(opened)
    tx = court.drawJury(opened, sender=stranger)
    assert len(one_event(tx, court.JuryDrawn).jurors) == 2
    resolved = one_event(tx, court.DisputeResolved)
    assert resolved.outcome == NO_DECISION and resolved.slashed == 0
    assert court.getDispute(opened).phase == PHASE_RESOLVED
    assert court.claimable(stranger) == bond and court.bondsHeld() == 0
    assert relayers.bondHolds(active_relayer) == 0
    assert relayers.poolState()[1] == 0


def test_a_jury_of_three_of_five_seats_is_formed_but_needs_all_three_to_decide(kit, court, jury_pool, open_dispute,
                                                                              stranger):
    pool = jury_pool(3)
    opened = open_dispute()
    jurors = kit.draw(opened, stranger)
    assert len(jurors) == 3
    by_address = {a.address: a for a in pool}
    votes = {by_address[jurors[0]]: VOTE_OUTPUT_WRONG, by_address[jurors[1]]: VOTE_OUTPUT_WRONG,
             by_address[jurors[2]]: VOTE_OUTPUT_MATCHES}
    kit.vote(opened, votes)
    kit.to_resolution(opened)
    tx = court.resolve(opened, sender=stranger)
    # Two of five seats are not a majority: no decision.
    assert one_event(tx, court.DisputeResolved).outcome == NO_DECISION


def test_relayers_bonding_while_a_draw_is_pending_are_not_in_that_draw(
    kit, court, relayers, jury_pool, juror_accounts, bond, open_dispute, stranger
):
    pool = jury_pool(5)
    dispute = open_dispute()
    late = juror_accounts[5]
    bond(late, 1_000 * TOKEN)  # ten times anyone else's weight, had it counted
    assert relayers.isActive(late) and relayers.poolWeight(late) == 0
    assert sorted(kit.draw(dispute, stranger)) == sorted(a.address for a in pool)
    # Once no draw is pending, anyone brings its weight up to date.
    relayers.syncWeight(late, sender=stranger)
    assert relayers.poolWeight(late) == 1_000 * TOKEN


def test_an_unknown_dispute_is_refused_everywhere(court, stranger):
    with reverts(court.DisputeCourt_UnknownDispute, disputeId=7):
        court.drawJury(7, sender=stranger)
    with reverts(court.DisputeCourt_UnknownDispute, disputeId=7):
        court.commitVote(7, b"\x01" * 32, sender=stranger)
    with reverts(court.DisputeCourt_UnknownDispute, disputeId=7):
        court.revealVote(7, 1, b"\x01" * 32, sender=stranger)
    with reverts(court.DisputeCourt_UnknownDispute, disputeId=7):
        court.resolve(7, sender=stranger)


# ---------------------------------------------------------------- commits


def test_commits_before_the_draw_are_refused(court, opened, stranger):
    with reverts(court.DisputeCourt_WrongPhase, disputeId=opened, phase=1):
        court.commitVote(opened, b"\x01" * 32, sender=stranger)


def test_only_a_drawn_juror_commits_once_and_not_to_zero(kit, court, drawn, stranger, active_relayer):
    dispute, jurors = drawn
    juror = next(iter(jurors.values()))
    for outsider in (stranger, active_relayer):
        with reverts(court.DisputeCourt_NotJuror, disputeId=dispute, account=outsider):
            court.commitVote(dispute, b"\x01" * 32, sender=outsider)
    with reverts(court.DisputeCourt_ZeroCommitment):
        court.commitVote(dispute, b"\0" * 32, sender=juror)
    tx = kit.commit(dispute, juror, VOTE_OUTPUT_WRONG)
    event = one_event(tx, court.VoteCommitted)
    assert same(event.juror, juror) and court.ballotOf(dispute, juror)[1] == bytes(event.commitment)
    with reverts(court.DisputeCourt_AlreadyCommitted, disputeId=dispute, juror=juror):
        kit.commit(dispute, juror, VOTE_OUTPUT_MATCHES)


def test_commits_close_at_the_commit_deadline(kit, court, chain, drawn):
    dispute, jurors = drawn
    first, second = list(jurors.values())[:2]
    deadline = court.getDispute(dispute).commitDeadline
    chain.pending_timestamp = deadline
    kit.commit(dispute, first, VOTE_OUTPUT_WRONG)
    chain.pending_timestamp = deadline + 1
    with reverts(court.DisputeCourt_CommitClosed, disputeId=dispute, commitDeadline=deadline):
        kit.commit(dispute, second, VOTE_OUTPUT_WRONG)


# ---------------------------------------------------------------- reveals


def test_reveals_open_after_the_commit_deadline_and_close_at_the_reveal_deadline(kit, court, chain, drawn):
    dispute, jurors = drawn
    first, second = list(jurors.values())[:2]
    kit.commit(dispute, first, VOTE_OUTPUT_WRONG)
    kit.commit(dispute, second, VOTE_OUTPUT_WRONG)
    info = court.getDispute(dispute)
    chain.pending_timestamp = info.commitDeadline
    with reverts(court.DisputeCourt_RevealNotOpen, disputeId=dispute, commitDeadline=info.commitDeadline):
        kit.reveal(dispute, first)
    chain.pending_timestamp = info.revealDeadline
    tx = kit.reveal(dispute, first)
    event = one_event(tx, court.VoteRevealed)
    assert same(event.juror, first) and event.vote == VOTE_OUTPUT_WRONG
    chain.pending_timestamp = info.revealDeadline + 1
    with reverts(court.DisputeCourt_RevealClosed, disputeId=dispute, revealDeadline=info.revealDeadline):
        kit.reveal(dispute, second)


def test_a_reveal_must_match_the_commitment_once(kit, court, drawn, stranger):
    dispute, jurors = drawn
    first, second = list(jurors.values())[:2]
    kit.commit(dispute, first, VOTE_OUTPUT_WRONG)
    kit.to_reveals(dispute)
    vote, salt = kit.salts[(dispute, first.address)]
    with reverts(court.DisputeCourt_CommitmentMismatch, disputeId=dispute, juror=first):
        court.revealVote(dispute, VOTE_OUTPUT_MATCHES, salt, sender=first)
    with reverts(court.DisputeCourt_CommitmentMismatch, disputeId=dispute, juror=first):
        court.revealVote(dispute, vote, os.urandom(32), sender=first)
    with reverts(court.DisputeCourt_NotCommitted, disputeId=dispute, juror=second):
        court.revealVote(dispute, vote, salt, sender=second)
    kit.reveal(dispute, first)
    with reverts(court.DisputeCourt_AlreadyRevealed, disputeId=dispute, juror=first):
        kit.reveal(dispute, first)
    assert court.ballotOf(dispute, first)[2] == VOTE_OUTPUT_WRONG
    assert court.getDispute(dispute).votesWrong == 1
    with reverts(court.DisputeCourt_NotJuror, disputeId=dispute, account=stranger):
        court.revealVote(dispute, vote, salt, sender=stranger)


def test_a_vote_other_than_the_two_is_refused_even_when_committed(kit, court, drawn):
    dispute, jurors = drawn
    juror = next(iter(jurors.values()))
    salt = os.urandom(32)
    court.commitVote(dispute, vote_commitment(dispute, juror.address, 3, salt), sender=juror)
    kit.to_reveals(dispute)
    with reverts(court.DisputeCourt_InvalidVote, vote=3):
        court.revealVote(dispute, 3, salt, sender=juror)


def test_a_juror_cannot_copy_another_jurors_commitment_or_reveal(kit, court, drawn):
    dispute, jurors = drawn
    honest, copier = list(jurors.values())[:2]
    tx = kit.commit(dispute, honest, VOTE_OUTPUT_WRONG)
    court.commitVote(dispute, one_event(tx, court.VoteCommitted).commitment, sender=copier)
    kit.to_reveals(dispute)
    receipt = kit.reveal(dispute, honest)
    vote = one_event(receipt, court.VoteRevealed).vote
    _, salt = kit.salts[(dispute, honest.address)]
    # The commitment names the juror: the same vote and salt do not open the copier's.
    with reverts(court.DisputeCourt_CommitmentMismatch, disputeId=dispute, juror=copier):
        court.revealVote(dispute, vote, salt, sender=copier)


# ---------------------------------------------------------------- resolution


def test_a_dispute_resolves_after_its_reveal_deadline_or_once_every_juror_revealed(kit, court, chain, drawn, stranger):
    dispute, jurors = drawn
    kit.vote(dispute, {juror: VOTE_OUTPUT_WRONG for juror in list(jurors.values())[:4]})
    deadline = court.getDispute(dispute).revealDeadline
    chain.pending_timestamp = deadline
    with reverts(court.DisputeCourt_TooEarlyToResolve, disputeId=dispute, revealDeadline=deadline):
        court.resolve(dispute, sender=stranger)
    chain.pending_timestamp = deadline + 1
    court.resolve(dispute, sender=stranger)
    with reverts(court.DisputeCourt_WrongPhase, disputeId=dispute, phase=PHASE_RESOLVED):
        court.resolve(dispute, sender=stranger)
    with reverts(court.DisputeCourt_WrongPhase, disputeId=dispute, phase=PHASE_RESOLVED):
        court.drawJury(dispute, sender=stranger)


def test_when_every_juror_has_revealed_the_dispute_resolves_at_once(kit, court, drawn, stranger):
    dispute, jurors = drawn
    kit.vote(dispute, {juror: VOTE_OUTPUT_MATCHES for juror in jurors.values()})
    court.resolve(dispute, sender=stranger)
    assert court.getDispute(dispute).phase == PHASE_RESOLVED


def test_the_seed_is_the_prevrandao_of_the_drawing_block_and_the_dispute_id(
    kit, chain, relayers, jury_pool, open_dispute, caller, active_relayer, stranger
):
    from eth_abi import encode
    from eth_utils import keccak

    pool = jury_pool(7)
    dispute = open_dispute()
    jurors = kit.draw(dispute, stranger)
    prevrandao = chain.provider.web3.eth.get_block("latest")["mixHash"]
    seed = keccak(encode(["bytes32", "uint256"], [bytes(prevrandao), dispute]))
    expected = relayers.drawJurors(seed, 5, [active_relayer.address, stranger.address, caller.address])
    assert jurors == list(expected)
    assert len(jurors) == 5 and set(jurors) <= {a.address for a in pool}
