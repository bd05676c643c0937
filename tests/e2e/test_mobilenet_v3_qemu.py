"""MobileNetV3-Small (examples/export_mobilenet_v3.py: width 0.35, 96x96, seeded weights,
batch-norm statistics from photographs) end to end on the default board, on crops of
scikit-learn's sample photographs: hard-swish and hard-sigmoid activations, 5x5 depthwise
convolutions and squeeze-and-excite (GlobalAveragePool, 1x1 convolutions, HardSigmoid, a
broadcasting Mul).

Float: outputs in QEMU within 1e-4 of onnxruntime's output range. int8 (calibrated on other
crops): the firmware equals ariel's integer reference bit for bit, each layer fed ONNX
Runtime's own int8 inputs is within one step of ONNX Runtime running the QDQ model as
written, and the float islands are reported: none, printed and in ariel.json."""

import json

import numpy as np
import onnxruntime
import pytest

from codegen.build import build
from codegen.compiler.compile import Options
from codegen.compiler.reference import run_graph
from codegen.datasets import sample_image_crops
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import DEFAULT_BOARD, get_board

pytestmark = pytest.mark.qemu

MODEL = data_dir("examples") / "models" / "mobilenet_v3_small_96.onnx"


def photos(count: int, seed: int) -> np.ndarray:
    return (sample_image_crops(count, 96, seed=seed) / 255).astype(np.float32)


def test_float_mobilenet_v3_in_qemu_matches_onnxruntime(tmp_path):
    result = build(MODEL, get_board(DEFAULT_BOARD), tmp_path / "out")
    assert {"HardSwish", "HardSigmoid", "Mul"} <= {k["op"] for k in result.compiled.info.kernels}
    x = photos(3, seed=2)[:, None]
    got = simulate(open_build(tmp_path / "out"), [x]).outputs[0]
    session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    want = np.stack([session.run(None, {"image": sample})[0] for sample in x])
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * (want.max() - want.min())


def test_int8_mobilenet_v3_in_qemu(tmp_path):
    np.save(tmp_path / "calib.npy", photos(16, seed=1))
    result = build(MODEL, get_board(DEFAULT_BOARD), tmp_path / "out",
                   Options(precision="int8", calibration=str(tmp_path / "calib.npy")))
    graph = result.compiled.graph
    x = photos(3, seed=2)[:, None]
    firmware = simulate(open_build(tmp_path / "out"), [x]).outputs[0]
    reference = np.stack([run_graph(graph, [sample])[0] for sample in x])
    np.testing.assert_array_equal(firmware, reference)

    compared = [row for row in result.quantization.layers if row.ort_identical is not None]
    assert {row.op for row in compared} >= {"Conv", "HardSwish", "HardSigmoid", "Mul", "Add",
                                            "GlobalAveragePool", "Gemm"}
    for row in compared:
        assert row.ort_max_lsb <= 1, row

    # Every activation and the squeeze-and-excite's scaling run on int8: no float island,
    # and the build says so.
    for node in graph.nodes:
        if node.op in ("HardSwish", "HardSigmoid", "Mul", "Conv"):
            assert graph.tensor(node.outputs[0]).dtype == "int8", node.name
    assert result.compiled.float_islands == []
    assert "Float islands: none" in result.report
    metadata = json.loads((tmp_path / "out" / "ariel.json").read_text())
    assert metadata["float_islands"] == []
