"""Off-chain calls paid with signed receipts: `settleReceipts` over cumulative channels (caller,
relayer, model) paid out of the caller's reservation for that relayer, the fee split of each
increase, and every receipt the escrow must skip (with its reason, leaving the rest of the batch
to settle), attacks included."""

from __future__ import annotations

import pytest
from eth_account import Account

from tests.support.contracts import events, fee_split, one_event, reverts, same
from modelhub.typed_data import digest as receipt_digest
from modelhub.typed_data import sign as sign_with_key

PRICE = 1_001  # the fee parts round: 50.05 to the treasury, 100.1 to the relayer
FUNDS = 100 * PRICE
PROTOCOL_BPS, RELAYER_BPS = 500, 1_000
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ZERO = "0x0000000000000000000000000000000000000000"

# InferenceEscrow.ReceiptSkipReason
(NOT_NEWER, EXPIRED, INVALID_SIGNATURE, NOT_ACTIVE_RELAYER, UNKNOWN_MODEL, UNDERPRICED, INSUFFICIENT_CREDIT,
 NOT_SUBMITTER) = range(1, 9)


def split(amount: int, shares=(10_000,)):
    """(treasury, relayer, [payees]) of an increase by the rule of the interface."""
    return fee_split(amount, PROTOCOL_BPS, RELAYER_BPS, list(shares))


def high_s(signature: bytes) -> bytes:
    """The same signature in its malleable form (s -> n - s, v flipped)."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28


def compact(signature: bytes) -> bytes:
    """The EIP-2098 64-byte form (r, yParity folded into the top bit of s)."""
    s = int.from_bytes(signature[32:64], "big") | ((signature[64] - 27) << 255)
    return signature[:32] + s.to_bytes(32, "big")


@pytest.fixture
def model(create_model):
    return create_model(price=PRICE)


@pytest.fixture
def funded(reserve, caller, relayer):
    """The caller, with FUNDS reserved for `relayer`'s receipts."""
    reserve(caller, FUNDS, to=relayer)
    return caller


# ---------------------------------------------------------------- settlement


def test_the_receipt_digest_is_the_one_signed_off_chain(escrow, chain, make_receipt, sign_receipt, caller, model):
    receipt = make_receipt(model, 3, 3 * PRICE)
    digest = escrow.hashReceipt(receipt.as_tuple())
    assert digest == receipt_digest(receipt, chain.chain_id, escrow.address)
    assert same(Account._recover_hash(digest, signature=sign_receipt(caller, receipt)), caller)


def test_settling_a_receipt_pays_the_split_of_its_amount_out_of_the_reservation(
    escrow, token, funded, model, make_receipt, signed, settle_receipts, active_relayer, stranger, uploader, treasury,
    reserved,
):
    receipt = make_receipt(model, 3, 3 * PRICE)
    held = token.balanceOf(escrow)
    tx = settle_receipts(signed(receipt), sender=active_relayer)

    treasury_part, relayer_part, (payee_part,) = split(3 * PRICE)
    assert (treasury_part, relayer_part, payee_part) == (150, 300, 2_553)
    assert escrow.earningsOf(treasury) == treasury_part
    assert escrow.earningsOf(active_relayer) == relayer_part
    assert escrow.earningsOf(uploader) == payee_part
    assert escrow.earningsOf(stranger) == 0
    assert reserved(funded, active_relayer) == FUNDS - 3 * PRICE
    assert escrow.balanceOf(funded) == 0  # free credit is not touched
    assert token.balanceOf(escrow) == held  # the money moves inside the escrow only
    assert escrow.channel(funded, active_relayer, model) == (3, 3 * PRICE)
    assert escrow.modelStats(model) == (3, 3 * PRICE)

    event = one_event(tx, escrow.ReceiptSettled)
    assert same(event.caller, funded) and same(event.relayer, active_relayer)
    assert (event.modelId, event.calls, event.amount, event.paid) == (model, 3, 3 * PRICE, 3 * PRICE)
    assert events(tx, escrow.ReceiptSkipped) == []


