"""Runs ONNX models on CPU: a bounded cache of onnxruntime sessions keyed by model digest, input
checks against the model's declared inputs, a time limit per call, and checks of model files."""

import heapq
import itertools
import time
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from modelhub.codec import tensor_shape, to_plain
from modelhub.errors import (
    ArtifactNotFoundError,
    DigestMismatchError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelExecutionError,
    ModelFileError,
)
from modelhub.store import ModelStore, digest_to_cid, file_digest

DEFAULT_TIME_LIMIT_S = 10.0
_SILENT = 4  # onnxruntime log level "fatal": failures reach the caller as exceptions instead

# ONNX element types a JSON number list can feed, and the numpy type each one takes.
_TENSOR_DTYPES: dict[str, np.dtype] = {
    f"tensor({name})": np.dtype(dtype)
    for name, dtype in [
        ("float", "float32"), ("double", "float64"), ("float16", "float16"),
        ("int8", "int8"), ("int16", "int16"), ("int32", "int32"), ("int64", "int64"),
        ("uint8", "uint8"), ("uint16", "uint16"), ("uint32", "uint32"), ("uint64", "uint64"),
        ("bool", "bool"),
    ]
}

Dim = int | str | None  # a fixed size, a named symbolic size ('N'), or an unnamed one


@dataclass(frozen=True)
class TensorSpec:
    """A model input as the model declares it; `shape` None means any rank."""

    name: str
    dtype: np.dtype
    shape: tuple[Dim, ...] | None

    def describe(self) -> str:
        return f"{_shape_text(self.shape)} ({self.dtype.name})"

    def accepts_shape(self, shape: Sequence[int]) -> bool:
        if self.shape is None:
            return True
        if len(shape) != len(self.shape):
            return False
        return all(not isinstance(want, int) or want == got for want, got in zip(self.shape, shape))


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: its session and its declared inputs and outputs."""

    digest: bytes
    session: ort.InferenceSession
    inputs: tuple[TensorSpec, ...]
    output_types: tuple[tuple[str, str], ...]  # (name, onnxruntime type text)

    @property
    def cid(self) -> str:
        return digest_to_cid(self.digest)


class ModelRuntime:
    """Loads and runs ONNX models, keeping the `max_sessions` most recently used in memory.

    Give it a `store` and `run` loads models on demand from verified store files; without one,
    call `load` first. Thread-safe: the relayer may run many calls at once.
    """

    def __init__(
        self,
        max_sessions: int = 8,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        store: ModelStore | None = None,
        threads_per_session: int = 1,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if time_limit_s <= 0:
            raise ValueError("time_limit_s must be positive")
        self.max_sessions = max_sessions
        self.time_limit_s = time_limit_s
        self.store = store
        self.threads_per_session = threads_per_session
        self._models: OrderedDict[bytes, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def loaded(self) -> list[bytes]:
        """Digests of the models in memory, least recently used first."""
        with self._lock:
            return list(self._models)

    def load(self, digest: bytes, model_bytes: bytes) -> LoadedModel:
        """Check that `model_bytes` hash to `digest` and form a servable ONNX model; cache it."""
        cached = self._cached(digest)
        if cached is not None:
            return cached
        actual = file_digest(model_bytes)
        if actual != bytes(digest):
            raise DigestMismatchError(
                f"the model file hashes to 0x{actual.hex()}, not 0x{bytes(digest).hex()}; "
                "it is not the file registered for this model version"
            )
        model = _open_model(bytes(digest), bytes(model_bytes), self.threads_per_session)
        self._remember(model)
        return model

    def model(self, digest: bytes) -> LoadedModel:
        """The loaded model for `digest`, loading it from the store when there is one."""
        cached = self._cached(digest)
        if cached is not None:
            return cached
        if self.store is None:
            raise ArtifactNotFoundError(
                f"model 0x{bytes(digest).hex()} is not loaded; load() it first or give the "
                "runtime a store to load models from"
            )
        return self.load(digest, self.store.get_verified(digest))

    def run(self, digest: bytes, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run a model on decoded JSON inputs; plain Python outputs for `codec.encode_output`."""
        model = self.model(digest)
        feed = check_inputs(model, inputs)
        results = self._run_with_time_limit(model.session, feed)
        return {name: _plain_output(type_text, value)
                for (name, type_text), value in zip(model.output_types, results)}

    def _run_with_time_limit(
        self, session: ort.InferenceSession, feed: dict[str, np.ndarray]
    ) -> list[Any]:
        options = ort.RunOptions()
        options.log_severity_level = _SILENT
        # onnxruntime checks `terminate` between kernels, so a call stops soon after the limit.
        ticket = _WATCHDOG.watch(options, self.time_limit_s)
        try:
            return session.run(None, feed, options)
        except Exception as error:  # onnxruntime's error types share no base but Exception
            if options.terminate:
                raise InferenceTimeoutError(
                    f"the model ran longer than the {self.time_limit_s:g} s limit and was "
                    "stopped; send a smaller input or use a relayer with a longer limit"
                ) from None
            raise ModelExecutionError(f"the model failed on this input: {error}") from None
        finally:
            _WATCHDOG.release(ticket)

    def _cached(self, digest: bytes) -> LoadedModel | None:
        with self._lock:
            model = self._models.get(bytes(digest))
            if model is not None:
                self._models.move_to_end(model.digest)
            return model

    def _remember(self, model: LoadedModel) -> None:
        with self._lock:
            self._models[model.digest] = model
            self._models.move_to_end(model.digest)
            while len(self._models) > self.max_sessions:
                self._models.popitem(last=False)


