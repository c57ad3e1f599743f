"""Settlement by signed attestation: `fulfill` and `fulfillBatch`, and every attestation the
escrow must refuse (single: the specific custom error; batch: skipped with its reason)."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from tests.support.contracts import (
    DEADLINE_PASSED,
    FULFILLED,
    INVALID_SIGNATURE,
    MISMATCH,
    NOT_ACTIVE_RELAYER,
    NOT_PENDING,
    PENDING,
    events,
    fee_split,
    one_event,
    reverts,
    same,
)
from modelhub.typed_data import sign as sign_attestation

PRICE = 10_000
OUTPUT = b'{"label":[0]}'
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def model(create_model):
    return create_model(price=PRICE)


@pytest.fixture
def calls(fund, caller, model, request_call):
    """calls(n) -> n pending paid calls of `model`."""

    def make(n):
        fund(caller, n * PRICE)
        return [request_call(model, PRICE) for _ in range(n)]

    return make


def high_s(signature: bytes) -> bytes:
    """The same signature in its malleable form (s -> n - s, v flipped)."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28


# ---------------------------------------------------------------- fulfill


def test_fulfilling_releases_the_payment_and_names_the_relayer(
    escrow, calls, sign, active_relayer, stranger, uploader, treasury
):
    (call,) = calls(1)
    att = call.attestation(output=OUTPUT)
    assert escrow.hashAttestation(att.as_tuple()) != b"\x00" * 32
    tx = escrow.fulfill(att.as_tuple(), sign(active_relayer, att), sender=stranger)  # anyone submits
    event = one_event(tx, escrow.InferenceFulfilled)
    assert event.requestId == call.request_id
    assert same(event.relayer, active_relayer)
    assert event.outputHash == keccak(OUTPUT)
    assert escrow.getRequest(call.request_id)[6] == FULFILLED
    assert escrow.earningsOf(stranger) == 0
    assert escrow.earningsOf(active_relayer) == 1_000
    assert escrow.earningsOf(uploader) == 8_500 and escrow.earningsOf(treasury) == 500


def test_fulfilling_works_until_the_deadline_inclusive(escrow, calls, sign, active_relayer, chain):
    (call,) = calls(1)
    deadline = escrow.getRequest(call.request_id)[5]
    att = call.attestation()
    chain.pending_timestamp = deadline
    escrow.fulfill(att.as_tuple(), sign(active_relayer, att), sender=active_relayer)
    assert chain.blocks.head.timestamp == deadline
    assert escrow.getRequest(call.request_id)[6] == FULFILLED


def test_the_attestation_digest_is_the_one_signed_off_chain(escrow, calls, sign, active_relayer):
    (call,) = calls(1)
    att = call.attestation()
    digest = escrow.hashAttestation(att.as_tuple())
    assert same(Account._recover_hash(digest, signature=sign(active_relayer, att)), active_relayer)


# ---------------------------------------------------------------- refused attestations


