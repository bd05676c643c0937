"""The keyword-spotting transformer (examples/models/kws_transformer.onnx, a PyTorch export:
patch embedding, two encoder blocks of multi-head self-attention with LayerNorm and a GELU
MLP, class token, dense head) end to end on the default board, on MFCC-like windows made
from the shipped ToyCar recording (no speech data installs offline).

Float: `ariel build` and `ariel simulate` in QEMU, logits within 1e-4 of the output range of
onnxruntime's. int8 (calibrated on other windows): the firmware equals ariel's integer
reference bit for bit, each integer layer fed ONNX Runtime's own int8 inputs gives its int8
outputs within one step, and nothing computes in float but the input's QuantizeLinear and
the logits' DequantizeLinear: the attention's MatMuls of two run-time operands, the
LayerNorms, the softmaxes and GELU's Erf (a table) are all integer."""

import numpy as np
import onnxruntime
import pytest
from click.testing import CliRunner

from codegen.build import build
from codegen.cli import main
from codegen.compiler.compile import Options
from codegen.compiler.reference import run_graph
from codegen.datasets import toycar_mfcc_windows
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board

pytestmark = pytest.mark.qemu

MODEL = data_dir("examples") / "models" / "kws_transformer.onnx"


def windows(count: int) -> np.ndarray:
    """`count` windows spread over the recording, shaped (count, 1, 1, 49, 10)."""
    x = toycar_mfcc_windows()
    return x[::len(x) // count][:count, None, None]


def test_float_transformer_in_qemu_matches_onnxruntime(tmp_path):
    runner = CliRunner()
    out = tmp_path / "build"
    built = runner.invoke(main, ["build", str(MODEL), "-o", str(out)])
    assert built.exit_code == 0, built.output + built.stderr
    x = windows(4)
    np.save(tmp_path / "x.npy", x)
    result = runner.invoke(main, ["simulate", str(out), "--inputs", str(tmp_path / "x.npy"),
                                  "--outputs", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output + result.stderr
    session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    want = np.stack([session.run(None, {"mfcc": sample})[0] for sample in x])
    got = np.load(tmp_path / "y.npy")
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * (want.max() - want.min())
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_int8_transformer_in_qemu(tmp_path):
    calibration = toycar_mfcc_windows()[1::3][:, None, None]
    np.save(tmp_path / "calib.npy", calibration)
    result = build(MODEL, get_board("mps2-an386"), tmp_path / "out",
                   Options(precision="int8", calibration=str(tmp_path / "calib.npy")))
    graph = result.compiled.graph
    x = windows(2)
    firmware = simulate(open_build(tmp_path / "out"), [x]).outputs[0]
    reference = np.stack([run_graph(graph, [sample])[0] for sample in x])
    np.testing.assert_array_equal(firmware, reference)

    # No float island: only the model's own boundary computes in float.
    floats = [node.op for node in graph.nodes
              if any(graph.tensor(n).dtype == "float32" for n in node.outputs)]
    assert floats == ["DequantizeLinear"], floats
    assert result.compiled.float_islands == []
    ops = {node.op for node in graph.nodes}
    assert {"LayerNormalization", "MatMul", "Softmax", "ariel.Table"} <= ops
    attention = [node for node in graph.nodes if node.op == "MatMul"
                 and not any(graph.tensor(n).is_const for n in node.inputs)]
    assert len(attention) == 4  # q k^T and softmax(...) v in each of the two blocks

    compared = [row for row in result.quantization.layers if row.ort_identical is not None]
    assert {row.op for row in compared} >= {"LayerNormalization", "MatMul", "Softmax"}
    for row in compared:
        assert row.ort_max_lsb <= 1 and row.ort_identical >= 0.9, row