def test_only_the_relayer_named_in_a_receipt_may_settle_it(
    escrow, funded, model, make_receipt, signed, settle_receipts, active_relayer, second_relayer, bond, stranger,
    reserved,
):
    bond(second_relayer)
    item = signed(make_receipt(model, 1, PRICE))
    for sender in (second_relayer, stranger, funded):
        tx = settle_receipts(item, sender=sender)
        assert events(tx, escrow.ReceiptSettled) == []
        assert one_event(tx, escrow.ReceiptSkipped).reason == NOT_SUBMITTER
    assert reserved(funded, active_relayer) == FUNDS
    assert escrow.channel(funded, active_relayer, model) == (0, 0)
    settle_receipts(item, sender=active_relayer)
    assert escrow.earningsOf(active_relayer) == split(PRICE)[1]
    assert escrow.earningsOf(second_relayer) == 0


def test_a_self_dealing_caller_cannot_take_back_what_it_reserved_for_another_relayer(
    escrow, token, reserve, caller, create_model, make_receipt, signed, settle_receipts, active_relayer, bond,
    second_relayer, reserved, sign_receipt,
):
    """Attack 1 of the review: a caller registers its own model at 1 wei, signs itself a receipt
    for its whole credit naming any active relayer (or one of its own), settles it itself and
    withdraws the earnings at once, skipping the withdrawal delay. Now a receipt pays only out of
    the reservation for the relayer it names, and only that relayer may submit it."""
    reserve(caller, FUNDS, to=active_relayer)
    own_model = create_model(price=1, owner=caller)
    bond(second_relayer)  # stands for a relayer the caller runs itself
    greedy = make_receipt(own_model, 1, FUNDS, to=active_relayer)
    tx = settle_receipts((greedy, sign_receipt(caller, greedy)), sender=caller)
    assert one_event(tx, escrow.ReceiptSkipped).reason == NOT_SUBMITTER
    via_own = make_receipt(own_model, 1, FUNDS, to=second_relayer)
    tx = settle_receipts((via_own, sign_receipt(caller, via_own)), sender=second_relayer)
    assert one_event(tx, escrow.ReceiptSkipped).reason == INSUFFICIENT_CREDIT  # nothing reserved there
    # on-chain requests and withdrawals draw on free credit only
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=caller, credit=0, required=1):
        escrow.requestInference(own_model, 0, b"{}", 1, sender=caller)
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=caller, credit=0, required=FUNDS):
        escrow.withdraw(FUNDS, sender=caller)
    assert escrow.earningsOf(caller) == 0
    assert reserved(caller, active_relayer) == FUNDS
    # the honest relayer's receipt for work it served still settles in full
    honest = make_receipt(own_model, 1, FUNDS, to=active_relayer)
    settle_receipts((honest, sign_receipt(caller, honest)), sender=active_relayer)
    assert reserved(caller, active_relayer) == 0


def test_one_reservation_cannot_pay_two_relayers(
    escrow, reserve, caller, model, make_receipt, signed, settle_receipts, active_relayer, bond, second_relayer,
    reserved,
):
    """Attack 2: with one pool of credit, N relayers each served the whole credit and one was paid.
    Each relayer now serves against its own reservation, which no other relayer's receipt touches."""
    bond(second_relayer)
    reserve(caller, 2 * PRICE, to=active_relayer)
    reserve(caller, 3 * PRICE, to=second_relayer)
    settle_receipts(signed(make_receipt(model, 3, 3 * PRICE, to=second_relayer)))
    tx = settle_receipts(signed(make_receipt(model, 3, 3 * PRICE, to=active_relayer)))
    assert one_event(tx, escrow.ReceiptSkipped).reason == INSUFFICIENT_CREDIT  # it served more than reserved
    settle_receipts(signed(make_receipt(model, 2, 2 * PRICE, to=active_relayer)))
    assert (reserved(caller, active_relayer), reserved(caller, second_relayer)) == (0, 0)
    assert escrow.modelStats(model) == (5, 5 * PRICE)


def test_three_payees_share_the_increase_with_the_remainder_to_the_first(
    escrow, registry, funded, model, make_receipt, signed, settle_receipts, active_relayer, uploader, coauthor,
    third_payee, treasury,
):
    shares = [3_333, 3_333, 3_334]
    registry.setPayees(model, [uploader, coauthor, third_payee], shares, sender=uploader)
    amount = 7 * PRICE
    settle_receipts(signed(make_receipt(model, 7, amount)))

    treasury_part, relayer_part, payee_parts = split(amount, shares)
    assert payee_parts == [1_986, 1_985, 1_986]  # 5_957 * 3_333 / 10_000 = 1_985.48: the first takes the remainder
    assert [escrow.earningsOf(p) for p in (uploader, coauthor, third_payee)] == payee_parts
    assert escrow.earningsOf(treasury) == treasury_part
    assert escrow.earningsOf(active_relayer) == relayer_part
    assert treasury_part + relayer_part + sum(payee_parts) == amount


