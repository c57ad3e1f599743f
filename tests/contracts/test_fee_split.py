"""The split of a settled call's price: each part checked against the interface's rule written
again in Python (tests.support.contracts.fee_split), and the parts summing exactly to the price."""

from __future__ import annotations

import pytest

from tests.support.contracts import fee_split, one_event

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
def set_fees(escrow, deployer, chain):
    """set_fees(protocol_bps, relayer_bps): change both fees and let the notice pass."""

    def set_(protocol_bps: int, relayer_bps: int) -> None:
        escrow.setProtocolFeeBps(protocol_bps, sender=deployer)
        tx = escrow.setRelayerFeeBps(relayer_bps, sender=deployer)
        chain.mine(timestamp=tx.timestamp + escrow.termsNoticePeriod())
        assert (escrow.protocolFeeBps(), escrow.relayerFeeBps()) == (protocol_bps, relayer_bps)

    return set_


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
    set_fees, settle_at, price, uploader, coauthor, third_payee, treasury
):
    set_fees(1_000, 3_000)
    shares = [1, 9_998, 1]
    got = settle_at(price, [uploader, coauthor, third_payee], shares, treasury)
    assert got == fee_split(price, 1_000, 3_000, shares)
    assert got[0] + got[1] + sum(got[2]) == price


@pytest.mark.parametrize("price", [1, 9_999, MAX_PRICE])
def test_with_both_fees_at_zero_the_payees_get_everything(
    set_fees, settle_at, price, uploader, coauthor, third_payee, treasury, active_relayer
):
    set_fees(0, 0)
    got = settle_at(price, [uploader, coauthor, third_payee], UNEVEN_SHARES, treasury)
    assert got == fee_split(price, 0, 0, UNEVEN_SHARES)
    assert got[0] == 0 and got[1] == 0
    assert sum(got[2]) == price


def test_co_authors_cannot_be_cut_out_of_calls_already_paid_for(
    escrow, registry, create_model, fund, request_call, settle, active_relayer, caller, uploader, coauthor, chain
):
    """The attack: the uploader drops its co-author between a call and its settlement. A change
    of explicit payees waits priceNoticePeriod (longer than requestTimeout here), so the call
    settles to the payees it was paid under; calls settled after the notice pay the new ones."""
    model = create_model(price=10_000)
    registry.setPayees(model, [uploader.address, coauthor.address], [5_000, 5_000], sender=uploader)
    fund(caller, 20_000)
    call = request_call(model, 10_000)
    tx = registry.setPayees(model, [uploader.address], [10_000], sender=uploader)
    assert registry.priceNoticePeriod() > escrow.requestTimeout()
    chain.pending_timestamp = escrow.getRequest(call.request_id)[5]
    settle(call, active_relayer)
    assert escrow.earningsOf(coauthor) == 4_250
    assert escrow.earningsOf(uploader) == 4_250

    chain.pending_timestamp = tx.timestamp + registry.priceNoticePeriod()
    later = request_call(model, 10_000)
    settle(later, active_relayer)
    assert escrow.earningsOf(coauthor) == 4_250
    assert escrow.earningsOf(uploader) == 4_250 + 8_500


def test_the_first_explicit_payees_apply_at_once(
    escrow, registry, create_model, fund, request_call, settle, active_relayer, caller, uploader, coauthor
):
    """Under the default payees only the owner is paid, and the owner is the one sharing: the
    first setPayees applies to calls already paid for."""
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
