"""ONNX's own backend node test cases (built in memory by the installed onnx package) for
every operator ariel supports, compiled to C, built for the host and run.

A case either passes numerically or is rejected with ariel's UnsupportedError for a reason
listed here: a data type ariel does not hold (double, float16, ...), or a named feature in
EXPECTED_UNSUPPORTED. Anything else fails, including a listed case that starts to compile
(so the list cannot go stale).

ariel generates code for static shapes and constant weights, so a shape, axes or a recurrent
node's weights given as a graph input are rejected; those cases are then run again with that
input frozen into an initializer, and must pass numerically."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest

from codegen.compiler.ir import C_TYPES
from codegen.compiler.ops import REGISTRY
from codegen.compiler.quant.lower import QOPERATORS
from codegen.errors import UnsupportedError
from codegen.run.hostrun import HostModel, build_host_library
from tests.support import compile_onnx, compile_onnx_int8

# Cases rejected on purpose, with the reason. Data-type rejections are found automatically.
EMPTY = "an empty tensor (a dimension of size 0)"
POOL_3D = "3-D pooling (1-D and 2-D are supported)"
CROP = "Resize's tf_crop_and_resize coordinates (a crop of the input, not a resize)"
PER_AXIS = "per-axis quantization of a run-time tensor (one scale per tensor is supported)"
BLOCKED = "blocked quantization (block_size)"
INTEGER_POW = "Pow of an integer base (float32 bases are supported)"
EXPECTED_UNSUPPORTED: dict[str, str] = {
    "test_reshape_allowzero_reordered": EMPTY,
    "test_reduce_l1_empty_set_expanded": EMPTY,
    "test_reduce_l2_empty_set_expanded": EMPTY,
    "test_reduce_log_sum_empty_set_expanded": EMPTY,
    "test_reduce_log_sum_exp_empty_set_expanded": EMPTY,
    "test_pow_types_int32_int32": INTEGER_POW,
    "test_pow_types_int64_int64": INTEGER_POW,
    "test_pow_types_int32_float32": INTEGER_POW,
    "test_pow_types_int64_float32": INTEGER_POW,
    "test_reduce_max_empty_set": EMPTY,
    "test_reduce_max_empty_set_bool": EMPTY,
    "test_reduce_sum_empty_set": EMPTY,
    "test_reduce_sum_empty_set_non_reduced_axis_zero": EMPTY,
    "test_reduce_sum_square_empty_set_expanded": EMPTY,
    "test_slice_start_out_of_bounds": EMPTY,
    "test_split_zero_size_splits_opset13": EMPTY,
    "test_split_zero_size_splits_opset18": EMPTY,
    "test_reduce_max_bool_inputs": "reductions over bool",
    "test_reduce_min_bool_inputs": "reductions over bool",
    **{f"test_reduce_{kind}_empty_set": EMPTY for kind in (
        "min", "prod", "l1", "l2", "log_sum", "log_sum_exp", "sum_square")},
    "test_maxpool_with_argmax_2d_precomputed_pads": "MaxPool's Indices output",
    "test_maxpool_with_argmax_2d_precomputed_strides": "MaxPool's Indices output",
    "test_batchnorm_example_training_mode": "BatchNormalization in training mode",
    "test_batchnorm_epsilon_training_mode": "BatchNormalization in training mode",
    "test_quantizelinear_axis": PER_AXIS,
    "test_dequantizelinear_axis": PER_AXIS,
    "test_quantizelinear_blocked_asymmetric": BLOCKED,
    "test_quantizelinear_blocked_symmetric": BLOCKED,
    "test_dequantizelinear_blocked": BLOCKED,
    "test_convtranspose_3d": "3-D transposed convolution (1-D and 2-D are supported)",
    **{name: CROP for name in (
        "test_resize_tf_crop_and_resize", "test_resize_tf_crop_and_resize_extrapolation_value",
        "test_resize_tf_crop_and_resize_axes_2_3", "test_resize_tf_crop_and_resize_axes_3_2")},
    **{name: POOL_3D for name in (
        "test_averagepool_3d_default", "test_averagepool_3d_dilations_small",
        "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True",
        "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False",
        "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True",
        "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False",
        "test_maxpool_3d_default", "test_maxpool_3d_dilations",
        "test_maxpool_3d_dilations_use_ref_impl", "test_maxpool_3d_dilations_use_ref_impl_large")},
}

# Inputs (by position) that carry a shape or axes, which ariel needs at compile time.
SHAPE_INPUTS = {"Reshape": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
                **{f"Reduce{kind}": (1,) for kind in (
                    "Mean", "Sum", "Max", "Min", "Prod", "SumSquare", "L1", "L2", "LogSum",
                    "LogSumExp")},
                "Slice": (1, 2, 3, 4), "Split": (1,),
                "Pad": (1, 2, 3), "Expand": (1,), "Tile": (1,), "Resize": (1, 2, 3),
                "Upsample": (1,), "TopK": (1,),
                # weights, biases, sequence_lens and peepholes: initializers in real models
                "LSTM": (1, 2, 3, 4, 7), "GRU": (1, 2, 3, 4), "RNN": (1, 2, 3, 4)}
RUN_TIME_SHAPE = "shape, axes or weights given at run time"


def _all_cases():
    """Every node case of the installed onnx (built once: building them runs their
    reference computations, which takes most of a minute)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return collect_testcases()


def _registered(node: onnx.NodeProto) -> bool:
    """True for a node of an operator ariel implements, in the domain it implements it in."""
    domain = "" if node.domain == "ai.onnx" else node.domain
    if node.op_type == "Constant":
        return domain == ""
    return node.op_type in REGISTRY and REGISTRY[node.op_type].domain == domain


