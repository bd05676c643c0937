"""Bad int8 inputs: calibration data of the wrong shape or dtype, with NaN or Inf, empty, or
missing; quantized models in a scheme ariel does not implement. Each stops the build with
one clear error naming what is wrong and what is supported, and leaves no output folder."""

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from codegen.cli import main
from codegen.resources import data_dir
from tests.support import DAMAGED_NPZ, damaged_npz

MLP = data_dir("examples") / "models" / "digits_mlp.onnx"  # float input [1, 64]


def build(args, tmp_path):
    result = CliRunner().invoke(main, ["build", *map(str, args), "-o", str(tmp_path / "out")])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    assert len(errors) == 1, result.stderr
    assert not (tmp_path / "out").exists()
    return errors[0]


@pytest.mark.parametrize("data,message", [
    (np.zeros((10, 3, 8, 8), np.float32), r"has shape \[10, 3, 8, 8\]; the model takes \[1, 64\]"),
    (np.zeros((10, 64), np.float64), "must be float32, got float64"),
    (np.zeros((0, 64), np.float32), "is empty"),
])
def test_calibration_data_of_the_wrong_kind(tmp_path, data, message):
    import re

    np.save(tmp_path / "calib.npy", data)
    error = build([MLP, "--precision", "int8", "--calib", tmp_path / "calib.npy"], tmp_path)
    assert re.search(message, error), error


def test_calibration_data_with_nan_or_inf(tmp_path):
    data = np.ones((10, 64), np.float32)
    data[3, 5] = np.nan
    data[7, 0] = np.inf
    np.save(tmp_path / "calib.npy", data)
    error = build([MLP, "--precision", "int8", "--calib", tmp_path / "calib.npy"], tmp_path)
    assert "2 NaN or infinite values (the first at index [3, 5])" in error


@pytest.mark.parametrize("kind", DAMAGED_NPZ)
def test_damaged_calibration_npz(tmp_path, kind):
    path = damaged_npz(tmp_path / "calib.npz", kind, np.ones((10, 64), np.float32))
    error = build([MLP, "--precision", "int8", "--calib", path], tmp_path)
    assert DAMAGED_NPZ[kind] in error and "calib.npz" in error, error


def test_missing_calibration(tmp_path):
    error = build([MLP, "--precision", "int8"], tmp_path)
    assert "needs calibration data" in error and "--calib" in error
    error = build([MLP, "--precision", "int8", "--calib", tmp_path / "nope.npy"], tmp_path)
    assert "not found" in error and "digits" in error


def test_builtin_data_set_of_the_wrong_size(tmp_path):
    error = build([MLP, "--precision", "int8", "--calib", "toycar"], tmp_path)
    assert "'toycar' has 640 values per sample" in error


def _dequantize_model(tmp_path, weight: np.ndarray | None, elem_type: int, zero_point=None,
                      opset: int = 21, **attrs):
    """x -> MatMul(x, DequantizeLinear(W)) with W of the given element type."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    shape = [4, 4]
    if weight is not None:
        w = numpy_helper.from_array(weight, "w")
    else:
        w = helper.make_tensor("w", elem_type, shape, np.zeros(16, np.int64).tolist())
    inits = [w, numpy_helper.from_array(np.array(0.1, np.float32), "s")]
    dq_inputs = ["w", "s"]
    if zero_point is not None:
        inits.append(zero_point)
        dq_inputs.append("zp")
    nodes = [helper.make_node("DequantizeLinear", dq_inputs, ["wf"], name="dq_w", **attrs),
             helper.make_node("MatMul", ["x", "wf"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "q", [x], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [1, 4])], inits)
    path = tmp_path / "q.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


@pytest.mark.parametrize("elem_type,name", [(TensorProto.INT4, "INT4"),
                                            (TensorProto.FLOAT8E4M3FN, "FLOAT8E4M3FN"),
                                            (TensorProto.INT16, "INT16")])
def test_unsupported_quantized_types(tmp_path, elem_type, name):
    path = _dequantize_model(tmp_path, None, elem_type)
    error = build([path, "--precision", "int8"], tmp_path)
    assert f"node 'dq_w' (DequantizeLinear): quantized type {name} of 'w'" in error
    assert "supported: int8 or uint8 activations" in error


def test_blocked_quantization(tmp_path):
    scale = numpy_helper.from_array(np.full((4, 2), 0.1, np.float32), "s")
    path = _dequantize_model(tmp_path, np.ones((4, 4), np.int8), TensorProto.INT8,
                             axis=1, block_size=2)
    model = onnx.load(path)
    model.graph.initializer[1].CopyFrom(scale)
    onnx.save(model, path)
    error = build([path, "--precision", "int8"], tmp_path)
    assert "blocked quantization (block_size 2) is not supported" in error


def test_asymmetric_weights(tmp_path):
    path = _dequantize_model(tmp_path, np.ones((4, 4), np.int8), TensorProto.INT8,
                             zero_point=numpy_helper.from_array(np.array(3, np.int8), "zp"))
    error = build([path, "--precision", "int8"], tmp_path)
    assert "asymmetric weights 'w' (zero points [3])" in error
