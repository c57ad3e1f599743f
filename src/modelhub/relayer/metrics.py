"""The relayer's Prometheus metrics: calls seen, served, rejected and dropped, settlement
batches and their sizes, inference and settlement latency, and fees earned.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Inference on the example models takes well under a millisecond; settlement waits for a block.
INFERENCE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SETTLEMENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class RelayerMetrics:
    """Every metric of one relayer, in a registry of its own (tests run several relayers)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests_seen = Counter("modelhub_requests_seen", "Paid calls seen on chain", registry=r)
        self.requests_served = Counter("modelhub_requests_served", "Calls this relayer settled on chain", registry=r)
        self.requests_rejected = Counter(
            "modelhub_requests_rejected", "Calls this relayer rejected on chain, by reason code", ["reason"], registry=r
        )
        self.requests_dropped = Counter(
            "modelhub_requests_dropped", "Calls that ended without this relayer (settled by another, refunded, expired)",
            registry=r,
        )
        self.settlement_batches = Counter("modelhub_settlement_batches", "fulfillBatch transactions sent", registry=r)
        self.settlement_batch_size = Histogram(
            "modelhub_settlement_batch_size", "Attestations per fulfillBatch transaction", buckets=BATCH_BUCKETS, registry=r
        )
        self.inference_seconds = Histogram(
            "modelhub_inference_seconds", "Time to run one call's model, including input checks and encoding",
            buckets=INFERENCE_BUCKETS, registry=r,
        )
        self.settlement_seconds = Histogram(
            "modelhub_settlement_seconds", "Time from answering a call to its settlement on chain",
            buckets=SETTLEMENT_BUCKETS, registry=r,
        )
        self.fees_earned = Counter(
            "modelhub_fees_earned_base_units", "Relayer fees earned by settled calls, in token base units", registry=r
        )
        self.chain_head = Gauge("modelhub_chain_head", "Latest block number seen", registry=r)
        self.rpc_errors = Counter("modelhub_rpc_errors", "Rounds that failed to reach the chain, retried with backoff", registry=r)
        self.round_errors = Counter("modelhub_round_errors", "Rounds that failed unexpectedly, retried with backoff", registry=r)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
