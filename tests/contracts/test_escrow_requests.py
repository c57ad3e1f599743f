"""InferenceEscrow calls: requesting, rejecting, refunding, the end states of a request, and
that nothing settles, refunds or rejects a request twice."""

from __future__ import annotations

import hashlib

import pytest
from eth_utils import keccak

from tests.support.contracts import (
    FULFILLED,
    NOT_DESIGNATED,
    NOT_PENDING,
    PENDING,
    REFUNDED,
    REJECTED,
    events,
    one_event,
    reverts,
    same,
)

PRICE = 1_000
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
INPUT = b'{"X":[[5.1,3.5,1.4,0.2]]}'


def request_id_of(escrow, tx) -> int:
    return one_event(tx, escrow.InferenceRequested).requestId


def id_for(account, number: int) -> int:
    """Request ids: the caller's address in the high 160 bits, its request number in the low 96."""
    return int(account.address, 16) << 96 | number


@pytest.fixture
def model(create_model):
    return create_model(price=PRICE)


@pytest.fixture
def funded(fund, caller):
    fund(caller, 10 * PRICE)
    return caller


# ---------------------------------------------------------------- requestInference


def test_a_request_locks_the_price_and_records_everything(escrow, registry, model, funded, chain):
    expected_id = id_for(funded, 1)
    assert escrow.nextRequestId(funded) == expected_id
    assert escrow.requestInference.call(model, 0, INPUT, PRICE, sender=funded) == expected_id
    tx = escrow.requestInference(model, 0, INPUT, PRICE, sender=funded)
    now = chain.blocks.head.timestamp

    assert tx.return_value == expected_id
    event = one_event(tx, escrow.InferenceRequested)
    assert event.requestId == expected_id and event.modelId == model and event.version == 1
    assert same(event.caller, funded) and event.price == PRICE
    assert event.inputHash == keccak(INPUT) and event.input == INPUT
    assert escrow.balanceOf(funded) == 9 * PRICE
    assert escrow.getRequest(expected_id) == (funded.address, model, 1, PRICE, keccak(INPUT), now + 600, PENDING)
    assert escrow.nextRequestId(funded) == id_for(funded, 2)


def test_request_ids_carry_the_caller_and_count_per_caller(escrow, model, fund, funded, other_caller):
    fund(other_caller, PRICE)
    ids = [
        request_id_of(escrow, escrow.requestInference(model, 0, INPUT, PRICE, sender=funded)),
        request_id_of(escrow, escrow.requestInference(model, 0, INPUT, PRICE, sender=other_caller)),
        request_id_of(escrow, escrow.requestInference(model, 0, INPUT, PRICE, sender=funded)),
    ]
    assert ids == [id_for(funded, 1), id_for(other_caller, 1), id_for(funded, 2)]
    assert same(escrow.getRequest(ids[1])[0], other_caller)
    assert escrow.nextRequestId(funded) == id_for(funded, 3)


def test_version_zero_resolves_to_the_latest_version_at_request_time(escrow, registry, uploader, model, funded):
    registry.publishVersion(model, hashlib.sha256(b"v2").digest(), "", sender=uploader)
    tx = escrow.requestInference(model, 0, INPUT, PRICE, sender=funded)
    assert one_event(tx, escrow.InferenceRequested).version == 2
    assert escrow.getRequest(request_id_of(escrow, tx))[2] == 2
    # a later version does not change the request
    registry.publishVersion(model, hashlib.sha256(b"v3").digest(), "", sender=uploader)
    assert escrow.getRequest(request_id_of(escrow, tx))[2] == 2


def test_an_explicit_older_version_is_kept(escrow, registry, uploader, model, funded):
    registry.publishVersion(model, hashlib.sha256(b"v2").digest(), "", sender=uploader)
    tx = escrow.requestInference(model, 1, INPUT, PRICE, sender=funded)
    assert one_event(tx, escrow.InferenceRequested).version == 1
    assert escrow.getRequest(request_id_of(escrow, tx))[2] == 1


def test_a_version_above_the_latest_reverts(escrow, model, funded):
    with reverts(escrow.InferenceEscrow_UnknownVersion, modelId=model, version=2, latestVersion=1):
        escrow.requestInference(model, 2, INPUT, PRICE, sender=funded)


def test_an_inactive_model_takes_no_requests(escrow, registry, uploader, model, funded):
    registry.setActive(model, False, sender=uploader)
    with reverts(escrow.InferenceEscrow_ModelInactive, modelId=model):
        escrow.requestInference(model, 0, INPUT, PRICE, sender=funded)
    registry.setActive(model, True, sender=uploader)
    escrow.requestInference(model, 0, INPUT, PRICE, sender=funded)


