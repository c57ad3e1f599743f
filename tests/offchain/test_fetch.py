"""Tests of modelhub.fetch against real HTTP sources, honest and not: a file is kept only if it
hashes to its digest; a source that serves another file, too many bytes, hangs or trickles is
cut off and nothing of what it sent is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.errors import ArtifactNotFoundError, ArtifactTooLargeError, DigestMismatchError
from modelhub.fetch import Limits, Source, fetch_bytes, fetch_first, fetch_into
from modelhub.store import ModelStore, digest_to_cid, file_digest

from tests.support.file_sources import FileSource

ROOT = Path(__file__).resolve().parents[2]
IRIS = (ROOT / "examples" / "iris" / "iris.onnx").read_bytes()
DIABETES = (ROOT / "examples" / "diabetes" / "diabetes.onnx").read_bytes()  # a real model, but another one
DIGEST = file_digest(IRIS)
QUICK = Limits(max_size=1 << 20, connect_timeout=2.0, read_timeout=0.5, total_timeout=1.5)


def gateway(source: FileSource) -> Source:
    return Source.parse(source.url + "/ipfs/{cid}")


def stored_files(store: ModelStore) -> list[str]:
    return sorted(path.name for path in store.root.iterdir())


def test_a_source_is_a_relayer_url_or_a_template_holding_the_cid():
    cid = digest_to_cid(DIGEST)
    assert Source.parse("http://relayer:8700/").url(cid) == f"http://relayer:8700/v1/artifacts/{cid}"
    assert Source.parse("https://gw.example/ipfs/{cid}").url(cid) == f"https://gw.example/ipfs/{cid}"
    assert Source.parse("https://{cid}.ipfs.gw.example/").url(cid) == f"https://{cid}.ipfs.gw.example/"
    for bad in ("ftp://relayer", "relayer:8700", "", "file:///etc/passwd", "javascript:{cid}"):
        with pytest.raises(ValueError, match="not an http"):
            Source.parse(bad)


def test_the_right_file_is_stored_under_its_cid(tmp_path):
    store = ModelStore(tmp_path / "store")
    with FileSource(IRIS) as honest:
        stored = fetch_into(store, gateway(honest), DIGEST, QUICK)
        assert honest.asked == [f"/ipfs/{digest_to_cid(DIGEST)}"]
    assert (stored.cid, stored.size) == (digest_to_cid(DIGEST), len(IRIS))
    assert store.get_verified(DIGEST) == IRIS
    with FileSource(IRIS) as honest:
        assert fetch_bytes(gateway(honest), DIGEST, QUICK) == IRIS


def test_another_file_is_discarded_and_never_stored(tmp_path):
    store = ModelStore(tmp_path / "store")
    with FileSource(DIABETES) as liar:
        with pytest.raises(DigestMismatchError, match="served another file"):
            fetch_into(store, gateway(liar), DIGEST, QUICK)
        with pytest.raises(DigestMismatchError, match="served another file"):
            fetch_bytes(gateway(liar), DIGEST, QUICK)
    assert stored_files(store) == []  # neither the file nor a temporary copy of it
    assert not store.has(digest_to_cid(file_digest(DIABETES)))


@pytest.mark.parametrize("behaviour, error, says", [
    ("endless", ArtifactTooLargeError, "more than the limit of 1048576 bytes"),
    ("hang", ArtifactNotFoundError, "did not answer (ReadTimeout)"),
    ("trickle", ArtifactNotFoundError, "took more than 1.5 s"),
    ("missing", ArtifactNotFoundError, "answered HTTP 404"),
])
def test_a_source_that_floods_hangs_trickles_or_lacks_the_file_is_cut_off(tmp_path, behaviour, error, says):
    store = ModelStore(tmp_path / "store", max_size=QUICK.max_size)
    with FileSource(behaviour=behaviour) as bad:
        with pytest.raises(error, match=says.replace("(", r"\(").replace(")", r"\)")):
            fetch_into(store, gateway(bad), DIGEST, QUICK)
    assert stored_files(store) == []


def test_a_declared_length_beyond_the_limit_is_refused_before_reading(tmp_path):
    store = ModelStore(tmp_path / "store", max_size=len(IRIS) - 1)
    with FileSource(IRIS) as honest:
        with pytest.raises(ArtifactTooLargeError, match=f"offers {len(IRIS)} bytes"):
            fetch_into(store, gateway(honest), DIGEST)
    assert stored_files(store) == []


def test_the_first_source_that_serves_the_right_file_wins_and_each_failure_is_told(tmp_path):
    store = ModelStore(tmp_path / "store")
    failures = []
    with FileSource(DIABETES) as liar, FileSource(behaviour="missing") as empty, FileSource(IRIS) as honest:
        sources = [gateway(liar), gateway(empty), gateway(honest)]
        stored, source = fetch_first(sources, DIGEST, lambda s: fetch_into(store, s, DIGEST, QUICK),
                                     lambda s, e: failures.append((s, type(e).__name__)))
        assert source == sources[2] and stored.digest == DIGEST
        assert failures == [(sources[0], "DigestMismatchError"), (sources[1], "ArtifactNotFoundError")]
        with pytest.raises(ArtifactNotFoundError, match="no source served the model file .* served another file"):
            fetch_first(sources[:2], DIGEST, lambda s: fetch_bytes(s, DIGEST, QUICK))
    with pytest.raises(ArtifactNotFoundError, match="there is no source"):
        fetch_first([], DIGEST, lambda s: fetch_bytes(s, DIGEST, QUICK))
    assert stored_files(store) == [digest_to_cid(DIGEST)]
