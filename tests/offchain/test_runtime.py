"""Tests of modelhub.runtime with real onnxruntime sessions: the example models answer as a bare
session does, inputs that do not fit are refused with what fits, bad files and slow models stop."""

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from modelhub.codec import decode_input, encode_output
from modelhub.errors import (
    ArtifactNotFoundError,
    DigestMismatchError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelExecutionError,
    ModelFileError,
    RejectReason,
    reject_reason_of,
)
from modelhub.runtime import ModelRuntime, check_inputs
from modelhub.store import ModelStore, digest_to_cid, file_digest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IRIS_ROW = [[5.1, 3.5, 1.4, 0.2]]
ModelFactory = Callable[..., bytes]  # the `identity_model` fixture


def loaded(model_bytes: bytes, **settings: float) -> tuple[ModelRuntime, bytes]:
    runtime = ModelRuntime(**settings)
    digest = file_digest(model_bytes)
    runtime.load(digest, model_bytes)
    return runtime, digest


def test_the_example_models_give_the_same_outputs_as_a_bare_onnxruntime_session(
    example: tuple[str, bytes, bytes],
) -> None:
    _, model_bytes, input_bytes = example
    inputs = decode_input(input_bytes)
    runtime, digest = loaded(model_bytes)

    ours = runtime.run(digest, inputs)

    bare = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    theirs = bare.run(None, {"X": np.asarray(inputs["X"], dtype=np.float32)})
    assert list(ours) == [output.name for output in bare.get_outputs()]
    for ours_value, their_value in zip(ours.values(), theirs):
        if isinstance(their_value, np.ndarray):
            assert np.array_equal(np.asarray(ours_value, dtype=their_value.dtype), their_value)
        else:  # ZipMap rows: float32 scores, which ours carry at float32 precision
            assert [{int(k): np.float32(v) for k, v in row.items()} for row in ours_value] == \
                [{k: np.float32(v) for k, v in row.items()} for row in their_value]


def test_the_example_model_cards_show_the_committed_files_and_their_answers(
    example: tuple[str, bytes, bytes],
) -> None:
    name, model_bytes, input_bytes = example
    card = (EXAMPLES / name / "README.md").read_text(encoding="utf-8")
    digest = file_digest(model_bytes)
    assert f"0x{digest.hex()}" in card
    assert digest_to_cid(digest) in card
    runtime, _ = loaded(model_bytes)
    assert encode_output(runtime.run(digest, decode_input(input_bytes))).decode() in card


def test_iris_labels_come_with_a_probability_map_per_row(iris_bytes: bytes) -> None:
    runtime, digest = loaded(iris_bytes)
    outputs = runtime.run(digest, {"X": IRIS_ROW})
    assert outputs["label"] == [0]
    (scores,) = outputs["probabilities"]
    assert sorted(scores) == ["0", "1", "2"]
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert max(scores, key=scores.get) == "0"


def test_a_symbolic_batch_dimension_accepts_any_number_of_rows(iris_bytes: bytes) -> None:
    runtime, digest = loaded(iris_bytes)
    assert len(runtime.run(digest, {"X": IRIS_ROW * 5})["label"]) == 5
    assert runtime.run(digest, {"X": [[5, 3, 1, 0]]})["label"] == [0]  # whole numbers are fine


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"X": [[5.1, 3.5, 1.4]]},
         "input 'X' has shape [1, 3] but the model expects [N, 4] (float32)"),
        ({"X": [5.1, 3.5, 1.4, 0.2]},
         "input 'X' has shape [4] but the model expects [N, 4] (float32)"),
        ({"x": IRIS_ROW},
         "it lacks 'X' and it has unexpected 'x'; the model expects 'X' [N, 4] (float32)"),
        ({}, "it lacks 'X'"),
        ({"X": IRIS_ROW, "Y": [1]}, "it has unexpected 'Y'"),
        ({"X": [[1e39, 0, 0, 0]]}, "beyond float32's range"),
    ],
)
def test_inputs_that_do_not_fit_the_model_are_refused_with_what_it_expects(
    iris_bytes: bytes, inputs: dict, message: str
) -> None:
    runtime, digest = loaded(iris_bytes)
    with pytest.raises(InvalidInputError, match=re.escape(message)) as raised:
        runtime.run(digest, inputs)
    assert raised.value.reject_reason == RejectReason.INPUT_MISMATCH


def test_integer_inputs_take_whole_numbers_in_range_only(identity_model: ModelFactory) -> None:
    runtime, digest = loaded(identity_model(TensorProto.INT32, ["N"]))
    assert runtime.run(digest, {"X": [1, -2, 3.0]}) == {"Y": [1, -2, 3]}
    with pytest.raises(InvalidInputError, match=r"holds 1.5 but the model expects whole numbers"):
        runtime.run(digest, {"X": [1, 1.5]})
    with pytest.raises(InvalidInputError, match="outside -2147483648..2147483647"):
        runtime.run(digest, {"X": [2**31]})
    with pytest.raises(InvalidInputError, match="outside"):
        runtime.run(digest, {"X": [2**80]})


