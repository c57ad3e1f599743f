"""The hub's signals on hand-made histories (no chain): each signal of signals.py computed from
events replayed through the indexer's own rules, checked against the number worked out by hand."""

from __future__ import annotations

import pytest

from tests.support.histories import ALICE, BOB, CAROL, COAUTHOR, DAY, OTHER_RELAYER, OWNER, RELAYER, T0, TREASURY, base, fresh_database
from modelhub.indexer import signals


@pytest.fixture
def db(tmp_path):
    return fresh_database(tmp_path / "signals.sqlite")


def test_calls_revenue_callers_and_relayers_count_what_was_paid(db):
    history = base()
    history.paid_call(1, ALICE, T0 + 10)
    history.paid_call(1, ALICE, T0 + 20, relayer=OTHER_RELAYER)
    history.paid_call(1, BOB, T0 + 30)
    history.add("Reserved", T0 + 40, caller=CAROL, relayer=RELAYER, amount=10_000, reserved=10_000)
    history.add("ReceiptSettled", T0 + 50, caller=CAROL, relayer=RELAYER, modelId=1, calls=7, amount=700, paid=700)
    history.add("ReceiptSettled", T0 + 60, caller=CAROL, relayer=RELAYER, modelId=1, calls=10, amount=1_000, paid=300)
    history.failed_call(1, BOB, T0 + 70, "rejected")
    history.apply(db)
    with db.connect() as connection:
        got = signals.model_signals(connection, 1, T0 + DAY)
    assert (got.calls, got.revenue) == (3 + 10, 300 + 1_000)  # a receipt counts the calls it adds
    assert got.callers == 3 and got.relayers == 2


def test_repeat_callers_came_back_on_another_utc_day(db):
    history = base()
    history.paid_call(1, ALICE, T0 + 10)
    history.paid_call(1, ALICE, T0 + 20)  # the same day: not a repeat
    history.paid_call(1, BOB, T0 + DAY - 20, settled_after=10)  # settled 10 s before midnight
    history.paid_call(1, BOB, T0 + DAY, settled_after=10)  # 20 s later, but the next day
    history.apply(db)
    with db.connect() as connection:
        assert signals.model_signals(connection, 1, T0 + 2 * DAY).repeat_callers == 1


def test_organic_calls_leave_out_the_owner_and_the_payees_in_force_at_settlement(db):
    history = base()
    history.add("PayeesChanged", T0 + 1, modelId=1, accounts=[OWNER, COAUTHOR], shares=[5_000, 5_000])
    history.add("PayeesEffectiveAt", T0 + 1, modelId=1, effectiveAt=T0 + 1)
    history.paid_call(1, OWNER, T0 + 10)  # the owner calling its own model
    history.paid_call(1, COAUTHOR, T0 + 20)  # a payee
    history.paid_call(1, ALICE, T0 + 30)
    history.apply(db)
    with db.connect() as connection:
        got = signals.model_signals(connection, 1, T0 + DAY)
    assert (got.calls, got.organic_calls) == (3, 1)


def test_success_rate_and_median_settlement_time_cover_on_chain_calls(db):
    history = base()
    history.paid_call(1, ALICE, T0 + 10, settled_after=30)
    history.paid_call(1, ALICE, T0 + 20, settled_after=90)
    history.paid_call(1, BOB, T0 + 30, settled_after=60)
    history.failed_call(1, BOB, T0 + 40, "rejected")
    history.failed_call(1, CAROL, T0 + 50, "refunded")
    history.apply(db)
    with db.connect() as connection:
        got = signals.model_signals(connection, 1, T0 + DAY)
    assert got.success_rate == pytest.approx(3 / 5)
    assert got.median_settle_seconds == 60


def test_windows_count_only_their_last_7_or_30_days(db):
    history = base()
    history.paid_call(1, ALICE, T0 + 1)  # 40 days before "now"
    history.paid_call(1, BOB, T0 + 20 * DAY)  # 20 days before
    history.paid_call(1, CAROL, T0 + 38 * DAY)  # 2 days before
    history.apply(db)
    now = T0 + 40 * DAY
    with db.connect() as connection:
        counts = {w: signals.model_signals(connection, 1, now, w).calls for w in signals.WINDOWS}
    assert counts == {"all": 3, "30d": 2, "7d": 1}


