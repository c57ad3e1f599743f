"""RelayerRegistry: bonding, adding bond, leaving, re-registering, minBond changes, pause."""

from __future__ import annotations

import pytest

from tests.support.contracts import one_event, reverts, same

TOKEN = 10**18
MIN_BOND = 100 * TOKEN
DELAY = 86_400
ENDPOINT = "http://127.0.0.1:8700"


@pytest.fixture
def mint_and_approve(token, relayers):
    def go(account, amount):
        token.mint(account, amount, sender=account)
        token.approve(relayers, amount, sender=account)

    return go


def test_the_parameters_are_the_deployed_ones(relayers, token):
    assert relayers.minBond() == MIN_BOND
    assert relayers.unbondDelay() == DELAY
    assert same(relayers.token(), token)


def test_registering_pulls_the_bond_and_makes_the_relayer_active(relayers, token, relayer, mint_and_approve):
    mint_and_approve(relayer, MIN_BOND)
    assert not relayers.isActive(relayer)
    tx = relayers.register(ENDPOINT, MIN_BOND, sender=relayer)

    event = one_event(tx, relayers.RelayerRegistered)
    assert same(event.relayer, relayer) and event.endpoint == ENDPOINT and event.bond == MIN_BOND
    assert relayers.isActive(relayer)
    assert relayers.relayerInfo(relayer) == (ENDPOINT, MIN_BOND, True, 0)
    assert token.balanceOf(relayer) == 0
    assert token.balanceOf(relayers) == MIN_BOND


def test_an_unknown_address_has_empty_relayer_info(relayers, stranger):
    assert relayers.relayerInfo(stranger) == ("", 0, False, 0)
    assert not relayers.isActive(stranger)


def test_registering_twice_reverts(relayers, active_relayer, mint_and_approve):
    mint_and_approve(active_relayer, MIN_BOND)
    with reverts(relayers.RelayerRegistry_AlreadyRegistered, relayer=active_relayer):
        relayers.register(ENDPOINT, MIN_BOND, sender=active_relayer)


def test_registering_below_the_minimum_bond_reverts(relayers, relayer, mint_and_approve):
    mint_and_approve(relayer, MIN_BOND)
    with reverts(relayers.RelayerRegistry_BondTooLow, bond=MIN_BOND - 1, minBond=MIN_BOND):
        relayers.register(ENDPOINT, MIN_BOND - 1, sender=relayer)


def test_adding_bond_raises_it_and_pulls_the_tokens(relayers, token, active_relayer, mint_and_approve):
    mint_and_approve(active_relayer, 5 * TOKEN)
    tx = relayers.addBond(5 * TOKEN, sender=active_relayer)
    event = one_event(tx, relayers.BondAdded)
    assert same(event.relayer, active_relayer) and event.amount == 5 * TOKEN and event.bond == MIN_BOND + 5 * TOKEN
    assert relayers.relayerInfo(active_relayer)[1] == MIN_BOND + 5 * TOKEN
    assert token.balanceOf(relayers) == MIN_BOND + 5 * TOKEN


def test_adding_a_zero_bond_reverts(relayers, active_relayer):
    with reverts(relayers.RelayerRegistry_ZeroAmount):
        relayers.addBond(0, sender=active_relayer)


def test_adding_bond_without_registering_reverts(relayers, stranger, mint_and_approve):
    mint_and_approve(stranger, TOKEN)
    with reverts(relayers.RelayerRegistry_NotRegistered, relayer=stranger):
        relayers.addBond(TOKEN, sender=stranger)


def test_beginning_to_unbond_makes_the_relayer_inactive_at_once(relayers, active_relayer, chain):
    tx = relayers.beginUnbond(sender=active_relayer)
    unbond_at = chain.blocks.head.timestamp + DELAY
    event = one_event(tx, relayers.UnbondBegun)
    assert same(event.relayer, active_relayer) and event.unbondAt == unbond_at
    assert not relayers.isActive(active_relayer)
    assert relayers.relayerInfo(active_relayer) == (ENDPOINT, MIN_BOND, False, unbond_at)