def test_a_newer_receipt_pays_only_the_increase_since_the_settled_one(
    escrow, funded, model, make_receipt, signed, settle_receipts, active_relayer, uploader, treasury
):
    settle_receipts(signed(make_receipt(model, 2, 2 * PRICE)))
    tx = settle_receipts(signed(make_receipt(model, 5, 5 * PRICE + 3)))  # pays a little over the price

    increase = 3 * PRICE + 3
    assert one_event(tx, escrow.ReceiptSettled).paid == increase
    assert escrow.reservation(funded, active_relayer)[0] == FUNDS - 5 * PRICE - 3
    assert escrow.channel(funded, active_relayer, model) == (5, 5 * PRICE + 3)
    assert escrow.modelStats(model) == (5, 5 * PRICE + 3)
    # The rule applies to each increase as a whole.
    first, second = split(2 * PRICE), split(increase)
    assert escrow.earningsOf(treasury) == first[0] + second[0]
    assert escrow.earningsOf(active_relayer) == first[1] + second[1]
    assert escrow.earningsOf(uploader) == first[2][0] + second[2][0]


def test_two_receipts_of_one_channel_in_one_batch_settle_in_order(
    escrow, funded, model, make_receipt, signed, settle_receipts, active_relayer
):
    tx = settle_receipts(signed(make_receipt(model, 2, 2 * PRICE)), signed(make_receipt(model, 4, 4 * PRICE)))
    assert [e.paid for e in events(tx, escrow.ReceiptSettled)] == [2 * PRICE, 2 * PRICE]
    assert escrow.channel(funded, active_relayer, model) == (4, 4 * PRICE)
    assert escrow.reservation(funded, active_relayer)[0] == FUNDS - 4 * PRICE


def test_the_same_receipt_twice_in_one_batch_pays_once(
    escrow, funded, model, make_receipt, signed, settle_receipts, active_relayer
):
    item = signed(make_receipt(model, 2, 2 * PRICE))
    tx = settle_receipts(item, item)
    assert len(events(tx, escrow.ReceiptSettled)) == 1
    assert one_event(tx, escrow.ReceiptSkipped).reason == NOT_NEWER
    assert escrow.reservation(funded, active_relayer)[0] == FUNDS - 2 * PRICE
    assert escrow.earningsOf(active_relayer) == split(2 * PRICE)[1]


def test_a_batch_over_several_callers_and_models_pays_each_its_part(
    escrow, reserve, create_model, make_receipt, signed, settle_receipts, caller, other_caller, active_relayer,
    second_relayer, bond, uploader, coauthor, treasury, reserved,
):
    bond(second_relayer)
    reserve(caller, FUNDS, to=active_relayer)
    reserve(other_caller, FUNDS, to=active_relayer)
    reserve(other_caller, FUNDS, to=second_relayer)
    model_a = create_model(price=PRICE)
    model_b = create_model(price=3 * PRICE, owner=coauthor)
    mine = [
        (make_receipt(model_a, 1, PRICE, to=active_relayer), caller),
        (make_receipt(model_b, 1, 3 * PRICE, to=active_relayer), caller),
        (make_receipt(model_a, 3, 3 * PRICE, payer=other_caller, to=active_relayer), other_caller),
    ]
    theirs = [
        (make_receipt(model_a, 2, 2 * PRICE, payer=other_caller, to=second_relayer), other_caller),
        (make_receipt(model_b, 2, 6 * PRICE, payer=other_caller, to=second_relayer), other_caller),
    ]
    # the other relayer's receipts in this relayer's batch are skipped, and settle in its own
    tx = settle_receipts(*[signed(r, who) for r, who in mine + theirs], sender=active_relayer)
    assert len(events(tx, escrow.ReceiptSettled)) == 3
    assert [e.reason for e in events(tx, escrow.ReceiptSkipped)] == [NOT_SUBMITTER, NOT_SUBMITTER]
    tx = settle_receipts(*[signed(r, who) for r, who in theirs], sender=second_relayer)
    assert len(events(tx, escrow.ReceiptSettled)) == 2

    items = mine + theirs
    parts = [split(receipt.amount) for receipt, _ in items]
    assert escrow.earningsOf(active_relayer) == parts[0][1] + parts[1][1] + parts[2][1]
    assert escrow.earningsOf(second_relayer) == parts[3][1] + parts[4][1]
    assert escrow.earningsOf(treasury) == sum(p[0] for p in parts)
    assert escrow.earningsOf(uploader) == parts[0][2][0] + parts[2][2][0] + parts[3][2][0]
    assert escrow.earningsOf(coauthor) == parts[1][2][0] + parts[4][2][0]
    assert reserved(caller, active_relayer) == FUNDS - 4 * PRICE
    assert reserved(other_caller, active_relayer) == FUNDS - 3 * PRICE
    assert reserved(other_caller, second_relayer) == FUNDS - 8 * PRICE
    assert escrow.modelStats(model_a) == (6, 6 * PRICE)
    assert escrow.modelStats(model_b) == (3, 9 * PRICE)


