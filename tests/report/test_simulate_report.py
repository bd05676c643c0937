"""`ariel simulate --compare` with NaN and infinite outputs: the comparison counts them
instead of printing numpy warnings and a NaN 'largest difference'."""

import math
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.report.simulate import compare_with_onnxruntime, summary_text
from codegen.run.simulate import Build, Simulation
from tests.support import compile_onnx

# x * 1e38: NaN stays NaN, 10 and -10 overflow to +-inf, the rest stay finite.
INPUTS = np.array([[[np.nan, 10, -10, 1, 0, 0.5]], [[0.25, 0.5, 1, 2, -1, -0.5]]], np.float32)


def scaling_build(folder) -> Build:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])
    scale = numpy_helper.from_array(np.array(1e38, np.float32), "scale")
    graph = helper.make_graph([helper.make_node("Mul", ["x", "scale"], ["y"])], "scaling", [x],
                              [y], [scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, folder / "model.onnx")
    info = compile_onnx(model).info
    return Build(folder, {"model": {"file": "model.onnx"}, "model_info": info.to_dict(),
                          "board": "mps2-an386"})


def firmware_outputs() -> np.ndarray:
    """What the firmware computes, in float32 as it does."""
    with np.errstate(over="ignore"):
        return INPUTS * np.float32(1e38)


def compare(build: Build, outputs: np.ndarray) -> tuple[dict, str]:
    result = Simulation([outputs], len(outputs), 0.1, "")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning fails the test
        rows = compare_with_onnxruntime(build, [INPUTS], result)
        return rows[0], summary_text(build, result, rows)


def test_equal_nan_and_infinities_agree_and_are_counted(tmp_path):
    build = scaling_build(tmp_path)
    row, text = compare(build, firmware_outputs())
    assert row["nan"] == {"firmware": 1, "onnxruntime": 1}
    assert row["infinite"] == {"firmware": 2, "onnxruntime": 2}
    assert row["non_finite_mismatches"] == 0
    assert row["max_abs_error"] == 0 and row["range"] == pytest.approx([-1e38, 2e38], rel=1e-6)
    assert "largest difference 0 " in text
    assert "NaN: 1 of the firmware's 12 values, 1 of onnxruntime's" in text
    assert "WARNING" not in text


def test_a_nan_where_onnxruntime_has_a_number_is_a_warning(tmp_path):
    build = scaling_build(tmp_path)
    outputs = firmware_outputs()
    outputs[1, 0, 3] = np.nan
    outputs[1, 0, 0] *= np.float32(1.5)
    row, text = compare(build, outputs)
    assert row["non_finite_mismatches"] == 1
    assert math.isclose(row["max_abs_error"], 0.125e38, rel_tol=1e-6)
    assert "NaN: 2 of the firmware's 12 values, 1 of onnxruntime's" in text
    assert "WARNING: 1 value(s) are NaN or infinite on one side only" in text