@pytest.fixture
def refused(escrow, calls, sign, active_relayer, relayers, stranger, chain):
    """Each refused case: name -> (attestation tuple, signature, expected error, error inputs, skip reason),
    all on pending requests."""

    def build(case):
        (call,) = calls(1)
        good = call.attestation()
        rid = call.request_id
        if case == "other chain id":
            return good, sign(active_relayer, good, chain_id=chain.chain_id + 1), escrow.InferenceEscrow_NotActiveRelayer, {}, NOT_ACTIVE_RELAYER
        if case == "other contract":
            return good, sign(active_relayer, good, verifying_contract=relayers.address), escrow.InferenceEscrow_NotActiveRelayer, {}, NOT_ACTIVE_RELAYER
        if case == "non-relayer":
            return good, sign(stranger, good), escrow.InferenceEscrow_NotActiveRelayer, {"account": stranger}, NOT_ACTIVE_RELAYER
        if case == "unbonding relayer":
            relayers.beginUnbond(sender=active_relayer)
            return good, sign(active_relayer, good), escrow.InferenceEscrow_NotActiveRelayer, {"account": active_relayer}, NOT_ACTIVE_RELAYER
        if case == "wrong input hash":
            att = call.attestation(input_hash=keccak(b'{"X":[[0]]}'))
            return att, sign(active_relayer, att), escrow.InferenceEscrow_AttestationMismatch, {"requestId": rid}, MISMATCH
        if case == "wrong model id":
            att = call.attestation(model_id=call.model_id + 1)
            return att, sign(active_relayer, att), escrow.InferenceEscrow_AttestationMismatch, {"requestId": rid}, MISMATCH
        if case == "wrong version":
            att = call.attestation(version=call.version + 1)
            return att, sign(active_relayer, att), escrow.InferenceEscrow_AttestationMismatch, {"requestId": rid}, MISMATCH
        if case == "short signature":
            return good, sign(active_relayer, good)[:64], escrow.InferenceEscrow_InvalidSignature, {"requestId": rid}, INVALID_SIGNATURE
        if case == "long signature":
            return good, sign(active_relayer, good) + b"\x00", escrow.InferenceEscrow_InvalidSignature, {"requestId": rid}, INVALID_SIGNATURE
        if case == "empty signature":
            return good, b"", escrow.InferenceEscrow_InvalidSignature, {"requestId": rid}, INVALID_SIGNATURE
        if case == "garbage signature":
            return good, b"\x00" * 65, escrow.InferenceEscrow_InvalidSignature, {"requestId": rid}, INVALID_SIGNATURE
        if case == "malleable high-s signature":
            return good, high_s(sign(active_relayer, good)), escrow.InferenceEscrow_InvalidSignature, {"requestId": rid}, INVALID_SIGNATURE
        if case == "past deadline":
            deadline = escrow.getRequest(rid)[5]
            chain.mine(timestamp=deadline + 1)
            return good, sign(active_relayer, good), escrow.InferenceEscrow_DeadlinePassed, {"requestId": rid, "deadline": deadline}, DEADLINE_PASSED
        if case == "unknown request":
            att = call.attestation(request_id=rid + 100)
            return att, sign(active_relayer, att), escrow.InferenceEscrow_UnknownRequest, {"requestId": rid + 100}, NOT_PENDING
        raise AssertionError(case)

    return build


REFUSED_CASES = [
    "other chain id",
    "other contract",
    "non-relayer",
    "unbonding relayer",
    "wrong input hash",
    "wrong model id",
    "wrong version",
    "short signature",
    "long signature",
    "empty signature",
    "garbage signature",
    "malleable high-s signature",
    "past deadline",
    "unknown request",
]


@pytest.mark.parametrize("case", REFUSED_CASES)
def test_fulfill_refuses_a_bad_attestation_with_its_specific_error(escrow, refused, active_relayer, caller, case):
    att, signature, error, inputs, _ = refused(case)
    credit = escrow.balanceOf(caller)
    with reverts(error, **inputs):
        escrow.fulfill(att.as_tuple(), signature, sender=active_relayer)
    if case != "unknown request":
        assert escrow.getRequest(att.request_id)[6] == PENDING
    assert escrow.earningsOf(active_relayer) == 0
    assert escrow.balanceOf(caller) == credit


@pytest.mark.parametrize("case", REFUSED_CASES)
def test_fulfill_batch_skips_a_bad_attestation_with_its_reason_and_settles_the_good_one(
    escrow, refused, calls, sign, second_relayer, bond, case
):
    att, signature, _, _, reason = refused(case)
    bond(second_relayer)
    (good_call,) = calls(1)
    good = good_call.attestation()
    tx = escrow.fulfillBatch(
        [att.as_tuple(), good.as_tuple()], [signature, sign(second_relayer, good)], sender=second_relayer
    )
    skipped = one_event(tx, escrow.InferenceSkipped)
    assert (skipped.requestId, skipped.reason) == (att.request_id, reason)
    fulfilled = one_event(tx, escrow.InferenceFulfilled)
    assert fulfilled.requestId == good_call.request_id and same(fulfilled.relayer, second_relayer)
    assert escrow.getRequest(good_call.request_id)[6] == FULFILLED
    assert escrow.earningsOf(second_relayer) == 1_000


