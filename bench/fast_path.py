"""Paid calls per second through one relayer's HTTP fast path (receipts), with p50/p99 latency
at several concurrencies, next to bare onnxruntime on the same model and input, in one run.

A fresh anvil, the real `modelhub relayer run` process and a real HTTP client. Each concurrent
client is its own caller with its own channel; receipts are signed before the timed phase (they
are deterministic: call n of a channel owes n prices), so the client's signing does not compete
with the relayer for the two cores. After the run, every channel must be settled on chain to the
wei: the calls counted here were paid. Run with `make bench-fast`; results also go to
bench/results/fast_path.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import onnxruntime as ort
import requests
from ape import accounts, networks

from modelhub import codec
from modelhub.deployments import DeployParams, deploy, save_deployment
from modelhub.devchain import Anvil, rpc
from modelhub.hub import Hub
from modelhub.relayer.settings import RelayerConfig
from modelhub.typed_data import Attestation, KeySigner, Receipt, recover_digest_signer
from modelhub.typed_data import digest as eip712_digest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' helpers: tests.support
from tests.support.relayers import RelayerProcess, wait_until  # noqa: E402  (the tests' process runner)

MODEL = ROOT / "examples" / "iris" / "iris.onnx"
INPUT = {"X": [[5.1, 3.5, 1.4, 0.2]]}
PRICE = 10**15
TOKEN = 10**18
CONCURRENCIES = tuple(int(c) for c in os.environ.get('BENCH_CONCURRENCY', '1,4,16,64').split(','))
SECONDS_PER_LEVEL = 6.0
WARMUP_CALLS = 50
BARE_ITERATIONS = 5_000


def main() -> int:
    results: dict = {"cpus": os.cpu_count(), "model": MODEL.name, "input": INPUT}
    results["bare_onnxruntime"] = bare_onnxruntime()
    with tempfile.TemporaryDirectory() as tmp, Anvil() as anvil, networks.parse_network_choice(anvil.url):
        folder = Path(tmp)
        deployer, uploader, relayer_account = accounts.test_accounts[0], accounts.test_accounts[1], accounts.test_accounts[3]
        deployment = deploy(deployer, params=DeployParams())
        save_deployment(deployment, folder / "deployments")
        uploader_hub = Hub(deployment, uploader)
        model_id = uploader_hub.upload_model(MODEL, "iris", PRICE).model_id
        relayer_hub = Hub(deployment, relayer_account)
        relayer_hub.faucet(1_000 * TOKEN)
        relayer_hub.relayer_register("http://127.0.0.1", relayer_hub.min_bond)

        print(f"funding {max(CONCURRENCIES)} callers ...", file=sys.stderr)
        callers = [new_caller(anvil, deployment, relayer_account.address) for _ in range(max(CONCURRENCIES))]

        store = folder / "store"
        # The relayer as shipped: default poll (0.5 s) and settlement (every 60 s) intervals.
        process = RelayerProcess(anvil.url, "TEST::3", store, folder / "deployments",
                                 "--poll-interval", str(RelayerConfig.poll_interval)).start()
        try:
            requests.post(f"{process.url}/v1/artifacts", data=MODEL.read_bytes(), timeout=30).raise_for_status()
            bench = FastBench(process.url, deployment, relayer_account.address, model_id, callers)
            asyncio.run(bench.warm_up())
            results["levels"] = [asyncio.run(bench.level(c)) for c in CONCURRENCIES]
            results["settlement"] = bench.check_settled(relayer_hub)
        finally:
            process.terminate()

    report(results)
    out = ROOT / "bench" / "results" / "fast_path.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def bare_onnxruntime() -> dict:
    """The model's own time: one onnxruntime session on the same input, one call at a time."""
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feed = {name: np.asarray(INPUT["X"], dtype=np.float32)}
    for _ in range(200):
        session.run(None, feed)
    times = []
    started = time.perf_counter()
    for _ in range(BARE_ITERATIONS):
        t = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    return {"calls_per_second": round(BARE_ITERATIONS / elapsed), **percentiles(times)}