def test_a_receipt_settles_at_exactly_its_deadline(
    escrow, chain, funded, model, make_receipt, signed, settle_receipts, active_relayer
):
    deadline = chain.pending_timestamp + 100
    chain.pending_timestamp = deadline
    tx = settle_receipts(signed(make_receipt(model, 1, PRICE, deadline=deadline)))
    assert chain.blocks.head.timestamp == deadline
    assert one_event(tx, escrow.ReceiptSettled).paid == PRICE
    assert escrow.channel(funded, active_relayer, model) == (1, PRICE)


def test_paying_exactly_the_price_per_new_call_settles(
    escrow, funded, model, make_receipt, signed, settle_receipts, active_relayer
):
    settle_receipts(signed(make_receipt(model, 1, PRICE)))
    tx = settle_receipts(signed(make_receipt(model, 4, 4 * PRICE)))
    assert one_event(tx, escrow.ReceiptSettled).paid == 3 * PRICE


def test_spending_exactly_the_whole_reservation_settles(
    escrow, reserve, caller, model, make_receipt, signed, settle_receipts, active_relayer
):
    reserve(caller, 5 * PRICE, to=active_relayer)
    tx = settle_receipts(signed(make_receipt(model, 5, 5 * PRICE)))
    assert one_event(tx, escrow.ReceiptSettled).paid == 5 * PRICE
    assert escrow.reservation(caller, active_relayer)[0] == 0


def test_a_call_of_a_free_model_by_receipt_still_pays_one_base_unit(
    escrow, token, reserve, create_model, make_receipt, signed, settle_receipts, caller, active_relayer, uploader,
):
    """Attack 8: zero-credit identities made free calls, and one receipt of a free model could add
    2**64 - 1 calls to modelStats. A receipt call pays at least MIN_RECEIPT_PRICE (1 base unit),
    so every call counted is paid for and nobody without a reservation is served."""
    assert escrow.MIN_RECEIPT_PRICE() == 1
    free = create_model(price=0)
    tx = settle_receipts(signed(make_receipt(free, 4, 0)))
    assert one_event(tx, escrow.ReceiptSkipped).reason == UNDERPRICED
    tx = settle_receipts(signed(make_receipt(free, 4, 4)))  # the caller has reserved nothing
    assert one_event(tx, escrow.ReceiptSkipped).reason == INSUFFICIENT_CREDIT
    assert escrow.modelStats(free) == (0, 0)

    reserve(caller, 2**64, to=active_relayer)
    held = token.balanceOf(escrow)
    tx = settle_receipts(signed(make_receipt(free, 4, 4)))
    event = one_event(tx, escrow.ReceiptSettled)
    assert (event.calls, event.amount, event.paid) == (4, 4, 4)
    assert escrow.modelStats(free) == (4, 4)
    assert escrow.earningsOf(uploader) == 4  # 1 wei a call: both fee parts round down to 0
    assert token.balanceOf(escrow) == held
    settle_receipts(signed(make_receipt(free, 2**64 - 1, 2**64 - 1)))  # the most calls a channel counts
    assert escrow.channel(caller, active_relayer, free) == (2**64 - 1, 2**64 - 1)
    assert escrow.modelStats(free) == (2**64 - 1, 2**64 - 1)


