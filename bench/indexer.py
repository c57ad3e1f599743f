"""Indexer throughput: events per second from a real anvil chain into SQLite and PostgreSQL,
beside the same events only fetched and decoded (the baseline: what the database costs).

Run with `make bench-indexer`. The chain gets a few thousand money-moving events (receipt
settlements in batches, requests settled in batches) before the timed phase.
"""

from __future__ import annotations

import contextlib
import json
import shutil
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
        started = time.perf_counter()
        fetched = source.events(d.start_block, head)
        source.timestamps(sorted({e.block for e in fetched}))
        baseline_s = time.perf_counter() - started
        events = len(fetched)

        rows = [("fetch and decode only (baseline)", events, baseline_s)]
        folder = Path(tempfile.mkdtemp(prefix="modelhub-bench-index-"))
        try:
            targets = [("SQLite", f"sqlite:///{folder / 'index.sqlite'}")]
            with contextlib.ExitStack() as stack:
                if PG_BIN.joinpath("initdb").exists():
                    targets.append(("PostgreSQL", stack.enter_context(postgres_server())))
                else:
                    print("PostgreSQL not installed (make postgres): measuring SQLite only", file=sys.stderr)
                for name, db_url in targets:
                    engine = open_database(db_url)
                    indexer = Indexer(engine, d, url, max_span=10_000)
                    started = time.perf_counter()
                    while not indexer.step().idle:
                        pass
                    rows.append((f"index into {name}", events, time.perf_counter() - started))
                    engine.dispose()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    print("| path | events | seconds | events/s | vs baseline |")
    print("|---|---:|---:|---:|---:|")
    base_rate = rows[0][1] / rows[0][2]
    for name, count, seconds in rows:
        rate = count / seconds
        print(f"| {name} | {count:,} | {seconds:.2f} | {rate:,.0f} | {rate / base_rate:.2f}x |")
    print(f"\ntarget: at least {TARGET:,} events/s indexed")
    out = Path(__file__).parent / "results" / "indexer.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps([{"path": n, "events": c, "seconds": s} for n, c, s in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
