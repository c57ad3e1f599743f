"""The fast mode's money, every day of a run: tokens minted = wallets + free credit +
reservations + earnings + bonds, to the base unit, and each settlement split by the contracts'
rounding rule (modelhub.feesplit)."""

from __future__ import annotations

import numpy as np
import pytest

from modelhub.feesplit import split
from modelhub.sim.ledger import ConservationError, Ledger
from modelhub.sim.market import Market
from modelhub.sim.scenario import Protocol

from tests.support.sim import tiny


def _held(ledger: Ledger) -> int:
    """Every token the ledger accounts for, summed here from its arrays (not by its own check)."""
    n = ledger.callers
    return (sum(int(v) for v in ledger.caller_wallet[:n]) + sum(int(v) for v in ledger.caller_credit[:n])
            + sum(int(v) for v in ledger.caller_reserved[:n]) + sum(int(v) for v in ledger.payee_wallet.flat)
            + sum(int(v) for v in ledger.payee_earnings.flat) + sum(int(v) for v in ledger.relayer_wallet)
            + sum(int(v) for v in ledger.relayer_earnings) + sum(int(v) for v in ledger.relayer_bond)
            + ledger.treasury_wallet + ledger.treasury_earnings)


def test_tokens_in_equal_balances_credit_reservations_earnings_and_bonds_after_every_day():
    scenario = tiny()
    market = Market(scenario)
    checked = []

    def check(market: Market, day) -> None:
        assert _held(market.ledger) == market.ledger.minted, f"day {day.day}"
        market.ledger.check_conservation()
        checked.append(day.day)

    market.run(on_day=check)
    assert checked == list(range(scenario.days))
    days = market.days
    # The run moved money every way there is: calls, leavers' releases, withdrawals, bonds.
    assert sum(d.calls for d in days) > 1_000
    assert sum(d.leaving_callers for d in days) > 0 and market.ledger.caller_wallet.sum() > 0
    assert market.ledger.payee_wallet.sum() > 0 and market.ledger.treasury_wallet > 0
    assert (market.r_joined >= 0).sum() > 1


def test_each_settlement_pays_its_channels_increase_split_by_the_contracts_rule():
    scenario = tiny()
    market = Market(scenario)
    ledger = market.ledger
    seen = []
    settle = ledger.settle

    def checked_settle(only, time):
        before = {name: getattr(ledger, name).copy() for name in ("relayer_earnings", "payee_earnings")}
        treasury_before, reserved_before = ledger.treasury_earnings, ledger.caller_reserved.copy()
        settled = settle(only, time)
        shares = scenario.uploaders.payee_shares
        fees = (scenario.protocol.protocol_fee_bps, scenario.protocol.relayer_fee_bps)
        expected_treasury = 0
        for caller, model, relayer, paid in zip(settled.callers, settled.models, settled.relayers, settled.paid):
            treasury, relayer_part, payees = split(int(paid), *fees, shares)
            expected_treasury += treasury
            before["relayer_earnings"][relayer] += relayer_part
            before["payee_earnings"][model] += np.array(payees, dtype=object)
            reserved_before[caller] -= paid
        assert ledger.treasury_earnings - treasury_before == expected_treasury
        assert list(ledger.relayer_earnings) == list(before["relayer_earnings"])
        assert ledger.payee_earnings.tolist() == before["payee_earnings"].tolist()
        assert list(ledger.caller_reserved[: ledger.callers]) == list(reserved_before[: ledger.callers])
        seen.append(len(settled))
        return settled

    ledger.settle = checked_settle
    market.run()
    assert sum(seen) > 50


def test_a_rounding_remainder_goes_to_the_first_payee_and_nothing_is_lost():
    ledger = Ledger(Protocol(protocol_fee_bps=333, relayer_fee_bps=777), models=1, relayers=1,
                    payee_shares=[3_334, 3_333, 3_333])
    ledger.register_model(0, 7, 0)
    ledger.bond_relayer(0, 100, 0)
    ledger.add_callers(np.array([0]))
    ledger.top_up(np.array([0]), np.array([1_000], dtype=object), 0)
    ledger.pay(np.array([0]), np.array([0]), np.array([0]), np.array([7], dtype=object), np.array([13]),
               np.array([7], dtype=object), 10_000)
    ledger.settle(None, 100)
    # 91 paid: treasury 91*333//10000 = 3, relayer 91*777//10000 = 7; of the payees' 81 each
    # co-author gets 81*3333//10000 = 26 and the first payee the rest, 29.
    assert ledger.treasury_earnings == 3 and ledger.relayer_earnings[0] == 7
    assert ledger.payee_earnings[0].tolist() == [29, 26, 26]
    assert ledger.check_conservation()["reserved"] == 1_000 - 91


def test_receipts_beyond_the_reservation_are_refused():
    ledger = Ledger(Protocol(), models=1, relayers=1, payee_shares=[10_000])
    ledger.register_model(0, 10, 0)
    ledger.add_callers(np.array([0]))
    ledger.top_up(np.array([0]), np.array([25], dtype=object), 0)
    with pytest.raises(ConservationError, match="beyond its reservation"):
        ledger.pay(np.array([0]), np.array([0]), np.array([0]), np.array([10], dtype=object), np.array([3]),
                   np.array([10], dtype=object), 1)
