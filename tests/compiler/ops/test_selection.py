"""ArgMax and ArgMin against onnx.reference through host-compiled C and through ariel's numpy
reference, on float inputs with ties, in row-major and channels-last memory, and on int8
tensors quantized by ONNX Runtime (the indices equal ONNX Runtime's on the QDQ model)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from codegen.compiler.reference import run_graph, run_graph_values
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_conv_s8 import onnxruntime_int8
from tests.compiler.ops.test_quantize import calibration, kernel_ops
from tests.compiler.ops.test_reduce import after_conv, kernel_of, reads_producer_directly
from tests.support import (
    assert_matches_reference,
    compile_onnx,
    compile_onnx_int8,
    host_model,
    run_reference,
    single_node_model,
)

# (shape, attributes)
ARG_CASES = {
    "default_axis_0": ((3, 4, 5), {}),
    "axis_1_keepdims": ((3, 4, 5), {"axis": 1}),
    "last_axis_dropped": ((3, 4, 5), {"axis": -1, "keepdims": 0}),
    "negative_axis_last_index": ((3, 4, 5), {"axis": -2, "select_last_index": 1}),
    "classifier_row": ((1, 10), {"axis": 1}),
    "classifier_row_dropped_last": ((1, 10), {"axis": 1, "keepdims": 0,
                                              "select_last_index": 1}),
    "one_dimensional": ((7,), {"keepdims": 0}),
    "axis_of_one": ((2, 1, 3), {"axis": 1}),
    "rank_4_middle": ((2, 3, 4, 5), {"axis": 2, "keepdims": 0}),
}


def tied(rng, shape) -> np.ndarray:
    """Small integers as floats: most rows hold their extreme more than once."""
    return rng.integers(-3, 4, shape).astype(np.float32)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("case", ARG_CASES, ids=list(ARG_CASES))
def test_arg_extreme_matches_onnx_reference(op, case, tmp_path):
    shape, attrs = ARG_CASES[case]
    rng = np.random.default_rng(sum(map(ord, case + op)))
    for x in (tied(rng, shape), rng.uniform(-1, 1, shape).astype(np.float32)):
        model = single_node_model(op, {"x": x}, **attrs)
        assert_matches_reference(model, [x], tmp_path, rtol=0, atol=0)
        got = run_graph(compile_onnx(model).graph, [x])[0]
        np.testing.assert_array_equal(got, run_reference(model, [x])[0])
        assert got.dtype == np.int64


def test_ties_go_to_the_first_or_last_index(tmp_path):
    x = np.array([[1, 5, 5, 2, 5]], np.float32)
    for last, want in ((0, 1), (1, 4)):
        model = single_node_model("ArgMax", {"x": x}, axis=1, select_last_index=last)
        host = host_model(compile_onnx(model), tmp_path)
        assert host.run(x)[0].tolist() == [[want]]


@pytest.mark.parametrize("axis, keepdims", [(1, 1), (1, 0), (2, 0), (3, 1)])
def test_argmax_reads_channels_last_without_a_copy(axis, keepdims, tmp_path):
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (1, 3, 5, 4)).astype(np.float32)
    model = after_conv("ArgMax", x, rng, axis=axis, keepdims=keepdims)
    compiled = compile_onnx(model)
    assert reads_producer_directly(compiled, "ArgMax", "Conv")
    assert "channels-last" in kernel_of(compiled, "ArgMax")
    assert_matches_reference(model, [x], tmp_path, rtol=0, atol=0)


def after_add(op: str, shape: tuple, **attrs) -> onnx.ModelProto:
    """x + 0.25 -> `op`: ONNX Runtime quantizes the Add, so `op` reads a DequantizeLinear."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "quarter"], ["sum"]),
         helper.make_node(op, ["sum"], ["y"], **attrs)], "after_add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
        [onnx.numpy_helper.from_array(np.array([0.25], np.float32), "quarter")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


@pytest.mark.parametrize("op, attrs", [("ArgMax", {"axis": 1}), ("ArgMin", {"keepdims": 0}),
                                       ("ArgMax", {"axis": -1, "select_last_index": 1})])
def test_int8_arg_extreme_compares_the_quantized_values(op, attrs, tmp_path):
    """Where ONNX Runtime dequantizes an int8 tensor in front of an ArgMax (or ArgMin), ariel's
    reads the int8 values themselves (no float kernel at all), and its indices equal ONNX
    Runtime's on the QDQ model fed the same int8 tensor, ties included (equal int8 values are
    equal reals)."""
    rng = np.random.default_rng(7)
    shape = (3, 10)
    # Quarters in [-1, 1]: equal floats quantize to equal int8 values, so ties are common.
    samples = [{"x": (rng.integers(-4, 5, shape) / 4).astype(np.float32)} for _ in range(16)]
    compiled = compile_onnx_int8(after_add(op, shape, **attrs), calibration(samples),
                                 io="int8")
    assert kernel_ops(compiled) == ["Add", op]
    scores = compiled.graph.nodes[-1].inputs[0]
    assert compiled.graph.tensor(scores).dtype == "int8"
    assert "int8 values (the order of their reals)" in kernel_of(compiled, op)
    host = host_model(compiled, tmp_path)
    quant = compiled.graph.tensor(compiled.graph.inputs[0]).quant
    ties = 0
    for sample in samples:
        x = np.clip(np.rint(sample["x"] / quant.scale) + quant.zero_point, -128, 127).astype(
            np.int8)
        got = host.run(x)[0]
        np.testing.assert_array_equal(got, run_graph(compiled.graph, [x])[0])
        q = run_graph_values(compiled.graph, [x])[scores]
        # (x too: the Add is still in the model, cut off from the ArgMax.)
        theirs = onnxruntime_int8(compiled.quantized_model, {scores: q, "x": sample["x"]}, "y",
                                  TensorProto.INT64)
        np.testing.assert_array_equal(got, theirs)
        axis = attrs.get("axis", 0)
        extreme = q.max(axis, keepdims=True) if op == "ArgMax" else q.min(axis, keepdims=True)
        ties += int(np.sum(np.sum(q == extreme, axis=axis) > 1))
    assert ties > 0
    print(f"\n{op} {attrs}: {ties} ties for the extreme")


def test_integer_input_is_refused_by_type():
    model = single_node_model("ArgMax", {"x": np.zeros((2, 3), np.int32)})
    with pytest.raises(UnsupportedError, match=r"\(ArgMax\): data type int32 .* float32"):
        compile_onnx(model)