def test_an_unknown_model_reverts_with_the_registrys_error(escrow, registry, model, funded):
    with reverts(registry.ModelRegistry_UnknownModel, modelId=model + 1):
        escrow.requestInference(model + 1, 0, INPUT, PRICE, sender=funded)


def test_a_price_above_max_price_reverts(escrow, model, funded):
    with reverts(escrow.InferenceEscrow_PriceAboveMax, modelId=model, price=PRICE, maxPrice=PRICE - 1):
        escrow.requestInference(model, 0, INPUT, PRICE - 1, sender=funded)


def test_a_request_without_enough_credit_reverts(escrow, fund, model, caller):
    fund(caller, PRICE - 1)
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=caller, credit=PRICE - 1, required=PRICE):
        escrow.requestInference(model, 0, INPUT, PRICE, sender=caller)


def test_a_free_model_needs_no_credit_and_settles_for_nothing(
    escrow, create_model, request_call, settle, active_relayer, caller, uploader, treasury
):
    free = create_model(price=0)
    call = request_call(free, 0)
    assert escrow.getRequest(call.request_id)[3] == 0
    tx = settle(call, active_relayer)
    assert one_event(tx, escrow.InferenceFulfilled).requestId == call.request_id
    assert escrow.getRequest(call.request_id)[6] == FULFILLED
    assert escrow.modelStats(free) == (1, 0)
    for account in (uploader, active_relayer, treasury):
        assert escrow.earningsOf(account) == 0


def test_the_price_is_locked_at_request_time(
    escrow, registry, uploader, model, funded, request_call, settle, active_relayer, treasury
):
    call = request_call(model, PRICE)
    registry.setPrice(model, 5 * PRICE, sender=uploader)
    assert escrow.getRequest(call.request_id)[3] == PRICE
    settle(call, active_relayer)
    assert escrow.earningsOf(treasury) + escrow.earningsOf(active_relayer) + escrow.earningsOf(uploader) == PRICE
    assert escrow.modelStats(model) == (1, PRICE)
    assert escrow.balanceOf(funded) == 9 * PRICE


def test_a_lowered_price_does_not_refund_calls_already_paid(
    escrow, registry, uploader, model, funded, request_call, chain
):
    call = request_call(model, PRICE)
    registry.setPrice(model, 1, sender=uploader)
    chain.mine(timestamp=escrow.getRequest(call.request_id)[5] + 1)
    escrow.refund(call.request_id, sender=funded)
    assert escrow.balanceOf(funded) == 10 * PRICE


def test_an_unknown_request_id_reverts(escrow, model, funded, other_caller, request_call, active_relayer):
    request_call(model, PRICE)
    for unknown in (0, 1):
        with reverts(escrow.InferenceEscrow_UnknownRequest, requestId=unknown):
            escrow.getRequest(unknown)
    for unknown in (id_for(funded, 2), id_for(other_caller, 1)):
        # the arguments of a read-only call's revert are not recoverable from anvil's message
        # when they hold bytes >= 0x80 (see tests.support.contracts._decode_raw): check the name here,
        # and the argument through a transaction that reverts with the same error
        with reverts(escrow.InferenceEscrow_UnknownRequest):
            escrow.getRequest(unknown)
        with reverts(escrow.InferenceEscrow_UnknownRequest, requestId=unknown):
            escrow.reject(unknown, 1, sender=active_relayer)


# ---------------------------------------------------------------- reject


@pytest.mark.parametrize("reason", [1, 2, 3, 4])
def test_the_designated_relayer_rejects_a_call_with_a_reason_and_the_caller_gets_it_all_back(
    escrow, model, funded, request_call, active_relayer, reason
):
    call = request_call(model, PRICE, via=active_relayer)
    tx = escrow.reject(call.request_id, reason, sender=active_relayer)
    event = one_event(tx, escrow.InferenceRejected)
    assert event.requestId == call.request_id and same(event.relayer, active_relayer) and event.reason == reason
    assert escrow.balanceOf(funded) == 10 * PRICE
    assert escrow.getRequest(call.request_id)[6] == REJECTED
    assert escrow.modelStats(model) == (0, 0)


@pytest.mark.parametrize("reason", [0, 5, 255])
def test_a_reject_reason_outside_one_to_four_reverts(escrow, model, funded, request_call, active_relayer, reason):
    call = request_call(model, PRICE, via=active_relayer)
    with reverts(escrow.InferenceEscrow_InvalidRejectReason, reason=reason):
        escrow.reject(call.request_id, reason, sender=active_relayer)