def test_a_signature_by_the_wrong_key_recovers_someone_else_and_is_refused(escrow, calls, active_relayer):
    (call,) = calls(1)
    att = call.attestation()
    other = Account.create()
    signature = sign_attestation(other.key, att, 31337, escrow.address)
    with reverts(escrow.InferenceEscrow_NotActiveRelayer, account=other.address):
        escrow.fulfill(att.as_tuple(), signature, sender=active_relayer)


def test_a_replayed_attestation_settles_once(escrow, calls, sign, active_relayer, uploader):
    (call,) = calls(1)
    att = call.attestation()
    signature = sign(active_relayer, att)
    escrow.fulfill(att.as_tuple(), signature, sender=active_relayer)
    with reverts(escrow.InferenceEscrow_NotPending, requestId=call.request_id, status=FULFILLED):
        escrow.fulfill(att.as_tuple(), signature, sender=active_relayer)
    assert escrow.earningsOf(uploader) == 8_500


def test_a_relayer_below_a_raised_min_bond_cannot_attest_once_the_rise_applies(
    escrow, relayers, deployer, calls, sign, active_relayer, chain
):
    (before,) = calls(1)
    tx = relayers.setMinBond(relayers.minBond() + 1, sender=deployer)
    # a call paid before the rise settles: the rise waits unbondDelay, past its deadline
    att = before.attestation()
    escrow.fulfill(att.as_tuple(), sign(active_relayer, att), sender=active_relayer)

    chain.mine(timestamp=tx.timestamp + relayers.unbondDelay())
    (after,) = calls(1)
    att = after.attestation()
    with reverts(escrow.InferenceEscrow_NotActiveRelayer, account=active_relayer):
        escrow.fulfill(att.as_tuple(), sign(active_relayer, att), sender=active_relayer)


# ---------------------------------------------------------------- fulfillBatch


def test_a_batch_settles_every_good_item(escrow, calls, sign, active_relayer, uploader, treasury):
    batch = calls(3)
    atts = [c.attestation() for c in batch]
    tx = escrow.fulfillBatch([a.as_tuple() for a in atts], [sign(active_relayer, a) for a in atts], sender=active_relayer)
    assert [e.requestId for e in events(tx, escrow.InferenceFulfilled)] == [c.request_id for c in batch]
    assert events(tx, escrow.InferenceSkipped) == []
    assert escrow.earningsOf(active_relayer) == 3_000
    assert escrow.earningsOf(treasury) == 1_500
    assert escrow.earningsOf(uploader) == 25_500


def test_the_same_request_twice_in_one_batch_settles_once(escrow, calls, sign, active_relayer, uploader):
    (call,) = calls(1)
    att = call.attestation()
    signature = sign(active_relayer, att)
    tx = escrow.fulfillBatch([att.as_tuple(), att.as_tuple()], [signature, signature], sender=active_relayer)
    assert len(events(tx, escrow.InferenceFulfilled)) == 1
    skipped = one_event(tx, escrow.InferenceSkipped)
    assert (skipped.requestId, skipped.reason) == (call.request_id, NOT_PENDING)
    assert escrow.earningsOf(uploader) == 8_500
    assert escrow.earningsOf(active_relayer) == 1_000


def test_a_batch_with_arrays_of_different_lengths_reverts(escrow, calls, sign, active_relayer):
    (call,) = calls(1)
    att = call.attestation()
    with reverts(escrow.InferenceEscrow_LengthMismatch, attestations=1, signatures=2):
        escrow.fulfillBatch([att.as_tuple()], [sign(active_relayer, att)] * 2, sender=active_relayer)
    with reverts(escrow.InferenceEscrow_LengthMismatch, attestations=1, signatures=0):
        escrow.fulfillBatch([att.as_tuple()], [], sender=active_relayer)


