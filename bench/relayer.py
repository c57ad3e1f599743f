"""Relayer throughput and overhead, measured in one run on a fresh anvil.

1. Settled calls per second through the daemon (follow, run, sign, store, fulfillBatch) at batch
   sizes 1, 10 and 100, for the same number of paid calls.
2. Time per call of the relayer's serve path (decode and check the input, run, encode, hash,
   sign the attestation) against a bare onnxruntime session on the same model and input.

Run with `make bench-relayer`; results also go to bench/results/relayer.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from ape import accounts, networks

from modelhub import codec
from modelhub.deployments import DeployParams, deploy
from modelhub.devchain import Anvil
from modelhub.hub import Hub
from modelhub.relayer.daemon import Relayer
from modelhub.relayer.settings import RelayerConfig
from modelhub.relayer.state import CallState
from modelhub.store import ModelStore

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "iris" / "iris.onnx"
INPUT = {"X": [[5.1, 3.5, 1.4, 0.2]]}
CALLS = 200
BATCH_SIZES = (1, 10, 100)
PRICE = 10**15
LATENCY_ITERATIONS = 2_000


def settle_throughput(uploader_hub: Hub, caller_hub: Hub, relayer_hub: Hub, model_id: int, batch: int,
                      store_root: Path) -> dict:
    config = RelayerConfig(store_dir=store_root / f"batch-{batch}", batch_size=batch, poll_interval=0)
    daemon = Relayer(relayer_hub, config)
    daemon.store.put(MODEL.read_bytes())
    # Start following at the head: the calls of earlier batch sizes are not this run's.
    from ape import chain

    daemon.state.record_seen([], chain.blocks.head.number + 1)
    for _ in range(CALLS):
        # No pre-flight check: it is the caller's cost, and no relayer here serves the file over HTTP.
        caller_hub.request(model_id, INPUT, check_input=False)
    started = time.perf_counter()
    while daemon.state.counts()[CallState.SETTLED.value] < CALLS:
        daemon.step()
    elapsed = time.perf_counter() - started
    return {"batch_size": batch, "calls": CALLS, "seconds": round(elapsed, 3),
            "settled_per_second": round(CALLS / elapsed, 1),
            "transactions": int(daemon.metrics.registry.get_sample_value("modelhub_settlement_batches_total"))}


def serve_path_latency(relayer_hub: Hub, store_root: Path) -> dict:
    """Per-call time of the relayer's serve path vs. bare onnxruntime, same model and input."""
    daemon = Relayer(relayer_hub, RelayerConfig(store_dir=store_root / "latency"))
    artifact = daemon.store.put(MODEL.read_bytes())
    input_bytes = codec.encode_output(INPUT)  # compact JSON, as a caller sends it
    inputs = codec.decode_input(input_bytes)
    daemon.runtime.run(artifact.digest, inputs)  # load and warm the session

    from modelhub.typed_data import Attestation

    def relayer_path() -> None:
        outputs = daemon.runtime.run(artifact.digest, codec.decode_input(input_bytes))
        output = codec.encode_output(outputs)
        relayer_hub.sign_attestation(Attestation(1, 1, 1, b"\0" * 32, codec.output_hash(output)))

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(MODEL.read_bytes(), options, providers=["CPUExecutionProvider"])
    feed = {"X": np.asarray(INPUT["X"], dtype=np.float32)}
    names = [o.name for o in session.get_outputs()]

    def bare() -> None:
        session.run(names, feed)

    def timed(fn) -> list[float]:
        for _ in range(100):
            fn()
        samples = []
        for _ in range(LATENCY_ITERATIONS):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        return samples

    bare_s, relayer_s = timed(bare), timed(relayer_path)
    p50_bare, p50_relayer = statistics.median(bare_s), statistics.median(relayer_s)
    return {"iterations": LATENCY_ITERATIONS, "bare_p50_us": round(p50_bare * 1e6, 1),
            "relayer_p50_us": round(p50_relayer * 1e6, 1), "ratio": round(p50_relayer / p50_bare, 2),
            "overhead_p50_us": round((p50_relayer - p50_bare) * 1e6, 1)}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, Anvil() as anvil, networks.parse_network_choice(anvil.url):
        deployer, uploader, caller, relayer = accounts.test_accounts[:4]
        deployment = deploy(deployer, params=DeployParams(request_timeout=3_600))
        uploader_hub, caller_hub, relayer_hub = (Hub(deployment, a) for a in (uploader, caller, relayer))
        upload = uploader_hub.upload_model(MODEL, "iris", PRICE, store=ModelStore(Path(tmp) / "uploads"))
        caller_hub.faucet(10**21)
        caller_hub.deposit(10**21)
        relayer_hub.faucet(relayer_hub.min_bond)
        relayer_hub.relayer_register("http://127.0.0.1:8700", relayer_hub.min_bond)

        throughput = [settle_throughput(uploader_hub, caller_hub, relayer_hub, upload.model_id, b, Path(tmp))
                      for b in BATCH_SIZES]
        latency = serve_path_latency(relayer_hub, Path(tmp))

    base = throughput[0]["settled_per_second"]
    print(f"Settled calls per second through the relayer daemon ({CALLS} paid calls of the iris model, anvil):\n")
    print("| batch size | seconds | transactions | settled calls/s | vs batch 1 |")
    print("|---:|---:|---:|---:|---:|")
    for row in throughput:
        print(f"| {row['batch_size']} | {row['seconds']} | {row['transactions']} | {row['settled_per_second']} "
              f"| {row['settled_per_second'] / base:.1f}x |")
    print(f"\nPer-call time, median of {latency['iterations']} (iris model, one row):\n")
    print("| path | p50 µs |")
    print("|---|---:|")
    print(f"| bare onnxruntime `session.run` | {latency['bare_p50_us']} |")
    print(f"| relayer serve path (decode + check + run + encode + hash + sign) | {latency['relayer_p50_us']} |")
    print(f"| ratio relayer / bare | {latency['ratio']}x (overhead {latency['overhead_p50_us']} µs) |")

    out = ROOT / "bench" / "results" / "relayer.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"throughput": throughput, "latency": latency}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
