"""RelayerRegistry's side of disputes: the court it trusts (set once), bond holds and slashes
only the court may make, and the jury pool (a Fenwick tree of bond weights) whose draws match
the rule written again in Python."""

from __future__ import annotations

import os

import pytest

from tests.conftest import PARAMS
from tests.support.contracts import one_event, reverts, same
from tests.support.disputes import TOKEN, reference_draw


def test_the_deployment_names_its_court_once(relayers, court, deployer, stranger):
    assert same(relayers.court(), court)
    with reverts(relayers.RelayerRegistry_CourtAlreadySet, court=court):
        relayers.setCourt(stranger, sender=deployer)
    with reverts(relayers.OwnableUnauthorizedAccount, account=stranger):
        relayers.setCourt(stranger, sender=stranger)


def test_a_fresh_registry_refuses_the_zero_court_and_accepts_one(project, deployer, token, stranger):
    registry = deployer.deploy(project.RelayerRegistry, token, PARAMS.min_bond, PARAMS.unbond_delay)
    with reverts(registry.RelayerRegistry_ZeroAddress):
        registry.setCourt("0x" + "00" * 20, sender=deployer)
    tx = registry.setCourt(stranger, sender=deployer)
    assert same(one_event(tx, registry.CourtSet).court, stranger)


@pytest.mark.parametrize("call", [
    lambda r, a: r.holdBonds([a.address], sender=a),
    lambda r, a: r.releaseBonds([a.address], sender=a),
    lambda r, a: r.slash(a.address, 1, sender=a),
    lambda r, a: r.drawPending(sender=a),
    lambda r, a: r.drawDone(sender=a),
])
def test_only_the_court_holds_releases_and_slashes_bonds(relayers, active_relayer, call):
    # The relayer itself (or anyone) cannot hold its bond to dodge, or slash another's.
    with reverts(relayers.RelayerRegistry_NotCourt, account=active_relayer):
        call(relayers, active_relayer)


def test_the_court_slashes_at_most_the_bond_and_holds_only_registered_relayers(
    project, deployer, token, bond, active_relayer, stranger
):
    registry = deployer.deploy(project.RelayerRegistry, token, PARAMS.min_bond, PARAMS.unbond_delay)
    registry.setCourt(deployer, sender=deployer)  # the deployer plays the court here
    token.mint(active_relayer, PARAMS.min_bond, sender=active_relayer)
    token.approve(registry, PARAMS.min_bond, sender=active_relayer)
    registry.register("http://r", PARAMS.min_bond, sender=active_relayer)
    with reverts(registry.RelayerRegistry_NotRegistered, relayer=stranger):
        registry.holdBonds([stranger.address], sender=deployer)
    with reverts(registry.RelayerRegistry_NotHeld, relayer=active_relayer):
        registry.releaseBonds([active_relayer.address], sender=deployer)
    with reverts(registry.RelayerRegistry_NoDrawPending):
        registry.drawDone(sender=deployer)
    tx = registry.slash(active_relayer, 2 * PARAMS.min_bond, sender=deployer)
    event = one_event(tx, registry.BondSlashed)
    assert (event.amount, event.bond) == (PARAMS.min_bond, 0)
    assert token.balanceOf(deployer) >= PARAMS.min_bond and token.balanceOf(registry) == 0
    assert registry.slash(active_relayer, 1, sender=deployer).return_value == 0


def test_pool_weights_follow_bonds_while_active(relayers, bond, active_relayer, token, chain):
    assert relayers.poolWeight(active_relayer) == PARAMS.min_bond
    token.mint(active_relayer, TOKEN, sender=active_relayer)
    token.approve(relayers, TOKEN, sender=active_relayer)
    relayers.addBond(TOKEN, sender=active_relayer)
    assert relayers.poolWeight(active_relayer) == PARAMS.min_bond + TOKEN
    assert relayers.poolState()[0] == PARAMS.min_bond + TOKEN
    relayers.beginUnbond(sender=active_relayer)
    assert relayers.poolWeight(active_relayer) == 0 and relayers.poolState()[0] == 0
    chain.pending_timestamp = chain.blocks.head.timestamp + relayers.unbondDelay()
    relayers.withdrawBond(sender=active_relayer)
    bond(active_relayer, 2 * PARAMS.min_bond)  # coming back reuses its slot
    assert relayers.poolWeight(active_relayer) == 2 * PARAMS.min_bond == relayers.poolState()[0]


def test_draws_follow_the_rule_for_any_weights_seeds_and_exclusions(relayers, bond, juror_accounts, accounts):
    members = [accounts[3], accounts[7], *juror_accounts]
    weights = [PARAMS.min_bond + i * 37 * TOKEN + i for i in range(len(members))]
    for member, weight in zip(members, weights):
        bond(member, weight)
    slot = {m.address: i + 1 for i, m in enumerate(members)}
    for round_ in range(25):
        seed = os.urandom(32)
        excluded = [members[round_ % len(members)].address, accounts[6].address]  # one not in the pool
        count = 1 + round_ % 9
        drawn = list(relayers.drawJurors(seed, count, excluded))
        expected = reference_draw(weights, seed, count, {slot.get(a, 0) for a in excluded})
        assert [slot[a] for a in drawn] == expected
        assert len(drawn) == min(count, len(members) - 1)


def test_a_drawn_relayer_that_left_while_the_pool_was_frozen_leaves_its_seat_empty(
    kit, court, chain, relayers, jury_pool, caller, active_relayer, stranger
):
    pool = jury_pool(5)
    leaver = pool[0]
    facts, input_bytes = kit.settle_on_chain(caller, active_relayer, kit.model(), 10**15)
    kit.challenge(facts, input_bytes, stranger)  # freezes the pool's weights
    relayers.beginUnbond(sender=leaver)
    chain.pending_timestamp = chain.blocks.head.timestamp + relayers.unbondDelay()
    relayers.withdrawBond(sender=leaver)
    assert relayers.poolWeight(leaver) == PARAMS.min_bond  # frozen
    members = [active_relayer, *pool]  # slots 1 to 6, in the order they registered
    short = 0
    for i in range(12):
        seed = i.to_bytes(32, "big")
        drawn = list(relayers.drawJurors(seed, 2, [active_relayer.address]))
        picked = [members[slot - 1].address for slot in reference_draw([PARAMS.min_bond] * 6, seed, 2, {1})]
        assert drawn == [a for a in picked if a != leaver.address]
        short += len(drawn) < 2
    assert short > 0  # these seeds do draw the leaver's slot
