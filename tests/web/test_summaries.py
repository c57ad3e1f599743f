"""The summary tables the hub's pages read (indexer/rollups.py) give every signal exactly as
counting the settlements one by one does: random histories (calls settled out of time order,
self-dealing, receipts, rejections, refunds, payee changes), windows starting at any second,
every sort key; and a rebuild from the base tables gives the same summaries."""

from __future__ import annotations

import random
import statistics

import pytest
from sqlalchemy import distinct, func, select

from tests.support.histories import ALICE, BOB, CAROL, COAUTHOR, DAY, OTHER_RELAYER, OWNER, RELAYER, T0, base, fresh_database
from modelhub.indexer import SORT_KEYS, WINDOWS, rollups, signals
from modelhub.indexer import schema as t

SUMMARIES = (t.model_totals, t.model_days, t.model_callers, t.model_relayers, t.relayer_totals, t.settle_times,
             t.settle_seconds)


def reference_signals(db, model_id: int, since: int | None) -> signals.ModelSignals:
    """Each signal's definition (signals.py's docstring), read straight from the settlements."""
    s, r = t.settlements.c, t.requests.c
    rows = db.execute(select(s.caller, s.relayer, s.calls, s.amount, s.self_dealing, s.kind, s.time,
                             s.requested_at, s.day).where(s.model_id == model_id)).all()
    rows = [row for row in rows if since is None or row.time >= since]
    days: dict[str, set] = {}
    for row in rows:
        days.setdefault(row.caller, set()).add(row.day)
    ended = [status for status, at in db.execute(select(r.status, r.ended_at).where(
        r.model_id == model_id, r.status.in_((2, 3, 4)))) if since is None or at >= since]
    durations = [row.time - row.requested_at for row in rows if row.kind == "request"]
    return signals.ModelSignals(
        calls=sum(row.calls for row in rows), revenue=sum(row.amount for row in rows),
        callers=len(days), repeat_callers=sum(len(d) >= 2 for d in days.values()),
        organic_calls=sum(row.calls for row in rows if not row.self_dealing),
        success_rate=ended.count(2) / len(ended) if ended else None,
        median_settle_seconds=statistics.median(durations) if durations else None,
        relayers=len({row.relayer for row in rows}),
    )


def reference_order(db, now: int, sort: str, window: str, descending: bool) -> list[int]:
    since = None if WINDOWS[window] is None else now - WINDOWS[window] * DAY
    models = db.execute(select(t.models.c.model_id, t.models.c.price)).all()
    keyed, missing = [], []
    for model_id, price in models:
        got = reference_signals(db, model_id, since)
        value = {"price": price, "newest": model_id}.get(sort, getattr(got, sort, None))
        (missing if value is None else keyed).append((value, model_id))
    keyed.sort(key=lambda pair: ((-pair[0] if descending else pair[0]), pair[1]))
    return [model_id for _, model_id in keyed] + sorted(model_id for _, model_id in missing)


def random_history(seed: int, in_time_order: bool = False):
    """120 random actions on three models; with `in_time_order`, their times ascend (as a chain's
    do), otherwise they are shuffled (the summaries must not care)."""
    rng = random.Random(seed)
    times = [T0 + rng.randrange(40 * DAY) for _ in range(120)]
    if in_time_order:
        times.sort()
    history = base(1)
    for model, owner in ((2, ALICE), (3, OWNER)):
        history.add("ModelRegistered", T0, modelId=model, owner=owner, name=f"model-{model}",
                    artifactDigest="0x22", pricePerCall=5, metadataURI="")
    history.add("PayeesChanged", T0 + 1, modelId=1, accounts=[OWNER, COAUTHOR], shares=[5_000, 5_000])
    history.add("PayeesEffectiveAt", T0 + 1, modelId=1, effectiveAt=T0 + 3 * DAY)
    channels: dict[tuple, int] = {}
    for when in times:
        model = rng.choice((1, 2, 3))
        caller = rng.choice((ALICE, BOB, CAROL, OWNER, COAUTHOR))
        action = rng.random()
        if action < 0.6:
            history.paid_call(model, caller, when, settled_after=rng.randrange(1, 600), price=rng.choice((1, 100, 7)),
                              relayer=rng.choice((RELAYER, OTHER_RELAYER)))
        elif action < 0.75:
            history.failed_call(model, caller, when, rng.choice(("rejected", "refunded")))
        else:
            relayer = rng.choice((RELAYER, OTHER_RELAYER))
            before = channels.get((caller, relayer, model), 0)
            more = rng.randint(1, 9)
            channels[(caller, relayer, model)] = before + more
            history.add("Reserved", when, caller=caller, relayer=relayer, amount=10 * more, reserved=10 * more)
            history.add("ReceiptSettled", when, caller=caller, relayer=relayer, modelId=model, calls=before + more,
                        amount=10 * (before + more), paid=10 * more)
    return history


