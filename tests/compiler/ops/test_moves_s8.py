"""Operators that move int8 values without rescaling them (Reshape, Flatten, Squeeze,
Unsqueeze, Identity, Transpose, Concat, the layout copies): they stay integer, with input
and output sharing one scale and zero point (or, for a Concat's inputs, mapped to the
output's through a table), and no QuantizeLinear/DequantizeLinear kernel appears inside the
model."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.compiler.ops.test_quantize import (
    assert_integer_only,
    calibration,
    check_int8,
    kernel_ops,
)
from tests.support import compile_onnx_int8

SHAPE = (1, 4, 6, 6)


def after_add(nodes: list, initializers=(), second=None) -> onnx.ModelProto:
    """x + half -> `nodes` (reading "sum", writing "y0"): ONNX Runtime quantizes the moves
    only after a quantized node."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "half"], ["sum"], name="add"), *nodes], "moves",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE),
         helper.make_tensor_value_info("half", TensorProto.FLOAT, [1]),
         *([second] if second is not None else [])],
        [helper.make_empty_tensor_value_info("y0")], list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def int64(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, np.int64), name)


# name: (nodes after the Add, initializers, operators that run code)
CASES = {
    "reshape": ([helper.make_node("Reshape", ["sum", "shape"], ["y0"])],
                [int64("shape", [1, 4, 36])], ["Add"]),
    "flatten": ([helper.make_node("Flatten", ["sum"], ["y0"], axis=1)], [], ["Add"]),
    "unsqueeze_squeeze": ([helper.make_node("Unsqueeze", ["sum", "axes"], ["u"]),
                           helper.make_node("Squeeze", ["u", "axes"], ["y0"])],
                          [int64("axes", [0])], ["Add"]),
    "transpose": ([helper.make_node("Transpose", ["sum"], ["y0"], perm=[0, 2, 3, 1])], [],
                  ["Add"]),
    "maxpool_flatten": ([helper.make_node("MaxPool", ["sum"], ["p"], kernel_shape=[2, 2],
                                          strides=[2, 2]),
                         helper.make_node("Flatten", ["p"], ["y0"])], [],
                        ["Add", "MaxPool"]),
    "concat_with_itself": ([helper.make_node("Concat", ["sum", "sum"], ["y0"], axis=1)], [],
                           ["Add", "Concat"]),
}


def samples_for(seed: int, count: int = 4, names=("x",)):
    rng = np.random.default_rng(seed)
    return [{**{n: rng.uniform(-2, 2, SHAPE).astype(np.float32) for n in names},
             "half": np.array([0.5], np.float32)} for _ in range(count)]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_moves_stay_integer(case, tmp_path, record_property):
    nodes, initializers, computing = CASES[case]
    samples = samples_for(sum(map(ord, case)))
    compiled = compile_onnx_int8(after_add(nodes, initializers), calibration(samples),
                                 io="int8")
    assert kernel_ops(compiled) == computing
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


def test_concat_of_equally_quantized_inputs(tmp_path, record_property):
    """Two inputs calibrated to the same range get the same parameters from ONNX Runtime,
    so the Concat is an integer copy."""
    second = helper.make_tensor_value_info("z", TensorProto.FLOAT, SHAPE)
    nodes = [helper.make_node("Add", ["z", "half"], ["other"], name="add2"),
             helper.make_node("Concat", ["sum", "other"], ["y0"], axis=2)]
    samples = samples_for(60, names=("x", "z"))
    for sample in samples:  # the same extremes in both inputs
        for name in ("x", "z"):
            sample[name].reshape(-1)[:2] = [-2.3, 2.6]
    compiled = compile_onnx_int8(after_add(nodes, second=second), calibration(samples),
                                 io="int8")
    assert kernel_ops(compiled) == ["Add", "Add", "Concat"]
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


def test_concat_of_differently_quantized_inputs_maps_them_through_tables(tmp_path,
                                                                         record_property):
    """Inputs with their own scales (as ONNX Runtime quantizes a Concat's inputs): the
    Concat stays an integer copy, each input mapped to the output's scale through a
    256-entry table, and agrees with ONNX Runtime within one step."""
    second = helper.make_tensor_value_info("z", TensorProto.FLOAT, SHAPE)
    nodes = [helper.make_node("Add", ["z", "half"], ["other"], name="add2"),
             helper.make_node("Concat", ["sum", "other"], ["y0"], axis=1)]
    samples = samples_for(61, names=("x", "z"))
    for sample in samples:
        sample["z"] *= 3
    compiled = compile_onnx_int8(after_add(nodes, second=second), calibration(samples),
                                 io="int8")
    assert kernel_ops(compiled) == ["Add", "Add", "Concat"]
    assert_integer_only(compiled)
    concat = next(n for n in compiled.graph.nodes if n.op == "Concat")
    scales = {float(compiled.graph.tensor(n).quant.scale) for n in [*concat.inputs,
                                                                     *concat.outputs]}
    assert len(scales) >= 2  # the inputs really are quantized unlike the output
    assert "_table" in compiled.files["m.c"]
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)
