"""Following the chain into the index: each step reads the events of the next blocks (up to
`confirmations` behind the head) and writes their rows and the new cursor in one transaction,
so the database always holds exactly the events of blocks start..cursor, whatever kills it.

The money is replayed by the contracts' own rules: the fees in force at each settlement
(`FeesEffectiveAt`), the payees in force (`PayeesEffectiveAt`, default: the owner) and the one
rounding rule (`modelhub.feesplit`), so every account's earnings are known per settlement.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.engine import Connection, Engine

from .. import feesplit
from ..deployments import Deployment
from . import rollups, signals
from . import schema as t
from .events import Event, EventSource

log = logging.getLogger("modelhub.indexer")

DAY = 86_400
FULFILLED, REJECTED, REFUNDED = 2, 3, 4


@dataclass
class StepResult:
    """What one step indexed."""

    from_block: int
    to_block: int
    events: int

    @property
    def idle(self) -> bool:
        return self.to_block < self.from_block


class Indexer:
    """Follows one deployment's events into one database."""

    def __init__(self, engine: Engine, deployment: Deployment, rpc_url: str, confirmations: int = 0,
                 max_span: int = 2_000) -> None:
        self.engine = engine
        self.deployment = deployment
        self.confirmations = confirmations
        self.max_span = max_span
        self.source = EventSource(rpc_url, {
            "ModelRegistry": deployment.model_registry,
            "RelayerRegistry": deployment.relayer_registry,
            "InferenceEscrow": deployment.inference_escrow,
        })
        self.cursor = t.bind(engine, deployment.chain_id, deployment.inference_escrow, deployment.start_block)

    def step(self) -> StepResult:
        """Indexes the next blocks (at most `max_span`); returns what it did."""
        head = self.source.head() - self.confirmations
        start = self.cursor + 1
        end = min(head, start + self.max_span - 1)
        if end < start:
            return StepResult(start, end, 0)
        events = self.source.events(start, end)
        stamps = self.source.timestamps(sorted({event.block for event in events} | {end}))
        with self.engine.begin() as connection:
            apply = _Applier(connection, self.engine.dialect.name)
            apply.preload(events)
            for event in events:
                apply(event, stamps[event.block])
            apply.flush()
            if end == head:  # caught up: the pages' windows, as of the new cursor (while catching up,
                signals.refresh_windows(connection, stamps[end])  # the pages count from the summaries)
            connection.execute(update(t.cursor).where(t.cursor.c.id == 1).values(block=end, time=stamps[end]))
        self.cursor = end
        return StepResult(start, end, len(events))

    def run(self, stop: Callable[[], bool], interval: float = 1.0,
            progress: Callable[[StepResult], None] | None = None) -> None:
        """Steps until `stop()` is true, resting `interval` seconds when caught up."""
        while not stop():
            result = self.step()
            if progress and not result.idle:
                progress(result)
            if result.idle or result.to_block >= self.source.head() - self.confirmations:
                time.sleep(interval)