def test_settling_goes_on_while_the_escrow_is_paused(
    escrow, deployer, funded, model, make_receipt, signed, settle_receipts, active_relayer
):
    escrow.pause(sender=deployer)
    tx = settle_receipts(signed(make_receipt(model, 2, 2 * PRICE)))
    assert one_event(tx, escrow.ReceiptSettled).paid == 2 * PRICE
    assert escrow.earningsOf(active_relayer) == split(2 * PRICE)[1]


def test_a_batch_with_arrays_of_different_lengths_reverts(
    escrow, funded, model, make_receipt, signed, active_relayer
):
    receipt, signature = signed(make_receipt(model, 1, PRICE))
    with reverts(escrow.InferenceEscrow_LengthMismatch, attestations=1, signatures=2):
        escrow.settleReceipts([receipt.as_tuple()], [signature, signature], sender=active_relayer)
    with reverts(escrow.InferenceEscrow_LengthMismatch, attestations=1, signatures=0):
        escrow.settleReceipts([receipt.as_tuple()], [], sender=active_relayer)
    assert escrow.channel(funded, active_relayer, model) == (0, 0)


def test_an_empty_batch_settles_nothing(escrow, stranger, treasury):
    tx = escrow.settleReceipts([], [], sender=stranger)
    assert events(tx, escrow.ReceiptSettled) == [] and events(tx, escrow.ReceiptSkipped) == []
    assert escrow.earningsOf(treasury) == 0


# ---------------------------------------------------------------- skipped receipts


@pytest.fixture
def good_item(reserve, other_caller, active_relayer, make_receipt, sign_receipt, model):
    """A receipt of another caller to the same relayer that settles in the same batch."""
    reserve(other_caller, FUNDS, to=active_relayer)
    receipt = make_receipt(model, 2, 2 * PRICE, payer=other_caller, to=active_relayer)
    return receipt, sign_receipt(other_caller, receipt)


@pytest.fixture
def skipped(escrow, chain, relayers, funded, model, make_receipt, signed, sign_receipt, settle_receipts,
            active_relayer, stranger, bond, second_relayer, reserve):
    """skipped(case) -> (receipt, signature, reason): a receipt of `caller` to `active_relayer`
    that must be skipped. Runs its own setup; the last step may set the next block's time."""

    def build(case):
        receipt = make_receipt(model, 3, 3 * PRICE)
        if case == "exact replay":
            settle_receipts(signed(receipt))
            return (*signed(receipt), NOT_NEWER)
        if case == "older receipt":
            settle_receipts(signed(receipt))
            return (*signed(make_receipt(model, 2, 2 * PRICE)), NOT_NEWER)
        if case == "same calls, larger amount":
            settle_receipts(signed(receipt))
            return (*signed(make_receipt(model, 3, 4 * PRICE)), NOT_NEWER)
        if case == "more calls, smaller amount":
            settle_receipts(signed(make_receipt(model, 2, 3 * PRICE)))
            return (*signed(make_receipt(model, 3, 3 * PRICE - 1)), NOT_NEWER)
        if case == "calls beyond 2**64-1":
            return (*signed(make_receipt(model, 2**64, 3 * PRICE)), NOT_NEWER)
        if case == "amount beyond 2**160-1":
            return (*signed(make_receipt(model, 3, 2**160)), NOT_NEWER)
        if case == "one second past the deadline":
            deadline = chain.pending_timestamp + 100
            item = signed(make_receipt(model, 3, 3 * PRICE, deadline=deadline))
            chain.pending_timestamp = deadline + 1
            return (*item, EXPIRED)
        if case == "signed by someone else":
            return (*signed(receipt, stranger), INVALID_SIGNATURE)
        if case == "signed by a fresh key":
            return receipt, sign_with_key(Account.create().key, receipt, chain.chain_id, escrow.address), INVALID_SIGNATURE
        if case == "signed for another chain":
            return receipt, sign_receipt(funded, receipt, chain_id=chain.chain_id + 1), INVALID_SIGNATURE
        if case == "signed for another contract":
            return receipt, sign_receipt(funded, receipt, verifying_contract=relayers.address), INVALID_SIGNATURE
        if case == "amount raised after signing":
            _, signature = signed(receipt)
            return make_receipt(model, 3, 3 * PRICE + 1, deadline=receipt.deadline), signature, INVALID_SIGNATURE
        if case == "malformed 64-byte signature":
            return receipt, signed(receipt)[1][:64], INVALID_SIGNATURE
        if case == "EIP-2098 compact signature":
            return receipt, compact(signed(receipt)[1]), INVALID_SIGNATURE
        if case == "high-s malleable twin":
            return receipt, high_s(signed(receipt)[1]), INVALID_SIGNATURE
        if case == "empty signature":
            return receipt, b"", INVALID_SIGNATURE
        if case == "names another relayer":
            bond(second_relayer)
            reserve(funded, FUNDS, to=second_relayer)
            return (*signed(make_receipt(model, 3, 3 * PRICE, to=second_relayer)), NOT_SUBMITTER)
        if case == "names the zero address":
            return (*signed(make_receipt(model, 3, 3 * PRICE, to=ZERO)), NOT_SUBMITTER)
        if case == "unknown model":
            return (*signed(make_receipt(model + 100, 3, 3 * PRICE)), UNKNOWN_MODEL)
        if case == "model id zero":
            return (*signed(make_receipt(0, 3, 3 * PRICE)), UNKNOWN_MODEL)
        if case == "one wei short of the price":
            return (*signed(make_receipt(model, 1, PRICE - 1)), UNDERPRICED)
        if case == "an increase one wei short":
            settle_receipts(signed(make_receipt(model, 1, PRICE)))
            return (*signed(make_receipt(model, 3, 3 * PRICE - 1)), UNDERPRICED)
        if case == "one wei more than the reservation":
            return (*signed(make_receipt(model, 100, FUNDS + 1)), INSUFFICIENT_CREDIT)
        if case == "paid from free credit":
            escrow.announceRelease(active_relayer, FUNDS, sender=funded)
            chain.mine(timestamp=chain.blocks.head.timestamp + escrow.withdrawalDelay())
            escrow.release(active_relayer, sender=funded)  # all of it is free credit now
            return (*signed(receipt), INSUFFICIENT_CREDIT)
        raise AssertionError(case)

    return build