@pytest.fixture(params=[1, 2, 3])
def history_db(tmp_path, request):
    engine = fresh_database(tmp_path / "summaries.sqlite")
    history = random_history(request.param)
    # in several batches, as the indexer writes them
    events, size = history.events, len(history.events) // 4 + 1
    for start in range(0, len(events), size):
        history.events = events[start:start + size]
        history.apply(engine)
    return engine


NOWS = [T0 + 40 * DAY, T0 + 20 * DAY + 12_345, T0 + 9 * DAY + DAY // 2, T0 + 3 * DAY]


def test_every_signal_in_every_window_equals_counting_the_settlements(history_db):
    with history_db.connect() as db:
        for now in NOWS:
            for window, days in WINDOWS.items():
                since = None if days is None else now - days * DAY
                for model_id in (1, 2, 3, 99):
                    got = signals.model_signals(db, model_id, now, window)
                    assert got == reference_signals(db, model_id, since), (model_id, now, window)


def test_the_list_sorts_by_every_key_as_counting_does(history_db):
    with history_db.connect() as db:
        for now in NOWS[:2]:
            for window in WINDOWS:
                for sort in SORT_KEYS:
                    for descending in (True, False):
                        got = [m.model_id for m in signals.list_models(db, now, sort=sort, window=window,
                                                                         descending=descending)]
                        assert got == reference_order(db, now, sort, window, descending), (sort, window, now)
                listed = signals.list_models(db, now, window=window)
                since = None if WINDOWS[window] is None else now - WINDOWS[window] * DAY
                assert all(m.signals == reference_signals(db, m.model_id, since) for m in listed)


def test_the_daily_points_are_the_settlements_per_day(history_db):
    s = t.settlements.c
    with history_db.connect() as db:
        for model_id in (1, 2, 3):
            page = signals.model_page(db, model_id, T0 + 40 * DAY)
            want = db.execute(select(s.day, func.count(distinct(s.id))).where(s.model_id == model_id)
                              .group_by(s.day).order_by(s.day)).all()
            assert [point["day"] // DAY for point in page["daily"]] == [day for day, _ in want]
            calls = {row["day"] // DAY: int(row["calls"]) for row in page["daily"]}
            for day, _ in want:
                assert calls[day] == sum(c for (c,) in db.execute(select(s.calls).where(
                    s.model_id == model_id, s.day == day)))


def test_a_rebuild_from_the_base_tables_gives_the_same_summaries(history_db):
    def snapshot():
        with history_db.connect() as db:
            return {table.name: sorted(tuple(row) for row in db.execute(select(table))) for table in SUMMARIES}

    kept = snapshot()
    with history_db.begin() as db:
        rollups.rebuild(db, chunk=7)
    assert snapshot() == kept
    assert kept["model_totals"]  # the history did reach them


def test_the_windows_kept_as_the_cursor_moves_equal_counting_the_settlements(tmp_path):
    """As the indexer does: batches in time order, each followed by refresh_windows at the new
    cursor time; the stored windows then answer, and every answer equals the reference."""
    engine = fresh_database(tmp_path / "windows.sqlite")
    history = random_history(4, in_time_order=True)
    events = sorted(history.events, key=lambda pair: pair[1])  # stable: a call's events keep their order
    cursor = T0
    while events:
        cursor += 2 * DAY + 3_333  # batches of about two days, cursors at any second
        history.events = [pair for pair in events if pair[1] <= cursor]
        events = events[len(history.events):]
        history.apply(engine)
        with engine.begin() as db:
            signals.refresh_windows(db, cursor)
        with engine.connect() as db:
            assert db.execute(select(t.window_state.c.now)).scalar() == cursor
            for window, days in WINDOWS.items():
                since = None if days is None else cursor - days * DAY
                for model_id in (1, 2, 3):
                    got = signals.model_signals(db, model_id, cursor, window)
                    assert got == reference_signals(db, model_id, since), (model_id, cursor, window)
                for sort in SORT_KEYS:
                    got = [m.model_id for m in signals.list_models(db, cursor, sort=sort, window=window)]
                    assert got == reference_order(db, cursor, sort, window, True), (sort, window, cursor)
    with engine.connect() as db:
        kept = sorted(tuple(row) for row in db.execute(select(t.window_signals)))
    with engine.begin() as db:  # computed from scratch, the windows are the same
        db.execute(t.window_state.delete())
        signals.refresh_windows(db, cursor)
    with engine.connect() as db:
        assert sorted(tuple(row) for row in db.execute(select(t.window_signals))) == kept
    assert kept
