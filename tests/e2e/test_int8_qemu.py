"""int8 end to end: each MLPerf Tiny model quantized on real data (or, where no real data
installs offline, on the ranges its training used), built for the default board with int8
inputs and outputs, and run in QEMU. The firmware's outputs equal the host-compiled C and
ariel's numpy integer reference bit for bit.

Calibration data: the autoencoder on real ToyCar windows (even windows calibrate, odd ones
test); ResNet-8 and VWW on crops of scikit-learn's two sample photographs (0..255 for
ResNet-8, 0..1 for VWW, as they were trained); KWS on uniform values over the MFCC range its
int8 release states (-123..26), because no speech data installs offline."""

from pathlib import Path

import numpy as np
import pytest

from codegen.build import build
from codegen.compiler.compile import Options
from codegen.compiler.quant.report import quantize_inputs
from codegen.compiler.reference import run_graph
from codegen.datasets import sample_image_crops, toycar_windows
from codegen.resources import data_dir
from codegen.run.hostrun import HostModel, build_host_library
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board

pytestmark = pytest.mark.qemu
MODELS = data_dir("examples") / "models"


def calibration_and_tests(model: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    if model == "ad_autoencoder_toycar":
        windows = toycar_windows()
        return windows[0::2], windows[1::2][:6]
    if model == "resnet8_cifar10":
        return sample_image_crops(48, 32, seed=1), sample_image_crops(4, 32, seed=2)
    if model == "vww_mobilenet_96":
        return sample_image_crops(32, 96, seed=1) / 255, sample_image_crops(3, 96, seed=2) / 255
    values = rng.uniform(-123, 26, size=(52, 1, 1, 49, 10)).astype(np.float32)
    return values[:48], values[48:]


@pytest.mark.parametrize("model", ["resnet8_cifar10", "ad_autoencoder_toycar",
                                   "vww_mobilenet_96", "kws_dscnn"])
def test_int8_firmware_is_bit_exact(model, tmp_path):
    calibration, tests = calibration_and_tests(model)
    np.save(tmp_path / "calib.npy", calibration.astype(np.float32))
    result = build(MODELS / f"{model}.onnx", get_board("mps2-an386"), tmp_path / "out",
                   Options(precision="int8", calibration=str(tmp_path / "calib.npy"),
                           io="int8"))
    graph = result.compiled.graph
    x = quantize_inputs(graph, [tests.astype(np.float32).reshape(
        len(tests), *graph.tensor(graph.inputs[0]).shape)])[0]

    firmware = simulate(open_build(tmp_path / "out"), [x]).outputs[0]
    reference = np.stack([run_graph(graph, [sample])[0] for sample in x])
    host = HostModel(build_host_library(result.compiled.files, tmp_path / "host"),
                     result.compiled.info)
    host_outputs = np.stack([host.run(sample)[0] for sample in x])

    assert firmware.dtype == np.int8
    np.testing.assert_array_equal(firmware, reference)
    np.testing.assert_array_equal(host_outputs, reference)
    _check_memory_against_tflite_micro(model, result)


# Arena sizes TensorFlow Lite Micro needs for the int8 releases of these models (MLPerf Tiny
# reference submissions), which take int8 inputs and outputs as these builds do.
TFLM_ARENA = {"resnet8_cifar10": 55_984, "vww_mobilenet_96": 103_672,
              "ad_autoencoder_toycar": 4_632, "kws_dscnn": 24_272}


def _check_memory_against_tflite_micro(model: str, result) -> None:
    memory = result.memory
    arena = memory.symbols["arena"]
    assert arena == result.compiled.info.arena_size
    assert arena < TFLM_ARENA[model], (arena, TFLM_ARENA[model])
    assert result.float_info is not None and result.float_info.arena_size > arena
    # int8 filters take a quarter of float's bytes, except the depthwise ones, stored as int16
    # pairs (pre-widened for SMLAD: twice their int8 bytes, kws_dscnn's 0.36 of float's).
    assert result.compiled.info.weights_bytes < result.float_info.weights_bytes * 0.4


def test_int8_with_float_io_tracks_onnxruntime(tmp_path):
    """The usual build: float in, float out, quantization inside. The firmware equals ariel's
    reference exactly (QuantizeLinear and DequantizeLinear included); every layer, fed ONNX
    Runtime's own int8 inputs, gives ONNX Runtime's int8 outputs within one LSB; and the
    model picks the same class as ONNX Runtime running the whole QDQ model."""
    import onnxruntime

    calibration, tests = calibration_and_tests("resnet8_cifar10")
    np.save(tmp_path / "calib.npy", calibration)
    result = build(MODELS / "resnet8_cifar10.onnx", get_board("mps2-an386"), tmp_path / "out",
                   Options(precision="int8", calibration=str(tmp_path / "calib.npy")))
    x = tests[:, None]
    firmware = simulate(open_build(tmp_path / "out"), [x]).outputs[0]
    reference = np.stack([run_graph(result.compiled.graph, [sample])[0] for sample in x])
    np.testing.assert_array_equal(firmware, reference)

    compared = [row for row in result.quantization.layers if row.ort_identical is not None]
    assert {row.op for row in compared} >= {"Conv", "Add", "AveragePool", "Gemm", "Softmax"}
    for row in compared:
        # One step at most, and only where the two round differently: ties (ariel rounds the
        # exact value half up, ONNX Runtime a float product half to even) and values within
        # float rounding of one, measured at most 2 in 100,000 outputs per layer. ONNX
        # Runtime's AveragePool rounds a float mean, ariel the exact integer one: 1.03% of
        # its outputs differ (measured on the quantization report's samples).
        least = 0.98 if row.op == "AveragePool" else 0.9999
        assert row.ort_max_lsb <= 1 and row.ort_identical >= least, row

    qdq = Path(tmp_path / "out" / "model_qdq.onnx")
    session = onnxruntime.InferenceSession(str(qdq), providers=["CPUExecutionProvider"])
    want = np.stack([session.run(None, {"input_1": sample})[0] for sample in x])
    assert (firmware.argmax(-1) == want.argmax(-1)).all()


def test_prequantized_qdq_model_builds_the_same_firmware(tmp_path):
    """A QDQ model (here the one ariel's own int8 build saved) is taken as it is with no
    calibration, and gives the same integer graph and outputs."""
    calibration, tests = calibration_and_tests("kws_dscnn")
    np.save(tmp_path / "calib.npy", calibration)
    first = build(MODELS / "kws_dscnn.onnx", get_board("mps2-an386"), tmp_path / "a",
                  Options(precision="int8", calibration=str(tmp_path / "calib.npy")))
    second = build(tmp_path / "a" / "model_qdq.onnx", get_board("mps2-an386"), tmp_path / "b",
                   Options(precision="int8"))
    assert second.quantization.samples == 0
    x = tests.reshape(len(tests), 1, 1, 49, 10)
    np.testing.assert_array_equal(simulate(open_build(tmp_path / "a"), [x]).outputs[0],
                                  simulate(open_build(tmp_path / "b"), [x]).outputs[0])
    assert [k["op"] for k in first.compiled.info.kernels] == \
        [k["op"] for k in second.compiled.info.kernels]
