"""A hub in full use, written straight into an index database: models, versions, prices, payees,
on-chain calls (settled, rejected, refunded), receipts, earnings and balances, in bulk.

For the latency bench (2,000 models and 1,000,000 calls) and the screenshots; the rows follow the
indexer's own rules (fee split, self-dealing, UTC days), so the signals over them make sense.
"""

from __future__ import annotations

import json
import random
from bisect import bisect
from collections import defaultdict
from itertools import accumulate

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from modelhub import feesplit
from modelhub.indexer import rollups, signals
from modelhub.indexer import schema as t

DAY = 86_400
NOW = 1_800_000_000  # the cursor's time: "now" for the windows
TOKEN = 10**18
PROTOCOL_BPS, RELAYER_BPS = 500, 1_000
TREASURY = "0x" + "7e" * 20
TASKS = ("iris", "wine", "digits", "diabetes", "sentiment", "spam", "churn", "fraud", "housing", "mnist",
         "toxicity", "intent", "ner", "pose", "depth", "caption", "translate-en-de", "summarize", "tabular", "anomaly")
KINDS = ("classifier", "regressor", "tree", "forest", "mlp", "cnn", "bert-tiny", "gbm", "linear", "transformer")
CHUNK = 20_000


def address(kind: int, n: int) -> str:
    return f"0x{kind:02x}{n:038x}"


