"""Call inputs and model outputs as bytes: decoding a call's JSON input, and the canonical JSON
encoding of outputs whose keccak-256 is the `outputHash` a relayer signs."""

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
from eth_utils import keccak

from modelhub.errors import InvalidInputError, OutputEncodingError

INPUT_EXAMPLE = '{"X": [[5.1, 3.5, 1.4, 0.2]]}'
# Deeper than any tensor has reason to be. Checked before parsing: Python's JSON parser
# recurses per level and, under a raised recursion limit, overflows the C stack instead of
# raising RecursionError -- one request could otherwise crash a relayer.
MAX_NESTING = 32


# --- inputs --------------------------------------------------------------------------------


def decode_input(data: bytes) -> dict[str, Any]:
    """Parse a call's input bytes into {tensor name: number or nested number lists}.

    Checks structure only (UTF-8, JSON object, numeric leaves, rectangular lists); whether the
    tensors fit a model is `runtime.check_inputs`'s job.
    """
    document = _parse_json(_decode_utf8(data))
    if not isinstance(document, dict):
        raise InvalidInputError(
            f"the input is a JSON {_json_kind(document)}, but it must be a JSON object mapping "
            f"tensor names to values, e.g. {INPUT_EXAMPLE}"
        )
    for name, value in document.items():
        tensor_shape(value, name)
    return document


def tensor_shape(value: Any, name: str = "value") -> list[int]:
    """The shape of a number or of nested number lists; refuses other leaves and ragged lists."""
    return _shape_at(value, name, "")


def encode_input(inputs: Mapping[str, Any] | bytes) -> bytes:
    """A call's input bytes: compact UTF-8 JSON, checked to be an object of numeric tensors."""
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        data = bytes(inputs)
    else:
        try:
            data = json.dumps(dict(inputs), separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"the inputs have no JSON form: {error}") from None
    decode_input(data)  # raises InvalidInputError saying what is wrong, before paying
    return data


def canonical_input(inputs: Mapping[str, Any] | bytes) -> bytes:
    """The canonical JSON of a fast call's input (`encode_output`), checked to be an object of
    numeric tensors: its keccak-256 is the attestation's inputHash."""
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        document = decode_input(bytes(inputs))
    elif isinstance(inputs, Mapping):
        document = dict(inputs)
        for name, value in document.items():
            if not isinstance(name, str):
                raise InvalidInputError(f"input tensor names are strings, not {name!r}")
            tensor_shape(getattr(value, "tolist", lambda: value)(), name)
    else:
        raise InvalidInputError(f"the inputs are a {type(inputs).__name__}, but must be a JSON "
                                "object of tensors (a dict, or its bytes)")
    try:
        return encode_output(document)
    except OutputEncodingError as error:
        raise InvalidInputError(f"the input has no canonical JSON form: {error}") from None


def input_hash(data: bytes) -> bytes:
    """keccak-256 of a call's input bytes: the request's `inputHash`."""
    return keccak(primitive=bytes(data))


def _decode_utf8(data: bytes) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInputError(
            f"the input is not UTF-8 text (bad byte at offset {error.start}); "
            f"send a UTF-8 encoded JSON object such as {INPUT_EXAMPLE}"
        ) from None


def _check_nesting(text: str) -> None:
    """Refuses JSON nested deeper than MAX_NESTING, with one pass and no recursion."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise InvalidInputError(
                    f"the input JSON is nested too deeply to be a tensor (more than {MAX_NESTING} levels)"
                )
        elif char in "]}":
            depth -= 1


def _parse_json(text: str) -> Any:
    _check_nesting(text)
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_object_without_duplicates,
        )
    except InvalidInputError:
        raise
    except RecursionError:
        raise InvalidInputError("the input JSON is nested too deeply to be a tensor") from None
    except ValueError as error:  # json.JSONDecodeError, or an integer with too many digits
        raise InvalidInputError(
            f"the input is not valid JSON ({error}); send an object such as {INPUT_EXAMPLE}"
        ) from None


def _refuse_constant(token: str) -> Any:
    raise InvalidInputError(f"the input contains {token}, which is not a JSON number; "
                            "send finite numbers only")


def _finite_float(token: str) -> float:
    number = float(token)
    # Python reads 1e400 as inf: refuse it like NaN rather than feed a model infinities.
    if not math.isfinite(number):
        raise InvalidInputError(f"the input number {token} is too large for a 64-bit float")
    return number


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key means different things to different JSON parsers: refuse the ambiguity.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidInputError(f"the input names tensor '{key}' twice; name each tensor once")
        result[key] = value
    return result


def _shape_at(value: Any, name: str, path: str) -> list[int]:
    if _is_number(value):
        return []
    if not isinstance(value, list):
        raise InvalidInputError(
            f"input '{name}{path}' is {_describe(value)}, but tensor values must be numbers "
            "or nested lists of numbers"
        )
    if not value:
        return [0]
    shapes = [_shape_at(item, name, f"{path}[{index}]") for index, item in enumerate(value)]
    for index, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0]:
            raise InvalidInputError(
                f"input '{name}' is ragged: {name}{path}[0] has shape {shapes[0]} but "
                f"{name}{path}[{index}] has shape {shape}; every row of a tensor must have "
                "the same length"
            )
    return [len(value), *shapes[0]]


def _is_number(value: Any) -> bool:
    # bool is a subclass of int, but JSON true/false are not numbers.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return f"the string {value[:20]!r}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else type(value).__name__


# --- outputs -------------------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """Plain Python (dict, list, int, float, str, bool) for numpy values, ready for JSON.

    Floats keep the precision of their own type: float32 0.1 becomes the Python float 0.1.
    Integer mapping keys (ZipMap labels) become strings, as JSON object keys must be.
    """
    if isinstance(value, np.ndarray):
        return _plain_array(value)
    if isinstance(value, np.generic):
        return _plain_scalar(value)
    if isinstance(value, Mapping):
        plain = {_plain_key(key): to_plain(item) for key, item in value.items()}
        if len(plain) != len(value):
            raise OutputEncodingError(f"the keys {list(value)} collide once written as strings")
        return plain
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    return value


def encode_output(outputs: Mapping[str, Any]) -> bytes:
    """The canonical UTF-8 JSON bytes of a model's outputs {tensor name: value}.

    The form is RFC 8785 (JSON Canonicalization Scheme), so a verifier in any language can
    rebuild it: keys sorted by UTF-16 code units, no whitespace, strings escaped only where
    JSON requires, floats in ECMAScript's shortest round-trip form (0.1, 1e-7, 3 for 3.0).
    Two refinements: a float32 is written as the shortest decimal that round-trips to that
    float32 (0.1, not 0.10000000149011612), and integers are written exactly, even past 2**53.
    NaN and infinities are refused.
    """
    if not isinstance(outputs, Mapping):
        raise OutputEncodingError(
            f"outputs must be a mapping of tensor names to values, not {type(outputs).__name__}"
        )
    return encode_plain(to_plain(outputs))


def encode_plain(value: Mapping[str, Any]) -> bytes:
    """`encode_output` of a value that is plain Python already (parsed JSON, or what
    `runtime.run` returns): the same bytes, without walking the value to convert it first."""
    text = _encode_value(value, "outputs")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise OutputEncodingError("an output string holds a lone UTF-16 surrogate, "
                                  "which has no UTF-8 form") from None


def output_hash(data: bytes) -> bytes:
    """keccak-256 of the output bytes a relayer delivered: the attestation's `outputHash`."""
    return keccak(primitive=bytes(data))


