"""int8 pooling and reductions: AveragePool (borders that count fewer taps, count_include_pad
0 and 1, strides, ceil_mode, the whole-input windows of the MLPerf Tiny models),
GlobalAveragePool, ReduceMean/ReduceSum over spatial axes, and the maxima that move values
unchanged. Host-compiled C equals the integer reference exactly and ONNX Runtime on the QDQ
model within one step."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from codegen.compiler.reference import run_graph
from tests.compiler.ops.test_conv_s8 import emulated_dsp
from tests.compiler.ops.test_quantize import (
    assert_integer_only,
    calibration,
    check_int8,
    kernel_ops,
    minmax_params,
    with_qdq,
)
from tests.support import compile_onnx_int8, host_model, run_reference, single_node_model

# name: (op, input shape, attributes)
AVERAGE_CASES = {
    "3x3_pad1_exclude_pad": ((1, 3, 7, 6), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "3x3_pad1_include_pad": ((1, 3, 7, 6), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                                count_include_pad=1)),
    "stride2_asymmetric_pads": ((1, 2, 9, 7), dict(kernel_shape=[3, 3], strides=[2, 2],
                                                   pads=[0, 1, 2, 0])),
    "2x2_stride2": ((2, 4, 6, 6), dict(kernel_shape=[2, 2], strides=[2, 2])),
    "ceil_mode_pads_include_pad": ((1, 2, 7, 7), dict(kernel_shape=[4, 4], strides=[3, 3],
                                                      pads=[1, 1, 1, 1], ceil_mode=1,
                                                      count_include_pad=1)),
    "ceil_mode_exclude_pad": ((1, 2, 7, 6), dict(kernel_shape=[3, 3], strides=[2, 2],
                                                 ceil_mode=1)),
    "same_upper": ((1, 2, 7, 7), dict(kernel_shape=[4, 4], strides=[2, 2],
                                      auto_pad="SAME_UPPER")),
    "rows_only_vary": ((1, 2, 6, 8), dict(kernel_shape=[3, 2], strides=[1, 2],
                                          pads=[1, 0, 1, 0])),
    "1d_pad": ((1, 3, 12), dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    # The MLPerf Tiny models' final pools: one window that is the whole input.
    "whole_8x8": ((1, 16, 8, 8), dict(kernel_shape=[8, 8])),
    "whole_3x3": ((1, 8, 3, 3), dict(kernel_shape=[3, 3])),
    "whole_25x5": ((1, 6, 25, 5), dict(kernel_shape=[25, 5])),
    "whole_batch2": ((2, 5, 4, 3), dict(kernel_shape=[4, 3])),
}


def samples_for(seed: int, shape, count: int = 6, low=-2.0, high=3.0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(low, high, shape).astype(np.float32)} for _ in range(count)]


def qdq_one_node(op: str, samples, constants=None, opset: int = 19, same_params=False,
                 **attrs):
    """A hand-made QDQ model of one node, x and y quantized to the ranges the samples give
    them (or y at x's parameters)."""
    model = single_node_model(op, {"x": samples[0]["x"]}, constants, opset=opset, **attrs)
    x = calibration(samples)["x"]
    outputs = np.stack([run_reference(model, [s["x"]])[0] for s in samples])
    x_params = minmax_params(x)
    return with_qdq(model, {"x": x_params,
                            "y0": x_params if same_params else minmax_params(outputs)})


@pytest.mark.parametrize("case", AVERAGE_CASES, ids=list(AVERAGE_CASES))
def test_average_pool(case, tmp_path, record_property):
    shape, attrs = AVERAGE_CASES[case]
    samples = samples_for(sum(map(ord, case)), shape)
    model = qdq_one_node("AveragePool", samples, **attrs)
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == ["AveragePool"]
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)
    source = compiled.files["m.c"]
    if case.startswith("whole"):
        # One int32 accumulator per channel, a plain loop over the window.
        assert "int32_t acc = 0;" in source and "ariel_requantize(acc" in source
    if case in ("3x3_pad1_exclude_pad", "stride2_asymmetric_pads", "1d_pad"):
        assert "_row_class" in source or "_col_class" in source  # per-count multipliers
    if case in ("2x2_stride2", "3x3_pad1_include_pad"):
        assert "_mult[k]" not in source  # one divisor for every window


