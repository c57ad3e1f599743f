"""InferenceEscrow credit: deposit, depositFor, withdraw, and withdrawing earnings."""

from __future__ import annotations

from tests.support.contracts import one_event, reverts, same

ZERO = "0x0000000000000000000000000000000000000000"


def test_the_escrow_is_wired_to_the_deployment(escrow, token, registry, relayers, treasury):
    assert same(escrow.token(), token)
    assert same(escrow.registry(), registry)
    assert same(escrow.relayers(), relayers)
    assert same(escrow.treasury(), treasury)
    assert escrow.protocolFeeBps() == 500
    assert escrow.relayerFeeBps() == 1_000
    assert escrow.requestTimeout() == 600


def test_a_deposit_pulls_the_tokens_and_becomes_credit(escrow, token, caller):
    token.mint(caller, 1_000, sender=caller)
    token.approve(escrow, 1_000, sender=caller)
    tx = escrow.deposit(700, sender=caller)
    event = one_event(tx, escrow.Deposited)
    assert same(event.account, caller) and event.amount == 700
    assert escrow.balanceOf(caller) == 700
    assert token.balanceOf(caller) == 300
    assert token.balanceOf(escrow) == 700


def test_deposit_for_credits_another_account_and_charges_the_sender(escrow, token, caller, stranger):
    token.mint(stranger, 500, sender=stranger)
    token.approve(escrow, 500, sender=stranger)
    tx = escrow.depositFor(caller, 500, sender=stranger)
    event = one_event(tx, escrow.Deposited)
    assert same(event.account, caller) and event.amount == 500
    assert escrow.balanceOf(caller) == 500
    assert escrow.balanceOf(stranger) == 0
    assert token.balanceOf(stranger) == 0


def test_zero_deposits_revert(escrow, caller):
    with reverts(escrow.InferenceEscrow_ZeroAmount):
        escrow.deposit(0, sender=caller)
    with reverts(escrow.InferenceEscrow_ZeroAmount):
        escrow.depositFor(caller, 0, sender=caller)


def test_depositing_for_the_zero_address_reverts(escrow, token, caller):
    token.mint(caller, 1, sender=caller)
    token.approve(escrow, 1, sender=caller)
    with reverts(escrow.InferenceEscrow_ZeroAddress):
        escrow.depositFor(ZERO, 1, sender=caller)


def test_withdrawing_returns_free_credit(escrow, token, fund, caller):
    fund(caller, 1_000)
    tx = escrow.withdraw(400, sender=caller)
    event = one_event(tx, escrow.Withdrawn)
    assert same(event.account, caller) and event.amount == 400
    assert escrow.balanceOf(caller) == 600
    assert token.balanceOf(caller) == 400
    escrow.withdraw(600, sender=caller)
    assert escrow.balanceOf(caller) == 0
    assert token.balanceOf(caller) == 1_000


def test_withdrawing_zero_reverts(escrow, fund, caller):
    fund(caller, 10)
    with reverts(escrow.InferenceEscrow_ZeroAmount):
        escrow.withdraw(0, sender=caller)


def test_withdrawing_more_than_the_credit_reverts(escrow, fund, caller):
    fund(caller, 10)
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=caller, credit=10, required=11):
        escrow.withdraw(11, sender=caller)


def test_credit_locked_in_a_request_cannot_be_withdrawn(escrow, fund, create_model, request_call, caller):
    model = create_model(price=60)
    fund(caller, 100)
    request_call(model, 60)
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=caller, credit=40, required=100):
        escrow.withdraw(100, sender=caller)
    escrow.withdraw(40, sender=caller)


def test_withdrawing_earnings_pays_them_out_once(
    escrow, token, fund, create_model, request_call, settle, active_relayer, caller, uploader, treasury
):
    model = create_model(price=10_000)
    fund(caller, 10_000)
    settle(request_call(model, 10_000), active_relayer)
    for account, amount in ((uploader, 8_500), (active_relayer, 1_000), (treasury, 500)):
        assert escrow.earningsOf(account) == amount
        before = token.balanceOf(account)
        tx = escrow.withdrawEarnings(sender=account)
        event = one_event(tx, escrow.EarningsWithdrawn)
        assert same(event.account, account) and event.amount == amount
        assert token.balanceOf(account) == before + amount
        assert escrow.earningsOf(account) == 0
        with reverts(escrow.InferenceEscrow_NothingToWithdraw, account=account):
            escrow.withdrawEarnings(sender=account)
    assert token.balanceOf(escrow) == 0


def test_withdrawing_earnings_with_nothing_earned_reverts(escrow, stranger):
    with reverts(escrow.InferenceEscrow_NothingToWithdraw, account=stranger):
        escrow.withdrawEarnings(sender=stranger)


def test_credit_is_capped_at_160_bits(escrow, token, caller):
    cap = 2**160 - 1
    token.mint(caller, cap + 1, sender=caller)
    token.approve(escrow, cap + 1, sender=caller)
    with reverts(escrow.InferenceEscrow_CreditOverflow, account=caller, credit=0, maxCredit=cap):
        escrow.deposit(cap + 1, sender=caller)
    escrow.deposit(cap, sender=caller)
    assert escrow.balanceOf(caller) == cap
