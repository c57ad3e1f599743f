"""Off-chain calls paid with signed receipts: `settleReceipts` over cumulative channels (caller,
relayer, model), the fee split of each increase, and every receipt the escrow must skip (with its
reason, leaving the rest of the batch to settle)."""

from __future__ import annotations

import pytest
from eth_account import Account

from contract_support import events, fee_split, one_event, reverts, same
from modelhub.receipts import receipt_digest
from modelhub.receipts import sign_receipt as sign_with_key

PRICE = 1_001  # the fee parts round: 50.05 to the treasury, 100.1 to the relayer
FUNDS = 100 * PRICE
PROTOCOL_BPS, RELAYER_BPS = 500, 1_000
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ZERO = "0x0000000000000000000000000000000000000000"

# InferenceEscrow.ReceiptSkipReason
NOT_NEWER, EXPIRED, INVALID_SIGNATURE, NOT_ACTIVE_RELAYER, UNKNOWN_MODEL, UNDERPRICED, INSUFFICIENT_CREDIT = range(1, 8)


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
def funded(fund, caller):
    fund(caller, FUNDS)
    return caller


# ---------------------------------------------------------------- settlement


def test_the_receipt_digest_is_the_one_signed_off_chain(escrow, chain, make_receipt, sign_receipt, caller, model):
    receipt = make_receipt(model, 3, 3 * PRICE)
    digest = escrow.hashReceipt(receipt.as_tuple())
    assert digest == receipt_digest(receipt, chain.chain_id, escrow.address)
    assert same(Account._recover_hash(digest, signature=sign_receipt(caller, receipt)), caller)


def test_settling_a_receipt_pays_the_split_of_its_amount_and_debits_the_caller(
    escrow, token, funded, model, make_receipt, signed, settle_receipts, active_relayer, stranger, uploader, treasury
):
    receipt = make_receipt(model, 3, 3 * PRICE)
    held = token.balanceOf(escrow)
    tx = settle_receipts(signed(receipt), sender=stranger)  # anyone may submit

    treasury_part, relayer_part, (payee_part,) = split(3 * PRICE)
    assert (treasury_part, relayer_part, payee_part) == (150, 300, 2_553)
    assert escrow.earningsOf(treasury) == treasury_part
    assert escrow.earningsOf(active_relayer) == relayer_part
    assert escrow.earningsOf(uploader) == payee_part
    assert escrow.earningsOf(stranger) == 0
    assert escrow.balanceOf(funded) == FUNDS - 3 * PRICE
    assert token.balanceOf(escrow) == held  # the money moves inside the escrow only
    assert escrow.channel(funded, active_relayer, model) == (3, 3 * PRICE)
    assert escrow.modelStats(model) == (3, 3 * PRICE)

    event = one_event(tx, escrow.ReceiptSettled)
    assert same(event.caller, funded) and same(event.relayer, active_relayer)
    assert (event.modelId, event.calls, event.amount, event.paid) == (model, 3, 3 * PRICE, 3 * PRICE)
    assert events(tx, escrow.ReceiptSkipped) == []


def test_the_relayer_named_in_the_receipt_is_paid_not_the_submitter(
    escrow, funded, model, make_receipt, signed, settle_receipts, active_relayer, second_relayer, bond
):
    bond(second_relayer)
    settle_receipts(signed(make_receipt(model, 1, PRICE)), sender=second_relayer)
    assert escrow.earningsOf(active_relayer) == split(PRICE)[1]
    assert escrow.earningsOf(second_relayer) == 0


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
    assert escrow.balanceOf(funded) == FUNDS - 5 * PRICE - 3
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
    assert escrow.balanceOf(funded) == FUNDS - 4 * PRICE


def test_the_same_receipt_twice_in_one_batch_pays_once(
    escrow, funded, model, make_receipt, signed, settle_receipts, active_relayer
):
    item = signed(make_receipt(model, 2, 2 * PRICE))
    tx = settle_receipts(item, item)
    assert len(events(tx, escrow.ReceiptSettled)) == 1
    assert one_event(tx, escrow.ReceiptSkipped).reason == NOT_NEWER
    assert escrow.balanceOf(funded) == FUNDS - 2 * PRICE
    assert escrow.earningsOf(active_relayer) == split(2 * PRICE)[1]


