"""The withdrawal delay of accounts that sign receipts: `enableReceipts`, `announceWithdrawal`,
and `withdraw` only of what was announced, once `withdrawalDelay` has passed; credit stays
usable meanwhile. Accounts that never enable receipts keep the one-step `withdraw`."""

from __future__ import annotations

import pytest

from contract_support import events, one_event, reverts, same

PRICE = 1_000
FUNDS = 10 * PRICE


@pytest.fixture
def delay(escrow):
    return escrow.withdrawalDelay()


@pytest.fixture
def signer(escrow, fund, caller):
    """The caller, funded, with receipts enabled."""
    fund(caller, FUNDS)
    escrow.enableReceipts(sender=caller)
    return caller


@pytest.fixture
def announce(escrow, chain):
    """announce(account, amount) -> readyAt, from the WithdrawalAnnounced event."""

    def announce_(account, amount: int) -> int:
        tx = escrow.announceWithdrawal(amount, sender=account)
        event = one_event(tx, escrow.WithdrawalAnnounced)
        assert same(event.account, account) and event.amount == amount
        return event.readyAt

    return announce_


def test_an_account_that_never_enabled_receipts_withdraws_at_once(escrow, token, fund, caller, delay):
    assert delay == 3_600
    fund(caller, FUNDS)
    assert escrow.withdrawalNotice(caller) == (False, 0, 0)
    tx = escrow.withdraw(FUNDS, sender=caller)
    assert one_event(tx, escrow.Withdrawn).amount == FUNDS
    assert token.balanceOf(caller) == FUNDS and escrow.balanceOf(caller) == 0


def test_enabling_receipts_is_announced_once_and_idempotent(escrow, caller):
    tx = escrow.enableReceipts(sender=caller)
    assert same(one_event(tx, escrow.ReceiptsEnabled).account, caller)
    assert escrow.withdrawalNotice(caller) == (True, 0, 0)
    again = escrow.enableReceipts(sender=caller)
    assert events(again, escrow.ReceiptsEnabled) == []
    assert escrow.withdrawalNotice(caller) == (True, 0, 0)


def test_announcing_a_withdrawal_without_receipts_enabled_reverts(escrow, fund, caller):
    fund(caller, FUNDS)
    with reverts(escrow.InferenceEscrow_NoWithdrawalDelay, account=caller):
        escrow.announceWithdrawal(FUNDS, sender=caller)
    escrow.withdraw(FUNDS, sender=caller)  # still the one-step withdrawal


def test_an_enabled_account_cannot_withdraw_without_announcing(escrow, signer):
    with reverts(escrow.InferenceEscrow_WithdrawalNotAnnounced, account=signer, announced=0, amount=1):
        escrow.withdraw(1, sender=signer)
    assert escrow.balanceOf(signer) == FUNDS


def test_an_announcement_names_the_amount_and_when_it_is_ready(escrow, signer, announce, chain, delay):
    ready_at = announce(signer, 4 * PRICE)
    assert ready_at == chain.blocks.head.timestamp + delay
    assert escrow.withdrawalNotice(signer) == (True, 4 * PRICE, ready_at)


def test_an_announced_withdrawal_waits_for_the_delay_and_then_uses_up_the_announcement(
    escrow, token, signer, announce, chain
):
    ready_at = announce(signer, 4 * PRICE)
    chain.pending_timestamp = ready_at - 1
    with reverts(escrow.InferenceEscrow_WithdrawalNotReady, account=signer, readyAt=ready_at):
        escrow.withdraw(PRICE, sender=signer)

    chain.pending_timestamp = ready_at
    tx = escrow.withdraw(3 * PRICE, sender=signer)
    assert chain.blocks.head.timestamp == ready_at
    event = one_event(tx, escrow.Withdrawn)
    assert same(event.account, signer) and event.amount == 3 * PRICE
    assert token.balanceOf(signer) == 3 * PRICE
    assert escrow.balanceOf(signer) == FUNDS - 3 * PRICE
    assert escrow.withdrawalNotice(signer) == (True, PRICE, ready_at)

    escrow.withdraw(PRICE, sender=signer)
    assert escrow.withdrawalNotice(signer)[1] == 0
    with reverts(escrow.InferenceEscrow_WithdrawalNotAnnounced, account=signer, announced=0, amount=1):
        escrow.withdraw(1, sender=signer)
    assert escrow.balanceOf(signer) == FUNDS - 4 * PRICE


