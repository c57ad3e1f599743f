"""Reservations: credit a caller sets aside for one relayer's receipts (`reserve`), which only
that relayer's receipts spend and which goes back to free credit only `withdrawalDelay` after
`announceRelease`; free credit, which backs no receipt, leaves at once."""

from __future__ import annotations

import pytest

from tests.support.contracts import events, one_event, reverts, same

PRICE = 1_000
FUNDS = 10 * PRICE
ZERO = "0x0000000000000000000000000000000000000000"


@pytest.fixture
def delay(escrow):
    return escrow.withdrawalDelay()


@pytest.fixture
def model(create_model):
    return create_model(price=PRICE)


@pytest.fixture
def reserving(escrow, fund, caller, active_relayer):
    """The caller, with FUNDS reserved for `active_relayer`."""
    fund(caller, FUNDS)
    escrow.reserve(active_relayer, FUNDS, sender=caller)
    return caller


def test_free_credit_is_withdrawn_at_once(escrow, token, fund, caller, delay):
    assert delay == 3_600
    fund(caller, FUNDS)
    tx = escrow.withdraw(FUNDS, sender=caller)
    assert one_event(tx, escrow.Withdrawn).amount == FUNDS
    assert token.balanceOf(caller) == FUNDS and escrow.balanceOf(caller) == 0


def test_reserving_moves_free_credit_aside_for_one_relayer(escrow, token, fund, caller, active_relayer):
    fund(caller, FUNDS)
    held = token.balanceOf(escrow)
    tx = escrow.reserve(active_relayer, 3 * PRICE, sender=caller)
    event = one_event(tx, escrow.Reserved)
    assert same(event.caller, caller) and same(event.relayer, active_relayer)
    assert (event.amount, event.reserved) == (3 * PRICE, 3 * PRICE)
    tx = escrow.reserve(active_relayer, PRICE, sender=caller)
    assert one_event(tx, escrow.Reserved).reserved == 4 * PRICE
    assert escrow.balanceOf(caller) == FUNDS - 4 * PRICE
    assert escrow.reservation(caller, active_relayer) == (4 * PRICE, 0, 0)
    assert token.balanceOf(escrow) == held  # nothing leaves the escrow


def test_reserving_more_than_the_free_credit_or_nothing_or_for_nobody_reverts(escrow, fund, caller, active_relayer):
    fund(caller, FUNDS)
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=caller, credit=FUNDS, required=FUNDS + 1):
        escrow.reserve(active_relayer, FUNDS + 1, sender=caller)
    with reverts(escrow.InferenceEscrow_ZeroAmount):
        escrow.reserve(active_relayer, 0, sender=caller)
    with reverts(escrow.InferenceEscrow_ZeroAddress):
        escrow.reserve(ZERO, PRICE, sender=caller)
    assert escrow.balanceOf(caller) == FUNDS


def test_reserved_credit_cannot_be_withdrawn_or_spent_on_requests(escrow, reserving, model, active_relayer):
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=reserving, credit=0, required=1):
        escrow.withdraw(1, sender=reserving)
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=reserving, credit=0, required=PRICE):
        escrow.requestInference(model, 0, b"{}", PRICE, sender=reserving)
    assert escrow.reservation(reserving, active_relayer)[0] == FUNDS


def test_a_release_comes_back_to_free_credit_only_after_the_delay(
    escrow, token, reserving, active_relayer, chain, delay
):
    tx = escrow.announceRelease(active_relayer, 4 * PRICE, sender=reserving)
    ready_at = tx.timestamp + delay
    event = one_event(tx, escrow.ReleaseAnnounced)
    assert same(event.caller, reserving) and same(event.relayer, active_relayer)
    assert (event.amount, event.readyAt) == (4 * PRICE, ready_at)
    assert escrow.reservation(reserving, active_relayer) == (FUNDS, 4 * PRICE, ready_at)

    chain.pending_timestamp = ready_at - 1
    with reverts(escrow.InferenceEscrow_ReleaseNotReady, caller=reserving, relayer=active_relayer, readyAt=ready_at):
        escrow.release(active_relayer, sender=reserving)
    chain.pending_timestamp = ready_at
    tx = escrow.release(active_relayer, sender=reserving)
    released = one_event(tx, escrow.Released)
    assert same(released.caller, reserving) and released.amount == 4 * PRICE
    assert escrow.reservation(reserving, active_relayer) == (FUNDS - 4 * PRICE, 0, 0)
    assert escrow.balanceOf(reserving) == 4 * PRICE
    escrow.withdraw(4 * PRICE, sender=reserving)  # and from free credit, at once
    assert token.balanceOf(reserving) == 4 * PRICE


