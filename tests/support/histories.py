"""Hand-made histories for the indexer's tests: events in order, each at its own time, replayed
through the indexer's own rules into a database, without a chain."""

from __future__ import annotations

from modelhub.indexer.events import Event
from modelhub.indexer.follow import _Applier
from modelhub.indexer.schema import open_database

DAY = 86_400
T0 = 1_800_000_000 - 1_800_000_000 % DAY  # midnight UTC
OWNER, COAUTHOR, RELAYER, OTHER_RELAYER, TREASURY = (f"0x{n:040x}" for n in (1, 2, 3, 4, 5))
ALICE, BOB, CAROL = (f"0x{n:040x}" for n in (10, 11, 12))


class History:
    """Events in order, each at its own time; `apply` replays them through the indexer."""

    def __init__(self) -> None:
        self.events: list[tuple[Event, int]] = []
        self.block = 0
        self.requests = 0

    def add(self, event_name: str, when: int, **args) -> "History":
        self.block += 1
        self.events.append((Event(event_name, args, self.block, 0), when))
        return self

    def paid_call(self, model: int, caller: str, when: int, settled_after: int = 60, price: int = 100,
                  relayer: str = RELAYER) -> "History":
        self.requests += 1
        request_id = self.requests
        self.add("Deposited", when, account=caller, amount=price)
        self.add("InferenceRequested", when, requestId=request_id, modelId=model, version=1, caller=caller,
                 price=price, inputHash="0x", input=b"")
        return self.add("InferenceFulfilled", when + settled_after, requestId=request_id, relayer=relayer,
                        outputHash="0x")

    def failed_call(self, model: int, caller: str, when: int, status: str) -> "History":
        self.requests += 1
        self.add("Deposited", when, account=caller, amount=100)
        self.add("InferenceRequested", when, requestId=self.requests, modelId=model, version=1, caller=caller,
                 price=100, inputHash="0x", input=b"")
        if status == "rejected":
            return self.add("InferenceRejected", when + 5, requestId=self.requests, relayer=RELAYER, reason=1)
        return self.add("InferenceRefunded", when + 700, requestId=self.requests)

    def apply(self, engine) -> None:
        with engine.begin() as connection:
            applier = _Applier(connection, engine.dialect.name)
            applier.preload([event for event, _ in self.events])
            for event, when in self.events:
                applier(event, when)
            applier.flush()


def base(model: int = 1) -> History:
    history = History()
    history.add("TreasuryChanged", T0, oldTreasury="0x" + "0" * 40, newTreasury=TREASURY)
    history.add("FeesEffectiveAt", T0, protocolFeeBps=500, relayerFeeBps=1_000, effectiveAt=T0)
    history.add("ModelRegistered", T0, modelId=model, owner=OWNER, name="iris", artifactDigest="0x11",
                pricePerCall=100, metadataURI="ipfs://card")
    return history


def fresh_database(path):
    """An empty index database bound to chain 1, its cursor at T0 + 40 days."""
    engine = open_database(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"INSERT INTO cursor (id, chain_id, escrow, block, time) VALUES (1, 1, '0x0', 0, {T0 + 40 * DAY})")
    return engine
