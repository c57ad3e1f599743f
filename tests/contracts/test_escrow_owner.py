"""InferenceEscrow owner powers: fee caps, treasury, pause, and two-step ownership."""

from __future__ import annotations

import pytest

from tests.support.contracts import FULFILLED, REFUNDED, REJECTED, one_event, reverts, same

PRICE = 10_000
ZERO = "0x0000000000000000000000000000000000000000"


def test_the_protocol_fee_can_be_set_up_to_its_cap_and_applies_after_the_notice(escrow, deployer, chain):
    notice = escrow.termsNoticePeriod()
    assert notice == max(escrow.requestTimeout(), escrow.withdrawalDelay())
    tx = escrow.setProtocolFeeBps(1_000, sender=deployer)
    event = one_event(tx, escrow.ProtocolFeeChanged)
    assert (event.oldBps, event.newBps) == (500, 1_000)
    effective = one_event(tx, escrow.FeesEffectiveAt)
    assert (effective.protocolFeeBps, effective.relayerFeeBps) == (1_000, 1_000)
    assert effective.effectiveAt == tx.timestamp + notice
    assert escrow.protocolFeeBps() == 500  # still the fee in force
    assert escrow.pendingFees() == (1_000, 1_000, tx.timestamp + notice)
    with reverts(escrow.InferenceEscrow_FeeTooHigh, bps=1_001, maxBps=1_000):
        escrow.setProtocolFeeBps(1_001, sender=deployer)

    chain.mine(timestamp=tx.timestamp + notice - 1)
    assert escrow.protocolFeeBps() == 500
    chain.mine(timestamp=tx.timestamp + notice)
    assert escrow.protocolFeeBps() == 1_000
    assert escrow.pendingFees() == (0, 0, 0)
    tx = escrow.setProtocolFeeBps(0, sender=deployer)
    assert one_event(tx, escrow.ProtocolFeeChanged).oldBps == 1_000


def test_the_relayer_fee_can_be_set_up_to_its_cap_and_applies_after_the_notice(escrow, deployer, chain):
    tx = escrow.setRelayerFeeBps(3_000, sender=deployer)
    event = one_event(tx, escrow.RelayerFeeChanged)
    assert (event.oldBps, event.newBps) == (1_000, 3_000)
    assert escrow.relayerFeeBps() == 1_000
    with reverts(escrow.InferenceEscrow_FeeTooHigh, bps=3_001, maxBps=3_000):
        escrow.setRelayerFeeBps(3_001, sender=deployer)
    chain.mine(timestamp=tx.timestamp + escrow.termsNoticePeriod())
    assert escrow.relayerFeeBps() == 3_000


def test_a_second_fee_change_within_the_notice_replaces_the_first_and_restarts_the_clock(escrow, deployer, chain):
    first = escrow.setRelayerFeeBps(3_000, sender=deployer)
    chain.mine(timestamp=first.timestamp + 100)
    second = escrow.setProtocolFeeBps(0, sender=deployer)
    # the pending relayer fee is kept, the protocol fee joins it, the clock restarts
    assert escrow.pendingFees() == (0, 3_000, second.timestamp + escrow.termsNoticePeriod())
    chain.mine(timestamp=first.timestamp + escrow.termsNoticePeriod())
    assert (escrow.protocolFeeBps(), escrow.relayerFeeBps()) == (500, 1_000)
    chain.mine(timestamp=second.timestamp + escrow.termsNoticePeriod())
    assert (escrow.protocolFeeBps(), escrow.relayerFeeBps()) == (0, 3_000)


def test_the_treasury_can_be_changed_with_an_event_but_not_to_zero(escrow, deployer, treasury, stranger):
    tx = escrow.setTreasury(stranger, sender=deployer)
    event = one_event(tx, escrow.TreasuryChanged)
    assert same(event.oldTreasury, treasury) and same(event.newTreasury, stranger)
    assert same(escrow.treasury(), stranger)
    with reverts(escrow.InferenceEscrow_ZeroAddress):
        escrow.setTreasury(ZERO, sender=deployer)


def test_a_fee_change_never_applies_to_calls_already_paid_for(
    escrow, deployer, create_model, fund, request_call, settle, active_relayer, caller, treasury, chain
):
    """The attack: the owner raises the treasury's part and cuts the relayer's to 0 between a
    call and its settlement. The change waits termsNoticePeriod >= requestTimeout, so every call
    paid before it settles (before its deadline) under the fees it was paid under."""
    model = create_model(price=PRICE)
    fund(caller, 2 * PRICE)
    call = request_call(model, PRICE)
    escrow.setProtocolFeeBps(1_000, sender=deployer)
    tx = escrow.setRelayerFeeBps(0, sender=deployer)
    deadline = escrow.getRequest(call.request_id)[5]
    assert deadline < tx.timestamp + escrow.termsNoticePeriod()
    chain.pending_timestamp = deadline  # the last moment it can settle
    settle(call, active_relayer)
    assert escrow.earningsOf(treasury) == 500  # 5% of 10_000, the fee it was paid under
    assert escrow.earningsOf(active_relayer) == 1_000

    chain.pending_timestamp = tx.timestamp + escrow.termsNoticePeriod()
    later = request_call(model, PRICE)
    settle(later, active_relayer)
    assert escrow.earningsOf(treasury) == 500 + 1_000
    assert escrow.earningsOf(active_relayer) == 1_000


