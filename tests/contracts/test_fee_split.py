"""The split of a settled call's price: each part checked against the interface's rule written
again in Python (contract_support.fee_split), and the parts summing exactly to the price."""

from __future__ import annotations

import pytest

from contract_support import fee_split, one_event

MAX_PRICE = 2**128 - 1
PRICES = [1, 7, 9_999, 10_000, 10_001, 123_456_789, 10**18 + 3, MAX_PRICE]
UNEVEN_SHARES = [3_333, 3_334, 3_333]


def test_the_python_rule_on_a_worked_example():
    # price 10_001 at 5% / 10%: treasury 500 (500.05 down), relayer 1_000 (1_000.1 down),
    # payees 8_501; with shares 3_333/3_334/3_333 the 2nd and 3rd get 2_834 and 2_833 (down),
    # the first the remaining 2_834.
    assert fee_split(10_001, 500, 1_000, UNEVEN_SHARES) == (500, 1_000, [2_834, 2_834, 2_833])
    assert fee_split(1, 500, 1_000, UNEVEN_SHARES) == (0, 0, [1, 0, 0])


@pytest.fixture
def settle_at(escrow, token, create_model, request_call, settle, active_relayer, caller, registry, uploader):
    """settle_at(price, payees, shares) -> earnings of (treasury, relayer, *payees) after one call."""

    def go(price, payees, shares, treasury):
        model = create_model(price=price)
        if len(payees) > 1:
            registry.setPayees(model, [p.address for p in payees], shares, sender=uploader)
        token.mint(caller, price, sender=caller)
        token.approve(escrow, price, sender=caller)
        escrow.deposit(price, sender=caller)
        tx = settle(request_call(model, price), active_relayer)
        assert one_event(tx, escrow.InferenceFulfilled)
        assert escrow.modelStats(model) == (1, price)
        return (
            escrow.earningsOf(treasury),
            escrow.earningsOf(active_relayer),
            [escrow.earningsOf(p) for p in payees],
        )

    return go


@pytest.mark.parametrize("price", PRICES)
def test_one_payee_gets_the_price_less_the_rounded_down_fees(settle_at, price, uploader, treasury):
    got = settle_at(price, [uploader], [10_000], treasury)
    expected = fee_split(price, 500, 1_000, [10_000])
    assert got == expected
    assert got[0] + got[1] + sum(got[2]) == price


@pytest.mark.parametrize("price", PRICES)
def test_three_payees_with_uneven_shares_split_by_the_rule(
    settle_at, price, uploader, coauthor, third_payee, treasury
):
    got = settle_at(price, [uploader, coauthor, third_payee], UNEVEN_SHARES, treasury)
    expected = fee_split(price, 500, 1_000, UNEVEN_SHARES)
    assert got == expected
    assert got[0] + got[1] + sum(got[2]) == price


@pytest.mark.parametrize("price", [1, 7, 10_001, MAX_PRICE])
def test_odd_fee_settings_and_the_fee_caps_split_by_the_rule(
    escrow, deployer, settle_at, price, uploader, coauthor, third_payee, treasury
):
    escrow.setProtocolFeeBps(1_000, sender=deployer)
    escrow.setRelayerFeeBps(3_000, sender=deployer)
    shares = [1, 9_998, 1]
    got = settle_at(price, [uploader, coauthor, third_payee], shares, treasury)
    assert got == fee_split(price, 1_000, 3_000, shares)
    assert got[0] + got[1] + sum(got[2]) == price


@pytest.mark.parametrize("price", [1, 9_999, MAX_PRICE])
def test_with_both_fees_at_zero_the_payees_get_everything(
    escrow, deployer, settle_at, price, uploader, coauthor, third_payee, treasury, active_relayer
):
    escrow.setProtocolFeeBps(0, sender=deployer)
    escrow.setRelayerFeeBps(0, sender=deployer)
    got = settle_at(price, [uploader, coauthor, third_payee], UNEVEN_SHARES, treasury)
    assert got == fee_split(price, 0, 0, UNEVEN_SHARES)
    assert got[0] == 0 and got[1] == 0
    assert sum(got[2]) == price


def test_the_payees_at_settlement_are_paid_not_those_at_request_time(
    escrow, registry, create_model, fund, request_call, settle, active_relayer, caller, uploader, coauthor
):
    model = create_model(price=10_000)
    fund(caller, 10_000)
    call = request_call(model, 10_000)
    registry.setPayees(model, [coauthor.address], [10_000], sender=uploader)
    settle(call, active_relayer)
    assert escrow.earningsOf(coauthor) == 8_500
    assert escrow.earningsOf(uploader) == 0


def test_default_payees_follow_a_transferred_model_and_explicit_ones_stay(
    escrow, registry, create_model, fund, request_call, settle, active_relayer, caller, uploader, coauthor, stranger
):
    default_model = create_model(price=10_000)
    explicit_model = create_model(price=10_000)
    registry.setPayees(explicit_model, [uploader.address, coauthor.address], [5_000, 5_000], sender=uploader)
    fund(caller, 20_000)
    first, second = request_call(default_model, 10_000), request_call(explicit_model, 10_000)
    registry.transferModel(default_model, stranger, sender=uploader)
    registry.transferModel(explicit_model, stranger, sender=uploader)
    settle(first, active_relayer)
    settle(second, active_relayer)
    assert escrow.earningsOf(stranger) == 8_500
    assert escrow.earningsOf(uploader) == 4_250
    assert escrow.earningsOf(coauthor) == 4_250


def test_a_new_treasury_earns_from_then_on_and_the_old_one_keeps_its_earnings(
    escrow, deployer, create_model, fund, request_call, settle, active_relayer, caller, treasury, stranger
):
    model = create_model(price=10_000)
    fund(caller, 20_000)
    first, second = request_call(model, 10_000), request_call(model, 10_000)
    settle(first, active_relayer)
    escrow.setTreasury(stranger, sender=deployer)
    settle(second, active_relayer)
    assert escrow.earningsOf(treasury) == 500
    assert escrow.earningsOf(stranger) == 500
