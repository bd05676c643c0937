"""The Reduce* operators against onnx.reference through host-compiled generated C, and ariel's
numpy reference against onnx.reference, for inputs in several memory orders."""

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.support import (
    assert_matches_reference,
    compile_onnx,
    random_array,
    run_reference,
    single_node_model,
)

X_SHAPE = (2, 3, 4, 5)

# (op, opset, axes, attributes). From opset 18 (13 for ReduceSum) the axes are a constant
# second input; before, an attribute. None: no axes at all.
CASES = {
    "mean_spatial_keepdims": ("ReduceMean", 13, [2, 3], {}),
    "mean_spatial_dropped": ("ReduceMean", 13, [2, 3], {"keepdims": 0}),
    "mean_spatial_keepdims_opset18": ("ReduceMean", 18, [2, 3], {}),
    "mean_spatial_dropped_opset18": ("ReduceMean", 18, [2, 3], {"keepdims": 0}),
    "mean_channels": ("ReduceMean", 13, [1], {}),
    "mean_channels_dropped_opset18": ("ReduceMean", 18, [1], {"keepdims": 0}),
    "mean_batch_and_height": ("ReduceMean", 13, [0, 2], {"keepdims": 0}),
    "mean_last_negative": ("ReduceMean", 13, [-1], {}),
    "mean_negative_pair_opset18": ("ReduceMean", 18, [-3, -1], {"keepdims": 0}),
    "mean_all_default": ("ReduceMean", 13, None, {}),
    "mean_all_default_dropped_opset18": ("ReduceMean", 18, None, {"keepdims": 0}),
    "mean_noop_opset18": ("ReduceMean", 18, None, {"noop_with_empty_axes": 1}),
    "mean_empty_axes_input_noop": ("ReduceMean", 18, [], {"noop_with_empty_axes": 1}),
    "sum_empty_axes_input_means_all": ("ReduceSum", 13, [], {}),
    "sum_channels_opset13_input": ("ReduceSum", 13, [1], {}),
    "sum_all_but_batch": ("ReduceSum", 13, [1, 2, 3], {"keepdims": 0}),
    "sum_attribute_opset11": ("ReduceSum", 11, [2], {}),
    "max_spatial_opset13": ("ReduceMax", 13, [2, 3], {}),
    "max_height_opset18": ("ReduceMax", 18, [-2], {"keepdims": 0}),
    "min_spatial_opset13": ("ReduceMin", 13, [2, 3], {}),
    "min_all_dropped_opset18": ("ReduceMin", 18, None, {"keepdims": 0}),
    "prod_channels": ("ReduceProd", 13, [1], {}),
    "prod_last_dropped_opset18": ("ReduceProd", 18, [-1], {"keepdims": 0}),
    "sum_square_spatial": ("ReduceSumSquare", 13, [2, 3], {}),
    "sum_square_noop_opset18": ("ReduceSumSquare", 18, None, {"noop_with_empty_axes": 1}),
    "l1_channels_dropped": ("ReduceL1", 13, [1], {"keepdims": 0}),
    "l1_all_opset18": ("ReduceL1", 18, None, {}),
    "l2_last_opset18": ("ReduceL2", 18, [-1], {}),
    "l2_noop_opset18": ("ReduceL2", 18, [], {"noop_with_empty_axes": 1}),
    "l2_batch_and_width": ("ReduceL2", 13, [0, 3], {"keepdims": 0}),
    "log_sum_all": ("ReduceLogSum", 13, None, {}),
    "log_sum_height_opset18": ("ReduceLogSum", 18, [2], {"keepdims": 0}),
    "log_sum_exp_spatial_opset18": ("ReduceLogSumExp", 18, [2, 3], {"keepdims": 0}),
    "log_sum_exp_channels": ("ReduceLogSumExp", 13, [1], {}),
    "log_sum_exp_noop_opset18": ("ReduceLogSumExp", 18, None, {"noop_with_empty_axes": 1}),
}
# Operators whose inputs the tests keep positive (the logarithm of a sum).
POSITIVE = ("ReduceLogSum",)