def test_an_empty_batch_does_nothing(escrow, active_relayer, treasury):
    tx = escrow.fulfillBatch([], [], sender=active_relayer)
    assert events(tx, escrow.InferenceFulfilled) == [] and events(tx, escrow.InferenceSkipped) == []
    assert escrow.earningsOf(treasury) == 0


def test_a_mixed_batch_reports_each_bad_item_and_settles_the_rest(
    escrow, calls, sign, active_relayer, stranger, relayers, uploader
):
    good1, mismatched, forged, good2, bad_sig = calls(5)
    items = [
        (good1.attestation(), sign(active_relayer, good1.attestation())),
        (mismatched.attestation(version=9), sign(active_relayer, mismatched.attestation(version=9))),
        (forged.attestation(), sign(stranger, forged.attestation())),
        (good2.attestation(), sign(active_relayer, good2.attestation())),
        (bad_sig.attestation(), b"\x01" * 65),
        (good1.attestation(), sign(active_relayer, good1.attestation())),  # again: already settled
    ]
    tx = escrow.fulfillBatch([a.as_tuple() for a, _ in items], [s for _, s in items], sender=stranger)
    assert [e.requestId for e in events(tx, escrow.InferenceFulfilled)] == [good1.request_id, good2.request_id]
    assert [(e.requestId, e.reason) for e in events(tx, escrow.InferenceSkipped)] == [
        (mismatched.request_id, MISMATCH),
        (forged.request_id, NOT_ACTIVE_RELAYER),
        (bad_sig.request_id, INVALID_SIGNATURE),
        (good1.request_id, NOT_PENDING),
    ]
    for call in (mismatched, forged, bad_sig):
        assert escrow.getRequest(call.request_id)[6] == PENDING
    assert escrow.earningsOf(uploader) == 2 * 8_500
    assert escrow.earningsOf(active_relayer) == 2 * 1_000


def test_a_batch_across_two_models_and_two_relayers_pays_each_correctly(
    escrow, registry, create_model, fund, request_call, sign, bond, active_relayer, second_relayer,
    caller, uploader, coauthor, third_payee, stranger, treasury,
):
    price_a, price_b = 10_001, 777
    model_a = create_model(price=price_a)
    model_b = create_model(price=price_b, owner=stranger)
    registry.setPayees(model_b, [coauthor.address, third_payee.address], [7_001, 2_999], sender=stranger)
    bond(second_relayer)
    fund(caller, 3 * price_a + 3 * price_b)
    # interleaved models and relayers, so that per-run caches switch back and forth
    plan = [
        (model_a, price_a, active_relayer),
        (model_b, price_b, second_relayer),
        (model_a, price_a, second_relayer),
        (model_b, price_b, active_relayer),
        (model_b, price_b, active_relayer),
        (model_a, price_a, active_relayer),
    ]
    items = []
    for model, price, signer in plan:
        call = request_call(model, price)
        att = call.attestation()
        items.append((att, sign(signer, att)))
    tx = escrow.fulfillBatch([a.as_tuple() for a, _ in items], [s for _, s in items], sender=caller)
    assert [e.relayer.lower() for e in events(tx, escrow.InferenceFulfilled)] == [
        s.address.lower() for _, _, s in plan
    ]

    expected: dict[str, int] = {}

    def add(account, amount):
        expected[account.address] = expected.get(account.address, 0) + amount

    for model, price, signer in plan:
        if model == model_a:
            t, r, (p,) = fee_split(price, 500, 1_000, [10_000])
            add(uploader, p)
        else:
            t, r, (p1, p2) = fee_split(price, 500, 1_000, [7_001, 2_999])
            add(coauthor, p1)
            add(third_payee, p2)
        add(treasury, t)
        add(signer, r)
    for account in (uploader, coauthor, third_payee, treasury, active_relayer, second_relayer, stranger):
        assert escrow.earningsOf(account) == expected.get(account.address, 0), account
    assert sum(expected.values()) == 3 * price_a + 3 * price_b
    assert escrow.modelStats(model_a) == (3, 3 * price_a)
    assert escrow.modelStats(model_b) == (3, 3 * price_b)
