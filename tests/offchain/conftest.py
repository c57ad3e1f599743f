"""Fixtures for the off-chain tests (codec, store, runtime): the committed example models and
small ONNX models built in memory. Nothing here needs a blockchain."""

from collections.abc import Callable, Sequence
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from modelhub.store import ModelStore, file_digest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ONNXRUNTIME_IR_VERSION = 8  # onnx writes newer IR versions than onnxruntime may read

ModelFactory = Callable[..., bytes]


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models", max_size=64 * 1024)


@pytest.fixture(params=["iris", "diabetes"])
def example(request: pytest.FixtureRequest) -> tuple[str, bytes, bytes]:
    """(name, model bytes, example input bytes) of a committed example model."""
    name = request.param
    folder = EXAMPLES / name
    return name, (folder / f"{name}.onnx").read_bytes(), (folder / "input.json").read_bytes()


@pytest.fixture
def iris_bytes() -> bytes:
    return (EXAMPLES / "iris" / "iris.onnx").read_bytes()


@pytest.fixture
def iris_digest(iris_bytes: bytes) -> bytes:
    return file_digest(iris_bytes)


@pytest.fixture
def identity_model() -> ModelFactory:
    """Builds a model that returns its one input, declared with the given type and shape."""

    def build(
        elem_type: int = TensorProto.FLOAT,
        shape: Sequence[int | str | None] | None = ("N", 2),
        name: str = "identity",
    ) -> bytes:
        graph = helper.make_graph(
            [helper.make_node("Identity", ["X"], ["Y"])],
            name,  # a different name gives a different file, hence a different digest
            [helper.make_tensor_value_info("X", elem_type, shape)],
            [helper.make_tensor_value_info("Y", elem_type, shape)],
        )
        # onnx's checker insists on shapes; onnxruntime, the judge that matters, does not.
        return _serialize(graph, check=shape is not None)

    return build


@pytest.fixture
def slow_model() -> bytes:
    """A model whose Loop adds 1 a trillion times: it only ends when it is stopped."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["keep_going"], ["keep_going_out"]),
         helper.make_node("Add", ["y", "one"], ["y_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("keep_going", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("keep_going_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y_out", TensorProto.FLOAT, [1])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "true", "X"], ["Y"], body=body)],
        "slow",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("trips", TensorProto.INT64, [], [10**12]),
         helper.make_tensor("true", TensorProto.BOOL, [], [True])],
    )
    return _serialize(graph)


@pytest.fixture
def external_weights_model() -> bytes:
    """A model whose weights point at a file beside it, as onnx's external data format does."""
    weights = onnx.TensorProto(name="W", data_type=TensorProto.UINT8, dims=[4],
                               data_location=TensorProto.EXTERNAL)
    for key, value in [("location", "weights.bin"), ("offset", "0"), ("length", "4")]:
        weights.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["W"], ["Y"])], "external", [],
        [helper.make_tensor_value_info("Y", TensorProto.UINT8, [4])], [weights],
    )
    return _serialize(graph, check=False)  # the checker would look for weights.bin


def _serialize(graph: onnx.GraphProto, check: bool = True) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=ONNXRUNTIME_IR_VERSION)
    if check:
        onnx.checker.check_model(model)
    return model.SerializeToString()
