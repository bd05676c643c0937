"""The recurrent keyword spotters (examples/models/kws_gru.onnx and kws_lstm.onnx, PyTorch
exports) end to end on the default board: `ariel build`, `ariel simulate` in QEMU, outputs
against onnxruntime on MFCC-like windows made from the shipped ToyCar recording (no speech
data installs offline). Float against the float model; int8 (calibrated on other windows
of the recording) against onnxruntime running the QDQ model the build wrote, in which the
recurrent layers have int8 weights and float state, as in the firmware."""

import json
from pathlib import Path

import numpy as np
import onnx
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
    """onnxruntime on each sample, the model as written (its optimizations off: optimized,
    it fuses a QDQ model's Gemm into its own int8 kernel, which requantizes otherwise)."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(str(model), options,
                                           providers=["CPUExecutionProvider"])
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


@pytest.mark.parametrize("model", SPOTTERS)
def test_int8_spotter_in_qemu_matches_the_qdq_model(model, tmp_path):
    calibration = toycar_mfcc_windows()[1::3][:, None]
    np.save(tmp_path / "calib.npy", calibration)
    x = windows(4)
    path = MODELS / f"{model}.onnx"
    printed, got = build_and_run([str(path), "--precision", "int8", "--calib",
                                  str(tmp_path / "calib.npy")], x, tmp_path)
    out = tmp_path / "build"
    metadata = json.loads((out / "ariel.json").read_text())
    recurrent = [k for k in metadata["model_info"]["kernels"] if k["op"] in ("GRU", "LSTM")]
    # The recurrent layers keep float state: float islands, printed and listed with their
    # share of the model's MACs (steps x gates x hidden x (inputs + hidden) each).
    islands = {island["node"]: island for island in metadata["float_islands"]}
    total = sum(k["macs"] for k in metadata["model_info"]["kernels"])
    for kernel in recurrent:
        island = islands[kernel["name"]]
        gates = 3 if kernel["op"] == "GRU" else 4
        assert island["macs"] == kernel["macs"] > 0 and kernel["macs"] % (49 * gates) == 0
        assert island["share"] == pytest.approx(kernel["macs"] / total)
        assert island["why"] == "int8 weights, float activations"
        assert any(line.split()[:2] == [kernel["name"], kernel["op"]]
                   for line in printed.splitlines())
    source = (out / "model" / f"{model}.c").read_text()
    assert recurrent and "ariel_column_s16" in source  # int8 weights, not a float island
    qdq = onnx.load(str(out / "model_qdq.onnx"))
    want = onnxruntime_outputs(out / "model_qdq.onnx", x)
    step = float(onnx.numpy_helper.to_array(next(
        i for i in qdq.graph.initializer
        if i.name == next(n for n in qdq.graph.node
                          if n.output[0] == qdq.graph.output[0].name).input[1])))
    # The logits differ by one step of their int8 scale at most (rounding ties, and the
    # recurrent layer's int16 vectors against onnxruntime's float ones).
    assert np.abs(got - want).max() <= step * 1.001
    assert (np.abs(got - want) > step / 2).mean() <= 0.05