def test_average_pool_quantized_by_onnxruntime(tmp_path, record_property):
    """ONNX Runtime quantizes an AveragePool only after a quantized node, with its input's
    parameters: here after an Add."""
    samples = with_half(samples_for(21, (1, 4, 8, 8)))
    model = add_before("AveragePool", (1, 4, 8, 8), kernel_shape=[3, 3], strides=[2, 2],
                       pads=[1, 1, 1, 1])
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == ["Add", "AveragePool"]
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


def with_half(samples):
    """The samples with the second input of `add_before`."""
    return [{**s, "half": np.array([0.5], np.float32)} for s in samples]


def add_before(op: str, shape, **attrs):
    """x + half (a second input, so that ONNX Runtime quantizes the Add) -> op."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "half"], ["sum"], name="add"),
         helper.make_node(op, ["sum"], ["y0"], name=op.lower(), **attrs)],
        "add_then_pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
                          helper.make_tensor_value_info("half", TensorProto.FLOAT, [1])],
        [helper.make_empty_tensor_value_info("y0")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


@pytest.mark.parametrize("shape", [(1, 6, 5, 4), (2, 3, 7), (1, 2, 3, 4, 5)])
def test_global_average_pool_quantized_by_onnxruntime(shape, tmp_path, record_property):
    samples = samples_for(22, shape)
    model = single_node_model("GlobalAveragePool", {"x": samples[0]["x"]}, opset=17)
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == ["GlobalAveragePool"]
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


# name: (op, opset, input shape, attributes)
REDUCE_CASES = {
    "mean_spatial": ("ReduceMean", 17, (1, 4, 5, 6), dict(axes=[2, 3])),
    "mean_spatial_dropped": ("ReduceMean", 17, (2, 3, 4, 5), dict(axes=[2, 3], keepdims=0)),
    "mean_last_axis": ("ReduceMean", 17, (1, 3, 10), dict(axes=[-1])),
    "sum_spatial_opset11": ("ReduceSum", 11, (1, 3, 4, 4), dict(axes=[2, 3])),
}


@pytest.mark.parametrize("case", REDUCE_CASES, ids=list(REDUCE_CASES))
def test_reduce_mean_and_sum(case, tmp_path, record_property):
    op, opset, shape, attrs = REDUCE_CASES[case]
    samples = samples_for(sum(map(ord, case)), shape, low=-1.0, high=1.5)
    model = qdq_one_node(op, samples, opset=opset, **attrs)
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == [op]
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)


# name: (op, input shape, attributes): maxima (and a minimum) keep their input's scale and
# zero point.
MAX_CASES = {
    "maxpool_3x3_stride2_pad1": ("MaxPool", (1, 3, 9, 9),
                                 dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "maxpool_2x2_ceil": ("MaxPool", (1, 2, 7, 6), dict(kernel_shape=[2, 2], strides=[2, 2],
                                                       ceil_mode=1)),
    "maxpool_whole_input": ("MaxPool", (1, 4, 5, 5), dict(kernel_shape=[5, 5])),
    "global_max": ("GlobalMaxPool", (1, 3, 6, 6), {}),
    "reduce_max": ("ReduceMax", (1, 3, 4, 5), dict(axes=[1], keepdims=0)),
    "reduce_min": ("ReduceMin", (1, 3, 4, 5), dict(axes=[1, 3])),
}


@pytest.mark.parametrize("case", MAX_CASES, ids=list(MAX_CASES))
def test_maxima_stay_integer(case, tmp_path, record_property):
    op, shape, attrs = MAX_CASES[case]
    samples = samples_for(sum(map(ord, case)), shape)
    model = qdq_one_node(op, samples, opset=17, same_params=True, **attrs)
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == [op]
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model, max_lsb=0)
    record_property("agreement", agreement.summary)


# MaxPool's DSP path: four channels per word (ariel_max_s8x4), windows wholly in the input
# at fixed offsets or border windows that skip taps, and channel counts with a tail of one
# to three channels taken one at a time.
MAX_WORD_CASES = {
    "2x2_stride2_16_channels": ((1, 16, 6, 8), dict(kernel_shape=[2, 2], strides=[2, 2])),
    "3x3_stride1_tail_2": ((2, 6, 5, 5), dict(kernel_shape=[3, 3])),
    "3x3_stride2_pad1_8_channels": ((1, 8, 7, 6), dict(kernel_shape=[3, 3], strides=[2, 2],
                                                       pads=[1, 1, 1, 1])),
    "ceil_mode_tail_1": ((1, 5, 7, 7), dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    "dilated_4_channels": ((1, 4, 7, 7), dict(kernel_shape=[2, 2], dilations=[2, 2])),
    "1d_12_channels": ((1, 12, 9), dict(kernel_shape=[3], strides=[2])),
}


@pytest.mark.parametrize("case", MAX_WORD_CASES, ids=list(MAX_WORD_CASES))
def test_max_pool_words(case, tmp_path):
    """The host-built C, plain and with the DSP path on ariel_runtime.h's C twins of SSUB8
    and SEL, equals the integer reference exactly, on inputs with every int8 value and many
    equal neighbours (ties)."""
    shape, attrs = MAX_WORD_CASES[case]
    samples = samples_for(sum(map(ord, case)), shape, count=2)
    model = qdq_one_node("MaxPool", samples, opset=17, same_params=True, **attrs)
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == ["MaxPool"]
    assert "ariel_max_s8x4" in compiled.files["m.c"]
    rng = np.random.default_rng(len(case))
    inputs = [rng.integers(-128, 128, shape).astype(np.int8),
              rng.choice(np.array([-128, -1, 0, 127], np.int8), shape)]
    host, dsp = host_model(compiled, tmp_path), host_model(emulated_dsp(compiled), tmp_path)
    for x in inputs:
        want = run_graph(compiled.graph, [x])[0]
        np.testing.assert_array_equal(host.run(x)[0], want)
        np.testing.assert_array_equal(dsp.run(x)[0], want)


# AveragePool's DSP path: four channels per tap summed by two SXTAB16 into 16-bit halves,
# windows wholly in the input or at borders that skip taps, tails of one to three channels,
# input zero points at both ends of int8, and windows of 256 taps (the most whose sums fit a
# half) against 272 (the plain path). name: (input shape, attributes, the samples' range)
AVERAGE_WORD_CASES = {
    "7x7_stride7_16_channels": ((1, 16, 14, 14), dict(kernel_shape=[7, 7], strides=[7, 7]),
                                (-2.0, 3.0)),
    "3x3_pad1_tail_2": ((1, 6, 7, 6), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                        (0.0, 3.0)),
    "include_pad_stride2_tail_3": ((2, 7, 7, 7), dict(kernel_shape=[3, 3], strides=[2, 2],
                                                      pads=[1, 1, 1, 1], count_include_pad=1),
                                   (-3.0, 0.0)),
    "ceil_mode_tail_1": ((1, 5, 7, 7), dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
                         (-2.0, 3.0)),
    "1d_8_channels": ((1, 8, 12), dict(kernel_shape=[3], strides=[2], pads=[1, 1]),
                      (-1.0, 1.0)),
    "256_taps": ((1, 4, 17, 16), dict(kernel_shape=[16, 16]), (-2.0, 3.0)),
    "272_taps_plain": ((1, 4, 18, 17), dict(kernel_shape=[17, 16]), (-2.0, 3.0)),
}


def average_words_model(case: str):
    shape, attrs, (low, high) = AVERAGE_WORD_CASES[case]
    samples = samples_for(sum(map(ord, case)), shape, count=2, low=low, high=high)
    return compile_onnx_int8(qdq_one_node("AveragePool", samples, **attrs), io="int8")


def extreme_inputs(shape, seed: int) -> list[np.ndarray]:
    """Every int8 value at random, and the whole input at each end of int8 (the largest
    window sums, the ones that would overflow a half)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, shape).astype(np.int8),
            np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]


@pytest.mark.parametrize("case", AVERAGE_WORD_CASES, ids=list(AVERAGE_WORD_CASES))
def test_average_pool_words(case, tmp_path):
    """The host-built C, plain and with the DSP path on ariel_runtime.h's C twins of
    SXTAB16, equals the integer reference exactly."""
    compiled = average_words_model(case)
    assert kernel_ops(compiled) == ["AveragePool"]
    assert ("ariel_sxtab16" in compiled.files["m.c"]) == (case != "272_taps_plain")
    host, dsp = host_model(compiled, tmp_path), host_model(emulated_dsp(compiled), tmp_path)
    for x in extreme_inputs(AVERAGE_WORD_CASES[case][0], len(case)):
        want = run_graph(compiled.graph, [x])[0]
        np.testing.assert_array_equal(host.run(x)[0], want)
        np.testing.assert_array_equal(dsp.run(x)[0], want)


def test_max_pool_quantized_by_onnxruntime(tmp_path, record_property):
    samples = with_half(samples_for(23, (1, 4, 8, 8)))
    model = add_before("MaxPool", (1, 4, 8, 8), kernel_shape=[2, 2], strides=[2, 2])
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == ["Add", "MaxPool"]
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)