def test_check_inputs_gives_arrays_of_the_declared_types(identity_model: ModelFactory) -> None:
    session = ort.InferenceSession(identity_model(TensorProto.DOUBLE, [2]),
                                   providers=["CPUExecutionProvider"])
    feed = check_inputs(session, {"X": [1, 2.5]})
    assert feed["X"].dtype == np.float64
    assert feed["X"].tolist() == [1.0, 2.5]


def test_a_model_with_an_unranked_input_accepts_any_shape(identity_model: ModelFactory) -> None:
    runtime, digest = loaded(identity_model(shape=None))
    assert runtime.run(digest, {"X": [[[1.5]]]}) == {"Y": [[[1.5]]]}
    assert runtime.run(digest, {"X": 2.5}) == {"Y": 2.5}


def test_a_file_that_is_not_onnx_is_refused_as_a_model_error() -> None:
    for not_onnx in [b"\x00\xff definitely not a protobuf", b"hello world"]:
        with pytest.raises(ModelFileError) as raised:
            loaded(not_onnx)
        assert raised.value.reject_reason == RejectReason.MODEL_ERROR


def test_a_model_cannot_read_files_beside_the_relayer_as_external_weights(
    external_weights_model: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loaded from bytes, onnxruntime resolves external data against the working folder.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"key!")
    with pytest.raises(ModelFileError, match="external data"):
        loaded(external_weights_model)


def test_a_model_with_string_inputs_is_refused_as_unservable(
    identity_model: ModelFactory,
) -> None:
    with pytest.raises(ModelFileError, match="has type tensor\\(string\\)"):
        loaded(identity_model(TensorProto.STRING, ["N"]))


def test_bytes_that_do_not_match_the_digest_are_never_loaded(iris_bytes: bytes) -> None:
    runtime = ModelRuntime()
    wrong_digest = file_digest(b"some other file")
    with pytest.raises(DigestMismatchError) as raised:
        runtime.load(wrong_digest, iris_bytes)
    assert raised.value.reject_reason == RejectReason.MODEL_FILE
    assert runtime.loaded == []


def test_the_session_cache_keeps_only_the_most_recently_used_models(
    identity_model: ModelFactory,
) -> None:
    runtime = ModelRuntime(max_sessions=2)
    models = [identity_model(name=f"model{i}") for i in range(3)]
    first, second, third = (file_digest(model) for model in models)
    runtime.load(first, models[0])
    runtime.load(second, models[1])
    runtime.run(first, {"X": [[1, 2]]})  # `first` is now more recently used than `second`
    runtime.load(third, models[2])
    assert runtime.loaded == [first, third]
    with pytest.raises(ArtifactNotFoundError, match="load\\(\\) it first"):
        runtime.run(second, {"X": [[1, 2]]})


def test_a_runtime_with_a_store_loads_verified_models_on_demand(
    store: ModelStore, iris_bytes: bytes, iris_digest: bytes
) -> None:
    store.put(iris_bytes)
    runtime = ModelRuntime(store=store)
    assert runtime.run(iris_digest, {"X": IRIS_ROW})["label"] == [0]
    assert runtime.loaded == [iris_digest]


def test_a_runtime_with_a_store_refuses_a_tampered_model(
    store: ModelStore, iris_bytes: bytes, iris_digest: bytes
) -> None:
    artifact = store.put(iris_bytes)
    store.path(artifact.cid).write_bytes(iris_bytes[:-1] + b"\x00")
    with pytest.raises(DigestMismatchError):
        ModelRuntime(store=store).run(iris_digest, {"X": IRIS_ROW})


def test_a_model_that_runs_past_the_time_limit_is_stopped(slow_model: bytes) -> None:
    runtime, digest = loaded(slow_model, time_limit_s=0.2)
    started = time.monotonic()
    with pytest.raises(InferenceTimeoutError, match="longer than the 0.2 s limit") as raised:
        runtime.run(digest, {"X": [0.0]})
    assert time.monotonic() - started < 5
    assert raised.value.reject_reason == RejectReason.MODEL_ERROR


def test_calls_within_the_limit_are_never_stopped_late_even_beside_a_stopped_one(
    slow_model: bytes, iris_bytes: bytes
) -> None:
    slow, slow_digest = loaded(slow_model, time_limit_s=0.2)
    fast, fast_digest = loaded(iris_bytes, time_limit_s=0.3)
    with pytest.raises(InferenceTimeoutError):
        slow.run(slow_digest, {"X": [0.0]})
    # Each call's watch ends with it: hundreds of quick calls, spanning well past their own
    # 0.3 s limit in total, all finish.
    started = time.monotonic()
    while time.monotonic() - started < 0.8:
        assert fast.run(fast_digest, {"X": IRIS_ROW})["label"] == [0]


def test_errors_map_to_the_interfaces_reject_reasons() -> None:
    assert reject_reason_of(InvalidInputError("x")) == 1
    assert reject_reason_of(ModelFileError("x")) == 2
    assert reject_reason_of(ModelExecutionError("x")) == 2
    assert reject_reason_of(InferenceTimeoutError("x")) == 2
    assert reject_reason_of(DigestMismatchError("x")) == 3
    assert reject_reason_of(ArtifactNotFoundError("x")) == 3
    assert reject_reason_of(ValueError("anything else")) == 4
