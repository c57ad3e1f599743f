"""Tests of modelhub.store: files are named by their CIDv1, writes are idempotent and atomic,
and a file that does not match its digest is never handed out."""

import base64
import hashlib
from pathlib import Path

import pytest
from multiformats import CID, multihash

from modelhub.errors import (
    ArtifactNotFoundError,
    ArtifactTooLargeError,
    DigestMismatchError,
    InvalidContentIdError,
    RejectReason,
)
from modelhub.store import ModelStore, cid_to_digest, digest_to_cid, file_digest

MODEL = b"not really a model, but the store does not care"


def independent_cidv1(data: bytes) -> str:
    """CIDv1 built by hand from the specs: version 1, codec raw (0x55), multihash sha2-256
    (0x12, length 0x20), multibase base32 lower-case without padding ('b')."""
    binary = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(binary).decode().lower().rstrip("=")


def test_a_file_is_named_by_the_cidv1_of_its_sha256(store: ModelStore) -> None:
    artifact = store.put(MODEL)
    assert artifact.cid == independent_cidv1(MODEL)
    assert artifact.cid.startswith("bafkrei")
    assert artifact.digest == hashlib.sha256(MODEL).digest()
    assert artifact.size == len(MODEL)
    assert store.path(artifact.cid).name == artifact.cid


def test_digest_and_cid_convert_both_ways() -> None:
    digest = file_digest(MODEL)
    assert cid_to_digest(digest_to_cid(digest)) == digest


def test_the_same_cid_in_another_multibase_names_the_same_file(store: ModelStore) -> None:
    artifact = store.put(MODEL)
    in_base58 = CID.decode(artifact.cid).encode("base58btc")
    assert in_base58 != artifact.cid
    assert store.path(in_base58) == store.path(artifact.cid)
    assert store.get(in_base58) == MODEL


def test_putting_the_same_bytes_twice_gives_the_same_answer_and_one_file(
    store: ModelStore,
) -> None:
    first = store.put(MODEL)
    second = store.put(MODEL)
    assert first == second
    assert [path.name for path in store.root.iterdir()] == [first.cid]


def test_stored_bytes_come_back_unchanged(store: ModelStore) -> None:
    artifact = store.put(MODEL)
    assert store.has(artifact.cid)
    assert store.get(artifact.cid) == MODEL
    assert store.get_verified(artifact.digest) == MODEL


def test_a_tampered_file_is_never_returned(store: ModelStore) -> None:
    artifact = store.put(MODEL)
    store.path(artifact.cid).write_bytes(MODEL.replace(b"model", b"m0del"))
    with pytest.raises(DigestMismatchError, match="damaged or was replaced") as raised:
        store.get_verified(artifact.digest)
    assert raised.value.reject_reason == RejectReason.MODEL_FILE
    with pytest.raises(DigestMismatchError):
        store.get(artifact.cid)


def test_putting_the_original_again_repairs_a_tampered_file(store: ModelStore) -> None:
    artifact = store.put(MODEL)
    store.path(artifact.cid).write_bytes(b"garbage")
    assert store.put(MODEL) == artifact
    assert store.get(artifact.cid) == MODEL


def test_a_file_over_the_size_limit_is_refused_and_not_written(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, max_size=10)
    with pytest.raises(ArtifactTooLargeError, match="11 bytes but this store accepts at most 10"):
        store.put(b"x" * 11)
    assert list(tmp_path.iterdir()) == []
    assert store.put(b"x" * 10).size == 10


def test_no_temporary_files_are_left_behind(store: ModelStore) -> None:
    for size in range(5):
        store.put(b"m" * size)
    assert all(path.name.startswith("bafkrei") for path in store.root.iterdir())
    assert len(list(store.root.iterdir())) == 5


def test_a_missing_file_is_reported_as_not_found(store: ModelStore) -> None:
    cid = digest_to_cid(file_digest(b"never stored"))
    assert not store.has(cid)
    with pytest.raises(ArtifactNotFoundError, match="upload it first") as raised:
        store.get(cid)
    assert raised.value.reject_reason == RejectReason.MODEL_FILE


@pytest.mark.parametrize(
    ("cid", "message"),
    [
        # CIDv0: dag-pb, the default of `ipfs add`
        ("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "codec dag-pb"),
        (str(CID("base32", 1, "dag-pb", multihash.digest(MODEL, "sha2-256"))), "codec dag-pb"),
        (str(CID("base32", 1, "raw", multihash.digest(MODEL, "sha2-512"))), "hash sha2-512"),
        ("not-a-cid", "is not a content id"),
        ("", "is not a content id"),
    ],
)
def test_content_ids_that_are_not_raw_sha256_cids_are_refused(cid: str, message: str) -> None:
    with pytest.raises(InvalidContentIdError, match=message):
        cid_to_digest(cid)


def test_a_path_cannot_escape_the_store(store: ModelStore) -> None:
    with pytest.raises(InvalidContentIdError):
        store.path("../../etc/passwd")


@pytest.mark.parametrize("digest", [b"", b"\x00" * 31, b"\x00" * 33])
def test_a_digest_must_be_32_bytes(digest: bytes) -> None:
    with pytest.raises(InvalidContentIdError, match="32 bytes"):
        digest_to_cid(digest)