SKIP_CASES = [
    "exact replay",
    "older receipt",
    "same calls, larger amount",
    "more calls, smaller amount",
    "calls beyond 2**64-1",
    "amount beyond 2**160-1",
    "one second past the deadline",
    "signed by someone else",
    "signed by a fresh key",
    "signed for another chain",
    "signed for another contract",
    "amount raised after signing",
    "malformed 64-byte signature",
    "EIP-2098 compact signature",
    "high-s malleable twin",
    "empty signature",
    "names another relayer",
    "names the zero address",
    "unknown model",
    "model id zero",
    "one wei short of the price",
    "an increase one wei short",
    "one wei more than the reservation",
    "paid from free credit",
]


@pytest.mark.parametrize("case", SKIP_CASES)
def test_a_bad_receipt_is_skipped_with_its_reason_and_changes_nothing_while_the_good_one_settles(
    escrow, good_item, skipped, settle_receipts, caller, other_caller, second_relayer, active_relayer, uploader,
    treasury, model, case,
):
    good, good_signature = good_item
    bad, bad_signature, reason = skipped(case)
    bad_channel = escrow.channel(bad.caller, bad.relayer, bad.model_id)
    credit = escrow.balanceOf(caller)
    caller_reserved = [escrow.reservation(caller, r) for r in (active_relayer, second_relayer)]
    before = {a: escrow.earningsOf(a) for a in (active_relayer, second_relayer, uploader, treasury)}
    stats = escrow.modelStats(model)

    tx = settle_receipts((bad, bad_signature), (good, good_signature), sender=active_relayer)

    event = one_event(tx, escrow.ReceiptSkipped)
    assert same(event.caller, bad.caller) and same(event.relayer, bad.relayer)
    assert (event.modelId, event.calls, event.reason) == (bad.model_id, bad.calls, reason)
    settled = one_event(tx, escrow.ReceiptSettled)
    assert same(settled.caller, other_caller) and same(settled.relayer, active_relayer)
    assert settled.paid == 2 * PRICE
    # Nothing of the skipped item happened; exactly the good item did.
    assert escrow.channel(bad.caller, bad.relayer, bad.model_id) == bad_channel
    assert escrow.balanceOf(caller) == credit
    assert [escrow.reservation(caller, r) for r in (active_relayer, second_relayer)] == caller_reserved
    assert escrow.reservation(other_caller, active_relayer)[0] == FUNDS - 2 * PRICE
    treasury_part, relayer_part, (payee_part,) = split(2 * PRICE)
    assert escrow.earningsOf(active_relayer) == before[active_relayer] + relayer_part
    assert escrow.earningsOf(second_relayer) == before[second_relayer]
    assert escrow.earningsOf(uploader) == before[uploader] + payee_part
    assert escrow.earningsOf(treasury) == before[treasury] + treasury_part
    assert escrow.modelStats(model) == (stats[0] + 2, stats[1] + 2 * PRICE)
    assert escrow.channel(other_caller, active_relayer, model) == (2, 2 * PRICE)