@pytest.mark.parametrize(
    "call_name, args",
    [
        ("setProtocolFeeBps", (1,)),
        ("setRelayerFeeBps", (1,)),
        ("setTreasury", ("stranger",)),
        ("pause", ()),
        ("unpause", ()),
        ("transferOwnership", ("stranger",)),
    ],
)
def test_only_the_owner_uses_the_owner_powers(escrow, stranger, call_name, args):
    args = tuple(stranger.address if a == "stranger" else a for a in args)
    with reverts(escrow.OwnableUnauthorizedAccount, account=stranger):
        getattr(escrow, call_name)(*args, sender=stranger)


def test_pause_stops_new_requests_but_not_credit_settlement_rejection_or_refunds(
    escrow, token, deployer, create_model, fund, request_call, sign, active_relayer, caller, uploader, treasury, chain
):
    model = create_model(price=PRICE)
    fund(caller, 4 * PRICE)
    to_settle, to_batch, to_refund = (request_call(model, PRICE) for _ in range(3))
    to_reject = request_call(model, PRICE, via=active_relayer)
    escrow.pause(sender=deployer)
    assert escrow.paused()
    with reverts(escrow.EnforcedPause):
        escrow.requestInference(model, 0, b"{}", PRICE, sender=caller)

    att = to_settle.attestation()
    escrow.fulfill(att.as_tuple(), sign(active_relayer, att), sender=active_relayer)
    att = to_batch.attestation()
    escrow.fulfillBatch([att.as_tuple()], [sign(active_relayer, att)], sender=active_relayer)
    escrow.reject(to_reject.request_id, 3, sender=active_relayer)
    chain.mine(timestamp=escrow.getRequest(to_refund.request_id)[5] + 1)
    escrow.refund(to_refund.request_id, sender=caller)
    assert [escrow.getRequest(c.request_id)[6] for c in (to_settle, to_batch, to_reject, to_refund)] == [
        FULFILLED, FULFILLED, REJECTED, REFUNDED
    ]

    escrow.withdraw(2 * PRICE, sender=caller)
    for account in (uploader, active_relayer, treasury):
        escrow.withdrawEarnings(sender=account)
    token.approve(escrow, PRICE, sender=caller)
    escrow.deposit(PRICE, sender=caller)  # credit can be topped up while paused

    escrow.unpause(sender=deployer)
    assert not escrow.paused()
    escrow.requestInference(model, 0, b"{}", PRICE, sender=caller)


def test_ownership_moves_in_two_steps(escrow, deployer, stranger, other_caller):
    tx = escrow.transferOwnership(stranger, sender=deployer)
    assert same(escrow.pendingOwner(), stranger)
    assert same(escrow.owner(), deployer)
    assert one_event(tx, escrow.OwnershipTransferStarted)
    # until accepted the old owner keeps the powers and the new one has none
    with reverts(escrow.OwnableUnauthorizedAccount, account=stranger):
        escrow.setProtocolFeeBps(0, sender=stranger)
    escrow.setProtocolFeeBps(100, sender=deployer)
    # only the pending owner accepts
    with reverts(escrow.OwnableUnauthorizedAccount, account=other_caller):
        escrow.acceptOwnership(sender=other_caller)

    tx = escrow.acceptOwnership(sender=stranger)
    event = one_event(tx, escrow.OwnershipTransferred)
    assert same(event.previousOwner, deployer) and same(event.newOwner, stranger)
    assert same(escrow.owner(), stranger)
    assert escrow.pendingOwner() == ZERO
    escrow.setProtocolFeeBps(0, sender=stranger)
    with reverts(escrow.OwnableUnauthorizedAccount, account=deployer):
        escrow.setProtocolFeeBps(1, sender=deployer)


@pytest.mark.parametrize("contract_name", ["registry", "relayers"])
def test_the_registries_also_move_ownership_in_two_steps(request, deployer, stranger, contract_name):
    contract = request.getfixturevalue(contract_name)
    contract.transferOwnership(stranger, sender=deployer)
    assert same(contract.owner(), deployer)
    contract.acceptOwnership(sender=stranger)
    assert same(contract.owner(), stranger)
    contract.pause(sender=stranger)
    with reverts(contract.OwnableUnauthorizedAccount, account=deployer):
        contract.unpause(sender=deployer)