def test_a_batch_over_several_relayers_callers_and_models_pays_each_its_part(
    escrow, fund, create_model, make_receipt, signed, settle_receipts, caller, other_caller, active_relayer,
    second_relayer, bond, uploader, coauthor, treasury,
):
    bond(second_relayer)
    fund(caller, FUNDS)
    fund(other_caller, FUNDS)
    model_a = create_model(price=PRICE)
    model_b = create_model(price=3 * PRICE, owner=coauthor)
    items = [
        (make_receipt(model_a, 1, PRICE, to=active_relayer), caller),
        (make_receipt(model_a, 2, 2 * PRICE, payer=other_caller, to=second_relayer), other_caller),
        (make_receipt(model_b, 1, 3 * PRICE, to=active_relayer), caller),
        (make_receipt(model_a, 3, 3 * PRICE, payer=other_caller, to=active_relayer), other_caller),
        (make_receipt(model_b, 2, 6 * PRICE, payer=other_caller, to=second_relayer), other_caller),
    ]
    tx = settle_receipts(*[signed(receipt, signer) for receipt, signer in items])
    assert len(events(tx, escrow.ReceiptSettled)) == 5

    parts = [split(receipt.amount) for receipt, _ in items]
    assert escrow.earningsOf(active_relayer) == parts[0][1] + parts[2][1] + parts[3][1]
    assert escrow.earningsOf(second_relayer) == parts[1][1] + parts[4][1]
    assert escrow.earningsOf(treasury) == sum(p[0] for p in parts)
    assert escrow.earningsOf(uploader) == parts[0][2][0] + parts[1][2][0] + parts[3][2][0]
    assert escrow.earningsOf(coauthor) == parts[2][2][0] + parts[4][2][0]
    assert escrow.balanceOf(caller) == FUNDS - 4 * PRICE
    assert escrow.balanceOf(other_caller) == FUNDS - 11 * PRICE
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


def test_spending_exactly_the_whole_credit_settles(
    escrow, fund, caller, model, make_receipt, signed, settle_receipts, active_relayer
):
    fund(caller, 5 * PRICE)
    tx = settle_receipts(signed(make_receipt(model, 5, 5 * PRICE)))
    assert one_event(tx, escrow.ReceiptSettled).paid == 5 * PRICE
    assert escrow.balanceOf(caller) == 0


def test_a_free_model_counts_receipts_of_amount_zero_and_moves_no_money(
    escrow, token, create_model, make_receipt, signed, settle_receipts, caller, active_relayer, uploader, treasury
):
    free = create_model(price=0)
    held = token.balanceOf(escrow)
    tx = settle_receipts(signed(make_receipt(free, 4, 0)))  # the caller has no credit at all
    event = one_event(tx, escrow.ReceiptSettled)
    assert (event.calls, event.amount, event.paid) == (4, 0, 0)
    assert escrow.channel(caller, active_relayer, free) == (4, 0)
    assert escrow.modelStats(free) == (4, 0)
    assert [escrow.earningsOf(a) for a in (active_relayer, uploader, treasury)] == [0, 0, 0]
    assert token.balanceOf(escrow) == held

    settle_receipts(signed(make_receipt(free, 2**64 - 1, 0)))  # the most calls a channel counts
    assert escrow.channel(caller, active_relayer, free) == (2**64 - 1, 0)
    assert escrow.modelStats(free) == (2**64 - 1, 0)


def test_settling_goes_on_while_the_escrow_is_paused(
    escrow, deployer, funded, model, make_receipt, signed, settle_receipts, active_relayer
):
    escrow.pause(sender=deployer)
    tx = settle_receipts(signed(make_receipt(model, 2, 2 * PRICE)))
    assert one_event(tx, escrow.ReceiptSettled).paid == 2 * PRICE
    assert escrow.earningsOf(active_relayer) == split(2 * PRICE)[1]


def test_a_batch_with_arrays_of_different_lengths_reverts(
    escrow, funded, model, make_receipt, signed, active_relayer, stranger
):
    receipt, signature = signed(make_receipt(model, 1, PRICE))
    with reverts(escrow.InferenceEscrow_LengthMismatch, attestations=1, signatures=2):
        escrow.settleReceipts([receipt.as_tuple()], [signature, signature], sender=stranger)
    with reverts(escrow.InferenceEscrow_LengthMismatch, attestations=1, signatures=0):
        escrow.settleReceipts([receipt.as_tuple()], [], sender=stranger)
    assert escrow.channel(funded, active_relayer, model) == (0, 0)