def test_no_bond_can_be_added_while_unbonding(relayers, active_relayer, mint_and_approve):
    relayers.beginUnbond(sender=active_relayer)
    unbond_at = relayers.relayerInfo(active_relayer)[3]
    mint_and_approve(active_relayer, TOKEN)
    with reverts(relayers.RelayerRegistry_Unbonding, relayer=active_relayer, unbondAt=unbond_at):
        relayers.addBond(TOKEN, sender=active_relayer)


def test_beginning_to_unbond_twice_reverts(relayers, active_relayer):
    relayers.beginUnbond(sender=active_relayer)
    with reverts(relayers.RelayerRegistry_Unbonding, relayer=active_relayer):
        relayers.beginUnbond(sender=active_relayer)


def test_an_unregistered_address_cannot_unbond_or_withdraw(relayers, stranger):
    with reverts(relayers.RelayerRegistry_NotRegistered, relayer=stranger):
        relayers.beginUnbond(sender=stranger)
    with reverts(relayers.RelayerRegistry_NotRegistered, relayer=stranger):
        relayers.withdrawBond(sender=stranger)


def test_withdrawing_the_bond_without_unbonding_reverts(relayers, active_relayer):
    with reverts(relayers.RelayerRegistry_NotUnbonding, relayer=active_relayer):
        relayers.withdrawBond(sender=active_relayer)


def test_the_bond_comes_back_only_once_the_delay_has_passed(relayers, token, active_relayer, chain):
    relayers.beginUnbond(sender=active_relayer)
    unbond_at = relayers.relayerInfo(active_relayer)[3]

    chain.pending_timestamp = unbond_at - 1
    with reverts(relayers.RelayerRegistry_UnbondPending, relayer=active_relayer, unbondAt=unbond_at):
        relayers.withdrawBond(sender=active_relayer)

    chain.pending_timestamp = unbond_at
    tx = relayers.withdrawBond(sender=active_relayer)
    event = one_event(tx, relayers.BondWithdrawn)
    assert same(event.relayer, active_relayer) and event.amount == MIN_BOND
    assert token.balanceOf(active_relayer) == MIN_BOND
    assert token.balanceOf(relayers) == 0
    assert relayers.relayerInfo(active_relayer) == ("", 0, False, 0)
    with reverts(relayers.RelayerRegistry_NotRegistered, relayer=active_relayer):
        relayers.withdrawBond(sender=active_relayer)


def test_a_relayer_can_register_again_after_withdrawing_its_bond(relayers, token, active_relayer, chain):
    relayers.beginUnbond(sender=active_relayer)
    chain.mine(timestamp=relayers.relayerInfo(active_relayer)[3])
    relayers.withdrawBond(sender=active_relayer)

    token.approve(relayers, MIN_BOND, sender=active_relayer)
    tx = relayers.register("http://new:8700", MIN_BOND, sender=active_relayer)
    assert one_event(tx, relayers.RelayerRegistered).endpoint == "http://new:8700"
    assert relayers.relayerInfo(active_relayer) == ("http://new:8700", MIN_BOND, True, 0)


def test_raising_min_bond_applies_after_the_unbond_delay_then_a_relayer_below_it_is_inactive_until_it_adds_bond(
    relayers, deployer, active_relayer, mint_and_approve, chain
):
    """The attack: the owner sets a huge minimum bond, making every relayer inactive at once so
    that calls already served cannot settle. A rise waits unbondDelay, the time the registry
    gives itself to return a bond, so relayers settle (or add bond) first."""
    tx = relayers.setMinBond(MIN_BOND + 1, sender=deployer)
    event = one_event(tx, relayers.MinBondChanged)
    assert (event.oldMinBond, event.newMinBond) == (MIN_BOND, MIN_BOND + 1)
    effective_at = tx.timestamp + relayers.unbondDelay()
    effective = one_event(tx, relayers.MinBondEffectiveAt)
    assert (effective.minBond, effective.effectiveAt) == (MIN_BOND + 1, effective_at)
    assert relayers.minBond() == MIN_BOND
    assert relayers.pendingMinBond() == (MIN_BOND + 1, effective_at)
    assert relayers.isActive(active_relayer)

    chain.mine(timestamp=effective_at - 1)
    assert relayers.isActive(active_relayer)
    chain.mine(timestamp=effective_at)
    assert relayers.minBond() == MIN_BOND + 1
    assert relayers.pendingMinBond() == (0, 0)
    assert not relayers.isActive(active_relayer)
    assert relayers.relayerInfo(active_relayer)[2] is False

    mint_and_approve(active_relayer, 1)
    relayers.addBond(1, sender=active_relayer)
    assert relayers.isActive(active_relayer)