def test_only_the_designated_relayer_may_reject(
    escrow, model, funded, request_call, active_relayer, bond, second_relayer, stranger, caller
):
    bond(second_relayer)
    call = request_call(model, PRICE, via=active_relayer)
    for account in (stranger, caller, second_relayer):
        with reverts(escrow.InferenceEscrow_NotDesignatedRelayer, requestId=call.request_id, account=account):
            escrow.reject(call.request_id, 1, sender=account)
    assert escrow.getRequest(call.request_id)[6] == PENDING
    assert escrow.balanceOf(funded) == 9 * PRICE


def test_a_call_open_to_every_relayer_cannot_be_rejected_by_any(
    escrow, model, funded, request_call, active_relayer, bond, second_relayer, settle
):
    """The attack: a caller bonds a relayer of its own, reads the output the honest relayer
    already answered, and rejects the call to get its money back. Open calls cannot be rejected
    at all, so the honest relayer's attestation still settles."""
    bond(second_relayer)
    call = request_call(model, PRICE)
    for account in (active_relayer, second_relayer):
        with reverts(escrow.InferenceEscrow_NotDesignatedRelayer, requestId=call.request_id, account=account):
            escrow.reject(call.request_id, 4, sender=account)
    settle(call, active_relayer)
    assert escrow.getRequest(call.request_id)[6] == FULFILLED
    assert escrow.balanceOf(funded) == 9 * PRICE


def test_a_designated_relayer_that_left_may_still_reject_and_refund_at_once(
    escrow, relayers, model, funded, request_call, active_relayer
):
    call = request_call(model, PRICE, via=active_relayer)
    relayers.beginUnbond(sender=active_relayer)
    escrow.reject(call.request_id, 3, sender=active_relayer)
    assert escrow.balanceOf(funded) == 10 * PRICE


def test_a_designated_call_settles_only_with_its_relayers_attestation(
    escrow, model, funded, request_call, active_relayer, bond, second_relayer, sign, settle
):
    bond(second_relayer)
    call = request_call(model, PRICE, via=active_relayer)
    assert same(escrow.designatedRelayer(call.request_id), active_relayer)
    att = call.attestation()
    with reverts(escrow.InferenceEscrow_NotDesignatedRelayer, requestId=call.request_id, account=second_relayer):
        escrow.fulfill(att.as_tuple(), sign(second_relayer, att), sender=second_relayer)
    tx = escrow.fulfillBatch([att.as_tuple()], [sign(second_relayer, att)], sender=second_relayer)
    skipped = one_event(tx, escrow.InferenceSkipped)
    assert (skipped.requestId, skipped.reason) == (call.request_id, NOT_DESIGNATED)
    settle(call, active_relayer)
    assert escrow.getRequest(call.request_id)[6] == FULFILLED
    assert escrow.earningsOf(second_relayer) == 0
    assert escrow.designatedRelayer(call.request_id) == ZERO_ADDRESS  # freed with the rest


def test_a_call_can_be_designated_only_to_an_active_relayer(escrow, model, funded, stranger):
    with reverts(escrow.InferenceEscrow_NotActiveRelayer, account=stranger):
        escrow.requestInferenceVia(model, 0, b"{}", PRICE, stranger, sender=funded)
    assert escrow.balanceOf(funded) == 10 * PRICE


def test_a_designated_request_announces_its_relayer(escrow, model, funded, active_relayer):
    tx = escrow.requestInferenceVia(model, 0, b"{}", PRICE, active_relayer, sender=funded)
    requested = one_event(tx, escrow.InferenceRequested)
    designated = one_event(tx, escrow.RelayerDesignated)
    assert designated.requestId == requested.requestId and same(designated.relayer, active_relayer)


def test_rejecting_an_unknown_request_reverts(escrow, active_relayer):
    with reverts(escrow.InferenceEscrow_UnknownRequest, requestId=42):
        escrow.reject(42, 1, sender=active_relayer)


# ---------------------------------------------------------------- refund