class _Applier:
    """Turns events into rows, within one transaction. Rows that many events touch (balances,
    reservations, channels, requests) are read once, changed in memory and written back in bulk
    by `flush`; new settlement and earnings rows are inserted in bulk; the rare events (models,
    payees, fees, relayers) are written at once and the caches they affect dropped."""

    def __init__(self, connection: Connection, dialect: str) -> None:
        self.db = connection
        self.dialect = dialect
        self.pending_payees: dict[int, tuple[list[str], list[int]]] = {}
        self.accounts = _Rows(connection, t.accounts, ("account",), dict(credit=0, earnings=0, withdrawn_earnings=0))
        self.reservations = _Rows(connection, t.reservations, ("caller", "relayer"), dict(amount=0))
        self.channels = _Rows(connection, t.channels, ("caller", "relayer", "model_id"), dict(calls=0, amount=0))
        self.requests = _Rows(connection, t.requests, ("request_id",), None)
        self.earnings = _Rows(connection, t.earnings, ("account", "model_id", "role", "day"), dict(amount=0))
        self.settlements: list[dict] = []
        self._fees: list[Any] | None = None
        self._payees: dict[int, list[Any]] = {}
        self._owners: dict[int, str] = {}
        self._treasury: str | None = None

    def __call__(self, event: Event, timestamp: int) -> None:
        handler = getattr(self, "on_" + event.name, None)
        if handler is not None:
            handler(event.args, timestamp, event.block)

    def preload(self, events: list[Event]) -> None:
        """Reads, in a few queries, the existing rows the batch's events will touch."""
        accounts, reservations, channels, requests = set(), set(), set(), set()
        for event in events:
            a = event.args
            for name in ("account", "caller", "relayer"):
                if name in a and isinstance(a[name], str):
                    accounts.add((a[name],))
            if event.name in ("Reserved", "Released", "ReceiptSettled"):
                reservations.add((a["caller"], a["relayer"]))
            if event.name == "ReceiptSettled":
                channels.add((a["caller"], a["relayer"], a["modelId"]))
            if event.name in ("InferenceFulfilled", "InferenceRejected", "InferenceRefunded", "RelayerDesignated"):
                requests.add((str(a["requestId"]),))
        self.accounts.preload(accounts)
        self.reservations.preload(reservations)
        self.channels.preload(channels)
        self.requests.preload(requests)

    def flush(self) -> None:
        for rows in (self.accounts, self.reservations, self.channels, self.requests, self.earnings):
            rows.flush()
        if self.settlements:
            self.db.execute(t.settlements.insert(), self.settlements)
        # The requests this batch touched and ended are those that ended in it (a request ends once).
        rollups.record(self.db, self.settlements, [r for r in self.requests.rows.values() if r["status"] != 1])

    # ------------------------------------------------------------ registry

    def on_ModelRegistered(self, a: dict, now: int, block: int) -> None:
        model_id = a["modelId"]
        self.db.execute(t.models.insert().values(
            model_id=model_id, owner=a["owner"], name=a["name"], metadata_uri=a["metadataURI"],
            price=a["pricePerCall"], latest_version=1, active=True, registered_at=now, block=block))
        self.db.execute(t.versions.insert().values(
            model_id=model_id, version=1, digest=a["artifactDigest"], metadata_uri=a["metadataURI"], time=now,
            block=block))
        self.db.execute(t.prices.insert().values(model_id=model_id, old_price=0, new_price=a["pricePerCall"],
                                                 time=now, block=block))
        self._owners[model_id] = a["owner"]

    def on_VersionPublished(self, a: dict, now: int, block: int) -> None:
        self.db.execute(t.versions.insert().values(
            model_id=a["modelId"], version=a["version"], digest=a["artifactDigest"], metadata_uri=a["metadataURI"],
            time=now, block=block))
        self.db.execute(update(t.models).where(t.models.c.model_id == a["modelId"]).values(
            latest_version=a["version"], metadata_uri=a["metadataURI"]))

    def on_PriceChanged(self, a: dict, now: int, block: int) -> None:
        self.db.execute(t.prices.insert().values(model_id=a["modelId"], old_price=a["oldPrice"],
                                                 new_price=a["newPrice"], time=now, block=block))
        self.db.execute(update(t.models).where(t.models.c.model_id == a["modelId"]).values(price=a["newPrice"]))

    def on_PayeesChanged(self, a: dict, now: int, block: int) -> None:
        self.pending_payees[a["modelId"]] = (a["accounts"], list(a["shares"]))

    def on_PayeesEffectiveAt(self, a: dict, now: int, block: int) -> None:
        model_id = a["modelId"]
        accounts, shares = self.pending_payees.pop(model_id)
        # A change still pending when another is made is replaced by it (ModelRegistry.setPayees).
        self.db.execute(delete(t.payee_sets).where(and_(t.payee_sets.c.model_id == model_id,
                                                        t.payee_sets.c.effective_at > now)))
        self.db.execute(t.payee_sets.insert().values(model_id=model_id, accounts=json.dumps(accounts),
                                                     shares=json.dumps(shares), effective_at=a["effectiveAt"],
                                                     time=now))
        self._payees.pop(model_id, None)

    def on_ModelActiveChanged(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.models).where(t.models.c.model_id == a["modelId"]).values(active=a["active"]))

    def on_ModelTransferred(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.models).where(t.models.c.model_id == a["modelId"]).values(owner=a["to"]))
        self._owners[a["modelId"]] = a["to"]

    # ------------------------------------------------------------ relayer registry

    def on_RelayerRegistered(self, a: dict, now: int, block: int) -> None:
        self.db.execute(delete(t.relayers).where(t.relayers.c.relayer == a["relayer"]))
        self.db.execute(t.relayers.insert().values(relayer=a["relayer"], endpoint=a["endpoint"], bond=a["bond"],
                                                   unbond_at=0, registered_at=now))

    def on_EndpointChanged(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.relayers).where(t.relayers.c.relayer == a["relayer"]).values(endpoint=a["endpoint"]))

    def on_BondAdded(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.relayers).where(t.relayers.c.relayer == a["relayer"]).values(bond=a["bond"]))

    def on_UnbondBegun(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.relayers).where(t.relayers.c.relayer == a["relayer"]).values(unbond_at=a["unbondAt"]))

    def on_BondWithdrawn(self, a: dict, now: int, block: int) -> None:
        self.db.execute(delete(t.relayers).where(t.relayers.c.relayer == a["relayer"]))

    # ------------------------------------------------------------ escrow: terms

    def on_FeesEffectiveAt(self, a: dict, now: int, block: int) -> None:
        self.db.execute(delete(t.fee_terms).where(t.fee_terms.c.effective_at > now))
        self.db.execute(t.fee_terms.insert().values(protocol_bps=a["protocolFeeBps"], relayer_bps=a["relayerFeeBps"],
                                                    effective_at=a["effectiveAt"], time=now))
        self._fees = None

    def on_TreasuryChanged(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.cursor).where(t.cursor.c.id == 1).values(treasury=a["newTreasury"]))
        self._treasury = a["newTreasury"]

    # ------------------------------------------------------------ escrow: credit

    def on_Deposited(self, a: dict, now: int, block: int) -> None:
        self.accounts.get(a["account"])["credit"] += a["amount"]

    def on_Withdrawn(self, a: dict, now: int, block: int) -> None:
        self.accounts.get(a["account"])["credit"] -= a["amount"]

    def on_Reserved(self, a: dict, now: int, block: int) -> None:
        # `reserve` moves free credit; `reserveFor` emits Deposited first, so the same rule holds.
        self.accounts.get(a["caller"])["credit"] -= a["amount"]
        self.reservations.get(a["caller"], a["relayer"])["amount"] += a["amount"]

    def on_Released(self, a: dict, now: int, block: int) -> None:
        self.reservations.get(a["caller"], a["relayer"])["amount"] -= a["amount"]
        self.accounts.get(a["caller"])["credit"] += a["amount"]

    def on_EarningsWithdrawn(self, a: dict, now: int, block: int) -> None:
        row = self.accounts.get(a["account"])
        row["earnings"] -= a["amount"]
        row["withdrawn_earnings"] += a["amount"]

    # ------------------------------------------------------------ escrow: calls

    def on_InferenceRequested(self, a: dict, now: int, block: int) -> None:
        self.accounts.get(a["caller"])["credit"] -= a["price"]
        self.requests.add(dict(request_id=str(a["requestId"]), model_id=a["modelId"], version=a["version"],
                               caller=a["caller"], price=a["price"], designated=None, status=1, relayer=None,
                               reject_reason=None, requested_at=now, ended_at=None, block=block))

    def on_RelayerDesignated(self, a: dict, now: int, block: int) -> None:
        self.requests.get(str(a["requestId"]))["designated"] = a["relayer"]

    def on_InferenceFulfilled(self, a: dict, now: int, block: int) -> None:
        request = self._end(a["requestId"], FULFILLED, now, relayer=a["relayer"])
        self._settle(request["model_id"], "request", request["caller"], a["relayer"], 1, request["price"], now, block,
                     requested_at=request["requested_at"])

    def on_InferenceRejected(self, a: dict, now: int, block: int) -> None:
        request = self._end(a["requestId"], REJECTED, now, relayer=a["relayer"], reject_reason=a["reason"])
        self.accounts.get(request["caller"])["credit"] += request["price"]

    def on_InferenceRefunded(self, a: dict, now: int, block: int) -> None:
        request = self._end(a["requestId"], REFUNDED, now)
        self.accounts.get(request["caller"])["credit"] += request["price"]

    def on_ReceiptSettled(self, a: dict, now: int, block: int) -> None:
        channel = self.channels.get(a["caller"], a["relayer"], a["modelId"])
        new_calls = a["calls"] - channel["calls"]
        channel["calls"], channel["amount"] = a["calls"], a["amount"]
        self.reservations.get(a["caller"], a["relayer"])["amount"] -= a["paid"]
        self._settle(a["modelId"], "receipt", a["caller"], a["relayer"], new_calls, a["paid"], now, block)

    # ------------------------------------------------------------ the money

    def _settle(self, model_id: int, kind: str, caller: str, relayer: str, calls: int, amount: int, now: int,
                block: int, requested_at: int | None = None) -> None:
        protocol_bps, relayer_bps = self._fees_at(now)
        payees, shares, owner = self._payees_at(model_id, now)
        treasury_part, relayer_part, payee_parts = feesplit.split(amount, protocol_bps, relayer_bps, shares)
        self.settlements.append(dict(
            model_id=model_id, kind=kind, caller=caller, relayer=relayer, calls=calls, amount=amount,
            self_dealing=caller == owner or caller in payees, requested_at=requested_at, time=now, day=now // DAY,
            block=block))
        for account, role, part in ((self._treasury_now(), "treasury", treasury_part), (relayer, "relayer", relayer_part),
                                    *((payee, "payee", part) for payee, part in zip(payees, payee_parts))):
            if part:
                self.earnings.get(account, model_id, role, now // DAY)["amount"] += part
                self.accounts.get(account)["earnings"] += part

    def _fees_at(self, now: int) -> tuple[int, int]:
        if self._fees is None:
            self._fees = self.db.execute(select(t.fee_terms.c.protocol_bps, t.fee_terms.c.relayer_bps,
                                                t.fee_terms.c.effective_at)
                                         .order_by(t.fee_terms.c.effective_at, t.fee_terms.c.id)).all()
        in_force = (0, 0)
        for protocol_bps, relayer_bps, effective_at in self._fees:
            if effective_at <= now:
                in_force = (protocol_bps, relayer_bps)
        return in_force

    def _payees_at(self, model_id: int, now: int) -> tuple[list[str], list[int], str]:
        owner = self._owners.get(model_id)
        if owner is None:
            owner = self._owners[model_id] = self.db.execute(
                select(t.models.c.owner).where(t.models.c.model_id == model_id)).scalar()
        sets = self._payees.get(model_id)
        if sets is None:
            sets = self._payees[model_id] = [
                (json.loads(r.accounts), json.loads(r.shares), r.effective_at) for r in self.db.execute(
                    select(t.payee_sets).where(t.payee_sets.c.model_id == model_id)
                    .order_by(t.payee_sets.c.effective_at, t.payee_sets.c.id))]
        in_force = None
        for accounts, shares, effective_at in sets:
            if effective_at <= now:
                in_force = (accounts, shares)
        if in_force is None:
            return [owner], [feesplit.BPS], owner
        return in_force[0], in_force[1], owner

    def _treasury_now(self) -> str:
        if self._treasury is None:
            self._treasury = self.db.execute(select(t.cursor.c.treasury)).scalar()
        return self._treasury

    def _end(self, request_id: int, status: int, now: int, **changes: Any) -> dict:
        request = self.requests.get(str(request_id))
        request.update(status=status, ended_at=now, **changes)
        return request


class _Rows:
    """Rows of one table keyed by `keys`, read at first touch, written back by `flush`."""

    def __init__(self, db: Connection, table: Any, keys: tuple[str, ...], defaults: dict | None) -> None:
        self.db, self.table, self.keys, self.defaults = db, table, keys, defaults
        self.rows: dict[tuple, dict] = {}
        self.new: set[tuple] = set()
        self.loaded: set[tuple] = set()  # keys looked up by preload, found or not

    def preload(self, keys: set[tuple]) -> None:
        """Reads the rows of `keys` not yet read, a chunk of keys per query."""
        wanted = [key for key in keys if key not in self.rows]
        for row in t.rows_by_key(self.db, self.table, list(self.keys), wanted):
            self.rows[tuple(row[name] for name in self.keys)] = row
        self.loaded.update(wanted)

    def get(self, *key: Any) -> dict:
        row = self.rows.get(key)
        if row is None and key in self.loaded and self.defaults is not None:
            row = self.rows[key] = dict(zip(self.keys, key), **self.defaults)  # preloaded: known to be new
            self.new.add(key)
            return row
        if row is None:
            found = self.db.execute(select(self.table).where(
                and_(*(self.table.c[name] == value for name, value in zip(self.keys, key))))).first()
            if found is not None:
                row = dict(found._mapping)
            elif self.defaults is None:
                raise KeyError(f"{self.table.name} has no row {key}")
            else:
                row = dict(zip(self.keys, key), **self.defaults)
                self.new.add(key)
            self.rows[key] = row
        return row

    def add(self, row: dict) -> None:
        key = tuple(row[name] for name in self.keys)
        self.rows[key] = row
        self.new.add(key)

    def flush(self) -> None:
        inserts = [row for key, row in self.rows.items() if key in self.new]
        updates = [row for key, row in self.rows.items() if key not in self.new]
        if inserts:
            self.db.execute(self.table.insert(), inserts)
        if updates:
            key_params = {name: bindparam("key_" + name) for name in self.keys}
            statement = update(self.table).where(
                and_(*(self.table.c[name] == param for name, param in key_params.items())))
            values = [name for name in updates[0] if name not in self.keys]
            statement = statement.values({name: bindparam(name) for name in values})
            self.db.execute(statement, [{**{"key_" + k: row[k] for k in self.keys}, **{n: row[n] for n in values}}
                                        for row in updates])
