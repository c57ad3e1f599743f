"""DisputeCourt outcomes: who is paid what, to the wei, for each verdict; bonds held and slashed;
claims; terms that change with notice; and the attacks on the game (a caller or the accused
challenging, a relayer unbonding its way out, spam, a self-dealing coalition)."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from modelhub.typed_data import VOTE_OUTPUT_MATCHES, VOTE_OUTPUT_WRONG, Attestation, sign

from tests.conftest import PARAMS
from tests.support.contracts import events, one_event, reverts
from tests.support.disputes import (
    ACCUSED_AWARD,
    BAD_OUTPUT,
    BOND_RETURNED,
    CHALLENGER_REWARD,
    JUROR_REWARD,
    NO_DECISION,
    OUTPUT_RIGHT,
    OUTPUT_WRONG,
    REFUND,
    TOKEN,
    TREASURY,
)

PRICE = 3 * 10**15 + 7
BOND, SLASH, CHALLENGER_REWARD_AMOUNT = PARAMS.challenge_bond, PARAMS.slash_amount, PARAMS.challenger_reward
JUROR_REWARD_AMOUNT, PENALTY = PARAMS.juror_reward, PARAMS.juror_penalty


@pytest.fixture
def pool(jury_pool):
    return {a.address: a for a in jury_pool()}


@pytest.fixture
def dispute_of(kit, pool, caller, active_relayer, stranger):
    """dispute_of(output, challenger=stranger) -> (dispute id, its jurors as accounts, in draw order)."""

    def open_(output=BAD_OUTPUT, challenger=None):
        facts, input_bytes = kit.settle_on_chain(caller, active_relayer, kit.model(PRICE), PRICE, output=output)
        dispute = kit.challenge(facts, input_bytes, challenger or stranger)
        return dispute, [pool[j] for j in kit.draw(dispute, stranger)]

    return open_


def credits(tx, court) -> list[tuple[str, int, int]]:
    return [(c.account, c.amount, c.reason) for c in events(tx, court.Credited)]


def conserved(token, court, relayers, escrow, accounts) -> None:
    """The court holds exactly what it owes; the registry exactly the bonds."""
    assert token.balanceOf(court) == sum(court.claimable(a) for a in accounts) + court.bondsHeld()
    assert token.balanceOf(relayers) == sum(relayers.relayerInfo(a)[1] for a in accounts)


@pytest.fixture
def everyone(accounts, juror_accounts):
    return list(accounts[:10]) + list(juror_accounts)


# ---------------------------------------------------------------- the verdicts


def test_a_lying_relayer_is_slashed_the_caller_refunded_the_challenger_and_jurors_rewarded(
    kit, court, token, relayers, escrow, dispute_of, caller, active_relayer, stranger, treasury, everyone
):
    dispute, jurors = dispute_of()
    kit.vote(dispute, {j: VOTE_OUTPUT_WRONG for j in jurors})
    tx = court.resolve(dispute, sender=stranger)

    resolved = one_event(tx, court.DisputeResolved)
    assert (resolved.outcome, resolved.votesWrong, resolved.slashed) == (OUTPUT_WRONG, 5, SLASH + PRICE)
    share = JUROR_REWARD_AMOUNT // 5
    assert credits(tx, court) == [
        (caller.address, PRICE, REFUND),
        (stranger.address, BOND, BOND_RETURNED),
        (stranger.address, CHALLENGER_REWARD_AMOUNT, CHALLENGER_REWARD),
        (jurors[0].address, JUROR_REWARD_AMOUNT - 4 * share, JUROR_REWARD),
        *[(j.address, share, JUROR_REWARD) for j in jurors[1:]],
        (treasury.address, SLASH - CHALLENGER_REWARD_AMOUNT - JUROR_REWARD_AMOUNT, TREASURY),
    ]
    _, bond, active, _ = relayers.relayerInfo(active_relayer)
    assert bond == PARAMS.min_bond - SLASH - PRICE and not active  # below the minimum: inactive
    assert relayers.poolWeight(active_relayer) == 0
    assert all(relayers.bondHolds(a) == 0 for a in [active_relayer, *jurors])
    conserved(token, court, relayers, escrow, everyone)

    before = token.balanceOf(caller)
    tx = court.claim(sender=caller)
    assert one_event(tx, court.Claimed).amount == PRICE and token.balanceOf(caller) == before + PRICE
    with reverts(court.DisputeCourt_NothingToClaim, account=caller):
        court.claim(sender=caller)
    conserved(token, court, relayers, escrow, everyone)


def test_a_false_challenge_pays_the_jurors_and_the_accused_and_the_minority_is_penalized(
    kit, court, token, relayers, escrow, dispute_of, active_relayer, stranger, everyone
):
    dispute, jurors = dispute_of(output=b'{"label":[0]}')
    votes = {j: VOTE_OUTPUT_MATCHES for j in jurors[:3]} | {j: VOTE_OUTPUT_WRONG for j in jurors[3:]}
    kit.vote(dispute, votes)
    tx = court.resolve(dispute, sender=stranger)

    assert one_event(tx, court.DisputeResolved).outcome == OUTPUT_RIGHT
    penalized = [(p.juror, p.amount) for p in events(tx, court.JurorPenalized)]
    assert penalized == [(j.address, PENALTY) for j in jurors[3:]]
    pool = JUROR_REWARD_AMOUNT + 2 * PENALTY
    share = pool // 3
    assert credits(tx, court) == [
        (active_relayer.address, BOND - JUROR_REWARD_AMOUNT, ACCUSED_AWARD),
        (jurors[0].address, pool - 2 * share, JUROR_REWARD),
        *[(j.address, share, JUROR_REWARD) for j in jurors[1:3]],
    ]
    assert relayers.relayerInfo(active_relayer)[1] == PARAMS.min_bond  # never slashed
    assert all(relayers.relayerInfo(j)[1] == PARAMS.min_bond - PENALTY for j in jurors[3:])
    conserved(token, court, relayers, escrow, everyone)


def test_jurors_who_commit_but_do_not_reveal_or_never_commit_are_penalized(
    kit, court, dispute_of, stranger, active_relayer
):
    dispute, jurors = dispute_of(output=b'{"label":[0]}')
    kit.vote(dispute, {j: VOTE_OUTPUT_MATCHES for j in jurors[:4]}, reveal=set(jurors[:3]))
    kit.to_resolution(dispute)
    tx = court.resolve(dispute, sender=stranger)
    assert one_event(tx, court.DisputeResolved).outcome == OUTPUT_RIGHT
    assert [p.juror for p in events(tx, court.JurorPenalized)] == [j.address for j in jurors[3:]]


def test_without_a_majority_of_the_seats_nothing_is_slashed_and_the_bond_comes_back(
    kit, court, token, relayers, escrow, dispute_of, stranger, treasury, active_relayer, everyone
):
    dispute, jurors = dispute_of()
    votes = {jurors[0]: VOTE_OUTPUT_WRONG, jurors[1]: VOTE_OUTPUT_WRONG, jurors[2]: VOTE_OUTPUT_MATCHES,
             jurors[3]: VOTE_OUTPUT_MATCHES}
    kit.vote(dispute, votes)
    kit.to_resolution(dispute)
    tx = court.resolve(dispute, sender=stranger)

    resolved = one_event(tx, court.DisputeResolved)
    assert (resolved.outcome, resolved.slashed) == (NO_DECISION, 0)
    assert [p.juror for p in events(tx, court.JurorPenalized)] == [jurors[4].address]
    assert credits(tx, court) == [(stranger.address, BOND, BOND_RETURNED), (treasury.address, PENALTY, TREASURY)]
    assert relayers.relayerInfo(active_relayer)[1] == PARAMS.min_bond
    conserved(token, court, relayers, escrow, everyone)


def test_no_reveals_at_all_is_no_decision(kit, court, dispute_of, stranger):
    dispute, jurors = dispute_of()
    kit.to_resolution(dispute)
    tx = court.resolve(dispute, sender=stranger)
    assert one_event(tx, court.DisputeResolved).outcome == NO_DECISION
    assert len(events(tx, court.JurorPenalized)) == 5


def test_a_bond_smaller_than_the_slash_pays_the_refund_first(
    kit, court, token, relayers, escrow, bond, juror_accounts, pool, caller, stranger, everyone
):
    liar = juror_accounts[5]
    bond(liar)
    lies = [kit.settle_on_chain(caller, liar, kit.model(PRICE), PRICE, output=BAD_OUTPUT) for _ in range(2)]
    for facts, input_bytes in lies:
        # The first slash leaves the liar less than the second one asks for.
        dispute = kit.challenge(facts, input_bytes, stranger)
        jurors = [pool[j] for j in kit.draw(dispute, stranger)]
        kit.vote(dispute, {j: VOTE_OUTPUT_WRONG for j in jurors})
        tx = court.resolve(dispute, sender=stranger)
    left = PARAMS.min_bond - SLASH - PRICE
    assert one_event(tx, court.DisputeResolved).slashed == left
    paid = {reason: amount for _, amount, reason in credits(tx, court) if reason != JUROR_REWARD}
    assert paid[REFUND] == PRICE and paid[CHALLENGER_REWARD] == CHALLENGER_REWARD_AMOUNT
    assert paid[TREASURY] == left - PRICE - CHALLENGER_REWARD_AMOUNT - JUROR_REWARD_AMOUNT
    assert relayers.relayerInfo(liar)[1] == 0
    conserved(token, court, relayers, escrow, everyone)


def test_a_fast_calls_caller_is_refunded_once_however_many_lies_about_it_are_caught(
    kit, court, chain, escrow, pool, caller, active_relayer, bond, stranger
):
    model = kit.model(PRICE)
    call = kit.settle_fast(caller, active_relayer, model, 1, PRICE, output=BAD_OUTPUT)
    refunds = []
    for output in (BAD_OUTPUT, b'{"label":[9]}'):
        att = Attestation(call.attestation.request_id, model, 1, call.attestation.input_hash, keccak(output))
        call.attestation, call.attestation_signature = att, sign(active_relayer.private_key, att, chain.chain_id,
                                                                 escrow.address)
        call.output = output
        dispute = kit.challenge_fast(call, stranger)
        jurors = [pool[j] for j in kit.draw(dispute, stranger)]
        kit.vote(dispute, {j: VOTE_OUTPUT_WRONG for j in jurors})
        tx = court.resolve(dispute, sender=stranger)
        refunds.append(sum(amount for _, amount, reason in credits(tx, court) if reason == REFUND))
    assert refunds == [PRICE, 0] and court.refunded(call.attestation.request_id)


# ---------------------------------------------------------------- bonds held


def test_the_accused_cannot_unbond_its_way_out_of_a_dispute(
    kit, court, chain, relayers, pool, caller, active_relayer, stranger
):
    facts, input_bytes = kit.settle_on_chain(caller, active_relayer, kit.model(PRICE), PRICE, output=BAD_OUTPUT)
    dispute = kit.challenge(facts, input_bytes, stranger)
    relayers.beginUnbond(sender=active_relayer)
    chain.pending_timestamp = chain.blocks.head.timestamp + relayers.unbondDelay() + 1
    with reverts(relayers.RelayerRegistry_BondHeld, relayer=active_relayer, holds=1):
        relayers.withdrawBond(sender=active_relayer)
    jurors = [pool[j] for j in kit.draw(dispute, stranger)]
    kit.vote(dispute, {j: VOTE_OUTPUT_WRONG for j in jurors})
    court.resolve(dispute, sender=stranger)
    tx = relayers.withdrawBond(sender=active_relayer)
    assert one_event(tx, relayers.BondWithdrawn).amount == PARAMS.min_bond - SLASH - PRICE


def test_a_juror_cannot_unbond_its_way_out_of_a_penalty(kit, court, chain, relayers, dispute_of, stranger):
    dispute, jurors = dispute_of()
    absent = jurors[4]
    relayers.beginUnbond(sender=absent)
    kit.vote(dispute, {j: VOTE_OUTPUT_WRONG for j in jurors[:4]})
    chain.pending_timestamp = chain.blocks.head.timestamp + relayers.unbondDelay() + 1
    with reverts(relayers.RelayerRegistry_BondHeld, relayer=absent, holds=1):
        relayers.withdrawBond(sender=absent)
    court.resolve(dispute, sender=stranger)
    assert relayers.relayerInfo(absent)[1] == PARAMS.min_bond - PENALTY
    relayers.withdrawBond(sender=absent)


def test_the_unbond_delay_outlasts_a_whole_dispute(court, relayers):
    terms = court.terms()
    whole = terms.disputeWindow + terms.drawDelay * court.ASSUMED_BLOCK_SECONDS() + terms.commitPeriod + terms.revealPeriod
    assert relayers.unbondDelay() > whole


# ---------------------------------------------------------------- attacks


def test_a_caller_who_challenges_an_honest_call_loses_its_bond(kit, court, token, pool, caller, active_relayer, stranger):
    facts, input_bytes = kit.settle_on_chain(caller, active_relayer, kit.model(PRICE), PRICE)
    dispute = kit.challenge(facts, input_bytes, caller)
    jurors = [pool[j] for j in kit.draw(dispute, stranger)]
    kit.vote(dispute, {j: VOTE_OUTPUT_MATCHES for j in jurors})
    court.resolve(dispute, sender=stranger)
    assert court.claimable(caller) == 0
    assert court.claimable(active_relayer) == BOND - JUROR_REWARD_AMOUNT


def test_a_caller_who_challenges_a_lie_gets_its_price_bond_and_reward(kit, court, pool, caller, active_relayer, stranger):
    facts, input_bytes = kit.settle_on_chain(caller, active_relayer, kit.model(PRICE), PRICE, output=BAD_OUTPUT)
    dispute = kit.challenge(facts, input_bytes, caller)
    jurors = [pool[j] for j in kit.draw(dispute, stranger)]
    kit.vote(dispute, {j: VOTE_OUTPUT_WRONG for j in jurors})
    court.resolve(dispute, sender=stranger)
    assert court.claimable(caller) == PRICE + BOND + CHALLENGER_REWARD_AMOUNT


def test_a_liar_that_challenges_itself_with_its_own_caller_loses(
    kit, court, token, escrow, relayers, pool, juror_accounts, bond, stranger
):
    """One party as caller, relayer and challenger: what it gets back (the refund, its bond and
    the challenger's reward) comes out of its own slashed bond; it loses the rest of the slash
    and the parts of the price that went to the treasury and the model's payees."""
    liar = juror_accounts[6]
    bond(liar)
    start = token.balanceOf(liar) + relayers.relayerInfo(liar)[1]
    facts, input_bytes = kit.settle_on_chain(liar, liar, kit.model(PRICE), PRICE, output=BAD_OUTPUT)
    dispute = kit.challenge(facts, input_bytes, liar)
    jurors = [pool[j] for j in kit.draw(dispute, stranger)]
    kit.vote(dispute, {j: VOTE_OUTPUT_WRONG for j in jurors})
    court.resolve(dispute, sender=stranger)
    court.claim(sender=liar)
    escrow.withdrawEarnings(sender=liar)
    minted = PRICE + BOND  # for the call and the challenge bond
    net = token.balanceOf(liar) + relayers.relayerInfo(liar)[1] - start - minted
    relayer_part = PRICE * PARAMS.relayer_fee_bps // 10_000
    assert net == -(SLASH - CHALLENGER_REWARD_AMOUNT) - (PRICE - relayer_part) < 0


def test_spamming_challenges_costs_a_bond_each_and_pays_the_accused(
    kit, court, token, pool, caller, active_relayer, stranger
):
    disputes = []
    for _ in range(3):
        facts, input_bytes = kit.settle_on_chain(caller, active_relayer, kit.model(PRICE), PRICE)
        disputes.append(kit.challenge(facts, input_bytes, stranger))
    # The same call twice is refused outright.
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_AlreadyDisputed):
        court.challengeRequest(facts.as_tuple(), input_bytes, kit.output_of(facts), sender=stranger)
    for dispute in disputes:
        jurors = [pool[j] for j in kit.draw(dispute, stranger)]
        kit.vote(dispute, {j: VOTE_OUTPUT_MATCHES for j in jurors})
        court.resolve(dispute, sender=stranger)
    assert court.claimable(stranger) == 0
    assert court.claimable(active_relayer) == 3 * (BOND - JUROR_REWARD_AMOUNT)


