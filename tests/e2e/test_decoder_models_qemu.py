"""The decoder-family example models end to end (examples/export_decoders.py): a U-Net with
a ConvTranspose and a bilinear Resize, a convolutional autoencoder with two ConvTransposes,
and a YOLO-style detector with a nearest Resize and its box decoding in the graph.

Float: `ariel build` for the default board and `ariel simulate` in QEMU, outputs within 1e-4
of the output range of onnxruntime's on the same inputs. int8 (calibrated on real images):
the firmware equals ariel's integer reference bit for bit, each integer layer fed ONNX
Runtime's own int8 inputs gives its int8 outputs within one step, and the resampling layers
are integer kernels."""

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from click.testing import CliRunner

from codegen.build import build
from codegen.cli import main
from codegen.compiler.compile import Options
from codegen.compiler.reference import run_graph
from codegen.datasets import mnist, sample_image_crops
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board

pytestmark = pytest.mark.qemu
MODELS = data_dir("examples") / "models"


def inputs_for(model: str) -> tuple[np.ndarray, np.ndarray]:
    """(calibration samples, test samples), each (N, 1, C, H, W): MNIST's training and
    held-out images, or crops of real photographs scaled to 0..1 for the detector."""
    if model == "yolo_tiny_detector":
        return (sample_image_crops(32, 64, seed=1)[:, None] / 255,
                sample_image_crops(2, 64, seed=2)[:, None] / 255)
    x_train, _, x_test, _ = mnist()
    return x_train[:64, None], x_test[:2, None]


def onnxruntime_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.stack([session.run(None, {name: sample})[0] for sample in x])


@pytest.mark.parametrize("model", ["unet_mnist", "conv_autoencoder_mnist",
                                   "yolo_tiny_detector"])
def test_float_model_in_qemu_matches_onnxruntime(model, tmp_path):
    path = MODELS / f"{model}.onnx"
    runner = CliRunner()
    result = runner.invoke(main, ["build", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output + result.stderr
    x = inputs_for(model)[1].astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = runner.invoke(main, ["simulate", str(tmp_path / "out"), "--inputs",
                                  str(tmp_path / "x.npy"), "--outputs", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output + result.stderr
    got, want = np.load(tmp_path / "y.npy"), onnxruntime_outputs(path, x)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * (want.max() - want.min())


# Layers whose int8 kernels this family added, by model (the detector's box decoding: Mul and
# Add by the constant grid and anchors, which are folded before quantization).
RESAMPLING = {"unet_mnist": {"ConvTranspose", "Resize"},
              "conv_autoencoder_mnist": {"ConvTranspose"},
              "yolo_tiny_detector": {"Resize", "Mul", "Add"}}


@pytest.mark.parametrize("model", ["unet_mnist", "conv_autoencoder_mnist",
                                   "yolo_tiny_detector"])
def test_int8_model_in_qemu(model, tmp_path):
    calibration, tests = inputs_for(model)
    np.save(tmp_path / "calib.npy", calibration.astype(np.float32))
    result = build(MODELS / f"{model}.onnx", get_board("mps2-an386"), tmp_path / "out",
                   Options(precision="int8", calibration=str(tmp_path / "calib.npy")))
    graph = result.compiled.graph
    x = tests.astype(np.float32)
    firmware = simulate(open_build(tmp_path / "out"), [x]).outputs[0]
    reference = np.stack([run_graph(graph, [sample])[0] for sample in x])
    np.testing.assert_array_equal(firmware, reference)
    compared = [row for row in result.quantization.layers if row.ort_identical is not None]
    assert {row.op for row in compared} >= RESAMPLING[model]
    for row in compared:
        assert row.ort_max_lsb <= 1 and row.ort_identical >= 0.9, row