def test_a_relayer_that_is_not_active_settles_nothing(
    escrow, relayers, good_item, funded, model, make_receipt, signed, settle_receipts, active_relayer, stranger,
    reserve,
):
    relayers.beginUnbond(sender=active_relayer)
    tx = settle_receipts(good_item, signed(make_receipt(model, 1, PRICE)), sender=active_relayer)
    assert [e.reason for e in events(tx, escrow.ReceiptSkipped)] == [NOT_ACTIVE_RELAYER] * 2
    assert events(tx, escrow.ReceiptSettled) == []
    # an account that never registered is no relayer either, even with credit reserved for it
    reserve(funded, PRICE, to=stranger)
    tx = settle_receipts(signed(make_receipt(model, 1, PRICE, to=stranger)), sender=stranger)
    assert one_event(tx, escrow.ReceiptSkipped).reason == NOT_ACTIVE_RELAYER
    assert escrow.reservation(funded, stranger)[0] == PRICE
    assert escrow.earningsOf(active_relayer) == 0


def test_a_skipped_item_first_in_the_batch_does_not_stop_the_good_ones_after_it_paying_their_relayer(
    escrow, funded, model, make_receipt, signed, settle_receipts, active_relayer, stranger
):
    # A good item after a skip reuses the batch's model cache: it must still be right.
    unknown = signed(make_receipt(model + 7, 1, PRICE))
    outsider = signed(make_receipt(model, 1, PRICE, to=stranger))
    good = signed(make_receipt(model, 2, 2 * PRICE))
    tx = settle_receipts(unknown, outsider, good, unknown, sender=active_relayer)
    assert [e.reason for e in events(tx, escrow.ReceiptSkipped)] == [UNKNOWN_MODEL, NOT_SUBMITTER, UNKNOWN_MODEL]
    assert one_event(tx, escrow.ReceiptSettled).paid == 2 * PRICE
    assert escrow.earningsOf(active_relayer) == split(2 * PRICE)[1]
    assert escrow.earningsOf(stranger) == 0


# ---------------------------------------------------------------- receipt signers and contract wallets


@pytest.fixture
def wallet_reserved(escrow, token, wallet, stranger, active_relayer, caller):
    """`wallet` (owned by `caller`) with FUNDS reserved for `active_relayer`."""
    token.mint(stranger, FUNDS, sender=stranger)
    token.approve(escrow, FUNDS, sender=stranger)
    escrow.depositFor(wallet, FUNDS, sender=stranger)
    wallet.execute(escrow, escrow.reserve.encode_input(active_relayer, FUNDS), sender=caller)
    return wallet


def test_a_contract_wallet_pays_with_receipts_its_registered_signer_key_signs(
    escrow, wallet_reserved, caller, model, make_receipt, sign_receipt, settle_receipts, active_relayer, uploader,
):
    wallet = wallet_reserved
    tx = wallet.execute(escrow, escrow.setReceiptSigner.encode_input(caller), sender=caller)
    changed = one_event(tx, escrow.ReceiptSignerChanged)
    assert same(changed.account, wallet) and same(changed.signer, caller)
    assert changed.effectiveAt == tx.timestamp  # the first signer applies at once
    assert escrow.receiptSigner(wallet) == (caller.address, ZERO, 0)
    receipt = make_receipt(model, 2, 2 * PRICE, payer=wallet)
    tx = settle_receipts((receipt, sign_receipt(caller, receipt)))
    event = one_event(tx, escrow.ReceiptSettled)
    assert same(event.caller, wallet) and event.paid == 2 * PRICE
    assert escrow.reservation(wallet, active_relayer)[0] == FUNDS - 2 * PRICE
    assert escrow.channel(wallet, active_relayer, model) == (2, 2 * PRICE)
    assert escrow.earningsOf(uploader) == split(2 * PRICE)[2][0]


