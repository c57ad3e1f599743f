"""The indexer on a real chain: after random activity of every kind (open and designated calls,
rejections, refunds, receipts, reservations and releases, payee, price and fee changes, model
transfers, withdrawals), its totals equal the chain's to the wei, on SQLite and on PostgreSQL,
also when it crashed mid-way and restarted; and it refuses another deployment's database."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from eth_utils import keccak
from sqlalchemy import select

from modelhub.deployments import Deployment
from modelhub.indexer import schema as t
from modelhub.indexer import signals
from modelhub.indexer.follow import Indexer, _Applier
from modelhub.indexer.schema import IndexDatabaseError, open_database
from modelhub.typed_data import Attestation, Receipt
from modelhub.typed_data import sign as sign_attestation
from modelhub.typed_data import sign as sign_receipt

TOKEN = 10**18
INPUT = b'{"X":[[5.1,3.5,1.4,0.2]]}'


class Activity:
    """Drives the deployed contracts through a seeded random mix of every action."""

    def __init__(self, chain, accounts, token, registry, relayers, escrow, seed: int) -> None:
        self.chain, self.token, self.registry, self.relayers, self.escrow = chain, token, registry, relayers, escrow
        self.rng = random.Random(seed)
        self.uploader, self.caller, self.relayer_a, self.coauthor = accounts[1], accounts[2], accounts[3], accounts[5]
        self.stranger, self.relayer_b, self.third, self.other_caller = accounts[6], accounts[7], accounts[8], accounts[9]
        self.callers = [self.caller, self.other_caller, self.uploader]  # the uploader also calls: self-dealing
        self.relayer_accounts = [self.relayer_a, self.relayer_b]
        self.models: list[int] = []
        self.set_fees = None  # set by the fixture: the escrow's owner changes the fees
        self.channels: dict[tuple, tuple[int, int]] = defaultdict(lambda: (0, 0))
        self.pending: list[tuple] = []  # (request id, model, version, price, designated relayer or None)

    def setup(self) -> None:
        for relayer in self.relayer_accounts:
            self.token.mint(relayer, 100 * TOKEN, sender=relayer)
            self.token.approve(self.relayers, 100 * TOKEN, sender=relayer)
            self.relayers.register("http://127.0.0.1:8700", 100 * TOKEN, sender=relayer)
        for account in self.callers + [self.stranger]:
            self.token.mint(account, 1_000 * TOKEN, sender=account)
            self.token.approve(self.escrow, 2**256 - 1, sender=account)
        for owner, price in ((self.uploader, 10**15), (self.uploader, 3 * 10**15 + 7), (self.caller, 1)):
            tx = self.registry.registerModel("iris", b"\x11" * 32, "ipfs://card", price, sender=owner)
            self.models.append(tx.return_value)
        self.registry.setPayees(self.models[0], [self.uploader, self.coauthor, self.third], [5_000, 3_001, 1_999],
                                sender=self.uploader)
        for account in self.callers:
            self.escrow.deposit(10 * TOKEN, sender=account)
            for relayer in self.relayer_accounts:
                self.escrow.reserve(relayer, 2 * TOKEN, sender=account)
        self.escrow.reserveFor(self.caller, self.relayer_b, TOKEN, sender=self.stranger)

    def step(self) -> None:
        getattr(self, self.rng.choice([
            "request", "request", "designated", "designated", "settle", "settle", "settle", "receipt", "receipt",
            "refund", "price", "payees", "fees", "withdraw_earnings", "withdraw", "release", "transfer", "later",
        ]))()

    # --------------------------------------------------------------- actions

    def request(self, relayer=None) -> None:
        model = self.rng.choice(self.models)
        caller = self.rng.choice(self.callers)
        owner, price, version, active, *_ = self.registry.getModel(model)
        if self.escrow.balanceOf(caller) < price:
            return
        if relayer is None:
            tx = self.escrow.requestInference(model, version, INPUT, price, sender=caller)
        else:
            tx = self.escrow.requestInferenceVia(model, version, INPUT, price, relayer, sender=caller)
        self.pending.append((tx.return_value, model, version, price, relayer))

    def designated(self) -> None:
        self.request(self.rng.choice(self.relayer_accounts))

    def settle(self) -> None:
        if not self.pending:
            return
        request_id, model, version, _, designated = self.pending.pop(self.rng.randrange(len(self.pending)))
        if self.escrow.getRequest(request_id)[6] != 1 or self.chain.blocks.head.timestamp > self.escrow.getRequest(request_id)[5]:
            return
        if designated is not None and self.rng.random() < 0.5:
            self.escrow.reject(request_id, self.rng.randint(1, 4), sender=designated)
            return
        relayer = designated or self.rng.choice(self.relayer_accounts)
        att = Attestation(request_id, model, version, keccak(INPUT), keccak(b'{"y":[1]}'))
        signature = sign_attestation(relayer.private_key, att, self.chain.chain_id, self.escrow.address)
        self.escrow.fulfillBatch([att.as_tuple()], [signature], sender=relayer)

    def receipt(self) -> None:
        caller, relayer = self.rng.choice(self.callers), self.rng.choice(self.relayer_accounts)
        model = self.rng.choice(self.models)
        calls, amount = self.channels[(caller.address, relayer.address, model)]
        price = self.escrow.channelPrice(caller, relayer, model)
        more = self.rng.randint(1, 5)
        receipt = Receipt(caller.address, relayer.address, model, calls + more, amount + more * price,
                          self.chain.blocks.head.timestamp + 86_400)
        signature = sign_receipt(caller.private_key, receipt, self.chain.chain_id, self.escrow.address)
        tx = self.escrow.settleReceipts([receipt.as_tuple()], [signature], sender=relayer)
        if list(tx.events.filter(self.escrow.ReceiptSettled)):
            self.channels[(caller.address, relayer.address, model)] = (receipt.calls, receipt.amount)

    def refund(self) -> None:
        if not self.pending:
            return
        request_id = self.pending.pop(0)[0]
        if self.escrow.getRequest(request_id)[6] != 1:
            return
        self.chain.mine(timestamp=max(self.escrow.getRequest(request_id)[5], self.chain.blocks.head.timestamp) + 1)
        self.escrow.refund(request_id, sender=self.stranger)

    def owner_of(self, model: int):
        owner = self.registry.getModel(model)[0].lower()
        return next(a for a in (self.uploader, self.coauthor, self.caller) if a.address.lower() == owner)

    def price(self) -> None:
        model = self.rng.choice(self.models[:2])
        self.registry.setPrice(model, self.rng.choice([10**14, 10**15, 2 * 10**15]), sender=self.owner_of(model))

    def payees(self) -> None:
        accounts = self.rng.sample([self.uploader, self.coauthor, self.third, self.stranger], self.rng.randint(1, 3))
        shares = [10_000 // len(accounts)] * len(accounts)
        shares[0] += 10_000 - sum(shares)
        model = self.models[self.rng.randrange(2)]
        self.registry.setPayees(model, accounts, shares, sender=self.owner_of(model))

    def fees(self) -> None:
        self.set_fees(self.rng.randint(0, 1_000), self.rng.randint(0, 3_000))  # by the escrow's owner

    def withdraw_earnings(self) -> None:
        account = self.rng.choice([self.uploader, self.coauthor, self.relayer_a, self.relayer_b, self.third])
        if self.escrow.earningsOf(account):
            self.escrow.withdrawEarnings(sender=account)

    def withdraw(self) -> None:
        account = self.rng.choice(self.callers)
        free = self.escrow.balanceOf(account)
        if free:
            self.escrow.withdraw(self.rng.randint(1, free), sender=account)

    def release(self) -> None:
        account, relayer = self.rng.choice(self.callers), self.rng.choice(self.relayer_accounts)
        reserved, _, ready_at = self.escrow.reservation(account, relayer)
        if ready_at and self.chain.blocks.head.timestamp >= ready_at:
            self.escrow.release(relayer, sender=account)
        elif reserved:
            self.escrow.announceRelease(relayer, self.rng.randint(1, reserved), sender=account)

    def transfer(self) -> None:
        model = self.models[1]
        owner = self.owner_of(model)
        self.registry.transferModel(model, self.coauthor if owner == self.uploader else self.uploader, sender=owner)

    def later(self) -> None:
        self.chain.mine(timestamp=self.chain.blocks.head.timestamp + self.rng.choice([60, 3_600, 90_000]))


@pytest.fixture
def activity(chain, accounts, token, registry, relayers, escrow, deployer):
    def run(steps: int, seed: int = 1) -> Activity:
        driver = Activity(chain, accounts, token, registry, relayers, escrow, seed)

        def set_fees(protocol_bps: int, relayer_bps: int) -> None:
            escrow.setProtocolFeeBps(protocol_bps, sender=deployer)
            escrow.setRelayerFeeBps(relayer_bps, sender=deployer)

        driver.set_fees = set_fees
        driver.setup()
        for _ in range(steps):
            driver.step()
        return driver

    return run


@pytest.fixture
def rpc_url(chain):
    return chain.provider.http_uri


def index_all(engine, deployment, rpc_url, **options) -> Indexer:
    indexer = Indexer(engine, deployment, rpc_url, **options)
    while not indexer.step().idle:
        pass
    return indexer


def assert_matches_chain(engine, driver, escrow, relayers, treasury) -> None:
    """Every total the index keeps equals the chain's, to the wei."""
    sum_ = lambda c: t.bigsum(c, engine.dialect.name)  # noqa: E731
    with engine.connect() as db:
        for model in driver.models:
            s = t.settlements.c
            calls, revenue = db.execute(select(sum_(s.calls), sum_(s.amount)).where(s.model_id == model)).one()
            assert (calls or 0, revenue or 0) == tuple(escrow.modelStats(model)), f"model {model}"
            page = signals.model_page(db, model, driver.chain.blocks.head.timestamp)
            assert int(page["signals"]["all"]["calls"]) == escrow.modelStats(model)[0]
        everyone = driver.callers + driver.relayer_accounts + [driver.coauthor, driver.third, driver.stranger, treasury]
        for account in everyone:
            row = db.execute(select(t.accounts).where(t.accounts.c.account == account.address.lower())).first()
            credit, earnings = (row.credit, row.earnings) if row else (0, 0)
            assert credit == escrow.balanceOf(account), f"credit of {account.address}"
            assert earnings == escrow.earningsOf(account), f"earnings of {account.address}"
            for relayer in driver.relayer_accounts:
                reserved = db.execute(select(t.reservations.c.amount).where(
                    t.reservations.c.caller == account.address.lower(),
                    t.reservations.c.relayer == relayer.address.lower())).scalar() or 0
                assert reserved == escrow.reservation(account, relayer)[0]
        for relayer in driver.relayer_accounts:
            bond = db.execute(select(t.relayers.c.bond).where(t.relayers.c.relayer == relayer.address.lower())).scalar()
            assert bond == relayers.relayerInfo(relayer)[1]


