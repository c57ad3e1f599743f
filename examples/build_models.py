"""Rebuilds the example models from data scikit-learn ships (iris classifier, diabetes regressor):
each one's ONNX file, example input and model card with its measured held-out quality."""

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from modelhub.codec import decode_input, encode_output, output_hash
from modelhub.runtime import ModelRuntime
from modelhub.store import digest_to_cid, file_digest

HERE = Path(__file__).resolve().parent
SEED = 0  # every split and solver below is seeded, so a rebuild gives the same bytes
TEST_FRACTION = 0.3
# Opsets onnxruntime has long supported; pinned so a newer skl2onnx does not change the files.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
IR_VERSION = 8


@dataclass
class Example:
    """One built example: what goes into examples/<name>/."""

    name: str
    model_bytes: bytes
    input_json: str
    quality: str  # e.g. "accuracy 0.978 on 45 held-out flowers"
    card: Callable[["Example", str], str]  # (example, rendered facts) -> README text


# --- iris -------------------------------------------------------------------------------------


def build_iris() -> Example:
    data = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=TEST_FRACTION, random_state=SEED, stratify=data.target
    )
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(x_train, y_train)
    model_bytes = export(pipeline, "iris", n_features=4, names={
        "output_label": "label", "output_probability": "probabilities"})
    predicted = run_onnx(model_bytes, x_test)["label"]
    accuracy = accuracy_score(y_test, predicted)
    # One flower of each species, the first being the interface's own example row.
    example_rows = data.data[[0, 50, 100]].tolist()
    return Example(
        name="iris",
        model_bytes=model_bytes,
        input_json=json.dumps({"X": example_rows}),
        quality=f"accuracy {accuracy:.3f} on {len(y_test)} held-out flowers",
        card=iris_card,
    )


def iris_card(example: Example, facts: str) -> str:
    return f"""# Iris species classifier

Predicts the species of an iris flower from four measurements of it: a standardising scaler
followed by multinomial logistic regression (scikit-learn), exported to ONNX.

## Input

`X`: float32, shape `[N, 4]`: one row per flower, the columns in this order, in centimetres:
sepal length, sepal width, petal length, petal width.

## Outputs

- `label`: int64, shape `[N]`: the predicted species, `0` setosa, `1` versicolor, `2` virginica.
- `probabilities`: one map per row from species label (as a string, `"0"`, `"1"`, `"2"`) to
  its predicted probability (float32).

## Training data

The iris data set (Fisher, 1936) as shipped with scikit-learn: 150 flowers, 50 per species.
{round(TEST_FRACTION * 100)} % of it, stratified by species (`random_state={SEED}`), is held
out and never seen in training.

## Quality

Measured by `examples/build_models.py` with this ONNX file in onnxruntime: **{example.quality}**.

{facts}"""


# --- diabetes ---------------------------------------------------------------------------------


DIABETES_COLUMNS = [
    ("age", "age in years"),
    ("sex", "sex, coded 1 or 2"),
    ("bmi", "body mass index"),
    ("bp", "average blood pressure"),
    ("s1", "tc, total serum cholesterol"),
    ("s2", "ldl, low-density lipoproteins"),
    ("s3", "hdl, high-density lipoproteins"),
    ("s4", "tch, total cholesterol / HDL"),
    ("s5", "ltg, log of serum triglycerides level"),
    ("s6", "glu, blood sugar level"),
]


def build_diabetes() -> Example:
    # Unscaled columns, so a caller sends measurements as a clinic records them.
    data = load_diabetes(scaled=False)
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=TEST_FRACTION, random_state=SEED
    )
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    pipeline.fit(x_train, y_train)
    model_bytes = export(pipeline, "diabetes", n_features=10, names={"variable": "progression"})
    predicted = np.asarray(run_onnx(model_bytes, x_test)["progression"]).ravel()
    r2 = r2_score(y_test, predicted)
    return Example(
        name="diabetes",
        model_bytes=model_bytes,
        input_json=json.dumps({"X": data.data[:2].tolist()}),
        quality=f"R² {r2:.3f} on {len(y_test)} held-out patients",
        card=diabetes_card,
    )


