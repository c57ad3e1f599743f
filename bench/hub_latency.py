"""Hub latency: the model list, a model's page and the JSON API over real HTTP, with 2,000 models
and 1,000,000 paid calls in the index, on SQLite and on PostgreSQL (a local server of our own).

Run with `make bench-hub`. The database is written in bulk (tests/support/synthetic.py: the rows the
indexer would have written, then its summaries and windows); `modelhub hub serve` runs as its
own process and one client asks each route in turn, after a warm-up. Each figure is beside the
same client's /static/hub.css (no database) and /api/status (one row) from the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' helpers: tests.support

from modelhub.indexer import signals  # noqa: E402
from modelhub.indexer.schema import open_database  # noqa: E402
from modelhub.store import ModelStore  # noqa: E402
from tests.support.postgres import PG_BIN, postgres_server  # noqa: E402
from tests.support.synthetic import NOW, populate  # noqa: E402
from tests.support.browser import hub_server  # noqa: E402  (`modelhub hub serve` as a process)

TARGET_MS = 100  # list and model pages, p95
WARMUP, REQUESTS = 20, 200


def routes(db_url: str) -> list[tuple[str, str]]:
    """(label, path): the baselines, then the pages and the API the targets are about."""
    engine = open_database(db_url)
    with engine.connect() as db:
        ranked = signals.list_models(db, NOW, sort="calls", limit=500)
        busiest, middling = ranked[0], ranked[len(ranked) // 2]
    engine.dispose()
    return [
        ("baseline: static /static/hub.css", "/static/hub.css"),
        ("baseline: /api/status (one row)", "/api/status"),
        ("list page /", "/"),
        ("list page, callers over 7 days", "/?sort=callers&window=7d"),
        ("list page, median settle over 30 days", "/?sort=median_settle_seconds&window=30d&order=asc"),
        ("list page, search 'wine'", "/?search=wine"),
        (f"model page, the busiest ({busiest.signals.calls:,} calls)", f"/models/{busiest.model_id}"),
        (f"model page, a middling one ({middling.signals.calls:,} calls)", f"/models/{middling.model_id}"),
        ("leaderboards page", "/leaderboards"),
        ("API /api/models", "/api/models"),
        ("API /api/models, repeat callers over 7 days", "/api/models?sort=repeat_callers&window=7d"),
        ("API /api/models/{busiest}", f"/api/models/{busiest.model_id}"),
        ("API /api/models/{busiest}/card", f"/api/models/{busiest.model_id}/card"),
    ]


def measure(base: str, path: str, warmup: int, count: int) -> tuple[float, float]:
    session = requests.Session()
    timings = []
    for n in range(warmup + count):
        started = time.perf_counter()
        response = session.get(base + path, timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
        if n >= warmup:
            timings.append(elapsed)
    timings.sort()
    return statistics.median(timings), timings[int(0.95 * len(timings)) - 1]


def build(db_url: str, models: int, calls: int, store: Path) -> str:
    iris = ModelStore(store).put((ROOT / "examples" / "iris" / "iris.onnx").read_bytes())
    started = time.monotonic()
    engine = open_database(db_url)
    # the busiest model is the iris classifier: its page reads a real ONNX file and card
    written = populate(engine, models=models, calls=calls, files={
        0: ("iris-classifier", iris.digest_hex, "file://examples/iris/README.md")})
    engine.dispose()
    return (f"{written['calls']:,} calls in {written['settlements']:,} settlement rows and "
            f"{written['requests']:,} on-chain requests, written in {time.monotonic() - started:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    args = parser.parse_args()
    if args.only != "sqlite" and not (PG_BIN / "initdb").exists():
        print("PostgreSQL 15 is not installed: `make postgres` installs it", file=sys.stderr)
        return 1
    results: dict[str, list] = {}
    work = Path(tempfile.mkdtemp(prefix="modelhub-bench-hub-"))
    os.chmod(work, 0o755)
    failed = []
    try:
        for name in ("sqlite", "postgresql"):
            if args.only and name != args.only:
                continue
            with ExitStack() as stack:
                db_url = f"sqlite:///{work / 'index.sqlite'}" if name == "sqlite" else stack.enter_context(
                    postgres_server())
                store = work / f"store-{name}"
                print(f"{name}: {build(db_url, args.models, args.calls, store)}", flush=True)
                base = stack.enter_context(hub_server(db_url, "--store", str(store), "--cards", str(ROOT)))
                rows = []
                for label, path in routes(db_url):
                    p50, p95 = measure(base, path, WARMUP, args.requests)
                    rows.append((label, p50, p95))
                    print(f"  {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)
                results[name] = rows
                failed += [f"{name}: {label} p95 {p95:.0f} ms" for label, _, p95 in rows
                           if label.startswith(("list page", "model page")) and p95 > TARGET_MS]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.models:,} models, {args.calls:,} calls; {args.requests} requests per route after {WARMUP} "
          "to warm up, one client, keep-alive\n")
    print("| database | route | p50 ms | p95 ms | p50 vs /api/status |")
    print("|---|---|---:|---:|---:|")
    for name, rows in results.items():
        status = next(p50 for label, p50, _ in rows if "/api/status" in label)
        for label, p50, p95 in rows:
            print(f"| {'SQLite' if name == 'sqlite' else 'PostgreSQL'} | {label} | {p50:.1f} | {p95:.1f} | "
                  f"{p50 / status:.2f}x |")
    print(f"\nTarget: list and model pages under {TARGET_MS} ms at p95: "
          + ("met." if not failed else "missed: " + "; ".join(failed)))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
