"""Price changes and receipts: a rise binds signed receipts only after `priceNoticePeriod`
(until then receipts at the price before it settle, and a channel that settled during the notice
settles once more at that price afterwards, so that no receipt signed under it is stranded),
binds on-chain requests at once, and a cut applies to both at once. `priceNotice`,
`receiptTerms` and the escrow's `channelPrice` tell relayers which price holds."""

from __future__ import annotations

import pytest

from tests.support.contracts import events, one_event, reverts, same

OLD, NEW = 1_000, 1_500
FUNDS = 1_000_000
UNDERPRICED = 6  # InferenceEscrow.ReceiptSkipReason


@pytest.fixture
def model(create_model):
    return create_model(price=OLD)


@pytest.fixture
def paying(reserve, caller, active_relayer):
    """A caller with credit reserved for a bonded relayer, so that receipts can settle."""
    reserve(caller, FUNDS, to=active_relayer)
    return caller


@pytest.fixture
def raise_price(registry, uploader):
    """raise_price(model, price) -> noticeEndsAt of the notice the change started."""

    def raise_(model_id: int, price: int) -> int:
        tx = registry.setPrice(model_id, price, sender=uploader)
        return one_event(tx, registry.PriceNoticeStarted).noticeEndsAt

    return raise_


@pytest.fixture
def settles(escrow, make_receipt, signed, settle_receipts, caller, relayer):
    """settles(model, price) -> the reason a receipt for one more call of the channel paying
    `price` was skipped, or None when it settled (in a block of its own)."""

    def settles_(model_id: int, price: int):
        calls, amount = escrow.channel(caller, relayer, model_id)
        tx = settle_receipts(signed(make_receipt(model_id, calls + 1, amount + price)))
        skipped = events(tx, escrow.ReceiptSkipped)
        if skipped:
            assert escrow.channel(caller, relayer, model_id) == (calls, amount)
            return skipped[0].reason
        assert one_event(tx, escrow.ReceiptSettled).paid == price
        return None

    return settles_


@pytest.fixture
def settles_at(escrow, make_receipt, signed, settle_receipts):
    """settles_at(model, calls, amount) -> the reason a receipt of the default channel with
    these totals was skipped, or None when it settled."""

    def settles_at_(model_id: int, calls: int, amount: int):
        tx = settle_receipts(signed(make_receipt(model_id, calls, amount)))
        skipped = events(tx, escrow.ReceiptSkipped)
        return skipped[0].reason if skipped else None

    return settles_at_


def test_a_rise_announces_a_notice_with_the_old_price_as_floor(registry, model, uploader, chain):
    tx = registry.setPrice(model, NEW, sender=uploader)
    ends_at = chain.blocks.head.timestamp + registry.priceNoticePeriod()
    assert registry.priceNoticePeriod() == 3_600
    changed = one_event(tx, registry.PriceChanged)
    assert (changed.oldPrice, changed.newPrice) == (OLD, NEW)
    notice = one_event(tx, registry.PriceNoticeStarted)
    assert (notice.modelId, notice.receiptPrice, notice.noticeEndsAt) == (model, OLD, ends_at)

    assert registry.getModel(model)[1] == NEW
    assert registry.priceNotice(model) == (OLD, ends_at)
    exists, price, floor, floor_ends_at, payees, shares = registry.receiptTerms(model)
    assert (exists, price, floor, floor_ends_at) == (True, NEW, OLD, ends_at)
    assert [same(p, uploader) for p in payees] == [True] and list(shares) == [10_000]


def test_a_channel_settles_at_the_old_price_during_the_notice_once_more_after_it_then_at_the_new_one(
    escrow, registry, model, paying, raise_price, settles, chain, active_relayer
):
    ends_at = raise_price(model, NEW)
    assert settles(model, OLD) is None

    chain.pending_timestamp = ends_at - 1
    assert settles(model, OLD) is None  # the last second of the notice

    # The channel last settled while the notice ran: its next increase may still hold calls
    # signed at the old price, so it pays at least that, once.
    chain.pending_timestamp = ends_at
    assert escrow.channelPrice(paying, active_relayer, model) == OLD
    assert settles(model, OLD - 1) == UNDERPRICED
    assert settles(model, OLD) is None
    assert escrow.channelPrice(paying, active_relayer, model) == NEW
    assert settles(model, NEW - 1) == UNDERPRICED
    assert settles(model, NEW) is None
    assert registry.priceNotice(model) == (0, 0)