def diabetes_card(example: Example, facts: str) -> str:
    columns = "\n".join(f"{i + 1}. `{name}`: {meaning}"
                        for i, (name, meaning) in enumerate(DIABETES_COLUMNS))
    return f"""# Diabetes progression regressor

Predicts a quantitative measure of diabetes progression one year after baseline from ten
baseline measurements: a standardising scaler followed by ridge regression (scikit-learn,
`alpha=1.0`), exported to ONNX.

## Input

`X`: float32, shape `[N, 10]`: one row per patient, unscaled, the columns in this order:

{columns}

## Output

`progression`: float32, shape `[N, 1]`: the predicted disease progression score (the data
set's target ranges from 25 to 346).

## Training data

The diabetes data set (Efron et al., 2004, "Least Angle Regression") as shipped with
scikit-learn: 442 patients. {round(TEST_FRACTION * 100)} % of it (`random_state={SEED}`) is held
out and never seen in training.

## Quality

Measured by `examples/build_models.py` with this ONNX file in onnxruntime: **{example.quality}**.
Ten baseline measurements explain only part of the progression; treat the output as a rough
estimate.

{facts}"""


# --- shared steps -----------------------------------------------------------------------------


def export(pipeline: Pipeline, name: str, n_features: int, names: dict[str, str]) -> bytes:
    """The pipeline as ONNX bytes: float32 input `X` [N, n_features], outputs renamed."""
    model = convert_sklearn(
        pipeline,
        initial_types=[("X", FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
    )
    for old, new in names.items():
        rename_output(model.graph, old, new)
    model.graph.name = name  # skl2onnx picks a random one, which would change the bytes
    name_batch_dims(model.graph)
    model.ir_version = IR_VERSION
    model.doc_string = "Model Hub example; rebuilt by examples/build_models.py"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def name_batch_dims(graph: onnx.GraphProto) -> None:
    """Call the unnamed batch dimension of inputs and outputs 'N', as the model cards do."""
    for value in [*graph.input, *graph.output]:
        if value.type.HasField("tensor_type"):
            for dim in value.type.tensor_type.shape.dim:
                if not dim.HasField("dim_value") and not dim.HasField("dim_param"):
                    dim.dim_param = "N"


def rename_output(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Give a graph output a friendlier name, moving aside an inner value that has it."""
    taken = {name for node in graph.node for name in [*node.input, *node.output]}
    if new in taken:
        spare = next(f"{new}_{i}" for i in range(1, len(taken) + 2) if f"{new}_{i}" not in taken)
        rename_value(graph, new, spare)
    rename_value(graph, old, new)


def rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a graph value wherever nodes and graph outputs mention it."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for output in graph.output:
        if output.name == old:
            output.name = new


def run_onnx(model_bytes: bytes, rows: np.ndarray) -> dict:
    """Run the exported file through Model Hub's own runtime, as a relayer would."""
    runtime = ModelRuntime(max_sessions=1)
    digest = file_digest(model_bytes)
    runtime.load(digest, model_bytes)
    return runtime.run(digest, {"X": rows.astype(np.float32).tolist()})


def facts_section(example: Example) -> str:
    """The file's identity and the answer to the example input, as the card's last sections."""
    digest = file_digest(example.model_bytes)
    built_with = (f"scikit-learn {sklearn.__version__}, skl2onnx {skl2onnx.__version__}, "
                  f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}; "
                  f"opsets {TARGET_OPSET}, IR version {IR_VERSION}")
    output = encode_output(run_onnx(example.model_bytes,
                                    np.asarray(decode_input(example.input_json.encode())["X"])))
    return f"""## Example

`input.json` (the bytes a caller sends as a request's `input`):

```json
{example.input_json}
```

Canonical output bytes for it (keccak-256 `0x{output_hash(output).hex()}`):

```json
{output.decode()}
```

## File

| | |
|---|---|
| file | `{example.name}.onnx`, {len(example.model_bytes):,} bytes |
| sha-256 (`artifactDigest`) | `0x{digest.hex()}` |
| CID | `{digest_to_cid(digest)}` |
| built with | {built_with} |

Rebuild with `PYTHONPATH=src python examples/build_models.py` from the repository root.
"""


def write_example(example: Example) -> None:
    folder = HERE / example.name
    folder.mkdir(exist_ok=True)
    (folder / f"{example.name}.onnx").write_bytes(example.model_bytes)
    (folder / "input.json").write_text(example.input_json + "\n", encoding="utf-8")
    card = example.card(example, facts_section(example))
    (folder / "README.md").write_text(card, encoding="utf-8")
    print(f"{example.name}: {len(example.model_bytes)} bytes, {example.quality}")


def main() -> int:
    for build in (build_iris, build_diabetes):
        write_example(build())
    return 0


if __name__ == "__main__":
    sys.exit(main())
