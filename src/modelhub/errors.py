"""The project's exception hierarchy: every error a user can meet, with a message that says
what went wrong and what to do about it."""

from enum import IntEnum
from typing import ClassVar


class RejectReason(IntEnum):
    """Reasons a relayer gives `InferenceEscrow.reject` (fixed by the public interface)."""

    INPUT_MISMATCH = 1  # the input does not fit the model
    MODEL_ERROR = 2  # the model fails to load or to run
    MODEL_FILE = 3  # the model file is unavailable or does not match its digest
    OTHER = 4


class ModelHubError(Exception):
    """Base class of every error Model Hub raises on purpose."""

    # The reject reason a relayer reports when this error stops a call; None = not a call's fault.
    reject_reason: ClassVar[int | None] = None


def reject_reason_of(error: BaseException) -> int:
    """The on-chain reject reason for an error met while serving a call (4, other, if unknown)."""
    reason = getattr(error, "reject_reason", None)
    return int(reason) if reason is not None else int(RejectReason.OTHER)


# --- inputs and outputs (codec, runtime) ---------------------------------------------------


class InvalidInputError(ModelHubError):
    """A call's input bytes are not valid JSON tensors, or do not fit the model's inputs."""

    reject_reason = RejectReason.INPUT_MISMATCH


class OutputEncodingError(ModelHubError):
    """A model produced an output that has no canonical JSON form (NaN, Inf, odd types)."""

    reject_reason = RejectReason.MODEL_ERROR


# --- model files (store) -------------------------------------------------------------------


class InvalidContentIdError(ModelHubError):
    """A string or digest is not a Model Hub content id (CIDv1, raw codec, sha2-256)."""


class ArtifactNotFoundError(ModelHubError):
    """No file with this content id is in the store (or loaded in the runtime)."""

    reject_reason = RejectReason.MODEL_FILE


class DigestMismatchError(ModelHubError):
    """A file's bytes do not hash to the digest they are filed under: never use them."""

    reject_reason = RejectReason.MODEL_FILE


class ArtifactTooLargeError(ModelHubError):
    """A file is larger than the store accepts."""

    reject_reason = RejectReason.MODEL_FILE


# --- running models (runtime) --------------------------------------------------------------


class ModelFileError(ModelHubError):
    """A file matches its digest but is not an ONNX model this relayer can load and serve."""

    reject_reason = RejectReason.MODEL_ERROR


class ModelExecutionError(ModelHubError):
    """A loaded model failed while running on an input that fits its declared inputs."""

    reject_reason = RejectReason.MODEL_ERROR


class InferenceTimeoutError(ModelExecutionError):
    """A model ran longer than the relayer's time limit and was stopped."""
