"""The agents' decisions on hand-made cases: each rule alone (modelhub.sim.rules), then inside a
market built to make one decision happen."""

from __future__ import annotations

import numpy as np

from modelhub.sim import rules
from modelhub.sim.market import Market

from tests.support.sim import tiny


# ---------------------------------------------------------------- uploaders


def test_an_uploader_enters_only_when_expected_earnings_beat_its_costs():
    # 6 months: expecting 2/month earns 12 against 3 + 6 x 1 = 9; expecting 1.4 earns 8.4 < 9.
    enters = rules.uploader_enters(np.array([2.0, 1.4, 1.5]), np.array([3.0, 3.0, 3.0]), np.array([1.0, 1.0, 1.0]), 180)
    assert enters.tolist() == [True, False, False]  # 1.5 x 6 = 9 only ties: no entry


def test_expected_earnings_come_from_established_models_once_there_are_enough():
    assert rules.expected_monthly_earnings(np.array([5.0, 7.0]), 0.5, prior=1.0) == 1.0  # too few: the prior
    assert rules.expected_monthly_earnings(np.array([1.0, 3.0, 9.0, 100.0]), 0.5, prior=1.0) == 6.0


def test_an_uploader_leaves_after_its_grace_period_when_a_month_earns_less_than_it_costs():
    leaves = rules.uploader_leaves(age_days=np.array([10, 50, 50, 50]), earnings_30d=np.array([0.0, 0.5, 1.0, 2.0]),
                                   monthly_cost=np.array([1.0, 1.0, 1.0, 1.0]), grace_days=45)
    assert leaves.tolist() == [False, True, False, False]


def test_prices_climb_while_revenue_holds_and_turn_when_it_falls():
    price = np.array([1_000, 1_000, 5, 1], dtype=object)
    direction = np.array([1, 1, -1, -1])
    new, turned = rules.reprice(price, direction, revenue_now=np.array([10.0, 8.0, 3.0, 3.0]),
                                revenue_before=np.array([9.0, 9.0, 3.0, 3.0]), step=0.1)
    assert new.tolist() == [1_100, 900, 4, 1]  # integer base units, never below 1
    assert turned.tolist() == [1, -1, -1, -1]


# ---------------------------------------------------------------- callers


def test_a_caller_takes_the_listed_model_at_its_attention_position_skipping_ineligible_ones():
    eligible = np.array([[True, False, True, True],
                         [True, False, True, True],
                         [False, False, False, False],
                         [True, True, True, True]])
    picks = rules.pick_models(eligible, explore=np.array([False, False, False, True]),
                              position=np.array([0, 1, 0, 0]), uniform=np.array([0.0, 0.0, 0.0, 0.99]))
    # First eligible; second eligible (column 2, skipping the blocked 1); none; exploring: uniform, the last.
    assert picks.tolist() == [0, 2, -1, 3]


def test_a_caller_past_the_end_of_its_list_takes_the_last_eligible_model():
    picks = rules.pick_models(np.array([[False, True, True, False]]), explore=np.array([False]),
                              position=np.array([7]), uniform=np.array([0.5]))
    assert picks.tolist() == [2]


def test_a_caller_drops_a_model_once_enough_outputs_were_bad():
    drops = rules.drops_model(good=np.array([1, 4, 2, 9]), bad=np.array([3, 6, 8, 1]), patience=10, tolerance=0.5)
    assert drops.tolist() == [False, True, True, False]  # 4 calls judged too few; 60% and 80% bad; 10% bad


def test_a_caller_leaves_when_its_surplus_turns_negative_or_nothing_is_worth_calling():
    leaves = rules.caller_leaves(age_days=np.array([5, 40, 40, 3]), recent_surplus=np.array([-1.0, -1.0, 2.0, 0.0]),
                                 idle_days=np.array([0, 0, 0, 14]), leave_after_days=30, give_up_days=14)
    assert leaves.tolist() == [False, True, False, True]


# ---------------------------------------------------------------- relayers


