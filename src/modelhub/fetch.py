"""Model files fetched by content id over HTTP, from a relayer (GET /v1/artifacts/{cid}) or any
content-addressed source (an IPFS gateway's /ipfs/{cid}), always checked against the digest.

Every source is untrusted: a download streams (never held whole in memory when it goes to a
store), is cut off past a size limit, a read timeout and a total time limit, and is kept only
if its bytes hash to the digest on chain. Used by the relayer (in the background), the SDK and
CLI (`models show`) and the hub's model cards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import requests
import urllib3

from .errors import ArtifactNotFoundError, ArtifactTooLargeError, DigestMismatchError, ModelFileUnavailableError
from .store import DEFAULT_MAX_SIZE, ModelStore, StoredArtifact, digest_to_cid, file_digest

__all__ = ["Limits", "Source", "fetch_bytes", "fetch_first", "fetch_into"]

CHUNK = 256 * 1024
RELAYER_ROUTE = "/v1/artifacts/{cid}"


@dataclass(frozen=True)
class Limits:
    """How much one download from one source may cost: bytes, seconds to connect, seconds of
    silence between two reads, and seconds in all (a peer that trickles bytes is cut off)."""

    max_size: int = DEFAULT_MAX_SIZE
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 300.0


@dataclass(frozen=True)
class Source:
    """Where files may be fetched by CID: a URL template holding `{cid}`."""

    template: str

    @classmethod
    def parse(cls, text: str) -> "Source":
        """A template (`https://gw.example/ipfs/{cid}`), or a relayer's base URL, which gets the
        relayer route (`http://host:8700` -> `http://host:8700/v1/artifacts/{cid}`). ValueError
        for anything but an http(s) URL."""
        text = text.strip()
        parsed = urlparse(text.replace("{cid}", "cid"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{text!r} is not an http(s) URL of a relayer or of a gateway serving files by CID")
        return cls(text if "{cid}" in text else text.rstrip("/") + RELAYER_ROUTE)

    def url(self, cid: str) -> str:
        return self.template.replace("{cid}", cid)

    def __str__(self) -> str:
        return self.template


def _chunks(url: str, limits: Limits, http: requests.Session | None) -> Iterator[bytes]:
    """The body of GET `url` in chunks, within `limits`; ArtifactNotFoundError if the source
    does not answer 200, ArtifactTooLargeError past the size limit."""
    started = time.monotonic()
    getter = http or requests
    try:
        # identity: no compressed body whose unpacked size the limit could not see coming
        reply = getter.get(url, stream=True, timeout=(limits.connect_timeout, limits.read_timeout),
                           headers={"Accept-Encoding": "identity"})
    except requests.RequestException as error:
        raise ArtifactNotFoundError(f"{url} did not answer ({type(error).__name__})") from None
    with reply:
        if reply.status_code != 200:
            raise ArtifactNotFoundError(f"{url} answered HTTP {reply.status_code}")
        declared = reply.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limits.max_size:
            raise ArtifactTooLargeError(f"{url} offers {declared} bytes, more than the limit of {limits.max_size}")
        received = 0
        try:
            # read1: what one socket read brings, so the total time limit is checked as often as
            # bytes come (a plain read of a chunk waits until the whole chunk has trickled in).
            while chunk := reply.raw.read1(CHUNK, decode_content=True):
                received += len(chunk)
                if received > limits.max_size:
                    raise ArtifactTooLargeError(f"{url} sent more than the limit of {limits.max_size} bytes")
                if time.monotonic() - started > limits.total_timeout:
                    raise ArtifactNotFoundError(f"{url} took more than {limits.total_timeout:g} s to send the file")
                yield chunk
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            raise ArtifactNotFoundError(f"{url} broke off the download ({type(error).__name__})") from None


def fetch_into(store: ModelStore, source: Source, digest: bytes, limits: Limits | None = None,
               http: requests.Session | None = None) -> StoredArtifact:
    """Downloads the file with `digest` from `source` into `store`, streamed and hashed on the
    way; nothing is stored unless it matches (DigestMismatchError, ArtifactTooLargeError,
    ArtifactNotFoundError)."""
    limits = limits or Limits(max_size=store.max_size)
    url = source.url(digest_to_cid(digest))
    try:
        return store.receive(_chunks(url, limits, http), digest)
    except DigestMismatchError as error:
        raise DigestMismatchError(f"{url} served another file: {error}") from None


def fetch_bytes(source: Source, digest: bytes, limits: Limits | None = None,
                http: requests.Session | None = None) -> bytes:
    """The bytes of the file with `digest` from `source`, checked (the same errors as fetch_into)."""
    limits = limits or Limits()
    url = source.url(digest_to_cid(digest))
    data = b"".join(_chunks(url, limits, http))
    actual = file_digest(data)
    if actual != digest:
        raise DigestMismatchError(f"{url} served another file: its bytes hash to 0x{actual.hex()}, not "
                                  f"0x{digest.hex()}")
    return data


def fetch_first(sources: Iterable[Source], digest: bytes, fetch: Callable[[Source], object],
                on_failure: Callable[[Source, ModelFileUnavailableError], None] | None = None) -> tuple[object, Source]:
    """(what `fetch(source)` returned, that source) for the first source that serves the file;
    each failure is told to `on_failure`; ArtifactNotFoundError saying what each source did
    when none served it."""
    tried = []
    for source in sources:
        try:
            return fetch(source), source
        except ModelFileUnavailableError as error:
            tried.append(str(error))
            if on_failure is not None:
                on_failure(source, error)
    cid = digest_to_cid(digest)
    if not tried:
        raise ArtifactNotFoundError(f"there is no source to fetch the model file {cid} from")
    raise ArtifactNotFoundError(f"no source served the model file {cid} (digest 0x{digest.hex()}): "
                                + "; ".join(tried))
