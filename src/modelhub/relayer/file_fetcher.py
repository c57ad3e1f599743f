"""Model files (and model cards) the relayer lacks, fetched in the background from the other
registered relayers and the configured content-addressed sources (`--fetch-from`), each checked
against its digest.

`want(digest)` never blocks: it starts a fetch (one at a time per file, a few files at once) and
says how the file's fetch stands; the daemon leaves the calls of a missing file to other relayers
meanwhile and serves them once the file is held. A source that fails or serves another file is
passed over for the next one; a file that no source served is tried again after a backoff.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ArtifactTooLargeError, DigestMismatchError, ModelFileUnavailableError
from ..fetch import Limits, Source, fetch_first, fetch_into
from ..store import ModelStore, digest_to_cid
from .metrics import RelayerMetrics

log = logging.getLogger("modelhub.relayer")

WORKERS = 2  # files fetched at once


@dataclass
class FileFetch:
    """How the fetch of one file stands."""

    digest: bytes
    wanted_at: float  # monotonic time it was first wanted
    held: bool = False
    running: bool = False
    rounds: int = 0  # times every source was tried and none served the file
    next_try: float = 0.0  # monotonic time the next round may start
    problem: str | None = None  # what the last round's sources did
    liars: set[str] = field(default_factory=set)  # sources that served another file: not asked again

    def given_up_for(self, seconds: float, now: float) -> bool:
        """No source served it in a whole round, and it has been wanted `seconds` already."""
        return not self.held and self.rounds > 0 and now - self.wanted_at >= seconds

    @property
    def retry_in(self) -> float:
        return max(0.0, self.next_try - time.monotonic())


class FileFetcher:
    """Fetches wanted files into `store` from `sources()` (called at each round: the relayers
    registered now, then the configured sources), within `limits` per download."""

    def __init__(self, store: ModelStore, sources: Callable[[], list[Source]], metrics: RelayerMetrics,
                 limits: Limits, min_retry: float = 2.0, max_retry: float = 60.0) -> None:
        self.store, self.sources, self.metrics, self.limits = store, sources, metrics, limits
        self.min_retry, self.max_retry = min_retry, max_retry
        self._fetches: dict[bytes, FileFetch] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(WORKERS)

    def want(self, digest: bytes) -> FileFetch:
        """The fetch of `digest`, started or retried if it is due (never blocks)."""
        now = time.monotonic()
        with self._lock:
            fetch = self._fetches.get(digest)
            if fetch is None:
                fetch = self._fetches[digest] = FileFetch(digest, now)
            if self.store.has(digest_to_cid(digest)):
                fetch.held = True
            if fetch.held or fetch.running or now < fetch.next_try:
                return fetch
            fetch.running = True
        self.metrics.files_wanted.inc()
        # A daemon thread: a download in progress never holds up the relayer's shutdown (what it
        # wrote so far is a temporary file, never filed).
        threading.Thread(target=self._round, args=(fetch,), name="relayer-file-fetch", daemon=True).start()
        return fetch

    def _round(self, fetch: FileFetch) -> None:
        """Asks each source in turn until one serves the file (at most WORKERS files at once)."""
        with self._slots:
            self._fetch(fetch)

    def _fetch(self, fetch: FileFetch) -> None:
        cid = digest_to_cid(fetch.digest)
        try:
            sources = [source for source in self.sources() if str(source) not in fetch.liars]
            _, source = fetch_first(sources, fetch.digest,
                                    lambda source: fetch_into(self.store, source, fetch.digest, self.limits),
                                    lambda source, error: self._failed(fetch, source, error))
        except ModelFileUnavailableError as error:
            with self._lock:
                fetch.rounds += 1
                fetch.problem = str(error)
                fetch.next_try = time.monotonic() + min(self.max_retry, self.min_retry * 2 ** (fetch.rounds - 1))
                fetch.running = False
            log.warning("could not fetch the file %s (round %d): %s; trying again in %.0f s", cid,
                        fetch.rounds, error, fetch.retry_in)
            return
        except Exception:  # noqa: BLE001 -- a worker thread must not die silently; the next round retries
            log.exception("fetching the file %s failed unexpectedly", cid)
            with self._lock:
                fetch.running, fetch.next_try = False, time.monotonic() + self.max_retry
            return
        with self._lock:
            fetch.held, fetch.running, fetch.problem = True, False, None
        self.metrics.files_fetched.inc()
        log.info("fetched the file %s from %s (checked against its digest)", cid, source)

    def _failed(self, fetch: FileFetch, source: Source, error: ModelFileUnavailableError) -> None:
        if isinstance(error, (DigestMismatchError, ArtifactTooLargeError)):
            reason = "digest_mismatch" if isinstance(error, DigestMismatchError) else "too_large"
            with self._lock:
                fetch.liars.add(str(source))
            log.warning("discarded what %s served for %s, and will not ask it again for this file: %s",
                        source, digest_to_cid(fetch.digest), error)
        else:
            reason = "unavailable"
        self.metrics.file_fetch_failures.labels(reason=reason).inc()


def shuffled(urls: list[str]) -> list[str]:
    """The peers in a random order: load spreads, and no one peer is always asked first."""
    return random.sample(urls, len(urls))