def new_caller(anvil: Anvil, deployment, relayer: str) -> tuple[KeySigner, Hub]:
    """A fresh funded caller with its credit reserved for the relayer (what pays its receipts)."""
    account = accounts.test_accounts.generate_test_account()
    rpc(anvil.url, "anvil_setBalance", account.address, hex(10 * TOKEN))
    hub = Hub(deployment, account)
    hub.faucet(10_000 * TOKEN)
    hub.deposit(10_000 * TOKEN)
    hub.reserve(relayer, 10_000 * TOKEN)
    return KeySigner(account.private_key), hub


class FastBench:
    """Pre-signed receipt bodies per caller, sent by one client task per caller."""

    def __init__(self, url: str, deployment, relayer: str, model_id: int, callers) -> None:
        self.url = f"{url}/v1/models/{model_id}/infer"
        self.channels_url = f"{url}/v1/channels"
        self.deployment, self.relayer, self.model_id = deployment, relayer, model_id
        self.callers = callers
        self.sent = [0] * len(callers)  # calls made so far on each caller's channel
        self.deadline = int(time.time()) + 86_400
        self.health_url = f"{url}/healthz"
        self.commits = (0, 0, 0.0)  # the relayer's receipt commits, receipts committed, seconds

    async def commit_counters(self) -> tuple[int, int, float]:
        async with aiohttp.ClientSession() as http, http.get(self.health_url) as reply:
            fast = (await reply.json())["fast"]
        return fast["receiptCommits"], fast["receiptsCommitted"], fast["receiptCommitSeconds"]

    def body(self, index: int, calls: int) -> tuple[bytes, Receipt]:
        signer, _ = self.callers[index]
        receipt = Receipt(signer.address, self.relayer, self.model_id, calls, calls * PRICE, self.deadline)
        signature = signer.sign_receipt(receipt, self.deployment.chain_id, self.deployment.inference_escrow)
        body = {"input": INPUT, "receipt": receipt.as_json(), "signature": "0x" + signature.hex()}
        return json.dumps(body).encode(), receipt

    async def warm_up(self) -> None:
        """A few verified calls per caller (also opens every channel and loads the model), once
        the relayer has read every caller's reservation (its first round may still be running)."""
        async with aiohttp.ClientSession() as http:
            for signer, _ in self.callers:
                await self.wait_known(http, signer.address)
            for index in range(len(self.callers)):
                for _ in range(WARMUP_CALLS if index == 0 else 1):
                    self.sent[index] += 1
                    body, receipt = self.body(index, self.sent[index])
                    async with http.post(self.url, data=body, headers={"Content-Type": "application/json"}) as reply:
                        answer = await reply.json()
                        if reply.status != 200:
                            raise SystemExit(f"warm-up call refused: {reply.status} {answer}")
                    self.verify(answer, receipt)

    async def wait_known(self, http: aiohttp.ClientSession, caller: str, timeout: float = 60.0) -> None:
        url = f"{self.channels_url}/{caller}/{self.model_id}"
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            async with http.get(url) as reply:
                if reply.status == 200 and "reserved" in await reply.json():
                    return
            await asyncio.sleep(0.1)
        raise SystemExit(f"the relayer did not see {caller}'s reservation within {timeout:g} s")

    def verify(self, answer: dict, receipt: Receipt) -> None:
        """The answer is a correctly signed attestation of this receipt's call."""
        att = Attestation.from_json(answer["attestation"])
        signer = recover_digest_signer(eip712_digest(att, self.deployment.chain_id, self.deployment.inference_escrow),
                                       bytes.fromhex(answer["signature"][2:]))
        if signer != self.relayer or codec.output_hash(codec.encode_output(answer["output"])) != att.output_hash:
            raise SystemExit(f"answer fails verification: {answer}")

    async def level(self, concurrency: int) -> dict:
        """`concurrency` clients, each on its own channel, for SECONDS_PER_LEVEL seconds."""
        expected = int(SECONDS_PER_LEVEL * 3_000 / concurrency) + 10  # more than can be sent
        bodies = {i: [self.body(i, self.sent[i] + k + 1)[0] for k in range(expected)] for i in range(concurrency)}
        latencies: list[float] = []
        server: list[float] = []  # the relayer's own time per call (its Server-Timing header)
        refused: dict[int, int] = {}
        stop_at = time.perf_counter() + SECONDS_PER_LEVEL

        async def client(http: aiohttp.ClientSession, index: int) -> None:
            for body in bodies[index]:
                if time.perf_counter() >= stop_at:
                    return
                t = time.perf_counter()
                async with http.post(self.url, data=body, headers={"Content-Type": "application/json"}) as reply:
                    await reply.read()
                    status = reply.status
                    timing = reply.headers.get("Server-Timing", "")
                latencies.append(time.perf_counter() - t)
                if "dur=" in timing:
                    server.append(float(timing.split("dur=")[1]) / 1e3)
                if status != 200:
                    refused[status] = refused.get(status, 0) + 1
                    return  # the channel is out of step: stop this client
                self.sent[index] += 1

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:
            started = time.perf_counter()
            self.commits = await self.commit_counters()
            await asyncio.gather(*(client(http, i) for i in range(concurrency)))
            elapsed = time.perf_counter() - started
        calls = len(latencies) - sum(refused.values())
        commits = await self.commit_counters()
        row = {"concurrency": concurrency, "calls": calls, "seconds": round(elapsed, 2),
               "calls_per_second": round(calls / elapsed), "refused": refused, **percentiles(latencies),
               "relayer": percentiles(server),
               "receipts_per_commit": round((commits[1] - self.commits[1]) / max(commits[0] - self.commits[0], 1), 1),
               "commit_ms": round((commits[2] - self.commits[2]) / max(commits[0] - self.commits[0], 1) * 1e3, 3)}
        self.commits = commits
        print(f"concurrency {concurrency}: {row['calls_per_second']} calls/s, p50 {row['p50_ms']} ms, "
              f"p99 {row['p99_ms']} ms; in the relayer p50 {row['relayer']['p50_ms']} ms; "
              f"{row['receipts_per_commit']} receipts per commit of {row['commit_ms']} ms", file=sys.stderr)
        return row

    def check_settled(self, relayer_hub: Hub) -> dict:
        """Waits until the relayer has settled every channel to its last call; returns totals."""
        started = time.perf_counter()
        for index, (signer, _) in enumerate(self.callers):
            want = (self.sent[index], self.sent[index] * PRICE)
            wait_until(lambda: relayer_hub.channel(signer.address, self.relayer, self.model_id) == want,
                       timeout=180, what=f"channel of caller {index} settled to {want}")
        calls = sum(self.sent)
        stats = relayer_hub.model_stats(self.model_id)
        if stats.calls != calls or stats.revenue != calls * PRICE:
            raise SystemExit(f"modelStats {stats} != {calls} calls paid")
        return {"calls": calls, "paid": calls * PRICE, "wait_seconds": round(time.perf_counter() - started, 1)}


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(pick(0.50) * 1e3, 3), "p99_ms": round(pick(0.99) * 1e3, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1e3, 3)}