def test_a_relayer_bonds_when_serving_pays_with_one_more_relayer_sharing_the_market():
    # 10 tokens of fees and 1,000 calls a day shared by 2: 5 - 500 x 0.001 - 1 - 100 x 0.0365/365 = 3.49.
    assert rules.relayer_joins(10.0, 1_000, 1, 0.001, 1.0, 100.0, 0.0365)
    assert not rules.relayer_joins(10.0, 1_000, 9, 0.001, 1.0, 100.0, 0.0365)  # 10 share: 1 - 0.1 - 1 - 0.01 < 0
    assert not rules.relayer_joins(1.0, 1_000, 1, 0.001, 1.0, 100.0, 0.0365)


# ---------------------------------------------------------------- inside a market


def test_callers_who_only_see_bad_models_drop_them_and_give_up():
    scenario = tiny(uploaders={"initial": 3, "potential": 0, "quality": {"good_share": 0.0, "bad": [0.0, 0.05]}},
                    callers={"arrivals_per_day": 0.0, "referrals_per_day": 0.0}, days=12)
    market = Market(scenario)
    market.run()
    n = market.n_callers
    assert market.blocked[:n].any(axis=1).mean() > 0.9  # nearly every caller dropped a model it tried
    assert (market.c_left[:n] >= 0).mean() > 0.9  # and left the market


def test_callers_stay_with_a_good_model_and_keep_a_positive_surplus():
    scenario = tiny(uploaders={"initial": 2, "potential": 0, "quality": {"good_share": 1.0, "good": [0.99, 1.0]},
                               "reprice_every_days": 0},
                    callers={"arrivals_per_day": 0.0, "switch_per_day": 0.0}, days=20, tasks=1)
    market = Market(scenario)
    market.run()
    n = market.n_callers
    assert not market.blocked[:n].any()
    assert (market.c_surplus[:n] > 0).all()
    assert (market.c_left[:n] < 0).all()


def test_uploaders_whose_models_earn_nothing_leave_after_the_grace_period():
    scenario = tiny(uploaders={"initial": 3, "potential": 0, "grace_days": 10, "monthly_cost": "1000"},
                    callers={"initial": 0, "arrivals_per_day": 0.0}, days=15)
    market = Market(scenario)
    market.run()
    assert market.u.left.tolist() == [10, 10, 10]
    assert market.days[-1].active_models == 0


def test_a_relayer_bonds_once_the_market_pays_for_one_more():
    rich = tiny(relayers={"initial": 1, "potential": 1, "fixed_cost_per_day": "0", "capital_cost_per_year": 0.0,
                          "cost_per_call": "0"}, days=10)
    poor = tiny(relayers={"initial": 1, "potential": 1, "fixed_cost_per_day": "1000"}, days=10)
    joined_rich = Market(rich)
    joined_rich.run()
    joined_poor = Market(poor)
    joined_poor.run()
    assert joined_rich.r_joined[1] == 3  # the day after the first settlement (every 3 days) paid fees
    assert joined_poor.r_joined[1] == -1


def test_a_price_rise_is_paid_at_the_old_price_while_its_notice_runs():
    scenario = tiny(protocol={"price_notice_period": 86_400 * 3})
    market = Market(scenario)
    ledger = market.ledger
    ledger.register_model(0, 100, 0)
    ledger.set_price(0, 150, 1_000)  # a rise: receipts pay 100 until 1_000 + 3 days
    during, share, after = ledger.call_prices(86_400, 2 * 86_400)
    assert (during[0], share[0], after[0]) == (100, 1.0, 150)
    during, share, after = ledger.call_prices(3 * 86_400, 4 * 86_400)
    assert share[0] == (1_000 + 3 * 86_400 - 3 * 86_400) / 86_400
    ledger.set_price(0, 120, 2_000)  # a cut within the notice, still above the floor: the floor holds
    assert ledger.receipt_price(0, 3_000) == 100
    ledger.set_price(0, 90, 4_000)  # a cut below the floor applies at once
    assert ledger.receipt_price(0, 4_001) == 90
