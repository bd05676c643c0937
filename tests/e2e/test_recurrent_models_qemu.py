"""The recurrent keyword spotters (examples/models/kws_gru.onnx and kws_lstm.onnx, PyTorch
exports) end to end on the default board: `ariel build`, `ariel simulate` in QEMU, outputs
against onnxruntime on MFCC-like windows made from the shipped ToyCar recording (no speech
data installs offline)."""

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.datasets import toycar_mfcc_windows
from codegen.resources import data_dir

pytestmark = pytest.mark.qemu

MODELS = data_dir("examples") / "models"
SPOTTERS = ("kws_gru", "kws_lstm")


def windows(count: int) -> np.ndarray:
    """`count` windows spread over the recording, shaped (count, 1, 49, 10)."""
    x = toycar_mfcc_windows()
    return x[::len(x) // count][:count, None]


def onnxruntime_outputs(model: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.stack([session.run(None, {name: sample})[0] for sample in x])


def build_and_run(args: list[str], x: np.ndarray, tmp_path: Path) -> tuple[str, np.ndarray]:
    """`ariel build ARGS -o OUT`, then `ariel simulate` on x: the build's output and the
    outputs read back."""
    out, runner = tmp_path / "build", CliRunner()
    built = runner.invoke(main, ["build", *args, "-o", str(out)])
    assert built.exit_code == 0, built.output + built.stderr
    np.save(tmp_path / "x.npy", x)
    result = runner.invoke(main, ["simulate", str(out), "--inputs", str(tmp_path / "x.npy"),
                                  "--outputs", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output + result.stderr
    return built.stdout, np.load(tmp_path / "y.npy")


@pytest.mark.parametrize("model", SPOTTERS)
def test_float_spotter_in_qemu_matches_onnxruntime(model, tmp_path):
    path = MODELS / f"{model}.onnx"
    x = windows(4)
    _, got = build_and_run([str(path)], x, tmp_path)
    want = onnxruntime_outputs(path, x)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * (want.max() - want.min())
    assert (got.argmax(-1) == want.argmax(-1)).all()
