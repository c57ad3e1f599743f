"""A version's own tolerance from its model card (relayer/model_cards.py), with real parts: the
card fetched over HTTP by the relayer's file fetcher, the diabetes model re-run by onnxruntime and
judged by verdict.judge. A content-addressed card that declares a looser tolerance turns a
"wrong" into a "matches" for an output within it; a card that is not content-addressed, absent,
another file, not JSON or malformed means the default tolerance, logged once with why."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from multiformats import CID, multihash

from modelhub import codec
from modelhub.errors import InvalidContentIdError
from modelhub.fetch import Limits, Source
from modelhub.relayer.file_fetcher import FileFetcher
from modelhub.relayer.metrics import RelayerMetrics
from modelhub.relayer.model_cards import CardTolerances
from modelhub.runtime import ModelRuntime
from modelhub.store import ModelStore, digest_to_cid, file_digest
from modelhub.verdict import DEFAULT_TOLERANCE, Tolerance, TolerancePolicy, card_digest, judge

from tests.support.file_sources import FileSource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "diabetes"
MODEL = (EXAMPLES / "diabetes.onnx").read_bytes()
INPUT = (EXAMPLES / "input.json").read_bytes()
LOOSE = json.dumps({"tolerance": {"progression": {"rtol": 0.01}}, "about": "a ridge regressor"}).encode()
QUICK = Limits(max_size=1 << 20, connect_timeout=1.0, read_timeout=1.0, total_timeout=2.0)
WAIT = 0.3  # seconds a juror waits for a card no source serves


def uri_of(card: bytes) -> str:
    return "ipfs://" + digest_to_cid(file_digest(card))


class Juror:
    """The juror's parts for one version (model 1, version 1) whose metadata URI is `uri`, fetching
    from `source` (a gateway) into a store that holds the model file."""

    def __init__(self, tmp_path: Path, uri: str, source: FileSource | None) -> None:
        self.store = ModelStore(tmp_path / "store")
        self.digest = self.store.put(MODEL).digest
        sources = [Source.parse(source.url + "/ipfs/{cid}")] if source else []
        self.fetcher = FileFetcher(self.store, lambda: sources, RelayerMetrics(), QUICK, 0.05, 0.1)
        self.cards = CardTolerances(lambda model, version: {(1, 1): uri}.get((model, version)), self.fetcher,
                                    self.store, WAIT)
        self.runtime = ModelRuntime(store=self.store)

    def policy(self, timeout: float = 10.0) -> TolerancePolicy:
        """The version's policy once the card's fetch has come to an end."""
        deadline = time.monotonic() + timeout
        while (policy := self.cards.policy(1, 1)) is None:
            assert time.monotonic() < deadline, "the card's fetch never ended"
            time.sleep(0.05)
        return policy

    def off_by(self, share: float) -> bytes:
        """The model's output on INPUT with every float moved by `share` of itself: what a relayer
        whose CPU rounds differently might attest."""
        outputs = self.runtime.run(self.digest, codec.decode_input(INPUT))
        return json.dumps({name: [[v * (1 + share) for v in row] for row in rows]
                           for name, rows in outputs.items()}).encode()


def test_a_content_addressed_card_declaring_a_looser_tolerance_is_honoured_and_read_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, "modelhub.relayer")
    with FileSource(LOOSE) as gateway:
        juror = Juror(tmp_path, uri_of(LOOSE), gateway)
        assert juror.cards.policy(1, 1) is None  # fetching: the juror waits
        policy = juror.policy()
        assert policy.for_output("progression") == Tolerance(DEFAULT_TOLERANCE.atol, 0.01)
        attested = juror.off_by(1e-3)  # ten times the default rtol, a tenth of the card's
        assert not judge(juror.runtime, juror.digest, INPUT, attested).matches
        verdict = judge(juror.runtime, juror.digest, INPUT, attested, policy)
        assert verdict.matches and verdict.reason == "the same tensors within the tolerance"
        assert not judge(juror.runtime, juror.digest, INPUT, juror.off_by(0.05), policy).matches
        assert juror.cards.policy(1, 1) is policy and len(gateway.asked) == 1  # cached by digest
    assert juror.store.get_verified(file_digest(LOOSE)) == LOOSE  # filed: this relayer serves it on
    assert "judged with the tolerance it declares for progression (atol 1e-05, rtol 0.01)" in caplog.text


CIDV0 = str(CID("base58btc", 0, "dag-pb", multihash.wrap(file_digest(LOOSE), "sha2-256")))


@pytest.mark.parametrize("uri, served, why", [
    ("https://cards.example/diabetes.json", LOOSE, "is not named by its content, so it could change after the call"),
    ("ipfs://" + CIDV0, LOOSE, "codec dag-pb"),
    (uri_of(LOOSE), b'{"tolerance": {"progression": {"rtol": 1}}}', "/ipfs/{cid} served (another file"),
    (uri_of(LOOSE), None, "answered HTTP 404"),
    (uri_of(b"\xff not JSON"), b"\xff not JSON", "the card is not JSON"),
    (uri_of(b"[1, 2]"), b"[1, 2]", "the card is not a JSON object"),
    (uri_of(b'{"tolerance": {"progression": {"rtol": -1}}}'), b'{"tolerance": {"progression": {"rtol": -1}}}',
     'the rtol of output "progression" must be a finite number >= 0'),
])
def test_a_card_not_content_addressed_unverifiable_or_malformed_means_the_default_tolerance(
    tmp_path, caplog, uri, served, why
):
    with FileSource(served or b"", behaviour="serve" if served is not None else "missing") as gateway:
        juror = Juror(tmp_path, uri, gateway)
        assert juror.policy() == TolerancePolicy()
        assert juror.policy() == TolerancePolicy()  # asked again: logged once
    warnings = [r.getMessage() for r in caplog.records if r.name == "modelhub.relayer" and "model card" in r.getMessage()]
    assert len(warnings) == 1 and "judged with the default tolerance" in warnings[0] and why in warnings[0]
    if uri.startswith("https:") or "dag-pb" in why:
        assert gateway.asked == []  # nothing to verify it against: not fetched at all
    assert not judge(juror.runtime, juror.digest, INPUT, juror.off_by(1e-3), juror.policy()).matches


def test_a_version_without_a_card_or_not_seen_is_judged_with_the_default_at_once(tmp_path):
    juror = Juror(tmp_path, "", None)
    assert juror.cards.policy(1, 1) == TolerancePolicy() and juror.cards.policy(1, 2) == TolerancePolicy()


def test_only_ipfs_uris_of_raw_sha2_256_cids_name_a_card_by_its_content():
    cid = digest_to_cid(file_digest(LOOSE))
    assert card_digest("ipfs://" + cid) == file_digest(LOOSE)
    for uri, says in [(cid, "does not name the card by its content"), ("ipfs://" + CIDV0, "codec dag-pb"),
                      (f"ipfs://{cid}/card.json", "is not a content id"), ("ipfs://", "is not a content id"),
                      ("file://examples/iris/README.md", "does not name the card by its content")]:
        with pytest.raises(InvalidContentIdError, match=says):
            card_digest(uri)