# ---------------------------------------------------------------- terms


def test_new_terms_apply_after_the_dispute_window_and_never_to_open_disputes(
    kit, court, chain, deployer, pool, caller, active_relayer, stranger
):
    old = court.terms()
    new = list(old)
    new[0] = 2 * old.challengeBond  # challengeBond
    new[2] = old.challengerReward + 1  # challengerReward
    facts, input_bytes = kit.settle_on_chain(caller, active_relayer, kit.model(PRICE), PRICE, output=BAD_OUTPUT)
    dispute = kit.challenge(facts, input_bytes, stranger)
    tx = court.setTerms(tuple(new), sender=deployer)
    event = one_event(tx, court.TermsChanged)
    assert event.termsId == 2 and event.effectiveAt == tx.timestamp + old.disputeWindow
    assert court.pendingTerms() == (2, event.effectiveAt) and court.termsIdInForce() == 1
    chain.pending_timestamp = event.effectiveAt
    chain.mine()
    assert court.termsIdInForce() == 2 and court.terms().challengeBond == 2 * old.challengeBond
    # The open dispute pays by its own terms.
    jurors = [pool[j] for j in kit.draw(dispute, stranger)]
    kit.vote(dispute, {j: VOTE_OUTPUT_WRONG for j in jurors})
    tx = court.resolve(dispute, sender=stranger)
    assert (stranger.address, old.challengerReward, CHALLENGER_REWARD) in credits(tx, court)
    assert court.getDispute(dispute).termsId == 1