def test_an_empty_batch_settles_nothing(escrow, stranger, treasury):
    tx = escrow.settleReceipts([], [], sender=stranger)
    assert events(tx, escrow.ReceiptSettled) == [] and events(tx, escrow.ReceiptSkipped) == []
    assert escrow.earningsOf(treasury) == 0


# ---------------------------------------------------------------- skipped receipts


@pytest.fixture
def good_item(fund, other_caller, second_relayer, bond, make_receipt, sign_receipt, model):
    """A receipt of another caller to another relayer that settles in the same batch."""
    bond(second_relayer)
    fund(other_caller, FUNDS)
    receipt = make_receipt(model, 2, 2 * PRICE, payer=other_caller, to=second_relayer)
    return receipt, sign_receipt(other_caller, receipt)


@pytest.fixture
def skipped(escrow, chain, relayers, funded, model, make_receipt, signed, sign_receipt, settle_receipts,
            active_relayer, stranger):
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
        if case == "relayer never registered":
            return (*signed(make_receipt(model, 3, 3 * PRICE, to=stranger)), NOT_ACTIVE_RELAYER)
        if case == "unbonding relayer":
            relayers.beginUnbond(sender=active_relayer)
            return (*signed(receipt), NOT_ACTIVE_RELAYER)
        if case == "unknown model":
            return (*signed(make_receipt(model + 100, 3, 3 * PRICE)), UNKNOWN_MODEL)
        if case == "model id zero":
            return (*signed(make_receipt(0, 3, 3 * PRICE)), UNKNOWN_MODEL)
        if case == "one wei short of the price":
            return (*signed(make_receipt(model, 1, PRICE - 1)), UNDERPRICED)
        if case == "an increase one wei short":
            settle_receipts(signed(make_receipt(model, 1, PRICE)))
            return (*signed(make_receipt(model, 3, 3 * PRICE - 1)), UNDERPRICED)
        if case == "one wei more than the credit":
            return (*signed(make_receipt(model, 100, FUNDS + 1)), INSUFFICIENT_CREDIT)
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
    "relayer never registered",
    "unbonding relayer",
    "unknown model",
    "model id zero",
    "one wei short of the price",
    "an increase one wei short",
    "one wei more than the credit",
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
    before = {a: escrow.earningsOf(a) for a in (active_relayer, second_relayer, uploader, treasury)}
    stats = escrow.modelStats(model)

    tx = settle_receipts((bad, bad_signature), (good, good_signature))

    event = one_event(tx, escrow.ReceiptSkipped)
    assert same(event.caller, bad.caller) and same(event.relayer, bad.relayer)
    assert (event.modelId, event.calls, event.reason) == (bad.model_id, bad.calls, reason)
    settled = one_event(tx, escrow.ReceiptSettled)
    assert same(settled.caller, other_caller) and same(settled.relayer, second_relayer)
    assert settled.paid == 2 * PRICE
    # Nothing of the skipped item happened; exactly the good item did.
    assert escrow.channel(bad.caller, bad.relayer, bad.model_id) == bad_channel
    assert escrow.balanceOf(caller) == credit
    assert escrow.balanceOf(other_caller) == FUNDS - 2 * PRICE
    treasury_part, relayer_part, (payee_part,) = split(2 * PRICE)
    assert escrow.earningsOf(active_relayer) == before[active_relayer]
    assert escrow.earningsOf(second_relayer) == before[second_relayer] + relayer_part
    assert escrow.earningsOf(uploader) == before[uploader] + payee_part
    assert escrow.earningsOf(treasury) == before[treasury] + treasury_part
    assert escrow.modelStats(model) == (stats[0] + 2, stats[1] + 2 * PRICE)
    assert escrow.channel(other_caller, second_relayer, model) == (2, 2 * PRICE)