def test_receipts_signed_at_the_floor_and_settled_late_never_brick_their_channel(
    escrow, model, paying, raise_price, make_receipt, signed, settle_receipts, settles_at, chain, active_relayer
):
    """Attack 5: receipts signed at the notice's floor but not settled before it ended became
    Underpriced, and so did every later cumulative receipt of that channel. Now the increase
    since the channel's last settlement may pay the floor if the notice ran past that settlement."""
    assert settles_at(model, 1, OLD) is None
    ends_at = raise_price(model, NEW)
    chain.pending_timestamp = ends_at - 10
    floor_receipts = [signed(make_receipt(model, 1 + n, OLD * (1 + n))) for n in (1, 2, 3)]  # served, unsettled
    # the relayer's settlement is late by a day, and a call made after the end pays the new price
    chain.pending_timestamp = ends_at + 86_400
    later = signed(make_receipt(model, 5, 4 * OLD + NEW))
    tx = settle_receipts(later)
    assert one_event(tx, escrow.ReceiptSettled).paid == 3 * OLD + NEW
    assert escrow.channel(paying, active_relayer, model) == (5, 4 * OLD + NEW)
    # from then on, the new price
    assert settles_at(model, 6, 4 * OLD + NEW + OLD) == UNDERPRICED
    assert floor_receipts  # signed before the end, superseded by the later cumulative receipt


def test_a_first_settlement_pays_the_floor_when_the_reservation_predates_the_notices_end(
    escrow, model, create_model, reserve, other_caller, stranger, raise_price, make_receipt, signed, settle_receipts,
    chain, active_relayer,
):
    """A channel that never settled counts from the opening of its caller's reservation for the
    relayer: no receipt it pays was signed before. Reserved before a notice ended, it may pay the
    floor however late it settles; reserved after, it pays the price."""
    reserve(other_caller, FUNDS, to=active_relayer)
    ends_at = raise_price(model, NEW)
    chain.pending_timestamp = ends_at + 30 * 86_400  # a month late
    assert escrow.channelPrice(other_caller, active_relayer, model) == OLD
    tx = settle_receipts(signed(make_receipt(model, 1, OLD, payer=other_caller), other_caller))
    assert one_event(tx, escrow.ReceiptSettled).paid == OLD

    reserve(stranger, FUNDS, to=active_relayer)  # opened after the notice ended
    assert escrow.channelPrice(stranger, active_relayer, model) == NEW
    tx = settle_receipts(signed(make_receipt(model, 1, OLD, payer=stranger), stranger))
    assert one_event(tx, escrow.ReceiptSkipped).reason == UNDERPRICED


def test_a_second_rise_after_a_notice_ended_cannot_strand_receipts_accepted_at_the_old_floor(
    escrow, registry, model, paying, raise_price, make_receipt, signed, settle_receipts, settles_at, chain,
    active_relayer, uploader,
):
    """Found by the Foundry invariants: a channel that settled during a notice may settle once
    more at its floor after the notice ended; a second rise then wrote a new notice whose floor
    was the risen price, and the receipts the relayer had accepted at the old floor became
    Underpriced for good. The floor the escrow uses is the lowest receipt price the model ever
    had, so the channel's price can only fall until it settles."""
    ends_at = raise_price(model, NEW)
    assert settles_at(model, 1, OLD) is None  # settled during the notice
    chain.pending_timestamp = ends_at + 10
    assert escrow.channelPrice(paying, active_relayer, model) == OLD
    accepted = signed(make_receipt(model, 6, 6 * OLD))  # 5 calls at the floor the chain showed
    registry.setPrice(model, NEW + 1, sender=uploader)  # the owner raises again, after the end
    registry.setPrice(model, OLD - 1, sender=uploader)  # and cuts and raises once more
    registry.setPrice(model, 3 * NEW, sender=uploader)
    assert escrow.channelPrice(paying, active_relayer, model) == OLD - 1
    tx = settle_receipts(accepted)
    assert one_event(tx, escrow.ReceiptSettled).paid == 5 * OLD


def test_an_on_chain_request_pays_the_new_price_at_once(escrow, registry, model, fund, caller, raise_price, request_call):
    fund(caller, FUNDS)
    paying = caller
    raise_price(model, NEW)
    with reverts(escrow.InferenceEscrow_PriceAboveMax, modelId=model, price=NEW, maxPrice=OLD):
        escrow.requestInference(model, 0, b"{}", OLD, sender=paying)
    call = request_call(model, NEW)
    assert call.price == NEW
    assert escrow.balanceOf(paying) == FUNDS - NEW


def test_a_cut_during_a_notice_applies_to_receipts_at_once_and_ends_the_notice(
    registry, model, paying, raise_price, settles, uploader
):
    raise_price(model, NEW)
    tx = registry.setPrice(model, OLD - 200, sender=uploader)
    assert events(tx, registry.PriceNoticeStarted) == []
    assert registry.priceNotice(model) == (0, 0)
    assert registry.receiptTerms(model)[1:3] == (OLD - 200, OLD - 200)
    assert settles(model, OLD - 201) == UNDERPRICED
    assert settles(model, OLD - 200) is None


