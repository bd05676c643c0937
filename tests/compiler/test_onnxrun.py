"""onnxruntime on users' models (codegen/compiler/onnxrun.py): a model with an integer
division runs in a child process, whose death or refusal becomes one line; others run in
this process. ONNX Runtime's quantizer takes the same path."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler import onnxrun
from codegen.compiler.quant.calibrate import CalibrationData, quantize_float_model
from codegen.errors import ArielError


def division(elem: int, name: str = "divide") -> onnx.ModelProto:
    values = [helper.make_tensor_value_info(n, elem, [4]) for n in "aby"]
    graph = helper.make_graph([helper.make_node("Div", ["a", "b"], ["y"], name=name)],
                              "division", values[:2], values[2:])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_integer_divisions_are_found_and_float_ones_are_not():
    assert onnxrun.integer_divisions(division(TensorProto.INT32)) == ["Div 'divide'"]
    assert onnxrun.integer_divisions(division(TensorProto.FLOAT)) == []
    inner = division(TensorProto.INT64, "inner").graph
    branch = helper.make_node("If", ["c"], ["y"], name="choose", then_branch=inner,
                              else_branch=inner)
    outer = helper.make_graph([branch], "outer",
                              [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [4])])
    model = helper.make_model(outer, opset_imports=[helper.make_opsetid("", 17)])
    assert onnxrun.integer_divisions(model) == ["Div 'inner'", "Div 'inner'"]


def test_float_models_run_in_this_process(monkeypatch):
    monkeypatch.setattr(onnxrun, "in_child", lambda *a: pytest.fail("ran in a child"))
    a, b = np.array([1, 2, 3, 4], np.float32), np.array([2, 4, 8, 0], np.float32)
    ((y,),) = onnxrun.run_model(division(TensorProto.FLOAT), [{"a": a, "b": b}], ["y"],
                                "a test")
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(y, a / b)


def test_integer_models_run_in_a_child_and_its_refusals_are_one_line():
    a = np.array([7, -7, 5, 1], np.int32)
    feeds = [{"a": a, "b": np.array([2, 2, 2, 2], np.int32)},
             {"a": a, "b": np.array([1, -1, 5, 1], np.int32)}]
    runs = onnxrun.run_model(division(TensorProto.INT32), feeds, ["y"], "a test")
    np.testing.assert_array_equal(runs[0][0], [3, -3, 2, 0])
    np.testing.assert_array_equal(runs[1][0], [7, 7, 1, 1])
    with pytest.raises(ArielError, match=r"^onnxruntime could not run the model \(a test\): "
                       r".*Integer division by zero$"):
        onnxrun.run_model(division(TensorProto.INT32), [{"a": a, "b": 0 * a}], ["y"], "a test")


def test_the_quantizer_runs_in_a_child_for_a_model_with_an_integer_division():
    """A float model whose shape arithmetic divides integers: x [1, 8] -> MatMul -> [1, 8]
    -> Reshape to [1, 8 / 2, 2] (the 4 computed by an int64 Div) -> Relu."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Div", ["eight", "two"], ["four"], name="halve"),
             helper.make_node("Concat", ["one", "four", "two"], ["shape"], axis=0),
             helper.make_node("Reshape", ["m", "shape"], ["r"]),
             helper.make_node("Relu", ["r"], ["y"])]
    constants = [numpy_helper.from_array(np.array([v], np.int64), n)
                 for n, v in (("one", 1), ("two", 2), ("eight", 8))]
    constants.append(numpy_helper.from_array(
        np.random.default_rng(1).normal(size=(8, 8)).astype(np.float32), "w"))
    graph = helper.make_graph(nodes, "halves",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert onnxrun.integer_divisions(model) == ["Div 'halve'"]
    data = CalibrationData({"x": np.random.default_rng(0).normal(size=(4, 1, 8))
                            .astype(np.float32)}, None, "tests")
    quantized = quantize_float_model(model, data)
    assert "QuantizeLinear" in {node.op_type for node in quantized.graph.node}
