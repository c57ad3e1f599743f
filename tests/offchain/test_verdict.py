"""Tests of modelhub.verdict with the real example models in onnxruntime: an honest relayer's
bytes match, outputs within the tolerance match, made-up labels and scores, other tensors and
inputs the model cannot take are wrong, and model cards declare their own tolerances."""

from __future__ import annotations

import json

import pytest

from modelhub.codec import decode_input, encode_plain
from modelhub.errors import InferenceTimeoutError
from modelhub.runtime import ModelRuntime
from modelhub.store import file_digest
from modelhub.typed_data import VOTE_OUTPUT_MATCHES, VOTE_OUTPUT_WRONG
from modelhub.verdict import DEFAULT_TOLERANCE, Tolerance, TolerancePolicy, compare_outputs, float_outputs, judge


@pytest.fixture
def iris(iris_bytes):
    """(runtime, digest, input bytes, the honest output bytes, the plain outputs)."""
    runtime = ModelRuntime()
    digest = file_digest(iris_bytes)
    runtime.load(digest, iris_bytes)
    input_bytes = b'{"X":[[6.3,3.3,6.0,2.5]]}'
    outputs = runtime.run(digest, decode_input(input_bytes))
    return runtime, digest, input_bytes, encode_plain(outputs), outputs


def _nudged(outputs: dict, factor: float) -> bytes:
    """The outputs with every probability multiplied by `factor` (a CPU's last-bit noise, or more)."""
    changed = json.loads(encode_plain(outputs))
    changed["probabilities"] = [{label: score * factor for label, score in row.items()}
                                for row in changed["probabilities"]]
    return json.dumps(changed).encode()


def test_the_honest_relayers_bytes_match(iris):
    runtime, digest, input_bytes, honest, _ = iris
    verdict = judge(runtime, digest, input_bytes, honest)
    assert verdict.vote == VOTE_OUTPUT_MATCHES and verdict.matches
    assert verdict.reason == "the same canonical output bytes"


def test_float_scores_within_the_tolerance_match_and_beyond_it_do_not(iris):
    runtime, digest, input_bytes, _, outputs = iris
    close = judge(runtime, digest, input_bytes, _nudged(outputs, 1 + DEFAULT_TOLERANCE.rtol / 2))
    assert close.matches and close.reason == "the same tensors within the tolerance"
    far = judge(runtime, digest, input_bytes, _nudged(outputs, 1.01))
    assert far.vote == VOTE_OUTPUT_WRONG and "beyond the tolerance" in far.reason


def test_a_made_up_label_is_wrong_however_close_as_labels_compare_exactly(iris):
    runtime, digest, input_bytes, honest, _ = iris
    lie = json.loads(honest)
    lie["label"] = [(lie["label"][0] + 1) % 3]
    verdict = judge(runtime, digest, input_bytes, json.dumps(lie).encode())
    assert verdict.vote == VOTE_OUTPUT_WRONG and "label[0]" in verdict.reason


@pytest.mark.parametrize("attested,reason", [
    (b'{"label":[2]}', "names ['label']"),
    (b"not json", "not JSON"),
    (b'[1, 2]', "not a JSON object"),
    (b'\xff\xfe', "not JSON"),
])
def test_outputs_that_are_not_the_models_tensors_are_wrong(iris, attested, reason):
    runtime, digest, input_bytes, _, _ = iris
    verdict = judge(runtime, digest, input_bytes, attested)
    assert verdict.vote == VOTE_OUTPUT_WRONG and reason in verdict.reason


def test_an_output_attested_for_an_input_the_model_cannot_take_is_wrong(iris):
    runtime, digest, _, honest, _ = iris
    # An honest relayer refuses such a call; any output attested for it was made up.
    for bad_input in (b'{"X":[[1,2]]}', b'{"Y":[[1,2,3,4]]}', b"nonsense"):
        verdict = judge(runtime, digest, bad_input, honest)
        assert verdict.vote == VOTE_OUTPUT_WRONG and "cannot take this input" in verdict.reason


def test_a_shape_change_in_a_float_tensor_is_wrong(example):
    name, model_bytes, input_bytes = example
    runtime = ModelRuntime()
    digest = file_digest(model_bytes)
    runtime.load(digest, model_bytes)
    outputs = runtime.run(digest, decode_input(input_bytes))
    honest = encode_plain(outputs)
    assert judge(runtime, digest, input_bytes, honest).matches
    tensor = sorted(outputs)[-1]
    lie = json.loads(honest)
    lie[tensor] = [lie[tensor], lie[tensor]]
    verdict = judge(runtime, digest, input_bytes, json.dumps(lie).encode())
    assert verdict.vote == VOTE_OUTPUT_WRONG and "shape" in verdict.reason


def test_float_outputs_are_read_from_the_models_declared_types():
    types = [("label", "tensor(int64)"), ("probabilities", "seq(map(int64,tensor(float)))"),
             ("variable", "tensor(double)"), ("names", "tensor(string)")]
    assert float_outputs(types) == {"probabilities", "variable"}


def test_integers_compare_exactly_even_in_a_float_output_named_otherwise():
    recomputed = {"count": [3], "score": [0.5]}
    assert not compare_outputs(b'{"count":[4],"score":[0.5]}', recomputed, floats={"score"}).matches
    assert compare_outputs(b'{"count":[3],"score":[0.500001]}', recomputed, floats={"score"}).matches
    # Booleans are never numbers: true is not 1.
    assert not compare_outputs(b'{"flag":[1]}', {"flag": [True]}).matches


def test_a_model_card_declares_its_own_tolerance_per_output():
    policy = TolerancePolicy.from_card({"tolerance": {"score": {"atol": 0.1}}})
    assert policy.for_output("score") == Tolerance(0.1, DEFAULT_TOLERANCE.rtol)
    assert policy.for_output("other") == DEFAULT_TOLERANCE
    recomputed = {"score": [1.0]}
    assert compare_outputs(b'{"score":[1.05]}', recomputed, {"score"}, policy).matches
    assert not compare_outputs(b'{"score":[1.05]}', recomputed, {"score"}).matches
    assert TolerancePolicy.from_card({"name": "no tolerance"}) == TolerancePolicy()
    assert TolerancePolicy.from_card(None) == TolerancePolicy()


@pytest.mark.parametrize("card,message", [
    ({"tolerance": 0.1}, "must map output names"),
    ({"tolerance": {"score": 0.1}}, 'output "score" must be'),
    ({"tolerance": {"score": {"atol": -1}}}, "finite number >= 0"),
    ({"tolerance": {"score": {"atol": "big"}}}, "finite number >= 0"),
    ({"tolerance": {"score": {"slack": 1}}}, 'output "score" must be'),
])
def test_a_malformed_tolerance_declaration_is_refused_saying_what_is_wrong(card, message):
    with pytest.raises(ValueError, match=message):
        TolerancePolicy.from_card(card)


def test_a_run_past_the_time_limit_gives_no_verdict(slow_model):
    # A juror with a shorter limit than the accused cannot tell: it must not vote "wrong".
    runtime = ModelRuntime(time_limit_s=0.2)
    digest = file_digest(slow_model)
    runtime.load(digest, slow_model)
    with pytest.raises(InferenceTimeoutError):
        judge(runtime, digest, b'{"X":[0.0]}', b"{}")
