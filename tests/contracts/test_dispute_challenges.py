"""DisputeCourt challenges: what a challenge proves and every way one is refused.

An on-chain call is challenged by its settled facts, checked against the one storage word the
escrow keeps of its settlement; a fast call by the caller's receipt, the relayer's attestation of
it and the input. Each refusal is a custom error naming what was wrong; nothing moves.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_utils import keccak

from modelhub.typed_data import Attestation, SettledCall, sign

from tests.support.contracts import FULFILLED, REFUNDED, REJECTED, one_event, reverts, same
from tests.support.disputes import BAD_OUTPUT, GOOD_OUTPUT, PHASE_AWAITING_DRAW

PRICE = 10**15


@pytest.fixture
def model(kit):
    return kit.model(PRICE)


@pytest.fixture
def settled(kit, caller, active_relayer, model):
    """A call settled on chain by `active_relayer`: (facts, input)."""
    return kit.settle_on_chain(caller, active_relayer, model, PRICE, output=BAD_OUTPUT)


# ---------------------------------------------------------------- the escrow's record


def test_a_settled_request_keeps_the_record_of_its_settlement_and_reads_as_ended(escrow, settled):
    facts, _ = settled
    status, record = escrow.settlementRecord(facts.request_id)
    assert status == FULFILLED and record == facts.record() != 0
    # The other fields of an ended request read as zero, as before.
    assert escrow.getRequest(facts.request_id)[1:6] == (0, 0, 0, b"\0" * 32, 0)


def test_refunded_and_rejected_requests_keep_no_record(kit, escrow, chain, caller, active_relayer, model, request_call, fund):
    fund(caller, 2 * PRICE)
    refunded = request_call(model, PRICE)
    rejected = request_call(model, PRICE, via=active_relayer)
    escrow.reject(rejected.request_id, 1, sender=active_relayer)
    chain.pending_timestamp += escrow.requestTimeout() + 1
    escrow.refund(refunded.request_id, sender=caller)
    assert escrow.settlementRecord(refunded.request_id) == (REFUNDED, 0)
    assert escrow.settlementRecord(rejected.request_id) == (REJECTED, 0)


def test_refunding_a_settled_request_still_says_it_is_not_pending(escrow, settled, stranger):
    facts, _ = settled
    # Its slot holds the record now, not a deadline: refund must look at the status first.
    with reverts(escrow.InferenceEscrow_NotPending, requestId=facts.request_id, status=FULFILLED):
        escrow.refund(facts.request_id, sender=stranger)


# ---------------------------------------------------------------- on-chain calls


def test_challenging_a_settled_call_pulls_the_bond_holds_the_accused_and_emits_the_input(
    kit, court, token, relayers, escrow, settled, stranger, caller, active_relayer, chain
):
    facts, input_bytes = settled
    bond = kit.approve_bond(stranger)
    tx = court.challengeRequest(facts.as_tuple(), input_bytes, BAD_OUTPUT, sender=stranger)

    event = one_event(tx, court.DisputeOpened)
    assert event.disputeId == 1 and event.requestId == facts.request_id
    assert same(event.accused, active_relayer) and same(event.challenger, stranger) and same(event.caller, caller)
    assert (event.modelId, event.version, bytes(event.inputHash), bytes(event.outputHash)) == (
        facts.model_id, facts.version, facts.input_hash, facts.output_hash)
    assert bytes(event.input) == input_bytes and bytes(event.output) == BAD_OUTPUT and event.refund == PRICE
    assert bytes(event.attestation) == bytes(escrow.hashAttestation(facts.attestation().as_tuple()))
    assert event.drawBlock == tx.block_number + court.terms().drawDelay
    assert token.balanceOf(court) == bond == court.bondsHeld()
    assert token.balanceOf(stranger) == 0
    assert relayers.bondHolds(active_relayer) == 1
    assert relayers.poolState()[1] == 1  # a draw is pending: the pool's weights are frozen
    info = court.getDispute(1)
    assert (info.phase, info.requestId, info.refund) == (PHASE_AWAITING_DRAW, facts.request_id, PRICE)
    assert court.disputeOf(event.attestation) == 1


def test_an_unknown_request_cannot_be_challenged(kit, court, settled, stranger):
    facts, input_bytes = settled
    kit.approve_bond(stranger)
    unknown = replace(facts, request_id=facts.request_id + 1)
    with reverts(court.DisputeCourt_UnknownRequest, requestId=unknown.request_id):
        court.challengeRequest(unknown.as_tuple(), input_bytes, BAD_OUTPUT, sender=stranger)


@pytest.mark.parametrize("ending", ["pending", "rejected", "refunded"])
def test_an_unsettled_request_cannot_be_challenged(kit, court, escrow, chain, fund, request_call, caller, active_relayer,
                                                   model, stranger, ending):
    fund(caller, PRICE)
    call = request_call(model, PRICE, via=active_relayer if ending == "rejected" else None)
    if ending == "rejected":
        escrow.reject(call.request_id, 1, sender=active_relayer)
    elif ending == "refunded":
        chain.pending_timestamp += escrow.requestTimeout() + 1
        escrow.refund(call.request_id, sender=caller)
    status = escrow.getRequest(call.request_id)[6]
    facts = SettledCall(call.request_id, model, call.version, PRICE, keccak(call.input), keccak(b"{}"),
                        active_relayer.address, chain.blocks.head.timestamp)
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_NotSettled, requestId=call.request_id, status=status):
        court.challengeRequest(facts.as_tuple(), call.input, b"{}", sender=stranger)


@pytest.mark.parametrize("field,value", [
    ("model_id", 99), ("version", 2), ("price", PRICE - 1), ("output_hash", keccak(b"other")),
    ("relayer", "0x" + "11" * 20), ("settled_at", 1),
])
def test_facts_that_are_not_those_it_settled_with_are_refused(kit, court, settled, stranger, field, value):
    facts, input_bytes = settled
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_RecordMismatch, requestId=facts.request_id):
        output = b"other" if field == "output_hash" else BAD_OUTPUT
        court.challengeRequest(replace(facts, **{field: value}).as_tuple(), input_bytes, output, sender=stranger)


def test_input_bytes_that_do_not_hash_to_the_input_hash_are_refused(kit, court, settled, stranger):
    facts, input_bytes = settled
    kit.approve_bond(stranger)
    wrong = input_bytes + b" "
    with reverts(court.DisputeCourt_InputMismatch, inputHash=facts.input_hash, inputGiven=keccak(wrong)):
        court.challengeRequest(facts.as_tuple(), wrong, BAD_OUTPUT, sender=stranger)
    # A matching input hash in the facts but another input: the record refuses it.
    other = replace(facts, input_hash=keccak(wrong))
    with reverts(court.DisputeCourt_RecordMismatch, requestId=facts.request_id):
        court.challengeRequest(other.as_tuple(), wrong, BAD_OUTPUT, sender=stranger)


def test_output_bytes_that_do_not_hash_to_the_attested_output_hash_are_refused(kit, court, settled, stranger):
    facts, input_bytes = settled
    kit.approve_bond(stranger)
    # The jurors compare their output with these bytes: they must be the ones attested.
    with reverts(court.DisputeCourt_OutputMismatch, outputHash=facts.output_hash, outputGiven=keccak(GOOD_OUTPUT)):
        court.challengeRequest(facts.as_tuple(), input_bytes, GOOD_OUTPUT, sender=stranger)


def test_the_window_closes_dispute_window_seconds_after_the_settlement(kit, court, chain, settled, stranger):
    facts, input_bytes = settled
    kit.approve_bond(stranger)
    closes = facts.settled_at + court.terms().disputeWindow
    chain.pending_timestamp = closes + 1
    with reverts(court.DisputeCourt_WindowClosed, requestId=facts.request_id, closedAt=closes):
        court.challengeRequest(facts.as_tuple(), input_bytes, BAD_OUTPUT, sender=stranger)


def test_the_last_second_of_the_window_still_takes_a_challenge(kit, court, chain, settled, stranger):
    facts, input_bytes = settled
    kit.approve_bond(stranger)
    chain.pending_timestamp = facts.settled_at + court.terms().disputeWindow
    tx = court.challengeRequest(facts.as_tuple(), input_bytes, BAD_OUTPUT, sender=stranger)
    assert one_event(tx, court.DisputeOpened).disputeId == 1


def test_an_attestation_is_disputed_once_ever(kit, court, settled, stranger, caller, escrow):
    facts, input_bytes = settled
    first = kit.challenge(facts, input_bytes, stranger)
    attestation = bytes(escrow.hashAttestation(facts.attestation().as_tuple()))
    kit.approve_bond(caller)
    with reverts(court.DisputeCourt_AlreadyDisputed, attestation=attestation, disputeId=first):
        court.challengeRequest(facts.as_tuple(), input_bytes, BAD_OUTPUT, sender=caller)


def test_a_challenge_without_an_approved_bond_moves_nothing(court, token, settled, stranger):
    facts, input_bytes = settled
    with reverts(token.ERC20InsufficientAllowance):
        court.challengeRequest(facts.as_tuple(), input_bytes, BAD_OUTPUT, sender=stranger)
    assert court.disputeCount() == 0 and token.balanceOf(court) == 0


# ---------------------------------------------------------------- fast calls


def test_a_settled_fast_call_is_challenged_with_its_receipt_attestation_and_input(
    kit, court, caller, active_relayer, model, stranger
):
    kit.settle_fast(caller, active_relayer, model, 1, 3 * PRICE)
    call = kit.settle_fast(caller, active_relayer, model, 4, 9 * PRICE, output=BAD_OUTPUT)
    kit.approve_bond(stranger)
    tx = court.challengeReceipt(*call.args(), sender=stranger)

    event = one_event(tx, court.DisputeOpened)
    assert event.requestId == call.attestation.request_id
    assert same(event.accused, active_relayer) and same(event.caller, caller)
    assert bytes(event.input) == call.input and bytes(event.outputHash) == keccak(BAD_OUTPUT)
    assert bytes(event.output) == BAD_OUTPUT
    assert event.refund == 9 * PRICE // 4  # the channel's average price per call up to this one


def test_a_receipt_its_channel_has_not_settled_cannot_be_challenged(kit, court, caller, active_relayer, model, stranger):
    kit.settle_fast(caller, active_relayer, model, 2, 2 * PRICE)
    call = kit.settle_fast(caller, active_relayer, model, 3, 3 * PRICE, settle=False)
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_ReceiptNotSettled, requestId=call.attestation.request_id, calls=3, settledCalls=2):
        court.challengeReceipt(*call.args(), sender=stranger)


def test_an_earlier_receipt_of_a_settled_channel_can_be_challenged(kit, court, caller, active_relayer, model, stranger):
    early = kit.settle_fast(caller, active_relayer, model, 1, PRICE, settle=False)
    kit.settle_fast(caller, active_relayer, model, 5, 5 * PRICE)  # pays for call 1 as well
    assert kit.challenge_fast(early, stranger) == 1


def test_a_forged_receipt_signature_is_refused(kit, court, chain, escrow, caller, active_relayer, model, stranger):
    call = kit.settle_fast(caller, active_relayer, model, 1, PRICE)
    call.receipt_signature = sign(stranger.private_key, call.receipt, chain.chain_id, escrow.address)
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_InvalidReceiptSignature, requestId=call.attestation.request_id):
        court.challengeReceipt(*call.args(), sender=stranger)


def test_an_attestation_not_signed_by_the_receipts_relayer_is_refused(
    kit, court, chain, escrow, caller, active_relayer, model, stranger, second_relayer
):
    call = kit.settle_fast(caller, active_relayer, model, 1, PRICE)
    call.attestation_signature = sign(second_relayer.private_key, call.attestation, chain.chain_id, escrow.address)
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_InvalidAttestationSignature, requestId=call.attestation.request_id):
        court.challengeReceipt(*call.args(), sender=stranger)
    call.attestation_signature = b"\x01" * 65  # not a signature at all
    with reverts(court.DisputeCourt_InvalidAttestationSignature, requestId=call.attestation.request_id):
        court.challengeReceipt(*call.args(), sender=stranger)


def test_an_attestation_signed_in_another_domain_is_refused(kit, court, chain, caller, active_relayer, model, stranger):
    call = kit.settle_fast(caller, active_relayer, model, 1, PRICE)
    call.attestation_signature = sign(active_relayer.private_key, call.attestation, chain.chain_id, court.address)
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_InvalidAttestationSignature, requestId=call.attestation.request_id):
        court.challengeReceipt(*call.args(), sender=stranger)


@pytest.mark.parametrize("change", ["request_id", "model_id"])
def test_an_attestation_of_another_call_is_refused(kit, court, chain, escrow, caller, active_relayer, model, stranger, change):
    call = kit.settle_fast(caller, active_relayer, model, 1, PRICE)
    att = call.attestation
    att = replace(att, request_id=att.request_id ^ 1) if change == "request_id" else replace(att, model_id=model + 1)
    call.attestation, call.attestation_signature = att, sign(active_relayer.private_key, att, chain.chain_id, escrow.address)
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_ReceiptMismatch, requestId=att.request_id):
        court.challengeReceipt(*call.args(), sender=stranger)


def test_a_fast_call_with_the_wrong_input_bytes_is_refused(kit, court, caller, active_relayer, model, stranger):
    call = kit.settle_fast(caller, active_relayer, model, 1, PRICE)
    call.input = b'{"X":[[0,0,0,0]]}'
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_InputMismatch, inputHash=call.attestation.input_hash, inputGiven=keccak(call.input)):
        court.challengeReceipt(*call.args(), sender=stranger)


def test_the_fast_window_runs_from_the_channels_last_settlement(kit, court, chain, caller, active_relayer, model, stranger):
    call = kit.settle_fast(caller, active_relayer, model, 1, PRICE)
    window = court.terms().disputeWindow
    settled_at = chain.blocks.head.timestamp
    chain.pending_timestamp = settled_at + window + 1
    kit.approve_bond(stranger)
    with reverts(court.DisputeCourt_WindowClosed, requestId=call.attestation.request_id, closedAt=settled_at + window):
        court.challengeReceipt(*call.args(), sender=stranger)
    # A later settlement of the channel (which only an active relayer makes) reopens it.
    kit.settle_fast(caller, active_relayer, model, 2, 2 * PRICE)
    assert kit.challenge_fast(call, stranger) == 1


def test_two_attestations_of_one_fast_call_are_two_disputes_but_one_refund(
    kit, court, chain, escrow, caller, active_relayer, model, stranger
):
    call = kit.settle_fast(caller, active_relayer, model, 1, PRICE)
    first = kit.challenge_fast(call, stranger)
    other = Attestation(call.attestation.request_id, model, 1, call.attestation.input_hash, keccak(b"another"))
    call.attestation, call.attestation_signature = other, sign(active_relayer.private_key, other, chain.chain_id, escrow.address)
    call.output = b"another"
    second = kit.challenge_fast(call, stranger)
    assert (first, second) == (1, 2)
    assert not court.refunded(other.request_id)
