"""ONNX's own backend node test cases (built in memory by the installed onnx package) for
every operator ariel supports, compiled to C, built for the host and run.

A case either passes numerically or is rejected with ariel's UnsupportedError for a reason
of its own, which the message must give: a data type of the case that ariel does not hold
(double, float16, ...), an empty tensor of the case, or the named feature EXPECTED_UNSUPPORTED
lists for it (REASON_MESSAGES: what the message says). Anything else fails: another
exception, a refusal for a reason the case does not have, and a listed case that starts to
compile (so the list cannot go stale).

ariel generates code for static shapes and constant weights, so a shape, axes or a recurrent
node's weights given as a graph input are rejected; those cases are then run again with that
input frozen into an initializer, and must pass numerically."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest

from codegen.compiler.ir import C_TYPES
from codegen.compiler.ops import REGISTRY
from codegen.compiler.quant.lower import QOPERATORS
from codegen.errors import UnsupportedError
from codegen.run.hostrun import HostModel, build_host_library
from tests.conformance.node_cases import all_cases
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

# What ariel's message must say for each listed reason: a rejection counts only when its
# message gives one of the case's own reasons (a crash, or a refusal for another reason,
# fails the case).
REASON_MESSAGES = {
    EMPTY: r"dimension of size 0|an empty output",
    POOL_3D: r"3-D pooling is not supported",
    CROP: r"coordinate_transformation_mode tf_crop_and_resize is not supported",
    PER_AXIS: r"per-axis quantization \(.*\) is not supported",
    BLOCKED: r"blocked quantization \(block_size \d+\) is not supported",
    INTEGER_POW: r"\(Pow\): data type int(32|64) of .* is not supported",
    "reductions over bool": r"\(Reduce(Max|Min)\): data type bool of .* is not supported",
    "MaxPool's Indices output": r"\(MaxPool\): the Indices output is not supported",
    "BatchNormalization in training mode": r"\(BatchNormalization\): training mode",
    "3-D transposed convolution (1-D and 2-D are supported)":
        r"\(ConvTranspose\): 3-D transposed convolution is not supported",
}
NOT_A_TENSOR = "non-tensor value"
REASON_MESSAGES[NOT_A_TENSOR] = r"is not a tensor \(sequences, maps and optionals"
# A shape input refused as computed at run time (or as empty when it is []): the case is
# run again with it frozen.
RUN_TIME_MESSAGE = r"computed at run time is not supported|dimension of size 0"

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


def _registered(node: onnx.NodeProto) -> bool:
    """True for a node of an operator ariel implements, in the domain it implements it in."""
    domain = "" if node.domain == "ai.onnx" else node.domain
    if node.op_type == "Constant":
        return domain == ""
    return node.op_type in REGISTRY and REGISTRY[node.op_type].domain == domain


ALL_CASES = all_cases()  # built once per test run (node_cases.py)
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


def unsupported_types(model: onnx.ModelProto) -> set[str]:
    """The data types (numpy's names, as ariel's messages spell them) of the case's inputs
    and outputs that ariel does not hold; "non-tensor value" for a sequence or map."""
    found = set()
    for value in [*model.graph.input, *model.graph.output]:
        if not value.type.HasField("tensor_type"):
            found.add(NOT_A_TENSOR)
            continue
        elem = value.type.tensor_type.elem_type
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)).name
        except Exception:
            dtype = onnx.TensorProto.DataType.Name(elem).lower()
        if dtype not in C_TYPES:
            found.add(dtype)
    return found


def has_empty_tensor(case) -> bool:
    """A tensor of the case (input, output, initializer or Constant) with a dimension of 0."""
    arrays = [np.asarray(a) for inputs, outputs in case.data_sets for a in [*inputs, *outputs]
              if not isinstance(a, (list, dict)) and a is not None]
    arrays += [onnx.numpy_helper.to_array(t) for t in case.model.graph.initializer]
    values = [*case.model.graph.input, *case.model.graph.output]
    return (any(0 in a.shape for a in arrays)
            or any(d.HasField("dim_value") and d.dim_value == 0 for v in values
                   for d in v.type.tensor_type.shape.dim))


def rejection_reasons(case) -> dict[str, str]:
    """The reasons ariel may reject `case` for, each with the pattern its message matches:
    the listed feature, the data types ariel does not hold, an empty tensor."""
    reasons = {}
    listed = EXPECTED_UNSUPPORTED.get(case.name)
    if listed:
        reasons[listed] = REASON_MESSAGES[listed]
    for dtype in sorted(unsupported_types(case.model)):
        reasons[dtype] = (REASON_MESSAGES[dtype] if dtype == NOT_A_TENSOR
                          else rf"(data type|cast to) {re.escape(dtype)}\b")
    if has_empty_tensor(case):
        reasons[EMPTY] = REASON_MESSAGES[EMPTY]
    return reasons


def check_rejection(case, exc: UnsupportedError, reasons: dict[str, str]) -> str:
    """The reason of `case`'s that ariel's message gives; fails the case when none does."""
    matched = [reason for reason, pattern in reasons.items() if re.search(pattern, str(exc))]
    assert matched, (f"{case.name} rejected for no reason listed for it "
                     f"({', '.join(reasons) or 'none listed'}): {exc}")
    return matched[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_node_case(case, tmp_path, record_property):
    frozen = shape_inputs(case.model)
    reasons = rejection_reasons(case)
    try:
        compiled = compile_onnx(case.model, "case")
    except UnsupportedError as exc:
        if frozen and re.search(RUN_TIME_MESSAGE, str(exc)):
            record_property("conformance", run_frozen(case, frozen, reasons, tmp_path))
            return
        check_rejection(case, exc, reasons)
        record_property("conformance", "rejected: unsupported type or feature")
        return
    assert not reasons, f"{case.name} is listed as unsupported ({', '.join(reasons)}) but compiles"
    host = HostModel(build_host_library(compiled.files, tmp_path), compiled.info)
    for inputs, expected in case.data_sets:
        check_outputs(case, host.run(*inputs), expected)
    record_property("conformance", "computed")


def run_frozen(case, frozen: set[str], reasons: dict[str, str], tmp_path) -> str:
    """The case again with its shape inputs frozen: computed right, or rejected for one of
    its listed reasons. Returns how it ended."""
    names = [i.name for i in case.model.graph.input]
    for index, (inputs, expected) in enumerate(case.data_sets):
        values = dict(zip(names, inputs, strict=True))
        model = freeze(case.model, {n: np.asarray(values[n]) for n in frozen})
        try:
            compiled = compile_onnx(model, "case")
        except UnsupportedError as exc:
            check_rejection(case, exc, reasons)
            return "rejected: unsupported type or feature"
        host = HostModel(build_host_library(compiled.files, tmp_path / str(index)),
                         compiled.info)
        check_outputs(case, host.run(*[v for n, v in values.items() if n not in frozen]),
                      expected)
    return "computed with shape inputs frozen"


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
    in integers, half up, so the two could differ by one step at an exact tie. The cases
    have no tie, so the outputs must be equal (tests/compiler/quant/test_rounding_oracle.py
    checks ties against ONNX Runtime)."""
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
            np.testing.assert_array_equal(got, want, err_msg=case.name)
    record_property("conformance", "computed")


# What the QOperator cases outside ariel's scheme are rejected for.
QOPERATOR_REJECTIONS = ("is uint8", "of type FLOAT16", "asymmetric weights",
                        "quantized type UINT8 of 'w'")