def test_withdrawing_more_than_announced_reverts_even_after_the_delay(escrow, signer, announce, chain):
    ready_at = announce(signer, 4 * PRICE)
    chain.pending_timestamp = ready_at + 10
    with reverts(
        escrow.InferenceEscrow_WithdrawalNotAnnounced, account=signer, announced=4 * PRICE, amount=4 * PRICE + 1
    ):
        escrow.withdraw(4 * PRICE + 1, sender=signer)
    escrow.withdraw(4 * PRICE, sender=signer)


def test_announcing_zero_cancels_the_announcement(escrow, signer, announce, chain):
    ready_at = announce(signer, 4 * PRICE)
    assert announce(signer, 0) == 0
    assert escrow.withdrawalNotice(signer) == (True, 0, 0)
    chain.pending_timestamp = ready_at
    with reverts(escrow.InferenceEscrow_WithdrawalNotAnnounced, account=signer, announced=0, amount=PRICE):
        escrow.withdraw(PRICE, sender=signer)


def test_a_new_announcement_replaces_the_old_one_and_restarts_the_clock(escrow, signer, announce, chain, delay):
    first_ready = announce(signer, 4 * PRICE)
    chain.pending_timestamp = first_ready - delay // 2
    second_ready = announce(signer, 2 * PRICE)
    assert second_ready == first_ready + delay // 2
    assert escrow.withdrawalNotice(signer) == (True, 2 * PRICE, second_ready)
    chain.pending_timestamp = first_ready
    with reverts(escrow.InferenceEscrow_WithdrawalNotReady, account=signer, readyAt=second_ready):
        escrow.withdraw(2 * PRICE, sender=signer)
    chain.pending_timestamp = second_ready
    with reverts(escrow.InferenceEscrow_WithdrawalNotAnnounced, account=signer, announced=2 * PRICE, amount=3 * PRICE):
        escrow.withdraw(3 * PRICE, sender=signer)
    escrow.withdraw(2 * PRICE, sender=signer)


def test_an_announcement_above_160_bits_reverts(escrow, signer):
    with reverts(escrow.InferenceEscrow_CreditOverflow, account=signer, credit=2**160, maxCredit=2**160 - 1):
        escrow.announceWithdrawal(2**160, sender=signer)
    assert escrow.withdrawalNotice(signer) == (True, 0, 0)


def test_a_relayer_settles_during_the_delay_and_the_withdrawal_of_the_full_amount_then_fails(
    escrow, signer, announce, chain, create_model, make_receipt, signed, settle_receipts, active_relayer
):
    model = create_model(price=PRICE)
    ready_at = announce(signer, FUNDS)
    chain.pending_timestamp = ready_at - 60  # the relayer saw WithdrawalAnnounced and settles first
    tx = settle_receipts(signed(make_receipt(model, 4, 4 * PRICE)), sender=active_relayer)
    assert one_event(tx, escrow.ReceiptSettled).paid == 4 * PRICE

    chain.pending_timestamp = ready_at
    left = FUNDS - 4 * PRICE
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=signer, credit=left, required=FUNDS):
        escrow.withdraw(FUNDS, sender=signer)
    escrow.withdraw(left, sender=signer)
    assert escrow.balanceOf(signer) == 0
    assert escrow.withdrawalNotice(signer) == (True, FUNDS - left, ready_at)


def test_credit_stays_usable_by_on_chain_requests_during_the_delay(
    escrow, signer, announce, create_model, request_call
):
    model = create_model(price=PRICE)
    announce(signer, FUNDS)
    call = request_call(model, PRICE, account=signer)
    assert call.price == PRICE
    assert escrow.balanceOf(signer) == FUNDS - PRICE


def test_deposits_after_enabling_receipts_still_arrive_at_once(escrow, signer, fund):
    fund(signer, PRICE)
    assert escrow.balanceOf(signer) == FUNDS + PRICE


def test_a_contract_wallet_enables_receipts_and_withdraws_in_two_steps(
    escrow, token, wallet, caller, stranger, chain
):
    token.mint(stranger, FUNDS, sender=stranger)
    token.approve(escrow, FUNDS, sender=stranger)
    escrow.depositFor(wallet, FUNDS, sender=stranger)
    wallet.execute(escrow, escrow.enableReceipts.encode_input(), sender=caller)
    assert escrow.withdrawalNotice(wallet) == (True, 0, 0)
    tx = wallet.execute(escrow, escrow.announceWithdrawal.encode_input(FUNDS), sender=caller)
    ready_at = one_event(tx, escrow.WithdrawalAnnounced).readyAt
    chain.pending_timestamp = ready_at
    wallet.execute(escrow, escrow.withdraw.encode_input(FUNDS), sender=caller)
    assert token.balanceOf(wallet) == FUNDS
    assert escrow.balanceOf(wallet) == 0