def test_receipts_the_relayer_settles_during_the_delay_come_first(
    escrow, reserving, model, active_relayer, chain, delay, make_receipt, sign_receipt, settle_receipts
):
    tx = escrow.announceRelease(active_relayer, FUNDS, sender=reserving)
    receipt = make_receipt(model, 7, 7 * PRICE)
    settle_receipts((receipt, sign_receipt(reserving, receipt)), sender=active_relayer)
    chain.pending_timestamp = tx.timestamp + delay
    tx = escrow.release(active_relayer, sender=reserving)
    assert one_event(tx, escrow.Released).amount == 3 * PRICE  # what is left of it, not the announced amount
    assert escrow.reservation(reserving, active_relayer) == (0, 0, 0)
    assert escrow.balanceOf(reserving) == 3 * PRICE


def test_a_new_announcement_replaces_the_old_one_and_restarts_the_clock_and_zero_cancels(
    escrow, reserving, active_relayer, chain, delay
):
    first = escrow.announceRelease(active_relayer, PRICE, sender=reserving)
    chain.pending_timestamp = first.timestamp + delay - 10
    second = escrow.announceRelease(active_relayer, 2 * PRICE, sender=reserving)
    assert escrow.reservation(reserving, active_relayer) == (FUNDS, 2 * PRICE, second.timestamp + delay)
    chain.pending_timestamp = first.timestamp + delay
    with reverts(escrow.InferenceEscrow_ReleaseNotReady, readyAt=second.timestamp + delay):
        escrow.release(active_relayer, sender=reserving)
    tx = escrow.announceRelease(active_relayer, 0, sender=reserving)
    assert (one_event(tx, escrow.ReleaseAnnounced).amount, one_event(tx, escrow.ReleaseAnnounced).readyAt) == (0, 0)
    chain.pending_timestamp = second.timestamp + delay
    with reverts(escrow.InferenceEscrow_NothingToRelease, caller=reserving, relayer=active_relayer):
        escrow.release(active_relayer, sender=reserving)
    assert escrow.reservation(reserving, active_relayer) == (FUNDS, 0, 0)


def test_releasing_without_an_announcement_reverts_and_a_release_is_per_relayer(
    escrow, reserving, active_relayer, second_relayer, chain, delay
):
    with reverts(escrow.InferenceEscrow_NothingToRelease, caller=reserving, relayer=active_relayer):
        escrow.release(active_relayer, sender=reserving)
    tx = escrow.announceRelease(second_relayer, FUNDS, sender=reserving)  # nothing reserved there
    chain.pending_timestamp = tx.timestamp + delay
    assert one_event(escrow.release(second_relayer, sender=reserving), escrow.Released).amount == 0
    assert escrow.reservation(reserving, active_relayer) == (FUNDS, 0, 0)
    assert escrow.balanceOf(reserving) == 0


def test_an_announcement_beyond_160_bits_reverts(escrow, reserving, active_relayer):
    with reverts(escrow.InferenceEscrow_CreditOverflow):
        escrow.announceRelease(active_relayer, 2**160, sender=reserving)
    assert escrow.reservation(reserving, active_relayer) == (FUNDS, 0, 0)


def test_a_contract_wallet_reserves_and_releases_through_its_own_calls(
    escrow, token, wallet, caller, stranger, active_relayer, chain, delay
):
    token.mint(stranger, FUNDS, sender=stranger)
    token.approve(escrow, FUNDS, sender=stranger)
    escrow.depositFor(wallet, FUNDS, sender=stranger)
    wallet.execute(escrow, escrow.reserve.encode_input(active_relayer, FUNDS), sender=caller)
    tx = wallet.execute(escrow, escrow.announceRelease.encode_input(active_relayer, FUNDS), sender=caller)
    chain.pending_timestamp = tx.timestamp + delay
    wallet.execute(escrow, escrow.release.encode_input(active_relayer), sender=caller)
    wallet.execute(escrow, escrow.withdraw.encode_input(FUNDS), sender=caller)
    assert token.balanceOf(wallet) == FUNDS
    assert events(tx, escrow.ReleaseAnnounced)


def test_anyone_may_fund_an_accounts_reservation_in_one_step(escrow, token, stranger, caller, active_relayer):
    token.mint(stranger, FUNDS, sender=stranger)
    token.approve(escrow, FUNDS, sender=stranger)
    tx = escrow.reserveFor(caller, active_relayer, FUNDS, sender=stranger)
    deposited = one_event(tx, escrow.Deposited)
    assert same(deposited.account, caller) and deposited.amount == FUNDS
    reserved = one_event(tx, escrow.Reserved)
    assert same(reserved.caller, caller) and same(reserved.relayer, active_relayer) and reserved.reserved == FUNDS
    assert escrow.reservation(caller, active_relayer) == (FUNDS, 0, 0)
    assert escrow.balanceOf(caller) == 0 and token.balanceOf(stranger) == 0
    with reverts(escrow.InferenceEscrow_ZeroAmount):
        escrow.reserveFor(caller, active_relayer, 0, sender=stranger)
    with reverts(escrow.InferenceEscrow_ZeroAddress):
        escrow.reserveFor(ZERO, active_relayer, 1, sender=stranger)
    with reverts(escrow.InferenceEscrow_ZeroAddress):
        escrow.reserveFor(caller, ZERO, 1, sender=stranger)
