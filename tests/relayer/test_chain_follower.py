"""The relayer's one chain follower (relayer/chain_follower.py), against a node of logs held in
memory: each block range is read once for every consumer, `confirmations` behind the head and
`max_scan_blocks` at a time; the cursor is saved after each range; consumers that keep only
memory are fed the blocks before the saved cursor again after a start; a consumer new to the
saved cursor is backfilled once; a look-ahead reads past the cursor without moving it."""

from __future__ import annotations

from eth_abi import encode

from modelhub import contracts
from modelhub.contracts import ESCROW, REGISTRY
from modelhub.relayer.chain_follower import ChainFollower, first_block_since
from modelhub.rpc import Log

ADDRESSES = {ESCROW: "0x" + "e5" * 20, REGISTRY: "0x" + "12" * 20}
CALLER, RELAYER = "0x" + "ca" * 20, "0x" + "de" * 20


def _reserved(block: int, amount: int) -> Log:
    word = lambda address: bytes.fromhex(address[2:]).rjust(32, b"\0")  # noqa: E731
    return Log(ADDRESSES[ESCROW], (bytes.fromhex(contracts.event_topic(ESCROW, "Reserved")[2:]), word(CALLER),
                                   word(RELAYER)), encode(["uint256", "uint256"], [amount, amount]), block)


def _price_changed(block: int, model_id: int) -> Log:
    return Log(ADDRESSES[REGISTRY], (bytes.fromhex(contracts.event_topic(REGISTRY, "PriceChanged")[2:]),
                                     model_id.to_bytes(32, "big")), encode(["uint256", "uint256"], [1, 2]), block)


class Node:
    """eth_getLogs and eth_blockNumber over logs held in memory (rpc.JsonRpc's part the follower
    uses); `ranges` lists the block ranges it was asked for, one eth_getLogs each."""

    def __init__(self, held: list[Log], head: int) -> None:
        self.held, self.head = held, head
        self.ranges: list[tuple[int, int]] = []

    def block_number(self) -> int:
        return self.head

    def logs(self, addresses, topics, start, end) -> list[Log]:
        self.ranges.append((start, end))
        return [log for log in self.held if start <= log.block_number <= end and log.address in addresses
                and log.topic0 in topics[0]]


class Cursor:
    """A saved cursor, as the on-chain path's state file keeps it."""

    def __init__(self, next_block: int | None = None) -> None:
        self.next_block = next_block
        self.saves: list[int] = []

    def save(self, next_block: int) -> None:
        self.next_block = next_block
        self.saves.append(next_block)


class Taker:
    def __init__(self, *events: tuple[str, str], fail_at: int | None = None) -> None:
        self.events = events
        self.taken: list[tuple[str, int]] = []
        self.ranges: list[tuple[int, int]] = []
        self.fail_at = fail_at

    def take(self, events, start, end) -> None:
        if self.fail_at is not None and start <= self.fail_at <= end:
            self.fail_at = None
            raise ConnectionError("the node went away")
        self.taken += [(event.name, event.block_number) for event in events]
        self.ranges.append((start, end))


def _follower(node: Node, cursor: Cursor, **options) -> ChainFollower:
    return ChainFollower(node, ADDRESSES, 10, cursor, **options)


def test_each_range_is_read_once_for_all_consumers_behind_the_head_and_saved():
    node = Node([_reserved(12, 5), _price_changed(15, 1), _reserved(27, 6), _price_changed(30, 1)], head=31)
    cursor = Cursor()
    follower = _follower(node, cursor, confirmations=2, max_scan_blocks=8)
    view = follower.add(Taker((ESCROW, "Reserved"), (REGISTRY, "PriceChanged")), in_memory=True)
    requests = follower.add(Taker((ESCROW, "Reserved")))

    assert follower.step(node.head) == 20  # blocks 10..29: 31 less 2 confirmations
    assert node.ranges == [(10, 17), (18, 25), (26, 29)]  # one eth_getLogs per range, for both
    assert cursor.saves == [18, 26, 30]
    assert view.taken == [("Reserved", 12), ("PriceChanged", 15), ("Reserved", 27)]
    assert requests.taken == [("Reserved", 12), ("Reserved", 27)]
    assert follower.step(node.head) == 0 and node.ranges[-1] == (26, 29)  # nothing new: no read
    event = _decoded(follower, (ESCROW, "Reserved"), 27)
    assert event.args == {"caller": CALLER, "relayer": RELAYER, "amount": 6, "reserved": 6}