def test_a_cut_without_a_notice_applies_at_once(registry, model, paying, settles, uploader):
    tx = registry.setPrice(model, OLD // 2, sender=uploader)
    assert events(tx, registry.PriceNoticeStarted) == []
    assert registry.receiptTerms(model)[1] == OLD // 2
    assert settles(model, OLD // 2) is None


def test_setting_the_same_price_starts_no_notice(registry, model, uploader):
    tx = registry.setPrice(model, OLD, sender=uploader)
    assert events(tx, registry.PriceNoticeStarted) == []
    assert registry.priceNotice(model) == (0, 0)
    assert registry.receiptTerms(model)[1] == OLD


def test_a_second_rise_inside_the_notice_keeps_the_first_floor_and_restarts_the_clock(
    registry, model, paying, raise_price, settles, chain, uploader
):
    first_end = raise_price(model, NEW)
    chain.pending_timestamp = first_end - 1_800
    tx = registry.setPrice(model, 2 * NEW, sender=uploader)
    second_end = chain.blocks.head.timestamp + registry.priceNoticePeriod()
    notice = one_event(tx, registry.PriceNoticeStarted)
    assert (notice.receiptPrice, notice.noticeEndsAt) == (OLD, second_end)
    assert second_end == first_end + 1_800
    assert registry.priceNotice(model) == (OLD, second_end)

    chain.pending_timestamp = first_end  # the first notice would have ended here
    assert settles(model, OLD) is None
    chain.pending_timestamp = second_end - 1
    assert settles(model, OLD) is None
    chain.pending_timestamp = second_end
    assert settles(model, OLD) is None  # once more at the floor: the channel settled during the notice
    assert settles(model, NEW) == UNDERPRICED  # the intermediate price never bound receipts alone
    assert settles(model, 2 * NEW) is None


def test_a_rise_after_the_notice_ended_takes_the_risen_price_as_its_floor(
    registry, model, raise_price, chain, uploader
):
    first_end = raise_price(model, NEW)
    chain.pending_timestamp = first_end
    tx = registry.setPrice(model, 2 * NEW, sender=uploader)
    notice = one_event(tx, registry.PriceNoticeStarted)
    assert (notice.receiptPrice, notice.noticeEndsAt) == (NEW, first_end + registry.priceNoticePeriod())
    # the escrow's floor is the lowest receipt price the model ever had
    assert registry.receiptTerms(model)[1:4] == (2 * NEW, OLD, first_end + registry.priceNoticePeriod())


def test_a_free_model_made_paid_keeps_one_unit_receipts_settling_during_the_notice(
    escrow, registry, create_model, active_relayer, make_receipt, signed, settle_receipts, caller, chain, uploader,
    reserve,
):
    reserve(caller, FUNDS, to=active_relayer)
    free = create_model(price=0)
    tx = registry.setPrice(free, NEW, sender=uploader)
    ends_at = one_event(tx, registry.PriceNoticeStarted).noticeEndsAt
    assert one_event(tx, registry.PriceNoticeStarted).receiptPrice == 0
    assert registry.priceNotice(free)[1] == ends_at
    settle_receipts(signed(make_receipt(free, 3, 3)))  # a receipt call pays at least 1 base unit
    assert escrow.channel(caller, active_relayer, free) == (3, 3)
    chain.pending_timestamp = ends_at
    settle_receipts(signed(make_receipt(free, 4, 4)))  # once more after the end
    tx = settle_receipts(signed(make_receipt(free, 5, 5)))
    assert one_event(tx, escrow.ReceiptSkipped).reason == UNDERPRICED


def test_the_notice_views_read_the_clock(registry, model, raise_price, chain):
    ends_at = raise_price(model, NEW)
    chain.mine(timestamp=ends_at - 1)
    assert registry.priceNotice(model) == (OLD, ends_at)
    chain.mine(timestamp=ends_at)
    assert registry.priceNotice(model) == (0, 0)
    assert registry.receiptTerms(model)[1:4] == (NEW, OLD, ends_at)  # the record stays for the escrow


def test_a_model_without_a_rise_has_no_notice_and_its_receipt_terms_name_its_payees(
    registry, model, uploader, coauthor
):
    registry.setPayees(model, [coauthor, uploader], [6_000, 4_000], sender=uploader)
    assert registry.priceNotice(model) == (0, 0)
    exists, price, floor, floor_ends_at, payees, shares = registry.receiptTerms(model)
    assert (exists, price, floor_ends_at) == (True, OLD, 0) and floor <= price
    assert [p.lower() for p in payees] == [coauthor.address.lower(), uploader.address.lower()]
    assert list(shares) == [6_000, 4_000]


def test_unknown_models_have_no_receipt_terms_and_no_notice(registry, model):
    assert registry.receiptTerms(model + 1) == (False, 0, 0, 0, [], [])
    assert registry.receiptTerms(0) == (False, 0, 0, 0, [], [])
    with reverts(registry.ModelRegistry_UnknownModel, modelId=model + 1):
        registry.priceNotice(model + 1)
    with reverts(registry.ModelRegistry_UnknownModel, modelId=0):
        registry.priceNotice(0)