def report(results: dict) -> None:
    bare = results["bare_onnxruntime"]
    print("| path | concurrency | paid calls/s | p50 ms | p99 ms | in the relayer p50 / p99 ms | receipts per fsync'd commit |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| bare onnxruntime `session.run` | 1 | {bare['calls_per_second']:,} | {bare['p50_ms']} | {bare['p99_ms']} | | |")
    for row in results["levels"]:
        print(f"| relayer HTTP fast path | {row['concurrency']} | {row['calls_per_second']:,} | "
              f"{row['p50_ms']} | {row['p99_ms']} | {row['relayer']['p50_ms']} / {row['relayer']['p99_ms']} | "
              f"{row['receipts_per_commit']} |")
    one = results["levels"][0]
    print(f"\nrelayer overhead beyond the model at p50 (concurrency 1): "
          f"{one['relayer']['p50_ms'] - bare['p50_ms']:.3f} ms inside the relayer, "
          f"{one['p50_ms'] - bare['p50_ms']:.3f} ms as the client sees it (loopback HTTP and client included); peak "
          f"{max(r['calls_per_second'] for r in results['levels']):,} paid calls/s on {results['cpus']} cores "
          f"(client and relayer share them); all {results['settlement']['calls']:,} calls settled on chain.")


if __name__ == "__main__":
    sys.exit(main())
