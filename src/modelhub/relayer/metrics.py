"""The relayer's Prometheus metrics: on-chain calls seen, served, rejected and dropped, fast calls
accepted, refused and settled, settlement batches, latencies, fees earned, and jury duty.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Inference on the example models takes well under a millisecond; settlement waits for a block.
INFERENCE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SETTLEMENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
# A fast call is answered in about a millisecond plus the model's own time.
FAST_CALL_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


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

        # Fast calls (paid with signed receipts, settled later with settleReceipts).
        self.fast_calls_accepted = Counter("modelhub_fast_calls_accepted", "Fast calls answered (receipt stored)",
                                           registry=r)
        self.fast_calls_refused = Counter("modelhub_fast_calls_refused", "Fast calls refused, by error code",
                                          ["code"], registry=r)
        self.fast_call_seconds = Histogram(
            "modelhub_fast_call_seconds", "Time to answer an accepted fast call: checks, model, commit, signing",
            buckets=FAST_CALL_BUCKETS, registry=r,
        )
        self.fast_calls_settled = Counter("modelhub_fast_calls_settled", "Fast calls settled on chain", registry=r)
        self.fast_amount_settled = Counter("modelhub_fast_amount_settled_base_units",
                                           "Amount settled from receipts, in token base units", registry=r)
        self.fast_settlement_batches = Counter("modelhub_fast_settlement_batches", "settleReceipts transactions sent",
                                               registry=r)
        self.fast_receipts_skipped = Counter("modelhub_fast_receipts_skipped",
                                             "Receipts the escrow skipped at settlement, by reason", ["reason"],
                                             registry=r)
        self.fast_unsettled_amount = Gauge("modelhub_fast_unsettled_amount_base_units",
                                           "Amount of accepted receipts not settled yet, in token base units",
                                           registry=r)
        self.fast_open_channels = Gauge("modelhub_fast_open_channels", "Channels holding an unsettled receipt",
                                        registry=r)
        self.fast_chain_reads = Counter(
            "modelhub_fast_chain_reads", "Chain reads made while answering fast calls (a model's first call); "
            "callers are known from events, so a refused caller costs none", registry=r)
        self.files_wanted = Counter("modelhub_model_files_wanted", "Rounds of fetching a model file this relayer "
                                    "lacks (from the other relayers and --fetch-from)", registry=r)
        self.files_fetched = Counter("modelhub_model_files_fetched", "Model files fetched and checked against "
                                     "their digest", registry=r)
        self.file_fetch_failures = Counter(
            "modelhub_model_file_fetch_failures", "Downloads of a model file from one source that failed, by reason "
            "(unavailable; digest_mismatch and too_large: discarded, never served)", ["reason"], registry=r)
        self.uploads_refused = Counter("modelhub_uploads_refused", "Model file uploads refused, by reason",
                                       ["reason"], registry=r)

        # Jury duty on the dispute court (relayer/juror.py).
        self.disputes_seen = Counter("modelhub_disputes_seen", "Disputes opened on chain", registry=r)
        self.jury_draws = Counter("modelhub_jury_draws", "Jury draws this relayer sent (first of the race)",
                                  registry=r)
        self.jury_seats = Counter("modelhub_jury_seats", "Juries this relayer was drawn to", registry=r)
        self.juror_verdicts = Counter("modelhub_juror_verdicts", "Verdicts reached as a juror, by vote (matches: "
                                      "the attested output is what the model gives; wrong: it is not)", ["vote"],
                                      registry=r)
        self.juror_commits = Counter("modelhub_juror_commits", "Vote commitments sent", registry=r)
        self.juror_reveals = Counter("modelhub_juror_reveals", "Votes revealed", registry=r)
        self.juror_abstentions = Counter(
            "modelhub_juror_abstentions", "Jury seats on which this relayer did not vote, by reason (no_verdict: the "
            "model ran out of time; missed: a deadline passed first)", ["reason"], registry=r)
        self.disputes_resolved = Counter("modelhub_disputes_resolved", "Disputes this relayer resolved (first of "
                                         "the race)", registry=r)
        self.dispute_payouts = Counter("modelhub_dispute_payouts_base_units", "Dispute payouts claimed from the "
                                       "court (rewards, awards), in token base units", registry=r)
        self.pool_weight_syncs = Counter("modelhub_jury_pool_weight_syncs", "Syncs of this relayer's stale weight in "
                                         "the jury pool (a bond changed while a draw was pending)", registry=r)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
