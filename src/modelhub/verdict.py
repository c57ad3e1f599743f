"""Whether an attested output is what a model gives: re-run the model on the call's input and
compare with the attested output bytes, exactly or under the model's tolerance for floats.

Used by jurors (the relayer daemon re-running a disputed call) and by callers spot-checking
their own calls; both must reach the same verdict on the same bytes, so the rule lives here once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import codec
from .errors import (InferenceTimeoutError, InvalidContentIdError, InvalidInputError, InvalidModelCardError,
                     ModelExecutionError, ModelFileError, OutputEncodingError)
from .store import cid_to_digest, digest_to_cid, file_digest
from .typed_data import VOTE_OUTPUT_MATCHES, VOTE_OUTPUT_WRONG

__all__ = ["CARD_URI_SCHEME", "DEFAULT_TOLERANCE", "MAX_CARD_BYTES", "Tolerance", "TolerancePolicy", "Verdict",
           "card_digest", "card_uri", "compare_outputs", "float_outputs", "judge", "read_card"]


@dataclass(frozen=True)
class Tolerance:
    """How far a float may be from the recomputed one and still be the same answer:
    |attested - recomputed| <= atol + rtol * |recomputed| (numpy's `isclose` rule)."""

    atol: float
    rtol: float

    def accepts(self, attested: float, recomputed: float) -> bool:
        return abs(attested - recomputed) <= self.atol + self.rtol * abs(recomputed)


# float32 kernels on different CPUs (SSE, AVX2, AVX-512, ARM NEON) differ in the last bits of a
# sum: a relative 1e-4 is hundreds of float32 ulps, far below any difference a cheaper model makes.
DEFAULT_TOLERANCE = Tolerance(atol=1e-5, rtol=1e-4)


@dataclass(frozen=True)
class TolerancePolicy:
    """The tolerance of each floating-point output of a model version: its own declaration
    (from its model card) or the default. Integer, boolean and string outputs compare exactly."""

    default: Tolerance = DEFAULT_TOLERANCE
    outputs: Mapping[str, Tolerance] = field(default_factory=dict)

    def for_output(self, name: str) -> Tolerance:
        return self.outputs.get(name, self.default)

    @classmethod
    def from_card(cls, card: Mapping[str, Any] | None) -> TolerancePolicy:
        """The policy a model card declares: {"tolerance": {"<output name>": {"atol": x, "rtol": y}}}
        (either key may be left out: the default's). No "tolerance" key: the default for every
        output. Raises ValueError saying what is wrong with a malformed declaration."""
        if not card or "tolerance" not in card:
            return cls()
        declared = card["tolerance"]
        if not isinstance(declared, Mapping):
            raise ValueError('"tolerance" must map output names to {"atol": number, "rtol": number}')
        outputs = {}
        for name, bounds in declared.items():
            if not isinstance(bounds, Mapping) or not set(bounds) <= {"atol", "rtol"}:
                raise ValueError(f'the tolerance of output "{name}" must be {{"atol": number, "rtol": number}}')
            values = {key: bounds.get(key, getattr(DEFAULT_TOLERANCE, key)) for key in ("atol", "rtol")}
            for key, value in values.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                        or value < 0:
                    raise ValueError(f'the {key} of output "{name}" must be a finite number >= 0, not {value!r}')
            outputs[str(name)] = Tolerance(float(values["atol"]), float(values["rtol"]))
        return cls(outputs=outputs)


# --- a version's model card: where it declares its tolerance ------------------------------

MAX_CARD_BYTES = 256 * 1024  # a tolerance takes a few dozen bytes; the card's prose fits too
CARD_URI_SCHEME = "ipfs://"


def card_uri(data: bytes) -> str:
    """The metadata URI that names a card by its content: `ipfs://` and the CIDv1 (raw, sha2-256)
    of its bytes, what `ipfs add --cid-version 1` gives a file of one block."""
    return CARD_URI_SCHEME + digest_to_cid(file_digest(data))


def card_digest(uri: str) -> bytes:
    """The sha-256 of the card a content-addressed metadata URI (`card_uri`) names.
    InvalidContentIdError saying why any other URI is not one (a CIDv0 or dag-pb CID hashes a
    UnixFS node, not the bytes)."""
    if not uri.startswith(CARD_URI_SCHEME):
        raise InvalidContentIdError(f"{uri!r} does not name the card by its content (ipfs://<CID>)")
    return cid_to_digest(uri[len(CARD_URI_SCHEME):])


def read_card(data: bytes) -> TolerancePolicy:
    """The tolerance policy a card's bytes declare, as every juror reads them: at most
    MAX_CARD_BYTES of UTF-8 JSON, an object, its "tolerance" well formed (`from_card`).
    InvalidModelCardError (kind "too large" or "malformed") saying what is wrong otherwise."""
    if len(data) > MAX_CARD_BYTES:
        raise InvalidModelCardError("too large", f"the card is {len(data)} bytes, more than the "
                                    f"{MAX_CARD_BYTES} a juror reads")
    try:
        card = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidModelCardError("malformed", f"the card is not JSON ({error})") from None
    if not isinstance(card, dict):
        raise InvalidModelCardError("malformed", "the card is not a JSON object")
    try:
        return TolerancePolicy.from_card(card)
    except ValueError as error:
        raise InvalidModelCardError("malformed", f"the card's tolerance is malformed: {error}") from None


@dataclass(frozen=True)
class Verdict:
    """A vote (VOTE_OUTPUT_MATCHES or VOTE_OUTPUT_WRONG) and why, for logs and the CLI."""

    vote: int
    reason: str

    @property
    def matches(self) -> bool:
        return self.vote == VOTE_OUTPUT_MATCHES


def float_outputs(output_types: Collection[tuple[str, str]]) -> frozenset[str]:
    """The names of a model's outputs that hold floats (tensors, or ZipMap's float scores), as
    onnxruntime's type texts say: tensor(float), tensor(double), seq(map(int64,tensor(float)))."""
    return frozenset(name for name, type_text in output_types
                     if any(kind in type_text for kind in ("float", "double")))


def judge(runtime: Any, digest: bytes, input_bytes: bytes, attested_output: bytes,
          policy: TolerancePolicy = TolerancePolicy()) -> Verdict:
    """Re-run model file `digest` (loaded in, or loadable by, `runtime`: a ModelRuntime) on
    `input_bytes` and compare with `attested_output`.

    An input the model cannot take, a model that fails on it or a file that is not a servable
    model all mean the output is wrong: an honest relayer refuses such a call instead of
    attesting an output. A run that exceeds the runtime's time limit, or a file it cannot get,
    raises (InferenceTimeoutError, ModelFileUnavailableError): no verdict, the juror decides.
    """
    try:
        inputs = codec.decode_input(input_bytes)
        model = runtime.model(digest)
        outputs = runtime.run(digest, inputs)
    except InvalidInputError as error:
        return Verdict(VOTE_OUTPUT_WRONG, f"the model cannot take this input ({error}), so no output is its answer")
    except InferenceTimeoutError:
        raise
    except ModelExecutionError as error:
        return Verdict(VOTE_OUTPUT_WRONG, f"the model fails on this input ({error})")
    except ModelFileError as error:
        return Verdict(VOTE_OUTPUT_WRONG, f"the registered file is not a servable model ({error})")
    return compare_outputs(attested_output, outputs, float_outputs(model.output_types), policy)


def compare_outputs(attested: bytes, recomputed: Mapping[str, Any], floats: Collection[str] = (),
                    policy: TolerancePolicy = TolerancePolicy()) -> Verdict:
    """Whether `attested` (output bytes a relayer signed) is the answer `recomputed` (plain
    outputs of the same model, {name: value}, as `ModelRuntime.run` returns them): the same
    canonical bytes, or the same tensors with the outputs named in `floats` within tolerance
    and every other value (integers, labels, strings, booleans, map keys) exactly equal."""
    try:
        canonical = codec.encode_plain(recomputed)
    except OutputEncodingError as error:
        return Verdict(VOTE_OUTPUT_WRONG, f"the model's own output has no canonical form ({error})")
    if canonical == bytes(attested):
        return Verdict(VOTE_OUTPUT_MATCHES, "the same canonical output bytes")
    try:
        claimed = json.loads(bytes(attested).decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as error:
        return Verdict(VOTE_OUTPUT_WRONG, f"the attested output is not JSON ({error})")
    if not isinstance(claimed, dict):
        return Verdict(VOTE_OUTPUT_WRONG, "the attested output is not a JSON object of tensors")
    if set(claimed) != set(recomputed):
        return Verdict(VOTE_OUTPUT_WRONG, f"the attested output names {sorted(claimed)}; "
                                          f"the model gives {sorted(recomputed)}")
    for name in sorted(recomputed):
        tolerance = policy.for_output(name) if name in floats else None
        difference = _difference(claimed[name], recomputed[name], tolerance, name)
        if difference:
            return Verdict(VOTE_OUTPUT_WRONG, difference)
    return Verdict(VOTE_OUTPUT_MATCHES, "the same tensors within the tolerance")


def _difference(claimed: Any, actual: Any, tolerance: Tolerance | None, path: str) -> str | None:
    """Where `claimed` differs from `actual` (None: it does not), walking lists and maps."""
    if isinstance(actual, list):
        if not isinstance(claimed, list) or len(claimed) != len(actual):
            return f"{path} has another shape than the model's output"
        for index, (c, a) in enumerate(zip(claimed, actual)):
            found = _difference(c, a, tolerance, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(actual, dict):
        if not isinstance(claimed, dict) or set(claimed) != set(actual):
            return f"{path} has other keys than the model's output"
        for key in sorted(actual):
            found = _difference(claimed[key], actual[key], tolerance, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(actual, bool) or isinstance(claimed, bool) or not _is_number(actual):
        return None if type(claimed) is type(actual) and claimed == actual else \
            f"{path} is {claimed!r}; the model gives {actual!r}"
    if not _is_number(claimed):
        return f"{path} is {claimed!r}; the model gives the number {actual!r}"
    if tolerance is None or (isinstance(actual, int) and not isinstance(actual, float)):
        return None if claimed == actual else f"{path} is {claimed!r}; the model gives {actual!r}"
    if tolerance.accepts(float(claimed), float(actual)):
        return None
    return (f"{path} is {claimed!r}; the model gives {actual!r}, beyond the tolerance "
            f"(atol {tolerance.atol:g}, rtol {tolerance.rtol:g})")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")
