"""Tests of modelhub.codec: call inputs decode with clear errors, and outputs encode to one
canonical byte string (RFC 8785 form) whose keccak-256 is the attested outputHash."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelhub.codec import (
    decode_input,
    encode_output,
    encode_plain,
    format_number,
    input_hash,
    output_hash,
    tensor_shape,
    to_plain,
)
from modelhub.errors import InvalidInputError, OutputEncodingError, RejectReason

# --- outputs -------------------------------------------------------------------------------


def test_output_keys_are_sorted_and_written_without_whitespace() -> None:
    encoded = encode_output({"b": [[1, 2]], "a": [{"z": 0.5, "y": 0.25}]})
    assert encoded == b'{"a":[{"y":0.25,"z":0.5}],"b":[[1,2]]}'


def test_the_same_outputs_always_encode_to_the_same_bytes() -> None:
    forwards = {"label": np.array([0, 2]), "scores": np.array([[0.1, 0.9]], dtype=np.float32)}
    backwards = dict(reversed(list(forwards.items())))
    assert encode_output(forwards) == encode_output(backwards)
    assert encode_output(forwards) == encode_output(to_plain(forwards))


def test_a_float32_is_written_as_the_shortest_decimal_that_round_trips_to_it() -> None:
    encoded = encode_output({"y": np.array([0.1, 1 / 3, 0.97], dtype=np.float32)})
    assert encoded == b'{"y":[0.1,0.33333334,0.97]}'
    assert np.array_equal(np.array(json.loads(encoded)["y"], dtype=np.float32),
                          np.array([0.1, 1 / 3, 0.97], dtype=np.float32))


def test_a_float64_keeps_its_full_precision() -> None:
    assert encode_output({"y": np.array([0.1, 1 / 3])}) == b'{"y":[0.1,0.3333333333333333]}'


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (3.0, "3"),
        (-0.0, "0"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (123456.789, "123456.789"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (2**70, "1180591620717411303424"),  # integers are written exactly
    ],
)
def test_numbers_are_written_in_the_ecmascript_form_rfc_8785_uses(number: float,
                                                                   text: str) -> None:
    assert format_number(number) == text


def _significant_digits(text: str) -> str:
    """The digits of a number's text that carry its value: no sign, point, exponent or padding zeros."""
    return text.lstrip("-").split("e")[0].replace(".", "").strip("0")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float64_round_trips_through_its_text(number: float) -> None:
    text = format_number(number)
    assert float(text) == number
    assert len(_significant_digits(text)) <= 17


@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_any_finite_float32_round_trips_at_float32_precision(number: float) -> None:
    value = np.float32(number)
    text = encode_output({"y": value}).decode()[5:-1]
    assert np.float32(float(text)) == value
    # As short as float32 precision allows: never more significant digits than the float64
    # repr of the same value (the notations differ: RFC 8785 writes 4.328729e+20 out in full).
    assert len(_significant_digits(text)) <= min(9, len(_significant_digits(repr(float(value)))))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_nan_and_infinity_are_refused_with_a_clear_error(bad: float) -> None:
    with pytest.raises(OutputEncodingError, match="finite") as raised:
        encode_output({"y": [[1.0, bad]]})
    assert "outputs['y'][0][1]" in str(raised.value)
    assert raised.value.reject_reason == RejectReason.MODEL_ERROR


def test_zipmap_labels_become_string_keys() -> None:
    rows = [{0: np.float32(0.25), 2: np.float32(0.75)}]
    assert encode_output({"probabilities": rows}) == b'{"probabilities":[{"0":0.25,"2":0.75}]}'


def test_keys_are_ordered_by_utf16_code_units_as_rfc_8785_requires() -> None:
    # By code point U+FFFD comes first; in UTF-16 the emoji's surrogate pair (D83D…) does.
    encoded = encode_output({"\ufffd": 1, "\U0001f600": 2, "a": 3})
    assert encoded == '{"a":3,"\U0001f600":2,"\ufffd":1}'.encode()


def test_strings_are_escaped_only_where_json_requires() -> None:
    encoded = encode_output({"label": ["café", 'say "hi"\n', "\x1f"]})
    assert encoded == '{"label":["café","say \\"hi\\"\\n","\\u001f"]}'.encode()


def test_values_without_a_json_form_are_refused() -> None:
    with pytest.raises(OutputEncodingError, match="no JSON form"):
        encode_output({"y": [None]})
    with pytest.raises(OutputEncodingError, match="must be strings"):
        encode_output({"y": {(1, 2): 3}})


def test_canonical_bytes_parse_and_encode_back_to_themselves() -> None:
    # What a verifier does with bytes a relayer delivered: parse, re-encode, compare.
    original = encode_output({"p": [{"0": np.float32(7.484756e-7)}], "y": np.float32([[213.5]])})
    assert encode_output(json.loads(original)) == original


def test_output_hash_is_the_keccak_256_of_the_bytes() -> None:
    assert output_hash(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    assert input_hash(b'{"X":[1]}') == output_hash(b'{"X":[1]}')


# --- inputs --------------------------------------------------------------------------------


def test_a_valid_input_decodes_to_its_tensors() -> None:
    decoded = decode_input(b'{"X": [[5.1, 3.5, 1.4, 0.2]], "k": 3}')
    assert decoded == {"X": [[5.1, 3.5, 1.4, 0.2]], "k": 3}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"X": [1, 2', "not valid JSON"),
        (b"[[1, 2]]", "JSON array, but it must be a JSON object"),
        (b'"X"', "JSON string"),
        (b'{"X": NaN}', "NaN"),
        (b'{"X": [Infinity]}', "Infinity"),
        (b'{"X": [1e400]}', "too large"),
        (b'{"X": 1, "X": 2}', "twice"),
        (b'{"X": [[1, 2], [3]]}', "ragged"),
        (b'{"X": [["a", 2]]}', "input 'X[0][0]' is the string 'a'"),
        (b'{"X": [true]}', "input 'X[0]' is true"),
        (b'{"X": {"a": 1}}', "is an object"),
        (b'{"X": null}', "is null"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_undecodable_inputs_are_refused_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[")) as raised:
        decode_input(data)
    assert raised.value.reject_reason == RejectReason.INPUT_MISMATCH


def test_the_shape_of_nested_lists_is_their_lengths() -> None:
    assert tensor_shape([[1, 2, 3], [4, 5, 6]]) == [2, 3]
    assert tensor_shape(7.5) == []
    assert tensor_shape([]) == [0]


json_values = st.recursive(
    st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_the_relayers_plain_encoder_writes_the_same_bytes_as_encode_output(value) -> None:
    # The relayer's hot path skips the numpy-to-plain walk for values that are plain already
    # (parsed JSON, runtime outputs); it must not change a byte of the canonical form.
    parsed = json.loads(json.dumps(value))
    assert encode_plain(parsed) == encode_output(parsed)
