"""Indexer throughput: events per second from a real anvil chain into SQLite and PostgreSQL,
beside the same events only fetched and decoded (the baseline: what the database costs).

Run with `make bench-indexer`. The chain gets a few thousand money-moving events (receipt
settlements in batches, requests settled in batches) before the timed phase.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ape import chain
from eth_account import Account
from eth_utils import keccak

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers: tests.support

from modelhub.typed_data import Attestation, KeySigner, Receipt  # noqa: E402
from modelhub.indexer.events import EventSource  # noqa: E402
from modelhub.indexer.follow import Indexer  # noqa: E402
from modelhub.indexer.schema import open_database  # noqa: E402
from tests.support.postgres import PG_BIN, postgres_server  # noqa: E402

from bench_support import bonded_hub  # noqa: E402

TOKEN = 10**18
PRICE = 10**15
CALLERS = 100
ROUNDS = 15  # receipt batches of CALLERS channels each
REQUEST_BATCHES = 4  # of 100 requests
INPUT = b'{"X":[[5.1,3.5,1.4,0.2]]}'
TARGET = 5_000  # events per second
REPEATS = 7  # each path is timed this many times (a new database each time); median and best reported


def _timed(prepare) -> list[float]:
    """Seconds taken by each of REPEATS runs of the work that `prepare()` returns (prepare untimed)."""
    times = []
    for _ in range(REPEATS):
        work = prepare()
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times


def _fresh_database(server_url: str, name: str) -> str:
    """A new empty database `name` on the server of `server_url`; its URL."""
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def main() -> int:
    with bonded_hub() as hub:
        d, token, registry, escrow, anvil = hub.deployment, hub.token, hub.registry, hub.escrow, hub.anvil
        uploader, relayer, funder = hub.uploader, hub.relayer, hub.funder
        models = [registry.registerModel(f"m{i}", b"\x11" * 32, "", PRICE, sender=uploader).return_value
                  for i in range(5)]
        token.mint(funder, 10**9 * TOKEN, sender=funder)
        token.approve(escrow, 2**256 - 1, sender=funder)
        callers = [KeySigner(Account.create().key) for _ in range(CALLERS)]
        for signer in callers:
            escrow.reserveFor(signer.address, relayer.address, 100 * TOKEN, sender=funder)
        deadline = chain.blocks.head.timestamp + 86_400
        for round_ in range(1, ROUNDS + 1):
            receipts = [Receipt(s.address, relayer.address, models[i % len(models)], round_, round_ * PRICE, deadline)
                        for i, s in enumerate(callers)]
            signatures = [s.sign_receipt(r, d.chain_id, d.inference_escrow) for s, r in zip(callers, receipts)]
            escrow.settleReceipts([r.as_tuple() for r in receipts], signatures, sender=relayer)
        escrow.deposit(10 * TOKEN, sender=funder)
        signer = KeySigner(relayer.private_key)
        for _ in range(REQUEST_BATCHES):
            ids = [escrow.requestInference(models[0], 1, INPUT, PRICE, sender=funder).return_value for _ in range(100)]
            atts = [Attestation(i, models[0], 1, keccak(INPUT), keccak(b'{"y":[0]}')) for i in ids]
            escrow.fulfillBatch([a.as_tuple() for a in atts],
                                [signer.sign_attestation(a, d.chain_id, d.inference_escrow) for a in atts],
                                sender=relayer)
        head = chain.blocks.head.number
        url = anvil.url

        source = EventSource(url, {"ModelRegistry": d.model_registry, "RelayerRegistry": d.relayer_registry,
                                   "InferenceEscrow": d.inference_escrow})

        def fetch_and_decode() -> int:
            fetched = source.events(d.start_block, head)
            source.timestamps(sorted({e.block for e in fetched}))
            return len(fetched)

        events = fetch_and_decode()  # warm-up: connections, decoders
        rows = [("fetch and decode only (baseline)", events, _timed(lambda: fetch_and_decode))]
        folder = Path(tempfile.mkdtemp(prefix="modelhub-bench-index-"))
        try:
            with contextlib.ExitStack() as stack:
                targets = [("SQLite", lambda run: f"sqlite:///{folder / f'index-{run}.sqlite'}")]
                if PG_BIN.joinpath("initdb").exists():
                    server = stack.enter_context(postgres_server())
                    targets.append(("PostgreSQL", lambda run: _fresh_database(server, f"index_{run}")))
                else:
                    print("PostgreSQL not installed (make postgres): measuring SQLite only", file=sys.stderr)
                for name, database in targets:
                    runs = iter(range(REPEATS))

                    def prepare(database=database, runs=runs):
                        engine = open_database(database(next(runs)))  # a new, migrated, empty database each time
                        indexer = Indexer(engine, d, url, max_span=10_000)

                        def index_all() -> None:
                            while not indexer.step().idle:
                                pass
                            engine.dispose()
                        return index_all

                    rows.append((f"index into {name}", events, _timed(prepare)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    print(f"median and best of {REPEATS} runs of each path, one after the other in one process")
    print("| path | events | seconds (median) | events/s (median / best) | vs baseline (median) |")
    print("|---|---:|---:|---:|---:|")
    base_rate = rows[0][1] / statistics.median(rows[0][2])
    for name, count, times in rows:
        rate = count / statistics.median(times)
        print(f"| {name} | {count:,} | {statistics.median(times):.3f} | {rate:,.0f} / {count / min(times):,.0f} "
              f"| {rate / base_rate:.2f}x |")
    print(f"\ntarget: at least {TARGET:,} events/s indexed")
    out = Path(__file__).parent / "results" / "indexer.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps([{"path": n, "events": c, "seconds": t} for n, c, t in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