def test_earnings_follow_the_payees_and_fees_in_force_when_each_call_settled(db):
    history = base()
    history.add("PayeesChanged", T0 + 1, modelId=1, accounts=[OWNER, COAUTHOR], shares=[6_000, 4_000])
    history.add("PayeesEffectiveAt", T0 + 1, modelId=1, effectiveAt=T0 + 1)  # the first: at once
    history.paid_call(1, ALICE, T0 + 10, price=10_000)
    # dropping the co-author applies an hour later; the fee change three hours later
    history.add("PayeesChanged", T0 + 100, modelId=1, accounts=[OWNER], shares=[10_000])
    history.add("PayeesEffectiveAt", T0 + 100, modelId=1, effectiveAt=T0 + 3_700)
    history.add("FeesEffectiveAt", T0 + 100, protocolFeeBps=1_000, relayerFeeBps=0, effectiveAt=T0 + 10_900)
    history.paid_call(1, ALICE, T0 + 200, price=10_000)  # old payees, old fees
    history.paid_call(1, ALICE, T0 + 4_000, price=10_000)  # new payees, old fees
    history.paid_call(1, ALICE, T0 + 11_000, price=10_000)  # new payees, new fees
    history.apply(db)
    with db.connect() as connection:
        page = signals.model_page(connection, 1, T0 + DAY)
        earned = {(row["account"], row["role"]): int(row["amount"]) for row in page["earned"]}
        owner = signals.account_page(connection, OWNER)
    # 8_500 payee part at 5%/10%: 5_100 + 3_400 twice, then 8_500; then 9_000 at 10%/0%
    assert earned[(COAUTHOR, "payee")] == 3_400 * 2
    assert earned[(OWNER, "payee")] == 5_100 * 2 + 8_500 + 9_000
    assert earned[(RELAYER, "relayer")] == 1_000 * 3
    assert earned[(TREASURY, "treasury")] == 500 * 3 + 1_000
    assert int(owner["earned"]["payee"]) == earned[(OWNER, "payee")]
    assert [int(d["calls"]) for d in page["daily"]] == [4]


def test_the_model_list_sorts_by_each_signal_and_searches_names_and_owners(db):
    history = base(1)
    history.add("ModelRegistered", T0, modelId=2, owner=ALICE, name="wine-tree", artifactDigest="0x22",
                pricePerCall=5, metadataURI="")
    history.add("ModelRegistered", T0, modelId=3, owner=OWNER, name="digits", artifactDigest="0x33",
                pricePerCall=7, metadataURI="")
    for caller in (ALICE, BOB, CAROL):
        history.paid_call(2, caller, T0 + 10, price=5)
    history.paid_call(1, BOB, T0 + 20, price=100)
    history.apply(db)
    with db.connect() as connection:
        by = {key: [m.model_id for m in signals.list_models(connection, T0 + DAY, sort=key)]
              for key in ("calls", "revenue", "callers", "price", "newest")}
        found = [m.model_id for m in signals.list_models(connection, T0 + DAY, search="WINE")]
        mine = [m.model_id for m in signals.list_models(connection, T0 + DAY, search=OWNER[-8:])]
    assert by["calls"] == [2, 1, 3]
    assert by["revenue"] == [1, 2, 3]  # 100 beats 15
    assert by["callers"] == [2, 1, 3]
    assert by["price"] == [1, 3, 2]
    assert by["newest"] == [3, 2, 1]
    assert found == [2] and mine == [1, 3]


@pytest.mark.parametrize("bad", [dict(sort="popularity"), dict(window="1y"), dict(limit=0), dict(offset=-1)])
def test_bad_list_parameters_are_refused_with_the_choices(db, bad):
    with db.connect() as connection, pytest.raises(ValueError, match="choose one of|limit must"):
        signals.list_models(connection, T0, **bad)


def test_unknown_models_accounts_and_relayers_are_a_clear_error(db):
    with db.connect() as connection:
        with pytest.raises(signals.UnknownEntityError, match="no model 9"):
            signals.model_page(connection, 9, T0)
        with pytest.raises(signals.UnknownEntityError, match="no account"):
            signals.account_page(connection, ALICE)
        with pytest.raises(signals.UnknownEntityError, match="no relayer"):
            signals.relayer_page(connection, RELAYER)
