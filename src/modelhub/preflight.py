"""The check of a call's input against its model before the call is paid for: the model file by
its on-chain digest (from a local cache, else fetched through `Hub.model_file` and kept), then
the same input check relayers run before they serve (`runtime.check_inputs`). Spot checks run
their models from the same cache."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import errors as e
from .runtime import LoadedModel, ModelRuntime, check_inputs
from .store import ModelStore, digest_to_cid

__all__ = ["CACHE_ENV", "InputCheck", "default_cache_folder"]

CACHE_ENV = "MODELHUB_CACHE"


def default_cache_folder() -> Path:
    """Where the SDK keeps the model files it fetched: $MODELHUB_CACHE, else the user's cache
    folder ($XDG_CACHE_HOME, or ~/.cache) /modelhub."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "modelhub"


class InputCheck:
    """Fits call inputs to model files kept in `store` (a local cache, re-hashed on every read;
    a damaged file is dropped and fetched again). Loaded models stay in memory for the next
    check."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.runtime = ModelRuntime(max_sessions=4, store=store)

    def model(self, digest: bytes, fetch: Callable[[], bytes]) -> LoadedModel:
        """The model file with sha-256 `digest`, loaded: from memory, the store, else `fetch`
        (a damaged copy in the store is dropped first). ModelFileUnavailableError if it cannot
        be had, ModelFileError if it is not a file relayers could run."""
        try:
            return self.runtime.model(digest)
        except e.DigestMismatchError:
            self.store.path(digest_to_cid(digest)).unlink(missing_ok=True)
            return self.runtime.load(digest, fetch())
        except e.ModelFileUnavailableError:
            return self.runtime.load(digest, fetch())

    def check(self, digest: bytes, inputs: Mapping[str, Any], fetch: Callable[[], bytes], what: str) -> None:
        """Raises InvalidInputError, naming the tensors the model expects, unless `inputs` fit
        the model file with sha-256 `digest` (the file of `what`, "model 1 version 2"); `fetch`
        brings the checked file when the store lacks it. ModelFileError if relayers could not
        run that file, InputCheckUnavailableError if it cannot be had."""
        try:
            model = self.model(digest, fetch)
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