ALL_CASES = _all_cases()
CASES = [c for c in ALL_CASES if all(_registered(n) for n in c.model.graph.node)]
QCASES = [c for c in ALL_CASES if {n.op_type for n in c.model.graph.node} & set(QOPERATORS)]


def shape_inputs(model: onnx.ModelProto) -> set[str]:
    """Graph inputs that feed a shape, axes or weights slot."""
    graph_inputs = {i.name for i in model.graph.input}
    return {node.input[p] for node in model.graph.node
            for p in SHAPE_INPUTS.get(node.op_type, ()) if len(node.input) > p
            and node.input[p] in graph_inputs}


def freeze(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """`model` with the named graph inputs turned into initializers holding `values`."""
    frozen = onnx.ModelProto.FromString(model.SerializeToString())
    kept = [i for i in frozen.graph.input if i.name not in values]
    del frozen.graph.input[:]
    frozen.graph.input.extend(kept)
    frozen.graph.initializer.extend(onnx.numpy_helper.from_array(v, n) for n, v in values.items())
    return frozen


def uses_unsupported_type(model: onnx.ModelProto) -> str | None:
    """The first data type of the case's inputs/outputs that ariel does not hold, if any."""
    for value in [*model.graph.input, *model.graph.output]:
        if not value.type.HasField("tensor_type"):
            return "non-tensor value"
        elem = value.type.tensor_type.elem_type
        name = onnx.TensorProto.DataType.Name(elem)
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)).name
        except Exception:
            return name
        if dtype not in C_TYPES:
            return name
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_node_case(case, tmp_path, record_property):
    frozen = shape_inputs(case.model)
    reason = (EXPECTED_UNSUPPORTED.get(case.name) or uses_unsupported_type(case.model)
              or (RUN_TIME_SHAPE if frozen else None))
    try:
        compiled = compile_onnx(case.model, "case")
    except UnsupportedError as exc:
        assert reason, f"{case.name} rejected without an expected reason: {exc}"
        if reason == RUN_TIME_SHAPE:
            # A shape input is refused as computed at run time, or as empty when it is [].
            assert "computed at run time" in str(exc) or "size 0" in str(exc)
            run_frozen(case, frozen, tmp_path)
            record_property("conformance", "computed with shape inputs frozen")
        else:
            record_property("conformance", "rejected: unsupported type or feature")
        return
    assert not reason, f"{case.name} is listed as unsupported ({reason}) but compiles"
    host = HostModel(build_host_library(compiled.files, tmp_path), compiled.info)
    for inputs, expected in case.data_sets:
        check_outputs(case, host.run(*inputs), expected)
    record_property("conformance", "computed")


def run_frozen(case, frozen: set[str], tmp_path) -> None:
    names = [i.name for i in case.model.graph.input]
    for index, (inputs, expected) in enumerate(case.data_sets):
        values = dict(zip(names, inputs, strict=True))
        model = freeze(case.model, {n: np.asarray(values[n]) for n in frozen})
        compiled = compile_onnx(model, "case")
        host = HostModel(build_host_library(compiled.files, tmp_path / str(index)),
                         compiled.info)
        check_outputs(case, host.run(*[v for n, v in values.items() if n not in frozen]),
                      expected)


def check_outputs(case, outputs: list[np.ndarray], expected: list[np.ndarray]) -> None:
    rtol = max(case.rtol, 1e-4)
    atol = max(case.atol, 1e-6)
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        want = np.asarray(want)
        assert got.shape == want.shape
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=case.name)


def parameter_inputs(model: onnx.ModelProto) -> set[str]:
    """Graph inputs holding a QOperator's scales and zero points (and QLinearConv's filter):
    ariel needs them at compile time, so these cases run with them frozen."""
    graph_inputs = {i.name for i in model.graph.input}
    names = set()
    for node in model.graph.node:
        _, data, output, _ = QOPERATORS[node.op_type]
        positions = [p for _, *params in data for p in params] + list(output)
        if node.op_type == "QLinearConv":
            positions.append(data[1][0])
        names |= {node.input[p] for p in positions if p < len(node.input)}
    return names & graph_inputs


@pytest.mark.parametrize("case", QCASES, ids=[c.name for c in QCASES])
def test_onnx_qoperator_case(case, tmp_path, record_property):
    """QLinearConv/QLinearMatMul cases through the int8 path, quantization parameters frozen.
    The expected outputs follow ONNX's float formula rounded half to even; ariel rounds once
    in integers, half up, so an output may differ by one step at a tie."""
    frozen = parameter_inputs(case.model)
    names = [i.name for i in case.model.graph.input]
    for index, (inputs, expected) in enumerate(case.data_sets):
        values = dict(zip(names, inputs, strict=True))
        model = freeze(case.model, {n: np.asarray(values[n]) for n in frozen})
        try:
            compiled = compile_onnx_int8(model, None, io="int8", name="case")
        except UnsupportedError as exc:
            assert any(reason in str(exc) for reason in QOPERATOR_REJECTIONS), str(exc)
            record_property("conformance", "rejected: unsupported type or feature")
            return
        host = HostModel(build_host_library(compiled.files, tmp_path / str(index)),
                         compiled.info)
        outputs = host.run(*[v for n, v in values.items() if n not in frozen])
        for got, want in zip(outputs, expected, strict=True):
            assert got.dtype == np.asarray(want).dtype
            difference = np.abs(got.astype(np.int32) - np.asarray(want).astype(np.int32))
            assert difference.max() <= 1, case.name
    record_property("conformance", "computed")


# What the QOperator cases outside ariel's scheme are rejected for.
QOPERATOR_REJECTIONS = ("is uint8", "of type FLOAT16", "asymmetric weights",
                        "quantized type UINT8 of 'w'")