def test_a_skipped_item_first_in_the_batch_does_not_stop_the_good_ones_after_it_paying_their_relayer(
    escrow, funded, model, make_receipt, signed, settle_receipts, active_relayer, stranger
):
    # A good item after a skip reuses the batch's relayer and model caches: they must still be right.
    unknown = signed(make_receipt(model + 7, 1, PRICE))
    outsider = signed(make_receipt(model, 1, PRICE, to=stranger))
    good = signed(make_receipt(model, 2, 2 * PRICE))
    tx = settle_receipts(unknown, outsider, good, unknown)
    assert [e.reason for e in events(tx, escrow.ReceiptSkipped)] == [UNKNOWN_MODEL, NOT_ACTIVE_RELAYER, UNKNOWN_MODEL]
    assert one_event(tx, escrow.ReceiptSettled).paid == 2 * PRICE
    assert escrow.earningsOf(active_relayer) == split(2 * PRICE)[1]
    assert escrow.earningsOf(stranger) == 0


def test_a_receipt_naming_the_zero_address_as_relayer_is_skipped_as_not_an_active_relayer(
    escrow, funded, model, make_receipt, signed, settle_receipts
):
    # The zero address is never a bonded relayer; the relayer's part of such a receipt would be
    # booked to earningsOf(0x0), where nobody can ever withdraw it.
    receipt = make_receipt(model, 1, PRICE, to=ZERO)
    tx = settle_receipts(signed(receipt))
    assert events(tx, escrow.ReceiptSettled) == []
    assert one_event(tx, escrow.ReceiptSkipped).reason == NOT_ACTIVE_RELAYER
    assert escrow.balanceOf(funded) == FUNDS
    assert escrow.earningsOf(ZERO) == 0


# ---------------------------------------------------------------- contract wallets (ERC-1271)


def test_a_contract_wallet_pays_with_receipts_its_owner_signs(
    escrow, token, wallet, caller, stranger, model, make_receipt, sign_receipt, settle_receipts, active_relayer,
    uploader,
):
    token.mint(stranger, FUNDS, sender=stranger)
    token.approve(escrow, FUNDS, sender=stranger)
    escrow.depositFor(wallet, FUNDS, sender=stranger)
    receipt = make_receipt(model, 2, 2 * PRICE, payer=wallet)
    tx = settle_receipts((receipt, sign_receipt(caller, receipt)))  # the wallet's owner signs
    event = one_event(tx, escrow.ReceiptSettled)
    assert same(event.caller, wallet) and event.paid == 2 * PRICE
    assert escrow.balanceOf(wallet) == FUNDS - 2 * PRICE
    assert escrow.channel(wallet, active_relayer, model) == (2, 2 * PRICE)
    assert escrow.earningsOf(uploader) == split(2 * PRICE)[2][0]


def test_a_contract_wallet_receipt_signed_by_another_key_is_skipped(
    escrow, token, wallet, stranger, model, make_receipt, sign_receipt, settle_receipts, active_relayer
):
    token.mint(stranger, FUNDS, sender=stranger)
    token.approve(escrow, FUNDS, sender=stranger)
    escrow.depositFor(wallet, FUNDS, sender=stranger)
    receipt = make_receipt(model, 2, 2 * PRICE, payer=wallet)
    tx = settle_receipts((receipt, sign_receipt(stranger, receipt)))
    event = one_event(tx, escrow.ReceiptSkipped)
    assert same(event.caller, wallet) and event.reason == INVALID_SIGNATURE
    assert events(tx, escrow.ReceiptSettled) == []
    assert escrow.balanceOf(wallet) == FUNDS
    assert escrow.channel(wallet, active_relayer, model) == (0, 0)


def test_a_contract_without_erc1271_cannot_be_made_to_pay(
    escrow, token, deployer, stranger, model, make_receipt, sign_receipt, settle_receipts, active_relayer
):
    # The token contract holds credit here but answers no isValidSignature.
    token.mint(stranger, FUNDS, sender=stranger)
    token.approve(escrow, FUNDS, sender=stranger)
    escrow.depositFor(token, FUNDS, sender=stranger)
    receipt = make_receipt(model, 1, PRICE, payer=token)
    tx = settle_receipts((receipt, sign_receipt(deployer, receipt)))
    assert one_event(tx, escrow.ReceiptSkipped).reason == INVALID_SIGNATURE
    assert escrow.balanceOf(token) == FUNDS