def test_a_wallet_that_answers_valid_to_erc1271_is_not_asked_at_settlement(
    escrow, wallet_reserved, caller, model, make_receipt, sign_receipt, settle_receipts, active_relayer,
):
    """Attack 3: a wallet answered "valid" to the relayer's isValidSignature check and "invalid"
    at settlement (or burned the batch's gas). Settlement asks no contract: without a registered
    signer key, even a signature its isValidSignature accepts settles nothing."""
    wallet = wallet_reserved
    receipt = make_receipt(model, 2, 2 * PRICE, payer=wallet)
    signature = sign_receipt(caller, receipt)
    assert wallet.isValidSignature(escrow.hashReceipt(receipt.as_tuple()), signature) == bytes.fromhex("1626ba7e")
    tx = settle_receipts((receipt, signature))
    assert one_event(tx, escrow.ReceiptSkipped).reason == INVALID_SIGNATURE
    assert escrow.reservation(wallet, active_relayer)[0] == FUNDS


def test_a_replaced_receipt_signer_keeps_signing_until_the_delay_has_passed(
    escrow, reserve, caller, stranger, chain, model, make_receipt, sign_receipt, settle_receipts, active_relayer,
):
    """An account may hand receipt signing to another key (a contract wallet must); replacing that
    key applies only withdrawalDelay later, so receipts the old key signed, that a relayer served
    against, settle in the meantime, and the new key is not trusted before its time."""
    reserve(caller, FUNDS, to=active_relayer)
    hot_key, next_key = Account.create(), Account.create()
    escrow.setReceiptSigner(hot_key.address, sender=caller)
    tx = escrow.setReceiptSigner(next_key.address, sender=caller)
    effective_at = tx.timestamp + escrow.withdrawalDelay()
    assert one_event(tx, escrow.ReceiptSignerChanged).effectiveAt == effective_at
    assert escrow.receiptSigner(caller) == (hot_key.address, next_key.address, effective_at)

    chain.pending_timestamp = effective_at - 1
    first = make_receipt(model, 1, PRICE)
    early = make_receipt(model, 2, 2 * PRICE)
    tx = settle_receipts((first, sign_receipt(hot_key.key, first)), (early, sign_receipt(next_key.key, early)))
    assert [e.reason for e in events(tx, escrow.ReceiptSkipped)] == [INVALID_SIGNATURE]
    chain.pending_timestamp = effective_at
    late = make_receipt(model, 3, 3 * PRICE)
    stale = make_receipt(model, 4, 4 * PRICE)
    tx = settle_receipts((stale, sign_receipt(hot_key.key, stale)), (late, sign_receipt(next_key.key, late)))
    assert [e.reason for e in events(tx, escrow.ReceiptSkipped)] == [INVALID_SIGNATURE]
    assert escrow.channel(caller, active_relayer, model) == (3, 3 * PRICE)
    assert escrow.receiptSigner(caller) == (next_key.address, ZERO, 0)
    # the account's own key always signs for it
    own = make_receipt(model, 5, 5 * PRICE)
    settle_receipts((own, sign_receipt(caller, own)))
    assert escrow.channel(caller, active_relayer, model) == (5, 5 * PRICE)


def test_removing_the_receipt_signer_also_waits_the_delay(escrow, caller, chain):
    hot_key = Account.create()
    escrow.setReceiptSigner(hot_key.address, sender=caller)
    tx = escrow.setReceiptSigner(ZERO, sender=caller)
    assert escrow.receiptSigner(caller) == (hot_key.address, ZERO, tx.timestamp + escrow.withdrawalDelay())
    chain.mine(timestamp=tx.timestamp + escrow.withdrawalDelay())
    assert escrow.receiptSigner(caller) == (ZERO, ZERO, 0)


def test_a_contract_without_erc1271_cannot_be_made_to_pay(
    escrow, token, deployer, stranger, model, make_receipt, sign_receipt, settle_receipts, active_relayer
):
    # The token contract holds credit here but registered no signer and has no key.
    token.mint(stranger, FUNDS, sender=stranger)
    token.approve(escrow, FUNDS, sender=stranger)
    escrow.depositFor(token, FUNDS, sender=stranger)
    receipt = make_receipt(model, 1, PRICE, payer=token)
    tx = settle_receipts((receipt, sign_receipt(deployer, receipt)))
    assert one_event(tx, escrow.ReceiptSkipped).reason == INVALID_SIGNATURE
    assert escrow.balanceOf(token) == FUNDS
