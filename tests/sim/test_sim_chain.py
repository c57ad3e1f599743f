"""The fast mode's money is the contracts' money: the same scenario run in memory and on the
deployed contracts (a real anvil, every receipt signed and settled in batches) ends with the same
balances to the base unit."""

from __future__ import annotations

import pytest

from modelhub.sim import ledger
from modelhub.sim.chain import ChainDivergedError
from modelhub.sim.run import simulate

from tests.support.sim import small


def test_the_small_scenario_ends_with_the_same_balances_in_the_fast_and_the_chain_mode():
    scenario = small()
    fast = simulate(scenario, "fast")
    chain = simulate(scenario, "chain")

    assert chain.balances == fast.balances
    assert chain.summary == fast.summary
    # The run exercised what it is meant to: releases of leaving callers, withdrawals, several
    # payees per model, price changes, batches of receipts.
    balances = fast.balances
    assert any(balances["callers"]["wallet"]), "no caller left and got its reservation back"
    assert any(any(row[1:]) for row in balances["payees"]["wallet"]), "no co-author withdrew"
    assert balances["treasury"]["wallet"] > 0
    assert chain.receipts_signed == fast.calls > 100
    assert sum(balances["models"]["calls"]) == fast.calls
    assert sum(d.calls_noticed for d in fast.days) > 0, "no call was paid under a price notice"


def test_the_chain_mode_catches_a_fast_ledger_that_rounds_otherwise(monkeypatch):
    """A planted bug: the treasury's part rounded up (and taken from the first payee). The
    totals still add up, so only the contracts can tell; the chain mode stops at the first
    withdrawal that differs."""

    def treasury_rounds_up(price, protocol_bps, relayer_bps, shares):
        treasury, relayer, payees = split(price, protocol_bps, relayer_bps, shares)
        bumped = treasury + (price * protocol_bps % 10_000 > 0)
        return bumped, relayer, [payees[0] - (bumped - treasury), *payees[1:]]

    split = ledger.split
    monkeypatch.setattr(ledger, "split", treasury_rounds_up)
    with pytest.raises(ChainDivergedError, match="withdrew"):
        simulate(small(), "chain")