def test_after_a_start_memory_consumers_are_fed_the_blocks_before_the_saved_cursor_first():
    node = Node([_reserved(12, 5), _price_changed(15, 1), _reserved(27, 6)], head=30)
    cursor = Cursor(next_block=20)  # a previous run read blocks 10..19
    follower = _follower(node, cursor, max_scan_blocks=100)
    view = follower.add(Taker((ESCROW, "Reserved"), (REGISTRY, "PriceChanged")), in_memory=True)
    requests = follower.add(Taker((ESCROW, "Reserved")))

    follower.step(node.head)
    assert node.ranges == [(10, 19), (20, 30)]
    assert view.taken == [("Reserved", 12), ("PriceChanged", 15), ("Reserved", 27)]
    assert requests.taken == [("Reserved", 27)]  # what it saved before is not handed again
    assert cursor.saves == [31]


def test_a_replay_stops_at_the_confirmed_head_and_goes_on_later():
    node = Node([_reserved(12, 5), _reserved(18, 6), _reserved(25, 7)], head=20)
    cursor = Cursor(next_block=20)  # saved by a run that followed closer to the head
    follower = _follower(node, cursor, confirmations=4)
    view = follower.add(Taker((ESCROW, "Reserved")), in_memory=True)
    follower.step(node.head)
    assert view.taken == [("Reserved", 12)] and cursor.saves == []  # blocks 10..16 only
    node.head = 30
    follower.step(node.head)
    assert view.taken == [("Reserved", 12), ("Reserved", 18), ("Reserved", 25)]
    assert node.ranges == [(10, 16), (17, 19), (20, 26)] and cursor.saves == [27]


def test_a_round_that_fails_leaves_the_cursor_and_reads_the_range_again():
    node = Node([_reserved(12, 5)], head=15)
    cursor = Cursor()
    follower = _follower(node, cursor)
    flaky = follower.add(Taker((ESCROW, "Reserved"), fail_at=12))
    try:
        follower.step(node.head)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the consumer's failure was swallowed")
    assert cursor.next_block is None
    follower.step(node.head)
    assert flaky.taken == [("Reserved", 12)] and cursor.saves == [16]


def test_a_look_ahead_reads_to_the_node_head_without_moving_the_cursor():
    node = Node([_price_changed(14, 3)], head=15)
    cursor = Cursor()
    follower = _follower(node, cursor, confirmations=5)
    files = follower.add(Taker((REGISTRY, "PriceChanged")), in_memory=True)
    follower.step(node.head)  # blocks 10..10
    assert files.taken == []
    follower.look_ahead(files, 11)
    assert files.taken == [("PriceChanged", 14)] and files.ranges[-1] == (11, 15)
    assert cursor.saves == [11]


def test_a_consumer_new_to_the_saved_cursor_is_backfilled_once_then_followed_with_the_others():
    node = Node([_reserved(12, 5), _reserved(16, 6), _reserved(22, 7), _reserved(26, 8)], head=30)
    cursor = Cursor(next_block=25)  # a previous run, without the new consumer, read blocks 10..24
    follower = _follower(node, cursor, max_scan_blocks=4)
    requests = follower.add(Taker((ESCROW, "Reserved")))
    court = follower.add(Taker((ESCROW, "Reserved")))
    completed = []
    follower.backfill(court, 14, lambda: completed.append(cursor.next_block))

    follower.step(node.head)
    assert court.taken == [("Reserved", 16), ("Reserved", 22), ("Reserved", 26)]  # not 12: before the window
    assert court.ranges == [(14, 17), (18, 21), (22, 24), (25, 28), (29, 30)]
    assert requests.taken == [("Reserved", 26)]  # the others go on from the cursor: nothing read twice
    assert completed == [25]  # done once it had every block before the cursor, before the cursor moved
    node.head = 31
    follower.step(node.head)
    assert court.ranges[-1] == (31, 31) and len(completed) == 1


def test_a_backfill_of_a_new_state_file_has_nothing_to_read():
    node = Node([_reserved(12, 5)], head=15)
    follower = _follower(node, Cursor())
    court = follower.add(Taker((ESCROW, "Reserved")))
    completed = []
    follower.backfill(court, 10, lambda: completed.append(True))
    follower.step(node.head)
    assert completed == [True] and court.taken == [("Reserved", 12)] and node.ranges == [(10, 15)]


def test_the_first_block_since_a_time_is_found_by_bisection():
    times = [100, 100, 112, 124, 124, 500, 512]  # blocks 0..6; a dev chain's clock may jump
    read = []

    def block_time(number: int) -> int:
        read.append(number)
        return times[number]

    assert [first_block_since(t, 0, 6, block_time) for t in (0, 100, 101, 124, 125, 512, 900)] == [0, 0, 2, 3, 5, 6, 6]
    assert first_block_since(200, 4, 6, block_time) == 5
    read.clear()
    first_block_since(113, 0, 6, block_time)
    assert len(read) <= 3


def _decoded(follower: ChainFollower, event: tuple[str, str], block: int):
    taker = Taker(event)
    [found] = follower.read([taker], block, block)[id(taker)]
    return found
