"""The juror's consumer of the court's events (relayer/court_events.py) on a real state file, fed
through the chain follower from a node of logs held in memory: a dispute is stored once with its
case, the jury's deadlines and this relayer's seat; the same blocks read again (a round that died
before its cursor was saved) change nothing, not even a vote stored meanwhile."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import to_checksum_address

from modelhub import contracts
from modelhub.contracts import COURT, DisputePhase
from modelhub.relayer.chain_follower import ChainFollower
from modelhub.relayer.court_events import CourtEvents
from modelhub.relayer.metrics import RelayerMetrics
from modelhub.relayer.state import JurorPart, RelayerState
from modelhub.rpc import Log

from tests.relayer.test_chain_follower import Cursor, Node

COURT_ADDRESS = "0x" + "c0" * 20
ME, OTHER, ACCUSED = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "dd" * 20
INPUT, OUTPUT = b'{"X":[[5.1,3.5,1.4,0.2]]}', b'{"label":[2]}'


def _log(name: str, block: int, **args) -> Log:
    """The court's event `name` with `args`, as a node returns it (indexed arguments as topics)."""
    decoder = contracts.event(COURT, name)
    topics = [bytes.fromhex(decoder.topic[2:])]
    topics += [encode([kind], [args[field]]) for field, kind in decoder.indexed]
    data = encode([kind for _, kind in decoder.plain], [args[field] for field, _ in decoder.plain])
    return Log(COURT_ADDRESS, tuple(topics), data, block)


def _opened(block: int, dispute_id: int) -> Log:
    return _log("DisputeOpened", block, disputeId=dispute_id, requestId=7, accused=ACCUSED, attestation=b"\1" * 32,
                challenger=OTHER, caller=OTHER, modelId=1, version=2, inputHash=b"\2" * 32, outputHash=b"\3" * 32,
                refund=10, termsId=1, drawBlock=block + 2, input=INPUT, output=OUTPUT)


def _drawn(block: int, dispute_id: int, jurors: list[str]) -> Log:
    return _log("JuryDrawn", block, disputeId=dispute_id, jurors=jurors, commitDeadline=1_000, revealDeadline=2_000)


def test_disputes_are_stored_once_and_a_second_reading_changes_nothing(tmp_path):
    state = RelayerState(tmp_path / "relayer.sqlite")
    metrics = RelayerMetrics()
    court = CourtEvents(state, ME, metrics)
    node = Node([_opened(3, 1), _opened(4, 2), _drawn(6, 1, [OTHER, ME]), _drawn(6, 2, [OTHER]),
                 _log("DisputeResolved", 8, disputeId=2, outcome=2, votesMatch=1, votesWrong=0, slashed=0)], head=8)
    cursor = Cursor()
    follower = ChainFollower(node, {COURT: COURT_ADDRESS}, 1, cursor)
    follower.add(court)
    follower.step(8)

    mine = state.dispute(1)
    assert (mine.model_id, mine.version, mine.input, mine.output, mine.accused) == (
        1, 2, INPUT, OUTPUT, to_checksum_address(ACCUSED))
    assert (mine.phase, mine.part, mine.commit_deadline, mine.reveal_deadline, mine.draw_block) == (
        DisputePhase.VOTING, JurorPart.SEATED, 1_000, 2_000, 5)
    other = state.dispute(2)
    assert (other.phase, other.part) == (DisputePhase.RESOLVED, None)
    assert court.resolved == 1

    state.store_vote(1, 2, b"\5" * 32, "the attested output is not what the model gives")
    cursor.next_block = None  # the round died before its cursor was saved: the blocks come again
    follower.step(8)
    again = state.dispute(1)
    assert (again.part, again.vote, again.salt) == (JurorPart.VOTED, 2, b"\5" * 32)
    assert state.dispute(2).phase is DisputePhase.RESOLVED
    assert "modelhub_disputes_seen_total 2.0" in metrics.exposition().decode()
    assert "modelhub_jury_seats_total 1.0" in metrics.exposition().decode()
