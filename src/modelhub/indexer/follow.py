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

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection, Engine

from .. import feesplit
from ..deployments import Deployment
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
        stamps = self.source.timestamps(sorted({event.block for event in events}))
        with self.engine.begin() as connection:
            apply = _Applier(connection, self.engine.dialect.name)
            for event in events:
                apply(event, stamps[event.block])
            connection.execute(update(t.cursor).where(t.cursor.c.id == 1).values(block=end))
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
    """Turns events into rows, within one transaction."""

    def __init__(self, connection: Connection, dialect: str) -> None:
        self.db = connection
        self.dialect = dialect
        self.pending_payees: dict[int, tuple[list[str], list[int]]] = {}

    def __call__(self, event: Event, timestamp: int) -> None:
        handler = getattr(self, "on_" + event.name, None)
        if handler is not None:
            handler(event.args, timestamp, event.block)

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

    def on_ModelActiveChanged(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.models).where(t.models.c.model_id == a["modelId"]).values(active=a["active"]))

    def on_ModelTransferred(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.models).where(t.models.c.model_id == a["modelId"]).values(owner=a["to"]))

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

    def on_TreasuryChanged(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.cursor).where(t.cursor.c.id == 1).values(treasury=a["newTreasury"]))

    # ------------------------------------------------------------ escrow: credit

    def on_Deposited(self, a: dict, now: int, block: int) -> None:
        self._credit(a["account"], a["amount"])

    def on_Withdrawn(self, a: dict, now: int, block: int) -> None:
        self._credit(a["account"], -a["amount"])

    def on_Reserved(self, a: dict, now: int, block: int) -> None:
        # `reserve` moves free credit; `reserveFor` emits Deposited first, so the same rule holds.
        self._credit(a["caller"], -a["amount"])
        self._reservation(a["caller"], a["relayer"], a["amount"])

    def on_Released(self, a: dict, now: int, block: int) -> None:
        self._reservation(a["caller"], a["relayer"], -a["amount"])
        self._credit(a["caller"], a["amount"])

    def on_EarningsWithdrawn(self, a: dict, now: int, block: int) -> None:
        row = self._account(a["account"])
        self.db.execute(update(t.accounts).where(t.accounts.c.account == a["account"]).values(
            earnings=row.earnings - a["amount"], withdrawn_earnings=row.withdrawn_earnings + a["amount"]))

    # ------------------------------------------------------------ escrow: calls

    def on_InferenceRequested(self, a: dict, now: int, block: int) -> None:
        self._credit(a["caller"], -a["price"])
        self.db.execute(t.requests.insert().values(
            request_id=str(a["requestId"]), model_id=a["modelId"], version=a["version"], caller=a["caller"],
            price=a["price"], status=1, requested_at=now, block=block))

    def on_RelayerDesignated(self, a: dict, now: int, block: int) -> None:
        self.db.execute(update(t.requests).where(t.requests.c.request_id == str(a["requestId"]))
                        .values(designated=a["relayer"]))

    def on_InferenceFulfilled(self, a: dict, now: int, block: int) -> None:
        request = self._end(a["requestId"], FULFILLED, now, relayer=a["relayer"])
        self._settle(request.model_id, "request", request.caller, a["relayer"], 1, request.price, now, block,
                     requested_at=request.requested_at)

    def on_InferenceRejected(self, a: dict, now: int, block: int) -> None:
        request = self._end(a["requestId"], REJECTED, now, relayer=a["relayer"], reject_reason=a["reason"])
        self._credit(request.caller, request.price)

    def on_InferenceRefunded(self, a: dict, now: int, block: int) -> None:
        request = self._end(a["requestId"], REFUNDED, now)
        self._credit(request.caller, request.price)

    def on_ReceiptSettled(self, a: dict, now: int, block: int) -> None:
        key = and_(t.channels.c.caller == a["caller"], t.channels.c.relayer == a["relayer"],
                   t.channels.c.model_id == a["modelId"])
        before = self.db.execute(select(t.channels.c.calls).where(key)).scalar()
        if before is None:
            self.db.execute(t.channels.insert().values(caller=a["caller"], relayer=a["relayer"], model_id=a["modelId"],
                                                       calls=a["calls"], amount=a["amount"]))
        else:
            self.db.execute(update(t.channels).where(key).values(calls=a["calls"], amount=a["amount"]))
        self._reservation(a["caller"], a["relayer"], -a["paid"])
        self._settle(a["modelId"], "receipt", a["caller"], a["relayer"], a["calls"] - (before or 0), a["paid"], now,
                     block)

    # ------------------------------------------------------------ the money

    def _settle(self, model_id: int, kind: str, caller: str, relayer: str, calls: int, amount: int, now: int,
                block: int, requested_at: int | None = None) -> None:
        protocol_bps, relayer_bps = self._fees_at(now)
        payees, shares, owner = self._payees_at(model_id, now)
        treasury_part, relayer_part, payee_parts = feesplit.split(amount, protocol_bps, relayer_bps, shares)
        self.db.execute(t.settlements.insert().values(
            model_id=model_id, kind=kind, caller=caller, relayer=relayer, calls=calls, amount=amount,
            self_dealing=caller == owner or caller in payees, requested_at=requested_at, time=now, day=now // DAY,
            block=block))
        treasury = self.db.execute(select(t.cursor.c.treasury)).scalar()
        rows = [(treasury, "treasury", treasury_part), (relayer, "relayer", relayer_part),
                *((payee, "payee", part) for payee, part in zip(payees, payee_parts))]
        for account, role, part in rows:
            if part == 0:
                continue
            self.db.execute(t.earnings.insert().values(account=account, model_id=model_id, role=role, amount=part,
                                                       time=now, day=now // DAY))
            row = self._account(account)
            self.db.execute(update(t.accounts).where(t.accounts.c.account == account)
                            .values(earnings=row.earnings + part))

    def _fees_at(self, now: int) -> tuple[int, int]:
        row = self.db.execute(select(t.fee_terms.c.protocol_bps, t.fee_terms.c.relayer_bps)
                              .where(t.fee_terms.c.effective_at <= now)
                              .order_by(t.fee_terms.c.effective_at.desc(), t.fee_terms.c.id.desc()).limit(1)).first()
        return (row.protocol_bps, row.relayer_bps) if row else (0, 0)

    def _payees_at(self, model_id: int, now: int) -> tuple[list[str], list[int], str]:
        owner = self.db.execute(select(t.models.c.owner).where(t.models.c.model_id == model_id)).scalar()
        row = self.db.execute(select(t.payee_sets.c.accounts, t.payee_sets.c.shares)
                              .where(and_(t.payee_sets.c.model_id == model_id, t.payee_sets.c.effective_at <= now))
                              .order_by(t.payee_sets.c.effective_at.desc(), t.payee_sets.c.id.desc())
                              .limit(1)).first()
        if row is None:
            return [owner], [feesplit.BPS], owner
        return json.loads(row.accounts), json.loads(row.shares), owner

    def _end(self, request_id: int, status: int, now: int, **changes: Any) -> Any:
        key = t.requests.c.request_id == str(request_id)
        request = self.db.execute(select(t.requests).where(key)).first()
        self.db.execute(update(t.requests).where(key).values(status=status, ended_at=now, **changes))
        return request

    def _account(self, account: str) -> Any:
        row = self.db.execute(select(t.accounts).where(t.accounts.c.account == account)).first()
        if row is None:
            self.db.execute(t.accounts.insert().values(account=account, credit=0, earnings=0, withdrawn_earnings=0))
            row = self.db.execute(select(t.accounts).where(t.accounts.c.account == account)).first()
        return row

    def _credit(self, account: str, change: int) -> None:
        row = self._account(account)
        self.db.execute(update(t.accounts).where(t.accounts.c.account == account).values(credit=row.credit + change))

    def _reservation(self, caller: str, relayer: str, change: int) -> None:
        key = and_(t.reservations.c.caller == caller, t.reservations.c.relayer == relayer)
        amount = self.db.execute(select(t.reservations.c.amount).where(key)).scalar()
        if amount is None:
            self.db.execute(t.reservations.insert().values(caller=caller, relayer=relayer, amount=change))
        else:
            self.db.execute(update(t.reservations).where(key).values(amount=amount + change))
