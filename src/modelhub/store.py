"""Content-addressed model store in a local folder: files are named by the CIDv1 (raw codec,
sha2-256) of their bytes, the same digest a model version carries on chain."""

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from multiformats import CID, multihash

from modelhub.errors import (
    ArtifactNotFoundError,
    ArtifactTooLargeError,
    DigestMismatchError,
    InvalidContentIdError,
)

DEFAULT_MAX_SIZE = 256 * 1024 * 1024  # bytes; ONNX files above this are rare for paid calls
DIGEST_SIZE = 32
_TEMP_PREFIX = ".incoming-"


@dataclass(frozen=True)
class StoredArtifact:
    """A file in the store: its content id, its sha-256 digest (the on-chain
    `artifactDigest`) and its size in bytes."""

    cid: str
    digest: bytes
    size: int

    @property
    def digest_hex(self) -> str:
        return "0x" + self.digest.hex()


def file_digest(data: bytes) -> bytes:
    """The sha-256 digest of a file's bytes: its on-chain `artifactDigest`."""
    return hashlib.sha256(data).digest()


def digest_to_cid(digest: bytes) -> str:
    """The CIDv1 (raw codec, sha2-256 multihash, base32) naming the file with this digest."""
    digest = _checked_digest(digest)
    return str(CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")))


def cid_to_digest(cid: str) -> bytes:
    """The sha-256 digest inside a content id; refuses ids that are not raw sha2-256 CIDs."""
    try:
        parsed = CID.decode(cid)
    except Exception as error:  # multiformats raises several unrelated types for bad text
        raise InvalidContentIdError(
            f"{cid!r} is not a content id ({error}); expected a CIDv1 such as 'bafkrei…'"
        ) from None
    if parsed.codec.name != "raw" or parsed.hashfun.name != "sha2-256":
        raise InvalidContentIdError(
            f"{cid!r} is a CIDv{parsed.version} with codec {parsed.codec.name} and hash "
            f"{parsed.hashfun.name}; Model Hub names files by CIDv1 with codec raw and hash "
            "sha2-256"
        )
    return _checked_digest(bytes(parsed.raw_digest))


def _checked_digest(digest: bytes) -> bytes:
    if not isinstance(digest, (bytes, bytearray, memoryview)):
        raise InvalidContentIdError(
            f"a digest must be {DIGEST_SIZE} bytes, not a {type(digest).__name__}"
        )
    if len(digest) != DIGEST_SIZE:
        raise InvalidContentIdError(
            f"a sha-256 digest is {DIGEST_SIZE} bytes, but this one is {len(digest)}"
        )
    return bytes(digest)


class ModelStore:
    """Model files in one folder, one file per content id; writes are atomic and idempotent,
    and reads re-hash the file so a damaged or swapped file is never handed out."""

    def __init__(self, root: str | os.PathLike[str], max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.root = Path(root)
        self.max_size = max_size
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> StoredArtifact:
        """Store a file (no-op when an intact copy is already there) and say what it is."""
        data = bytes(data)
        if len(data) > self.max_size:
            raise ArtifactTooLargeError(
                f"the file is {len(data)} bytes but this store accepts at most "
                f"{self.max_size}; shrink the model or raise the store's size limit"
            )
        digest = file_digest(data)
        artifact = StoredArtifact(cid=digest_to_cid(digest), digest=digest, size=len(data))
        target = self.path(artifact.cid)
        if not self._holds_intact(target, digest):
            self._write_atomically(target, [data])
        return artifact

    def receive(self, chunks: Iterable[bytes], digest: bytes) -> StoredArtifact:
        """Stores a file arriving in `chunks` (a download, say) only if its bytes hash to `digest`:
        written to a temporary file while hashed, never held whole in memory, refused as soon as
        it passes `max_size`; a file that does not match is deleted and never filed
        (DigestMismatchError, ArtifactTooLargeError)."""
        digest = _checked_digest(digest)
        cid = digest_to_cid(digest)
        target = self.path(cid)
        if self._holds_intact(target, digest):
            return StoredArtifact(cid, digest, target.stat().st_size)
        hasher, size = hashlib.sha256(), 0

        def checked() -> Iterator[bytes]:
            nonlocal size
            for chunk in chunks:
                size += len(chunk)
                if size > self.max_size:
                    raise ArtifactTooLargeError(
                        f"{cid} is more than {self.max_size} bytes, this store's limit; it was not stored")
                hasher.update(chunk)
                yield chunk
            if hasher.digest() != digest:
                raise DigestMismatchError(
                    f"the bytes received for {cid} hash to 0x{hasher.hexdigest()}, not 0x{digest.hex()}: "
                    "they are another file, and were not stored")

        self._write_atomically(target, checked())
        return StoredArtifact(cid, digest, size)

    def get(self, cid: str) -> bytes:
        """The bytes named by `cid`, checked against it."""
        return self.get_verified(cid_to_digest(cid))

    def get_verified(self, digest: bytes) -> bytes:
        """The bytes whose sha-256 is `digest`, re-hashed on every read."""
        cid = digest_to_cid(digest)
        try:
            data = self.path(cid).read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(
                f"model file {cid} (digest 0x{bytes(digest).hex()}) is not in the store at "
                f"{self.root}; upload it first"
            ) from None
        actual = file_digest(data)
        if actual != digest:
            raise DigestMismatchError(
                f"the stored file {cid} hashes to 0x{actual.hex()}, not 0x{bytes(digest).hex()}: "
                "it is damaged or was replaced; upload the original file again"
            )
        return data

    def has(self, cid: str) -> bool:
        """Whether a file is filed under `cid` (not re-hashed: `get` does that)."""
        return self.path(cid).is_file()

    def path(self, cid: str) -> Path:
        """Where the file named by `cid` lives (whether or not it exists)."""
        # Re-deriving the name from the digest keeps paths canonical and free of '/' or '..'.
        return self.root / digest_to_cid(cid_to_digest(cid))

    def _holds_intact(self, target: Path, digest: bytes) -> bool:
        try:
            return file_digest(target.read_bytes()) == digest
        except FileNotFoundError:
            return False

    def _write_atomically(self, target: Path, chunks: Iterable[bytes]) -> None:
        # A temp file in the same folder, flushed to disk, then renamed over the target: readers
        # see the whole old file or the whole new one, never a partial write. An error raised
        # by `chunks` leaves nothing behind.
        handle, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=self.root)
        try:
            with os.fdopen(handle, "wb") as temp:
                for chunk in chunks:
                    temp.write(chunk)
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        self._sync_folder()

    def _sync_folder(self) -> None:
        # Make the rename itself durable; some platforms cannot open folders, which is fine.
        try:
            folder = os.open(self.root, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