def test_a_min_bond_cut_applies_at_once_and_cancels_a_pending_rise(relayers, deployer):
    relayers.setMinBond(2 * MIN_BOND, sender=deployer)
    tx = relayers.setMinBond(MIN_BOND // 2, sender=deployer)
    assert one_event(tx, relayers.MinBondEffectiveAt).effectiveAt == tx.timestamp
    assert relayers.minBond() == MIN_BOND // 2
    assert relayers.pendingMinBond() == (0, 0)


def test_a_min_bond_beyond_112_bits_is_refused(relayers, deployer):
    with reverts(relayers.RelayerRegistry_BondTooHigh, bond=2**112, maxBond=2**112 - 1):
        relayers.setMinBond(2**112, sender=deployer)
    assert relayers.minBond() == MIN_BOND


def test_only_the_contract_owner_sets_min_bond(relayers, stranger):
    with reverts(relayers.OwnableUnauthorizedAccount, account=stranger):
        relayers.setMinBond(1, sender=stranger)


def test_a_relayer_can_change_its_endpoint(relayers, active_relayer, stranger):
    tx = relayers.setEndpoint("https://relayer.example", sender=active_relayer)
    event = one_event(tx, relayers.EndpointChanged)
    assert same(event.relayer, active_relayer) and event.endpoint == "https://relayer.example"
    assert relayers.relayerInfo(active_relayer)[0] == "https://relayer.example"
    with reverts(relayers.RelayerRegistry_NotRegistered, relayer=stranger):
        relayers.setEndpoint("x", sender=stranger)


def test_pause_stops_new_registrations_but_not_bonds_or_leaving(
    relayers, deployer, active_relayer, second_relayer, mint_and_approve, chain
):
    relayers.pause(sender=deployer)
    mint_and_approve(second_relayer, MIN_BOND)
    with reverts(relayers.EnforcedPause):
        relayers.register(ENDPOINT, MIN_BOND, sender=second_relayer)

    assert relayers.isActive(active_relayer)
    mint_and_approve(active_relayer, TOKEN)
    relayers.addBond(TOKEN, sender=active_relayer)
    relayers.beginUnbond(sender=active_relayer)
    chain.mine(timestamp=relayers.relayerInfo(active_relayer)[3])
    relayers.withdrawBond(sender=active_relayer)

    relayers.unpause(sender=deployer)
    relayers.register(ENDPOINT, MIN_BOND, sender=second_relayer)
    assert relayers.isActive(second_relayer)


def test_only_the_contract_owner_pauses_relayer_registration(relayers, stranger):
    with reverts(relayers.OwnableUnauthorizedAccount, account=stranger):
        relayers.pause(sender=stranger)


def test_a_zero_bond_is_refused_even_when_min_bond_is_zero(relayers, deployer, relayer):
    relayers.setMinBond(0, sender=deployer)
    with reverts(relayers.RelayerRegistry_BondTooLow, bond=0, minBond=0):
        relayers.register(ENDPOINT, 0, sender=relayer)


def test_a_bond_above_128_bits_is_refused(relayers, second_relayer, active_relayer, mint_and_approve):
    too_big = 2**128
    with reverts(relayers.RelayerRegistry_BondTooHigh, bond=too_big, maxBond=2**128 - 1):
        relayers.register(ENDPOINT, too_big, sender=second_relayer)
    room = 2**128 - 1 - MIN_BOND
    with reverts(relayers.RelayerRegistry_BondTooHigh, bond=2**128, maxBond=2**128 - 1):
        relayers.addBond(room + 1, sender=active_relayer)
    mint_and_approve(active_relayer, room)
    relayers.addBond(room, sender=active_relayer)
    assert relayers.relayerInfo(active_relayer)[1] == 2**128 - 1