def axes_as_input(op: str, opset: int) -> bool:
    return opset >= (13 if op == "ReduceSum" else 18)


def reduce_model(op: str, opset: int, axes, attrs: dict, x: np.ndarray) -> onnx.ModelProto:
    constants = {}
    if axes is not None and axes_as_input(op, opset):
        constants["axes"] = np.array(axes, dtype=np.int64)
    elif axes is not None:
        attrs = {**attrs, "axes": axes}
    return single_node_model(op, {"x": x}, constants, opset=opset, **attrs)


def check_against_onnx(model: onnx.ModelProto, inputs: list[np.ndarray], workdir) -> None:
    """Generated C and ariel's reference of the compiled graph, both against onnx.reference."""
    assert_matches_reference(model, inputs, workdir)
    compiled = compile_onnx(model)
    np.testing.assert_allclose(run_graph(compiled.graph, inputs)[0],
                               run_reference(model, inputs)[0], rtol=1e-5, atol=1e-5)


def after_conv(op: str, x: np.ndarray, rng: np.random.Generator, channels: int = 6,
               constants: dict | None = None, opset: int = 17, **attrs) -> onnx.ModelProto:
    """x -> Conv 3x3 (so `op` reads a channels-last tensor) -> `op` -> y0."""
    conv = helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])
    constants = constants or {}
    node = helper.make_node(op, ["c", *constants], ["y0"], **attrs)
    initializers = [onnx.numpy_helper.from_array(random_array(rng, (channels, x.shape[1], 3, 3)),
                                                 "w")]
    initializers += [onnx.numpy_helper.from_array(v, k) for k, v in constants.items()]
    graph = helper.make_graph(
        [conv, node], f"{op.lower()}_after_conv",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
        [helper.make_empty_tensor_value_info("y0")], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def reads_producer_directly(compiled, op: str, producer: str) -> bool:
    """True when the node of type `op` reads what `producer` wrote, with no copy between."""
    node = next(n for n in compiled.graph.nodes if n.op == op)
    return compiled.graph.producer(node.inputs[0]).op == producer


def kernel_of(compiled, op: str) -> str:
    """The generated C function of the (single) node of type `op`."""
    index = next(i for i, n in enumerate(compiled.graph.nodes) if n.op == op)
    source = compiled.files[f"{compiled.info.prefix}.c"]
    start = source.index(f"static void n{index:02d}_")
    return source[source.rindex("/*", 0, start):source.index("\n}\n", start)]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_reduce_matches_onnx_reference(case, tmp_path):
    op, opset, axes, attrs = CASES[case]
    x = random_array(np.random.default_rng(3), X_SHAPE, low=0.0 if op in POSITIVE else -1.0)
    check_against_onnx(reduce_model(op, opset, axes, attrs, x), [x], tmp_path)


CHANNELS_LAST_CASES = {
    "spatial_keepdims": ([2, 3], 1),
    "spatial_dropped": ([2, 3], 0),
    "channels": ([1], 1),
    "channels_dropped": ([1], 0),
    "width": ([3], 0),
    "height": ([2], 1),
    "channels_and_height": ([1, 2], 0),
}


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceL2", "ReduceLogSumExp"])
@pytest.mark.parametrize("case", CHANNELS_LAST_CASES, ids=list(CHANNELS_LAST_CASES))
def test_reduce_reads_channels_last_without_a_copy(op, case, tmp_path):
    """Both kernels (reduced axis innermost or not), with the finishing step of L2 and the
    first pass of log-sum-exp (which always takes the first kernel)."""
    axes, keepdims = CHANNELS_LAST_CASES[case]
    rng = np.random.default_rng(4)
    x = random_array(rng, (1, 3, 5, 4))
    model = after_conv(op, x, rng, axes=axes, keepdims=keepdims)
    check_against_onnx(model, [x], tmp_path)
    assert reads_producer_directly(compile_onnx(model), op, "Conv")


def test_norm_over_spatial_axes_of_channels_last_finishes_each_channel():
    rng = np.random.default_rng(6)
    model = after_conv("ReduceL2", random_array(rng, (1, 3, 8, 8)), rng, channels=16,
                       axes=[2, 3], keepdims=0)
    body = kernel_of(compile_onnx(model), "ReduceL2")
    assert "y0[i1] += v * v;" in body and "y0[i] = sqrtf(y0[i]);" in body


def test_log_sum_exp_of_large_values_does_not_overflow(tmp_path):
    x = np.array([[100.0, 100.0, 90.0], [-100.0, -200.0, -100.0]], np.float32)
    model = reduce_model("ReduceLogSumExp", 18, [1], {}, x)
    check_against_onnx(model, [x], tmp_path)
    got = run_graph(compile_onnx(model).graph, [x])[0]
    assert np.isfinite(got).all()


def test_reduce_reads_a_transposed_view(tmp_path):
    x = random_array(np.random.default_rng(5), (2, 3, 4, 5))
    model = single_node_model("Transpose", {"x": x}, perm=[0, 2, 3, 1])
    model.graph.node[0].output[0] = "t"
    model.graph.node.append(helper.make_node("ReduceMax", ["t"], ["y0"], axes=[1, 3]))
    del model.graph.value_info[:]
    model.graph.output[0].type.tensor_type.ClearField("shape")
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    check_against_onnx(model, [x], tmp_path)
    assert reads_producer_directly(compile_onnx(model), "ReduceMax", "Transpose")


def test_spatial_mean_of_channels_last_is_a_contiguous_sum_over_channels():
    rng = np.random.default_rng(6)
    model = after_conv("ReduceMean", random_array(rng, (1, 3, 8, 8)), rng, channels=16,
                       axes=[2, 3], keepdims=0)
    body = kernel_of(compile_onnx(model), "ReduceMean")
    assert "for (uint32_t i1 = 0; i1 < 16u; ++i1)" in body
    assert "x0[i0 * 16 + i1]" in body
    assert "y0[i] = y0[i] / 64.0f;" in body


def test_reduced_innermost_axis_accumulates_in_a_register():
    x = random_array(np.random.default_rng(7), (2, 3, 4, 5))
    body = kernel_of(compile_onnx(reduce_model("ReduceMean", 13, [2, 3], {}, x)), "ReduceMean")
    assert "float acc = 0.0f;" in body and "y0[i0] = acc / 20.0f;" in body
    assert "double" not in body


def test_axes_computed_at_run_time_are_rejected():
    x = random_array(np.random.default_rng(8), (1, 2, 3))
    model = single_node_model("ReduceMean", {"x": x, "axes": np.array([1], dtype=np.int64)},
                              opset=18)
    with pytest.raises(UnsupportedError, match="axes computed at run time"):
        compile_onnx(model)


def test_integer_reduction_is_rejected_by_type():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    model = single_node_model("ReduceSum", {"x": x}, opset=11, axes=[1])
    with pytest.raises(UnsupportedError, match="data type int32"):
        compile_onnx(model)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("axes", [[1], [0, 1]], ids=["inner", "all"])
def test_max_and_min_propagate_nan_wherever_it_stands(op, axes, tmp_path):
    """A NaN first, in the middle, last, or everywhere in what is reduced gives NaN, as
    numpy and onnx.reference do (the kernel started at -inf and kept a value only when it
    compared larger, so a maximum of NaNs was -inf: file-odd-values:11005277)."""
    n = np.nan
    x = np.array([[n, 1, 2, 0], [1, n, 2, 0], [1, 2, 0, n], [n, n, n, n], [1, 2, 0, 3]],
                 np.float32)
    model = reduce_model(op, 18, axes, {"keepdims": 0}, x)
    check_against_onnx(model, [x], tmp_path)
    got = run_graph(compile_onnx(model).graph, [x])[0]
    assert np.isnan(got).sum() == (4 if axes == [1] else 1)