def deployment_of(deployment) -> Deployment:
    return Deployment.model_validate(deployment.model_dump(by_alias=True))


def test_after_random_activity_the_sqlite_index_equals_the_chain(
    activity, tmp_path, deployment, rpc_url, escrow, relayers, treasury
):
    driver = activity(80, seed=7)
    engine = open_database(f"sqlite:///{tmp_path / 'index.sqlite'}")
    index_all(engine, deployment, rpc_url)
    assert_matches_chain(engine, driver, escrow, relayers, treasury)
    with engine.connect() as db:  # the activity reached every kind of event that moves money
        kinds = {k for (k,) in db.execute(select(t.settlements.c.kind).distinct())}
        statuses = {st for (st,) in db.execute(select(t.requests.c.status).distinct())}
        assert kinds == {"request", "receipt"} and {2, 3, 4} <= statuses
        assert len(db.execute(select(t.payee_sets)).all()) > 1 and len(db.execute(select(t.fee_terms)).all()) > 1
        assert db.execute(select(t.accounts.c.withdrawn_earnings).where(t.accounts.c.withdrawn_earnings > 0)).first()
        assert db.execute(select(t.settlements).where(t.settlements.c.self_dealing.is_(True))).first()


def test_an_indexer_that_dies_mid_batch_resumes_exactly_where_its_last_commit_was(
    activity, tmp_path, deployment, rpc_url, escrow, relayers, treasury, monkeypatch
):
    driver = activity(40, seed=11)
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    engine = open_database(url)
    indexer = Indexer(engine, deployment, rpc_url, max_span=4)
    indexer.step()
    indexer.step()
    committed = indexer.cursor
    calls = {"n": 0}
    original = _Applier.__call__

    def dying(self, event, timestamp):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed")  # the process dies inside a batch
        return original(self, event, timestamp)

    monkeypatch.setattr(_Applier, "__call__", dying)
    with pytest.raises(SystemExit):
        while not indexer.step().idle:
            pass
    monkeypatch.setattr(_Applier, "__call__", original)
    engine.dispose()

    reopened = open_database(url)  # a new process: nothing but the database survives
    with reopened.connect() as db:
        assert db.execute(select(t.cursor.c.block)).scalar() >= committed
    restarted = index_all(reopened, deployment, rpc_url, max_span=4)
    assert restarted.cursor == driver.chain.blocks.head.number
    assert_matches_chain(reopened, driver, escrow, relayers, treasury)


