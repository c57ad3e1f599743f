"""The check of a call's input against its model before the call is paid for: the model file by
its on-chain digest (from a local cache, else fetched from relayers and checked), then the same
input check relayers run before they serve (`runtime.check_inputs`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import errors as e
from .relayer_client import RelayerClient
from .runtime import ModelRuntime, check_inputs
from .store import ModelStore, digest_to_cid, file_digest

__all__ = ["CACHE_ENV", "InputCheck", "default_cache_folder"]

CACHE_ENV = "MODELHUB_CACHE"
FETCH_TIMEOUT_S = 10.0


def default_cache_folder() -> Path:
    """Where the SDK keeps the model files it fetched: $MODELHUB_CACHE, else the user's cache
    folder ($XDG_CACHE_HOME, or ~/.cache) /modelhub."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "modelhub"


class InputCheck:
    """Fits call inputs to model files. A file comes from `store` (a local cache, re-hashed on
    every read), else from the first relayer that sends bytes whose sha-256 is the digest on
    chain; only such bytes are kept. Loaded models stay in memory for the next check."""

    def __init__(self, store: ModelStore, timeout: float = FETCH_TIMEOUT_S) -> None:
        self.store = store
        self.timeout = timeout
        self._runtime = ModelRuntime(max_sessions=4, store=store)

    def model_file(self, digest: bytes, sources: Callable[[], Iterable[str]], what: str) -> bytes:
        """The file whose sha-256 is `digest` (the file of `what`, "model 1 version 2"): from the
        store, else fetched from the relayer URLs `sources()` yields, in order, and stored."""
        try:
            return self.store.get_verified(digest)
        except e.ModelFileUnavailableError:
            pass  # not there, or damaged: fetch it again
        cid = digest_to_cid(digest)
        tried = []
        for url in sources():
            try:
                data = RelayerClient(url, timeout=self.timeout).artifact(cid, self.store.max_size)
            except e.RelayerUnreachableError:
                tried.append(f"{url} does not answer")
                continue
            except e.ModelHubError as error:
                tried.append(str(error))
                continue
            if file_digest(data) != digest:
                tried.append(f"{url} sent a file that is not {cid}")  # never kept: it is not this file
                continue
            self.store.put(data)
            return data
        asked = "; ".join(tried) if tried else "no relayer is registered and active"
        raise e.ArtifactNotFoundError(f"the file of {what} ({cid}) is not in the local cache "
                                      f"({self.store.root}) and no relayer sent it ({asked})")

    def check(self, digest: bytes, inputs: Mapping[str, Any], sources: Callable[[], Iterable[str]],
              what: str) -> None:
        """Raises InvalidInputError, naming the tensors the model expects, unless `inputs` fit
        the model file with sha-256 `digest`; ModelFileError if relayers could not run that file."""
        try:
            try:
                model = self._runtime.model(digest)
            except e.ModelFileUnavailableError:
                model = self._runtime.load(digest, self.model_file(digest, sources, what))
        except e.ModelFileUnavailableError as error:
            raise e.InputCheckUnavailableError(
                f"cannot check the input against {what} before paying: {error}; nothing was paid. "
                "Try again when a relayer serving it answers, or pay without the check "
                "(check_input=False)") from None
        except e.ModelFileError as error:
            raise e.ModelFileError(f"{what} cannot be served: {error}; relayers reject calls to it "
                                   "(reason 2), so nothing was paid") from None
        try:
            check_inputs(model, inputs)
        except e.InvalidInputError as error:
            raise e.InvalidInputError(f"the input does not fit {what}, so nothing was paid: {error}") from None
