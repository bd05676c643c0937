"""The two example architectures the data-movement operators are for, end to end in QEMU on
the default board, in float and in int8:

- ShuffleNetV2 (examples/export_shufflenet_v2.py): channel split (Slice), Concat of
  branches quantized at different scales, channel shuffle (Reshape / Transpose / Reshape),
  MaxPool;
- a TCN with causal padding (examples/train_tcn.py): PyTorch's F.pad, exported through a
  constant sub-graph that the build folds, then folded into the convolutions; the last time
  step taken with a Gather.

Float: outputs within 1e-4 of onnxruntime's output range. int8 (quantized by ONNX Runtime on
real data, int8 inputs and outputs): every kernel integer, the firmware equal to ariel's
integer reference bit for bit, and each layer within one step of ONNX Runtime running the
QDQ model as written when fed the same int8 inputs (the build's quantization report)."""

from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from codegen.build import build
from codegen.compiler.compile import Options
from codegen.compiler.quant.report import quantize_inputs
from codegen.compiler.reference import run_graph
from codegen.datasets import basic_motions, sample_image_crops
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import DEFAULT_BOARD, get_board

pytestmark = pytest.mark.qemu
MODELS = data_dir("examples") / "models"


def data(model: str) -> tuple[np.ndarray, np.ndarray]:
    """(calibration inputs, test inputs), float32, batched as the model takes them."""
    if model == "tcn_basic_motions":
        x_train, _, x_test, _ = basic_motions()
        return x_train, x_test[::13][:, None]
    return ((sample_image_crops(16, 64, seed=1) / 255).astype(np.float32),
            (sample_image_crops(3, 64, seed=2) / 255).astype(np.float32)[:, None])


def onnxruntime_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.stack([session.run(None, {name: sample})[0] for sample in x])


@pytest.mark.parametrize("model", ["shufflenet_v2_64", "tcn_basic_motions"])
def test_float_model_in_qemu_matches_onnxruntime(model, tmp_path):
    path = MODELS / f"{model}.onnx"
    result = build(path, get_board(DEFAULT_BOARD), tmp_path / "out")
    ops = {k["op"] for k in result.compiled.info.kernels}
    assert "Pad" not in ops  # folded into the convolutions
    _, x = data(model)
    got = simulate(open_build(tmp_path / "out"), [x]).outputs[0]
    want = onnxruntime_outputs(path, x)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * (want.max() - want.min())


@pytest.mark.parametrize("model", ["shufflenet_v2_64", "tcn_basic_motions"])
def test_int8_model_in_qemu_is_bit_exact_and_agrees_with_onnxruntime(model, tmp_path):
    calibration, x = data(model)
    np.save(tmp_path / "calib.npy", calibration)
    result = build(MODELS / f"{model}.onnx", get_board(DEFAULT_BOARD), tmp_path / "out",
                   Options(precision="int8", calibration=str(tmp_path / "calib.npy"),
                           io="int8"))
    graph = result.compiled.graph
    for node in graph.nodes:  # no float island: every kernel reads and writes int8
        assert all(graph.tensor(n).dtype == "int8" for n in [node.inputs[0], *node.outputs]), \
            (node.op, node.name)
    layers = result.quantization.layers
    assert {row.op for row in layers} >= {"Conv", "Add" if "tcn" in model else "Concat"}
    assert all(row.ort_max_lsb is not None and row.ort_max_lsb <= 1 for row in layers), [
        (row.op, row.ort_max_lsb) for row in layers]

    ints = quantize_inputs(graph, [x])[0]
    firmware = simulate(open_build(tmp_path / "out"), [ints]).outputs[0]
    reference = np.stack([run_graph(graph, [sample])[0] for sample in ints])
    assert firmware.dtype == np.int8
    np.testing.assert_array_equal(firmware, reference)