def check_inputs(
    model: LoadedModel | ort.InferenceSession, inputs: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """The feed for a run: `inputs` checked against the declared names, shapes and types, as
    numpy arrays of the declared element types. Raises InvalidInputError saying what fits."""
    specs = model.inputs if isinstance(model, LoadedModel) else input_specs(model)
    _check_names(specs, inputs)
    return {spec.name: _to_tensor(spec, inputs[spec.name]) for spec in specs}


def read_model_file(path: str | Path) -> bytes:
    """A model file's bytes, checked to be an ONNX model onnxruntime loads (ModelFileError)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ModelFileError(f"cannot read the model file {path}: {error.strerror}") from None
    # Loading it the way relayers will is the only check that means "relayers can serve it".
    ModelRuntime(max_sessions=1).load(file_digest(data), data)
    return data


def input_specs(session: ort.InferenceSession) -> tuple[TensorSpec, ...]:
    """The declared inputs of a session (ranks as onnxruntime reports them)."""
    return tuple(_spec(arg.name, arg.type, tuple(arg.shape)) for arg in session.get_inputs())


def _open_model(digest: bytes, model_bytes: bytes, threads: int) -> LoadedModel:
    proto = _parse_onnx(model_bytes)
    session = _new_session(model_bytes, threads)
    unranked = {value.name for value in proto.graph.input
                if not value.type.tensor_type.HasField("shape")}
    inputs = tuple(
        _spec(arg.name, arg.type, None if arg.name in unranked else tuple(arg.shape))
        for arg in session.get_inputs()
    )
    outputs = tuple((arg.name, arg.type) for arg in session.get_outputs())
    return LoadedModel(digest=digest, session=session, inputs=inputs, output_types=outputs)


def _parse_onnx(model_bytes: bytes) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(model_bytes)
    except Exception:  # protobuf's DecodeError, and others on truncated input
        raise ModelFileError(
            "the model file is not an ONNX model (it does not parse as an ONNX protobuf); "
            "export the model to .onnx and publish that file"
        ) from None
    # Weights stored "externally" are read from paths relative to the relayer's working
    # folder when a model is loaded from bytes: a model could read the relayer's files.
    if any(_is_external(tensor) for tensor in _all_tensors(proto)):
        raise ModelFileError(
            "the model keeps weights in external data files; Model Hub runs single-file "
            "models only: save it with onnx.save_model(model, path, save_as_external_data=False)"
        )
    return proto


def _new_session(model_bytes: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = _SILENT
    options.add_session_config_entry("session.load_model_format", "ONNX")
    try:
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's error types share no base but Exception
        raise ModelFileError(
            f"onnxruntime cannot load the model file: {error}; check that it opens with "
            f"onnxruntime {ort.__version__} on CPU"
        ) from None


def _spec(name: str, type_text: str, shape: tuple[Dim, ...] | None) -> TensorSpec:
    dtype = _TENSOR_DTYPES.get(type_text)
    if dtype is None:
        raise ModelFileError(
            f"model input '{name}' has type {type_text}, which a JSON number list cannot "
            "feed; Model Hub serves models whose inputs are numeric tensors"
        )
    return TensorSpec(name=name, dtype=dtype, shape=shape)


def _check_names(specs: Sequence[TensorSpec], inputs: Mapping[str, Any]) -> None:
    declared = [spec.name for spec in specs]
    missing = [name for name in declared if name not in inputs]
    unexpected = [name for name in inputs if name not in declared]
    if not missing and not unexpected:
        return
    problems = []
    if missing:
        problems.append("it lacks " + ", ".join(f"'{name}'" for name in missing))
    if unexpected:
        problems.append("it has unexpected " + ", ".join(f"'{name}'" for name in unexpected))
    wanted = ", ".join(f"'{spec.name}' {spec.describe()}" for spec in specs)
    raise InvalidInputError(
        f"the input does not name the model's tensors: {' and '.join(problems)}; "
        f"the model expects {wanted}"
    )


def _to_tensor(spec: TensorSpec, value: Any) -> np.ndarray:
    shape = tensor_shape(value, spec.name)
    if not spec.accepts_shape(shape):
        raise InvalidInputError(
            f"input '{spec.name}' has shape {_shape_text(shape)} but the model expects "
            f"{spec.describe()}"
        )
    if spec.dtype.kind == "f":
        return _to_float_tensor(spec, value)
    return _to_whole_tensor(spec, value)


def _to_float_tensor(spec: TensorSpec, value: Any) -> np.ndarray:
    with np.errstate(over="ignore"):  # overflow is reported below, with the input's name
        array = np.asarray(value, dtype=spec.dtype)
    if not np.isfinite(array).all():
        limit = np.finfo(spec.dtype).max
        raise InvalidInputError(
            f"input '{spec.name}' holds a number beyond {spec.dtype.name}'s range "
            f"(±{limit:.4g}), which the model expects"
        )
    return array


def _to_whole_tensor(spec: TensorSpec, value: Any) -> np.ndarray:
    """Integer and bool inputs: every number must be whole and fit the declared type."""
    array = np.asarray(value)
    if array.dtype.kind == "f":
        fractional = array[array != np.round(array)]
        if fractional.size:
            raise InvalidInputError(
                f"input '{spec.name}' holds {fractional.flat[0]:g} but the model expects "
                f"whole numbers ({spec.dtype.name})"
            )
    low, high = (0, 1) if spec.dtype.kind == "b" else (np.iinfo(spec.dtype).min,
                                                       np.iinfo(spec.dtype).max)
    # Huge JSON integers arrive as an object array; compare them as Python ints.
    values = array.astype(object) if array.size else array
    if array.size and (min(values.flat) < low or max(values.flat) > high):
        raise InvalidInputError(
            f"input '{spec.name}' holds numbers outside {low}..{high}, the range of "
            f"{spec.dtype.name} that the model expects"
        )
    return array.astype(spec.dtype)


def _shape_text(shape: Sequence[Dim] | None) -> str:
    if shape is None:
        return "any shape"
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def _all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    # Subgraphs (If, Loop, Scan bodies) hold tensors of their own.
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        sparse_tensors = list(attribute.sparse_tensors)
        if attribute.HasField("sparse_tensor"):
            sparse_tensors.append(attribute.sparse_tensor)
        for sparse in sparse_tensors:
            yield from (sparse.values, sparse.indices)
        if attribute.HasField("g"):
            yield from _graph_tensors(attribute.g)
        for graph in attribute.graphs:
            yield from _graph_tensors(graph)


def _is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0


def _plain_output(type_text: str, value: Any) -> Any:
    """One output as plain Python, floats at the precision the model declares."""
    if type_text.startswith("seq(map(") and isinstance(value, list):
        # ZipMap: onnxruntime hands back Python floats widened from float32; narrow them back
        # so 0.97 is written as 0.97 and not 0.9700000286102295.
        width = np.float32 if type_text.endswith("tensor(float)))") else np.float64
        return [{str(label): to_plain(width(score)) for label, score in row.items()}
                for row in value]
    return to_plain(value)


class _Watchdog:
    """One thread that stops runs past their time limit by setting `RunOptions.terminate`.
    Starting a timer thread per call would cost ~20x what a small model takes to run."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._deadlines: list[tuple[float, int]] = []  # a heap of (deadline, ticket)
        self._watched: dict[int, ort.RunOptions] = {}
        self._tickets = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, options: ort.RunOptions, limit_s: float) -> int:
        with self._wake:
            ticket = next(self._tickets)
            self._watched[ticket] = options
            heapq.heappush(self._deadlines, (time.monotonic() + limit_s, ticket))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="onnx-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()
            return ticket

    def release(self, ticket: int) -> None:
        with self._wake:
            self._watched.pop(ticket, None)  # its heap entry is dropped when it comes up

    def _loop(self) -> None:
        with self._wake:
            while True:
                while self._deadlines and self._deadlines[0][1] not in self._watched:
                    heapq.heappop(self._deadlines)
                if not self._deadlines:
                    self._wake.wait()
                    continue
                deadline, ticket = self._deadlines[0]
                now = time.monotonic()
                if deadline > now:
                    self._wake.wait(deadline - now)
                    continue
                heapq.heappop(self._deadlines)
                self._watched.pop(ticket).terminate = True


_WATCHDOG = _Watchdog()