def populate(engine: Engine, models: int = 2_000, calls: int = 1_000_000, days: int = 90, seed: int = 1,
             callers: int = 20_000, relayers: int = 12, files: dict[int, tuple[str, str, str]] | None = None) -> dict:
    """Fills an empty database (bound to chain 1 at NOW) and returns what it wrote, for checks.
    `files` gives some models a real name, file digest and card URI, by popularity rank (0: the
    most called): {rank: (name, digest, uri)}.
    Model popularity and callers' activity follow Zipf-like laws; 95 % of the settlement rows are
    on-chain calls (one row per call, 3 % of the calls rejected or refunded), 5 % receipts of 2 to
    5 calls."""
    rng = random.Random(seed)
    start = NOW - days * DAY
    owners = [address(1, n) for n in range(max(models // 7, 1))]
    caller_ids = [address(2, n) for n in range(callers)]
    relayer_ids = [address(3, n) for n in range(relayers)]
    model_rows, version_rows, price_rows, payee_rows, payees = [], [], [], [], {}
    # Zipf-like popularity: the model at rank k (of a shuffled order) is picked with weight 1 / (k + 1).
    order = list(range(1, models + 1))
    rng.shuffle(order)
    by_model = {order[rank]: given for rank, given in (files or {}).items()}
    for model in range(1, models + 1):
        owner = owners[rng.randrange(len(owners))]
        registered = start - rng.randrange(1, 30 * DAY)  # all registered before the calls begin
        price = rng.choice((1, 5, 10, 20, 50)) * TOKEN // 1_000
        latest = 1 + (rng.random() < 0.2)
        name = f"{TASKS[model % len(TASKS)]}-{KINDS[(model // len(TASKS)) % len(KINDS)]}-{model}"
        digest, card = "0x" + rng.randbytes(32).hex(), f"ipfs://card-{model}"
        if model in by_model:
            name, digest, card = by_model[model]
        model_rows.append(dict(model_id=model, owner=owner, name=name, metadata_uri=card, price=price,
                               latest_version=latest, active=rng.random() > 0.03, registered_at=registered,
                               block=model))
        for version in range(1, latest + 1):
            version_rows.append(dict(model_id=model, version=version, digest=digest, metadata_uri=card,
                                     time=registered + (version - 1) * 5 * DAY, block=model))
        price_rows.append(dict(model_id=model, old_price=0, new_price=price, time=registered, block=model))
        if rng.random() < 0.3:
            coauthors = [owner, address(4, model)]
            payees[model] = coauthors
            payee_rows.append(dict(model_id=model, accounts=json.dumps(coauthors), shares=json.dumps([7_000, 3_000]),
                                   effective_at=registered, time=registered))
    model_weights = list(accumulate(1 / (k + 1) for k in range(models)))
    caller_weights = list(accumulate(1 / (k + 1) ** 0.8 for k in range(callers)))
    prices = {row["model_id"]: row["price"] for row in model_rows}
    owner_of = {row["model_id"]: row["owner"] for row in model_rows}

    settlements, requests, earnings = [], [], defaultdict(int)
    paid_by = defaultdict(int)
    written = {"calls": 0, "settlements": 0, "requests": 0}
    request_number = defaultdict(int)
    with engine.begin() as db:
        db.execute(t.cursor.insert().values(id=1, chain_id=1, escrow="0x" + "e5" * 20, block=10**6,
                                            treasury=TREASURY, time=NOW))
        for table, rows in ((t.models, model_rows), (t.versions, version_rows), (t.prices, price_rows),
                            (t.payee_sets, payee_rows)):
            _bulk(db, table, rows)
        _bulk(db, t.relayers, [dict(relayer=r, endpoint=f"http://relayer-{i}.example:8700", bond=100 * TOKEN,
                                    unbond_at=0, registered_at=start) for i, r in enumerate(relayer_ids)])

        def flush() -> None:
            _bulk(db, t.settlements, settlements)
            _bulk(db, t.requests, requests)
            settlements.clear()
            requests.clear()

        # Settlement times ascend, as the indexer writes them; a settlement row holds 1.0965 calls
        # on average (receipts more, rejected and refunded calls none).
        moments = sorted(start + rng.randrange(days * DAY - 700) for _ in range(int(calls / 1.0965 * 1.01) + 1))
        for when in moments:
            if written["calls"] >= calls:
                break
            model = order[bisect(model_weights, rng.random() * model_weights[-1])]
            caller = caller_ids[min(bisect(caller_weights, rng.random() * caller_weights[-1]), callers - 1)]
            if rng.random() < 0.02:
                caller = owner_of[model]  # self-dealing: the owner calls its own model
            relayer = relayer_ids[rng.randrange(relayers)]
            price = prices[model]
            receipt = rng.random() < 0.05
            n = min(rng.randint(2, 5), calls - written["calls"]) if receipt else 1
            amount = n * price
            requested_at = None
            if not receipt:
                request_number[caller] += 1
                request_id = str((int(caller, 16) << 96) | request_number[caller])
                status = 2 if rng.random() > 0.03 else rng.choice((3, 4))
                took = rng.randint(2, 90) if status == 2 else rng.randint(5, 700)
                requested_at = when - took
                requests.append(dict(request_id=request_id, model_id=model, version=1, caller=caller, price=price,
                                     designated=None, status=status, relayer=relayer if status != 4 else None,
                                     reject_reason=1 if status == 3 else None, requested_at=requested_at,
                                     ended_at=when, block=when // 12))
                written["requests"] += 1
                if status != 2:
                    continue
            self_dealing = caller == owner_of[model] or caller in payees.get(model, ())
            settlements.append(dict(model_id=model, kind="receipt" if receipt else "request", caller=caller,
                                    relayer=relayer, calls=n, amount=amount, self_dealing=self_dealing,
                                    requested_at=requested_at, time=when, day=when // DAY, block=when // 12))
            day = when // DAY
            shares = [7_000, 3_000] if model in payees else [feesplit.BPS]
            treasury_part, relayer_part, parts = feesplit.split(amount, PROTOCOL_BPS, RELAYER_BPS, shares)
            earnings[(TREASURY, model, "treasury", day)] += treasury_part
            earnings[(relayer, model, "relayer", day)] += relayer_part
            for payee, part in zip(payees.get(model, [owner_of[model]]), parts):
                earnings[(payee, model, "payee", day)] += part
            paid_by[caller] += amount
            written["calls"] += n
            written["settlements"] += 1
            if len(settlements) >= CHUNK:
                flush()
        flush()
        _bulk(db, t.earnings, [dict(account=a, model_id=m, role=r, day=d, amount=v)
                               for (a, m, r, d), v in earnings.items() if v])
        earned = defaultdict(int)
        for (account, _, _, _), value in earnings.items():
            earned[account] += value
        _bulk(db, t.accounts, [dict(account=a, credit=rng.randrange(10 * TOKEN), earnings=earned.get(a, 0),
                                    withdrawn_earnings=0) for a in set(paid_by) | set(earned)])
        rollups.rebuild(db)  # the summaries, as the indexer would have kept them
        signals.refresh_windows(db, NOW)
    return written


def _bulk(db, table, rows: list[dict]) -> None:
    for begin in range(0, len(rows), CHUNK):
        db.execute(insert(table), rows[begin:begin + CHUNK])