def test_after_random_activity_the_postgres_index_equals_the_chain(
    activity, postgres_url, deployment, rpc_url, escrow, relayers, treasury
):
    driver = activity(40, seed=3)
    engine = open_database(postgres_url)
    with engine.begin() as db:  # the server outlives the test's chain snapshot: start clean
        for table in reversed(t.metadata.sorted_tables):
            db.execute(table.delete())
    index_all(engine, deployment, rpc_url)
    assert_matches_chain(engine, driver, escrow, relayers, treasury)
    engine.dispose()


def test_a_database_of_another_deployment_is_refused_and_left_as_it_was(tmp_path, deployment, rpc_url):
    engine = open_database(f"sqlite:///{tmp_path / 'index.sqlite'}")
    index_all(engine, deployment, rpc_url)
    other = deployment.model_copy(update={"chain_id": deployment.chain_id + 1})
    with pytest.raises(IndexDatabaseError, match="another database"):
        Indexer(engine, other, rpc_url)
    with engine.connect() as db:
        assert db.execute(select(t.cursor.c.chain_id)).scalar() == deployment.chain_id


def test_a_database_that_is_down_gets_a_clear_error():
    with pytest.raises(IndexDatabaseError, match="cannot reach the index database"):
        open_database("postgresql://hub@127.0.0.1:1/nothing")


def test_confirmations_keep_the_newest_blocks_out(tmp_path, deployment, rpc_url, chain):
    engine = open_database(f"sqlite:///{tmp_path / 'index.sqlite'}")
    indexer = index_all(engine, deployment, rpc_url, confirmations=3)
    assert indexer.cursor == chain.blocks.head.number - 3