def test_only_the_owner_sets_terms(court, stranger):
    with reverts(court.OwnableUnauthorizedAccount, account=stranger):
        court.setTerms(tuple(court.terms()), sender=stranger)


@pytest.mark.parametrize("index,value,error", [
    (9, 4, "DisputeCourt_InvalidJurySize"),
    (9, 1, "DisputeCourt_InvalidJurySize"),
    (9, 33, "DisputeCourt_InvalidJurySize"),
    (8, 1, "DisputeCourt_DrawDelayTooShort"),
    (6, 0, "DisputeCourt_ZeroPeriod"),
    (0, 0, "DisputeCourt_ChallengeBondTooLow"),
    (0, PARAMS.juror_reward - 1, "DisputeCourt_ChallengeBondTooLow"),
    (1, PARAMS.challenger_reward + PARAMS.juror_reward, "DisputeCourt_SlashTooLow"),
    (1, PARAMS.min_bond + 1, "DisputeCourt_SlashAboveMinBond"),
    (5, PARAMS.unbond_delay, "DisputeCourt_UnbondDelayTooShort"),
])
def test_terms_that_would_make_lying_pay_or_let_a_relayer_escape_are_refused(court, deployer, index, value, error):
    from dataclasses import replace

    terms = list(court.terms())
    terms[index] = value
    with reverts(getattr(court, error)):
        court.setTerms(tuple(terms), sender=deployer)
    # The deploy script refuses the same terms before deploying anything.
    names = ["challenge_bond", "slash_amount", "challenger_reward", "juror_reward", "juror_penalty", "dispute_window",
             "commit_period", "reveal_period", "draw_delay", "jury_size"]
    assert replace(PARAMS, **{names[index]: value}).dispute_terms_problem() is not None


def test_the_default_deployment_terms_pass_both_checks(court):
    from modelhub.deployments import DeployParams

    assert DeployParams().dispute_terms_problem() is None
    assert PARAMS.dispute_terms_problem() is None
    assert tuple(court.terms()) == PARAMS.dispute_terms()