def test_a_refund_waits_until_after_the_deadline(escrow, model, funded, request_call, stranger, chain):
    call = request_call(model, PRICE)
    deadline = escrow.getRequest(call.request_id)[5]
    with reverts(escrow.InferenceEscrow_DeadlineNotPassed, requestId=call.request_id, deadline=deadline):
        escrow.refund(call.request_id, sender=stranger)

    chain.pending_timestamp = deadline
    with reverts(escrow.InferenceEscrow_DeadlineNotPassed, requestId=call.request_id, deadline=deadline):
        escrow.refund(call.request_id, sender=stranger)

    chain.pending_timestamp = deadline + 1
    tx = escrow.refund(call.request_id, sender=stranger)  # anyone may trigger it
    assert one_event(tx, escrow.InferenceRefunded).requestId == call.request_id
    assert escrow.balanceOf(funded) == 10 * PRICE
    assert escrow.balanceOf(stranger) == 0
    assert escrow.getRequest(call.request_id)[6] == REFUNDED


def test_refunding_an_unknown_request_reverts(escrow, stranger):
    with reverts(escrow.InferenceEscrow_UnknownRequest, requestId=9):
        escrow.refund(9, sender=stranger)


# ---------------------------------------------------------------- end states


@pytest.fixture(params=["fulfilled", "rejected", "refunded"])
def ended(request, escrow, model, funded, request_call, settle, active_relayer, chain):
    """A request brought to one end state: (call, status)."""
    # Only a designated relayer may reject; the other end states are reached by open calls.
    call = request_call(model, PRICE, via=active_relayer if request.param == "rejected" else None)
    if request.param == "fulfilled":
        settle(call, active_relayer)
        return call, FULFILLED
    if request.param == "rejected":
        escrow.reject(call.request_id, 2, sender=active_relayer)
        return call, REJECTED
    chain.mine(timestamp=escrow.getRequest(call.request_id)[5] + 1)
    escrow.refund(call.request_id, sender=funded)
    return call, REFUNDED


def test_an_ended_request_keeps_its_status_and_caller_and_frees_the_rest(escrow, ended, funded):
    call, status = ended
    assert escrow.getRequest(call.request_id) == (funded.address, 0, 0, 0, b"\x00" * 32, 0, status)


def test_an_ended_request_cannot_be_fulfilled_again(escrow, ended, sign, active_relayer):
    call, status = ended
    att = call.attestation(output=b'{"label":[1]}')
    with reverts(escrow.InferenceEscrow_NotPending, requestId=call.request_id, status=status):
        escrow.fulfill(att.as_tuple(), sign(active_relayer, att), sender=active_relayer)
    tx = escrow.fulfillBatch([att.as_tuple()], [sign(active_relayer, att)], sender=active_relayer)
    skipped = one_event(tx, escrow.InferenceSkipped)
    assert (skipped.requestId, skipped.reason) == (call.request_id, NOT_PENDING)
    assert events(tx, escrow.InferenceFulfilled) == []


def test_an_ended_request_cannot_be_rejected_or_refunded(escrow, ended, active_relayer, stranger, chain, funded):
    call, status = ended
    credit, earnings = escrow.balanceOf(funded), escrow.earningsOf(active_relayer)
    with reverts(escrow.InferenceEscrow_NotPending, requestId=call.request_id, status=status):
        escrow.reject(call.request_id, 4, sender=active_relayer)
    chain.mine(timestamp=chain.blocks.head.timestamp + 10_000)
    with reverts(escrow.InferenceEscrow_NotPending, requestId=call.request_id, status=status):
        escrow.refund(call.request_id, sender=stranger)
    assert escrow.balanceOf(funded) == credit
    assert escrow.earningsOf(active_relayer) == earnings
    assert escrow.getRequest(call.request_id)[6] == status


def test_model_stats_count_settled_calls_only(escrow, model, funded, request_call, settle, active_relayer, chain):
    settled = [request_call(model, PRICE) for _ in range(3)]
    rejected = request_call(model, PRICE, via=active_relayer)
    refunded = request_call(model, PRICE)
    for call in settled:
        settle(call, active_relayer)
    escrow.reject(rejected.request_id, 1, sender=active_relayer)
    chain.mine(timestamp=escrow.getRequest(refunded.request_id)[5] + 1)
    escrow.refund(refunded.request_id, sender=funded)
    assert escrow.modelStats(model) == (3, 3 * PRICE)
    assert escrow.modelStats(model + 1) == (0, 0)


def test_a_call_paid_before_its_model_was_switched_off_still_settles(
    escrow, registry, uploader, model, funded, request_call, settle, active_relayer
):
    call = request_call(model, PRICE)
    registry.setActive(model, False, sender=uploader)
    settle(call, active_relayer)
    assert escrow.getRequest(call.request_id)[6] == FULFILLED
    assert escrow.modelStats(model) == (1, PRICE)
