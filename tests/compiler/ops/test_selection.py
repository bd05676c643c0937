"""ArgMax, ArgMin and TopK against onnx.reference through host-compiled C and through ariel's
numpy reference, on float inputs with ties, in row-major and channels-last memory, and on int8
tensors quantized by ONNX Runtime (the indices equal ONNX Runtime's on the QDQ model)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from codegen.compiler.reference import run_graph, run_graph_values
from codegen.errors import ArielError, UnsupportedError
from tests.compiler.ops.test_conv_s8 import onnxruntime_int8
from tests.compiler.ops.test_quantize import calibration, kernel_ops
from tests.compiler.ops.test_reduce import after_conv, kernel_of, reads_producer_directly
from tests.support import (
    assert_matches_reference,
    compile_onnx,
    compile_onnx_int8,
    host_model,
    random_array,
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


# (shape, k, attributes)
TOPK_CASES = {
    "last_axis": ((3, 8), 3, {}),
    "smallest": ((3, 8), 2, {"largest": 0}),
    "axis_0": ((6, 4), 4, {"axis": 0}),
    "middle_axis_negative": ((2, 7, 3), 5, {"axis": -2}),
    "k_is_the_whole_axis": ((2, 5), 5, {}),
    "k_of_one": ((4, 6), 1, {"largest": 0, "axis": 1}),
    "unsorted_flag": ((2, 9), 4, {"sorted": 0}),
    "one_dimensional": ((10,), 3, {}),
}


def topk_model(x: np.ndarray, k: int, opset: int = 17, **attrs) -> onnx.ModelProto:
    if opset == 1:
        return single_node_model("TopK", {"x": x}, opset=1, n_outputs=2, k=k, **attrs)
    return single_node_model("TopK", {"x": x}, {"k": np.array([k], np.int64)}, opset=opset,
                             n_outputs=2, **attrs)


@pytest.mark.parametrize("case", TOPK_CASES, ids=list(TOPK_CASES))
def test_topk_matches_onnx_reference(case, tmp_path):
    """Values and indices exactly as onnx.reference gives them, ties (the small integers)
    by the lower index."""
    shape, k, attrs = TOPK_CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    for x in (tied(rng, shape), rng.uniform(-1, 1, shape).astype(np.float32)):
        model = topk_model(x, k, **attrs)
        assert_matches_reference(model, [x], tmp_path, rtol=0, atol=0)
        for got, want in zip(run_graph(compile_onnx(model).graph, [x]),
                             run_reference(model, [x]), strict=True):
            np.testing.assert_array_equal(got, want)


def test_topk_of_opset_1_takes_k_as_an_attribute(tmp_path):
    x = tied(np.random.default_rng(8), (3, 6))
    assert_matches_reference(topk_model(x, 2, opset=1), [x], tmp_path, rtol=0, atol=0)


def test_topk_ties_keep_index_order(tmp_path):
    x = np.array([[2, 7, 7, 1, 7, 2]], np.float32)
    host = host_model(compile_onnx(topk_model(x, 4)), tmp_path)
    values, indices = host.run(x)
    assert values.tolist() == [[7, 7, 7, 2]] and indices.tolist() == [[1, 2, 4, 0]]
    host = host_model(compile_onnx(topk_model(x, 3, largest=0)), tmp_path)
    values, indices = host.run(x)
    assert values.tolist() == [[1, 2, 2]] and indices.tolist() == [[3, 0, 5]]


def test_int8_topk_moves_the_quantized_values(tmp_path):
    """ONNX Runtime quantizes TopK as a move (values keep the input's scale): ariel's kernel
    selects the int8 values themselves, equal to ONNX Runtime's on the QDQ model fed the
    same int8 tensor, indices included."""
    rng = np.random.default_rng(9)
    shape = (3, 12)
    samples = [{"x": (rng.integers(-8, 9, shape) / 8).astype(np.float32)} for _ in range(8)]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "quarter"], ["sum"]),
         helper.make_node("TopK", ["sum", "k"], ["values", "indices"], axis=1)], "topk",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("indices", TensorProto.INT64, None)],
        [onnx.numpy_helper.from_array(np.array([0.25], np.float32), "quarter"),
         onnx.numpy_helper.from_array(np.array([4], np.int64), "k")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == ["Add", "TopK"]
    node = compiled.graph.nodes[-1]
    values, indices = (compiled.graph.tensor(name) for name in node.outputs)
    assert values.dtype == "int8" and indices.dtype == "int64"
    source = compiled.graph.tensor(node.inputs[0])
    assert source.dtype == "int8" and float(values.quant.scale) == float(source.quant.scale)
    host = host_model(compiled, tmp_path)
    quant = compiled.graph.tensor(compiled.graph.inputs[0]).quant
    for sample in samples:
        x = np.clip(np.rint(sample["x"] / quant.scale) + quant.zero_point, -128, 127).astype(
            np.int8)
        got = host.run(x)
        for g, w in zip(got, run_graph(compiled.graph, [x]), strict=True):
            np.testing.assert_array_equal(g, w)
        q = run_graph_values(compiled.graph, [x])[source.name]
        feeds = {source.name: q, "x": sample["x"]}
        for g, name, kind in zip(got, node.outputs, (TensorProto.INT8, TensorProto.INT64),
                                 strict=True):
            np.testing.assert_array_equal(
                g, onnxruntime_int8(compiled.quantized_model, feeds, name, kind))


def test_topk_refuses_k_at_run_time_and_k_beyond_the_axis():
    x = np.zeros((2, 5), np.float32)
    model = single_node_model("TopK", {"x": x, "k": np.array([2], np.int64)}, n_outputs=2)
    with pytest.raises(UnsupportedError, match="k computed at run time"):
        compile_onnx(model)
    model = topk_model(x, 2)  # then k made 6, which ONNX's shape inference would refuse
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(np.array([6], np.int64),
                                                                     "k"))
    for value in model.graph.output:
        value.type.tensor_type.ClearField("shape")
    # ONNX's shape inference, which the frontend runs first, names it.
    with pytest.raises(ArielError, match="Axis has less than the requested k elements"):
        compile_onnx(model)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int64])
def test_integer_inputs_are_compared_as_they_are(dtype, tmp_path):
    x = random_array(np.random.default_rng(10), (3, 7), dtype)
    x[:, 5] = x[:, 2]  # a tie in every row
    for model in (single_node_model("ArgMax", {"x": x}, axis=1, select_last_index=1),
                  single_node_model("ArgMin", {"x": x}, axis=1),
                  topk_model(x, 3)):
        assert_matches_reference(model, [x], tmp_path, rtol=0, atol=0)


def test_bool_input_is_refused_by_type():
    model = single_node_model("ArgMax", {"x": np.zeros((2, 3), bool)})
    with pytest.raises(UnsupportedError, match=r"\(ArgMax\): data type bool .* int64"):
        compile_onnx(model)
