"""The three scikit-learn digits classifiers exported with skl2onnx's defaults (ZipMap
included; examples/train_sklearn_digits.py) end to end: `ariel build` in float for the
default board, `ariel simulate` in QEMU on all 540 held-out digits, against onnxruntime
running the same file: the labels equal, the probabilities (which replace ZipMap's maps)
within 1e-4, and so the held-out accuracy equals scikit-learn's own."""

import numpy as np
import onnxruntime
import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.datasets import digits_split
from codegen.resources import data_dir

pytestmark = pytest.mark.qemu

MODELS = data_dir("examples") / "models"
# Correct labels out of the 540 held-out digits, as scikit-learn's predict() gave them when
# examples/train_sklearn_digits.py exported the models (examples/README.md).
SKLEARN_CORRECT = {"logreg": 525, "forest": 495, "mlp": 528}
# The tensor each model's ZipMap read, which ariel outputs in its place.
PROBABILITIES = {"logreg": "probabilities", "forest": "probabilities",
                 "mlp": "out_activations_result"}


@pytest.mark.parametrize("model", ["logreg", "forest", "mlp"])
def test_sklearn_model_in_qemu(model, tmp_path):
    path = MODELS / f"sklearn_{model}_digits.onnx"
    out = tmp_path / "build"
    runner = CliRunner()
    result = runner.invoke(main, ["build", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    assert (f"ZipMap 'ZipMap' dropped: output 'output_probability' (a sequence of maps from "
            f"class label to probability) is replaced by the float tensor "
            f"'{PROBABILITIES[model]}'") in result.output

    _, _, x_test, y_test = digits_split()
    x = x_test.reshape(len(x_test), 1, 64)
    np.save(tmp_path / "x.npy", x)
    result = runner.invoke(main, ["simulate", str(out), "--inputs", str(tmp_path / "x.npy"),
                                  "--outputs", str(tmp_path / "y.npz")])
    assert result.exit_code == 0, result.output + result.stderr
    got = np.load(tmp_path / "y.npz")
    labels, probabilities = got["output_label"][:, 0], got[PROBABILITIES[model]][:, 0]

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want_labels, maps = session.run(None, {"X": x[:, 0]})
    want = np.array([[m[k] for k in sorted(m)] for m in maps], dtype=np.float32)
    np.testing.assert_array_equal(labels, want_labels)
    assert np.abs(probabilities - want).max() <= 1e-4 * (want.max() - want.min())
    assert int((labels == y_test).sum()) == SKLEARN_CORRECT[model]
