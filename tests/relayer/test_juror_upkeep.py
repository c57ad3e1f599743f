"""The juror's upkeep, by the relayer daemon's own rounds (`Relayer.step`, in this process) on the
session chain: a bond added while a jury draw was pending gets its weight in the jury pool by
the daemon's sync after the draw; a state file from a relayer that predates the juror has the
court's events of the last dispute window read once, so disputes opened before the upgrade are
not missed, and a new state file reads them from the start with nothing to backfill.
"""

from __future__ import annotations

import pytest

from modelhub.hub import Hub
from modelhub.relayer.daemon import Relayer
from modelhub.relayer.settings import RelayerConfig
from modelhub.relayer.state import RelayerState

from tests.conftest import PARAMS
from tests.support.disputes import BAD_OUTPUT, court, juror_accounts, jury_pool, kit  # noqa: F401 (fixtures)

PRICE = 10**15


@pytest.fixture
def daemon(deployment, jury_pool, tmp_path):
    """daemon(store="a") -> (a relayer daemon of the first juror of a bonded pool of five, its Hub);
    stepped by the test."""
    juror = jury_pool()[0]
    made: list[Relayer] = []

    def make(store: str = "a") -> tuple[Relayer, Hub]:
        hub = Hub(deployment, juror)
        made.append(Relayer(hub, RelayerConfig(store_dir=tmp_path / store)))
        return made[-1], hub

    yield make
    for relayer in made:
        relayer.stop()
        relayer.state.close()


def _lie(kit, caller, relayer, challenger) -> int:
    """A call settled with a made-up output, challenged: the dispute's id."""
    facts, input_bytes = kit.settle_on_chain(caller, relayer, kit.model(PRICE), PRICE, output=BAD_OUTPUT)
    return kit.challenge(facts, input_bytes, challenger)


def test_a_bond_added_while_a_draw_is_pending_is_synced_into_the_pool_after_the_draw(
    daemon, kit, chain, caller, active_relayer, stranger
):
    relayer, hub = daemon()
    relayer.step()
    dispute_id = _lie(kit, caller, active_relayer, stranger)
    hub.faucet(PARAMS.min_bond)
    hub.relayer_add_bond(PARAMS.min_bond)  # while the draw is pending: its weight stays
    assert hub.pool_weight().stale and hub.pool_weight().frozen

    kit.to_draw_block(dispute_id)
    chain.mine()
    for _ in range(3):  # the daemon draws, then reads the draw and syncs
        relayer.step()
    assert hub.get_dispute(dispute_id).jurors  # drawn by the daemon
    weight = hub.pool_weight()
    assert (weight.weight, weight.due, weight.draws_pending) == (2 * PARAMS.min_bond, 2 * PARAMS.min_bond, 0)
    assert "modelhub_jury_pool_weight_syncs_total 1.0" in relayer.metrics.exposition().decode()
    for _ in range(3):
        relayer.step()  # up to date: no other sync
    assert "modelhub_jury_pool_weight_syncs_total 1.0" in relayer.metrics.exposition().decode()


def test_a_state_file_from_before_the_juror_has_the_last_dispute_window_of_court_events_read_once(
    daemon, kit, chain, caller, active_relayer, stranger, deployment, tmp_path
):
    old = _lie(kit, caller, active_relayer, stranger)
    terms = kit.court.terms()
    chain.pending_timestamp += terms.disputeWindow + terms.commitPeriod + terms.revealPeriod + 60
    chain.mine()
    recent = _lie(kit, caller, active_relayer, stranger)
    # What a relayer from before the juror left: its cursor past both disputes, no court events.
    state = RelayerState(tmp_path / "upgraded" / "relayer.sqlite")
    state.bind(deployment.chain_id, deployment.inference_escrow)
    state.record_seen([], chain.blocks.head.number + 1)
    state.close()

    upgraded, _ = daemon("upgraded")
    assert upgraded.court_events.is_new()
    upgraded.step()
    assert upgraded.state.dispute(recent) is not None  # opened before the upgrade, within the window
    assert upgraded.state.dispute(old) is None  # opened before the window: drawn on time, it has ended
    assert not upgraded.court_events.is_new()
    assert "modelhub_disputes_seen_total 1.0" in upgraded.metrics.exposition().decode()

    upgraded.stop()
    again, _ = daemon("upgraded")  # a later start of the same state file: nothing to backfill
    assert not again.court_events.is_new()

    fresh, _ = daemon("fresh")  # a new state file reads the court from the deployment's start
    fresh.step()
    assert fresh.state.dispute(old) is not None and fresh.state.dispute(recent) is not None
    assert not fresh.court_events.is_new()
