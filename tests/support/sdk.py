"""Constants shared by the SDK tests and their fixtures: the example model files, an input
that fits the iris model, and the price the fixtures register models at."""

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IRIS = EXAMPLES / "iris" / "iris.onnx"
DIABETES = EXAMPLES / "diabetes" / "diabetes.onnx"
IRIS_INPUT = {"X": [[5.1, 3.5, 1.4, 0.2]]}
PRICE = 10**15