def format_number(value: int | float) -> str:
    """A number as RFC 8785 writes it (ECMAScript Number.toString); integers exactly."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OutputEncodingError(f"{value!r} is not a number")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise OutputEncodingError(f"{value} has no JSON form; outputs must be finite numbers")
    if value == 0:
        return "0"  # also for -0.0, as ECMAScript writes it
    sign = "-" if value < 0 else ""
    digits, point = _shortest_digits(abs(value))
    return sign + _place_decimal_point(digits, point)


def _shortest_digits(value: float) -> tuple[str, int]:
    """(d1d2…dk, n) with value = 0.d1d2…dk × 10**n and k as small as round-tripping allows."""
    # repr(float) is Python's shortest round-trip form; Decimal splits it into digits.
    _, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    return digits, int(exponent) + len(digits)


def _place_decimal_point(digits: str, point: int) -> str:
    """ECMAScript Number::toString steps for the digits `digits` × 10**(point - len(digits))."""
    count = len(digits)
    if count <= point <= 21:
        return digits + "0" * (point - count)
    if 0 < point <= 21:
        return f"{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    exponent = point - 1
    mantissa = digits[0] + (f".{digits[1:]}" if count > 1 else "")
    return f"{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _encode_value(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise OutputEncodingError(
                f"{path} is {value}; outputs must be finite numbers, so this model's output "
                "cannot be delivered for this input"
            )
        return format_number(value)
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_encode_value(item, f"{path}[{i}]")
                              for i, item in enumerate(value)) + "]"
    if isinstance(value, dict):
        return _encode_object(value, path)
    raise OutputEncodingError(f"{path} is a {type(value).__name__}, which has no JSON form")


def _encode_object(value: dict[Any, Any], path: str) -> str:
    for key in value:
        if not isinstance(key, str):
            raise OutputEncodingError(f"{path} has the key {key!r}; JSON keys must be strings")
    # RFC 8785 orders keys by UTF-16 code units, which differs from code points above U+FFFF.
    keys = sorted(value, key=lambda key: key.encode("utf-16-be", "surrogatepass"))
    members = (f"{_encode_string(key)}:{_encode_value(value[key], f'{path}[{key!r}]')}"
               for key in keys)
    return "{" + ",".join(members) + "}"


def _encode_string(value: str) -> str:
    # json.dumps escapes exactly what RFC 8785 escapes: '"', '\\' and control characters.
    return json.dumps(value, ensure_ascii=False)


def _plain_array(array: np.ndarray) -> Any:
    if array.dtype.kind == "f":
        # Iterating a flat view yields numpy scalars of the array's own precision.
        flat = [_shortest_float(item) for item in array.reshape(-1)]
        return np.array(flat, dtype=object).reshape(array.shape).tolist()
    if array.dtype.kind in "biuU":
        return array.tolist()
    if array.dtype.kind == "O":  # string tensors and sequences come back as object arrays
        return [to_plain(item) for item in array] if array.ndim else to_plain(array.item())
    raise OutputEncodingError(f"a tensor of type {array.dtype} has no JSON form")


def _plain_scalar(value: np.generic) -> Any:
    if isinstance(value, np.floating):
        return _shortest_float(value)
    if isinstance(value, np.bytes_):
        raise OutputEncodingError("a bytes value has no JSON form")
    return value.item()


def _shortest_float(value: np.floating) -> float:
    # str() of a numpy float is the shortest decimal that round-trips in its own precision;
    # as a Python float it then prints with those same digits.
    return float(str(value))


def _plain_key(key: Any) -> Any:
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return str(int(key))
    if isinstance(key, np.str_):
        return str(key)
    return key
