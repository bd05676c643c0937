"""int8 Conv: float one-node models quantized by ONNX Runtime (QDQ) and hand-built QLinearConv
models. The generated C (host build) equals ariel's integer reference bit for bit, and both
agree with ONNX Runtime on the same quantized model within one unit (ONNX Runtime rounds in
float, half to even; ariel rounds the exact product once, half up). The helpers here serve
the int8 Gemm and MatMul tests too."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.compile import compile_graph
from codegen.compiler.frontend import ModelSource, to_graph
from codegen.compiler.ops.conv_pairs import load_steps, pair_taps, two_row_layout
from codegen.compiler.quant.lower import expose_int8_io, lower_quantized
from codegen.compiler.quant.output_stage import clamp_range
from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_gemm import chain
from tests.support import compile_onnx_int8, host_model, single_node_model

# Share of outputs that must equal ONNX Runtime's exactly (the rest differ by one unit).
MIN_IDENTICAL = 0.97
CALIBRATION_SAMPLES = 32


def quantize_input(compiled, x: np.ndarray, index: int = 0) -> np.ndarray:
    """A float input as the int8 tensor the compiled model reads, with its own parameters."""
    quant = compiled.graph.tensor(compiled.graph.inputs[index]).quant
    q = np.rint(x / np.float32(quant.scale)) + int(quant.zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def onnxruntime_int8(model: onnx.ModelProto, feeds: dict[str, np.ndarray], output: str,
                     output_type: int = TensorProto.INT8) -> np.ndarray:
    """ONNX Runtime on `model` from the named int8 tensors on (their producers, the input
    QuantizeLinear nodes, are cut off) up to the tensor `output` (int8 unless
    `output_type` says otherwise)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    declared = {value.name for value in graph.input}
    for name, value in feeds.items():
        for node in [n for n in graph.node if name in n.output]:
            graph.node.remove(node)
        if name not in declared:
            graph.input.append(helper.make_tensor_value_info(name, TensorProto.INT8,
                                                             value.shape))
    used = {name for node in graph.node for name in node.input}
    kept = [value for value in graph.input if value.name in used]
    del graph.input[:]
    graph.input.extend(kept)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(output, output_type, None))
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run([output], feeds)[0]


def emulated_dsp(compiled):
    """`compiled` with its kernels' DSP path (ARIEL_DSP) on the host, on ariel_runtime.h's C
    twins of the DSP instructions: the packing, the pairing and the sums of that path, checked
    on every host test (tests/e2e/test_int8_dsp_qemu.py checks the real instructions)."""
    files = dict(compiled.files)
    files["m.c"] = "#define ARIEL_EMULATE_DSP 1\n" + files["m.c"]
    return replace(compiled, files=files)


def check_int8(compiled, inputs: list[list[np.ndarray]], tmp_path, label: str,
               model: onnx.ModelProto | None = None) -> np.ndarray:
    """For each list of int8 inputs: the host-built C, plain and with the DSP path emulated,
    equals run_graph exactly; against ONNX Runtime on `model` (by default the QDQ model ariel
    quantized) at most one unit apart and mostly identical. Returns the C outputs, stacked."""
    host = host_model(compiled, tmp_path)
    dsp = host_model(emulated_dsp(compiled), tmp_path)
    model = model if model is not None else compiled.quantized_model
    outputs, differences = [], []
    for xs in inputs:
        got = host.run(*xs)[0]
        assert got.dtype == np.int8
        want = run_graph(compiled.graph, xs)[0]
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(dsp.run(*xs)[0], want)
        theirs = onnxruntime_int8(model, dict(zip(compiled.graph.inputs, xs, strict=True)),
                                  compiled.graph.outputs[0])
        assert theirs.shape == got.shape
        differences.append(got.astype(np.int32) - theirs.astype(np.int32))
        outputs.append(got)
    difference = np.concatenate([d.reshape(-1) for d in differences])
    identical = float(np.mean(difference == 0))
    worst = int(np.abs(difference).max())
    print(f"\n{label}: {identical:.2%} of {difference.size} outputs identical to ONNX Runtime, "
          f"largest difference {worst} LSB")
    assert worst <= 1
    assert identical >= MIN_IDENTICAL
    return np.stack(outputs)


def int8_ops(compiled) -> list[str]:
    """The compiled graph's operators, layout copies left out."""
    return [n.op for n in compiled.graph.nodes if n.op != "ariel.Relayout"]


CASES = {
    "3x3_pad1": dict(x=(1, 3, 8, 8), w=(4, 3, 3, 3), pads=[1, 1, 1, 1]),
    "stride2_asym_pads": dict(x=(1, 2, 9, 7), w=(3, 2, 3, 3), strides=[2, 2], pads=[0, 1, 2, 0]),
    "strides_2x1": dict(x=(1, 3, 8, 6), w=(5, 3, 3, 2), strides=[2, 1], pads=[1, 0, 1, 1]),
    "dilation": dict(x=(1, 2, 10, 10), w=(2, 2, 3, 3), dilations=[2, 2], pads=[2, 2, 2, 2]),
    "depthwise": dict(x=(1, 4, 6, 6), w=(4, 1, 3, 3), group=4, pads=[1, 1, 1, 1]),
    # The four-channel depthwise kernel takes 4 and 12 channels; 2 and 6 (even, not a
    # multiple of four) must take the general path.
    "depthwise_2": dict(x=(1, 2, 5, 5), w=(2, 1, 3, 3), group=2, pads=[1, 1, 1, 1]),
    "depthwise_6": dict(x=(1, 6, 5, 5), w=(6, 1, 3, 3), group=6, pads=[1, 1, 1, 1]),
    "depthwise_12": dict(x=(1, 12, 5, 5), w=(12, 1, 3, 3), group=12, pads=[1, 1, 1, 1]),
    "depthwise_multiplier": dict(x=(1, 2, 5, 5), w=(6, 1, 3, 3), group=2),
    "grouped": dict(x=(1, 4, 5, 5), w=(6, 2, 3, 3), group=2, pads=[1, 1, 1, 1]),
    "pointwise_1x1": dict(x=(1, 8, 3, 3), w=(5, 8, 1, 1)),
    "same_upper": dict(x=(1, 2, 7, 7), w=(3, 2, 4, 4), auto_pad="SAME_UPPER", strides=[2, 2]),
    "conv1d": dict(x=(1, 3, 12), w=(4, 3, 5), pads=[2, 1], strides=[2]),
    "batch2_no_bias": dict(x=(2, 2, 4, 4), w=(3, 2, 2, 2), bias=False),
    "wide_16_channels": dict(x=(1, 16, 6, 6), w=(8, 16, 3, 3), pads=[1, 1, 1, 1]),
    # An odd count of output pixels and of filters: the kernels' single-pixel and
    # single-filter tails.
    "odd_pixels_and_filters": dict(x=(1, 3, 5, 5), w=(5, 3, 3, 3), pads=[1, 1, 1, 1]),
    "depthwise_stride2": dict(x=(1, 8, 7, 7), w=(8, 1, 3, 3), group=8, strides=[2, 2],
                              pads=[0, 0, 1, 1]),
    # 5 and 6 channels: receptive fields gathered, then widened (the general path's staging).
    "staged_6ch_odd": dict(x=(1, 6, 5, 5), w=(5, 6, 3, 3), pads=[1, 1, 1, 1]),
    "staged_5ch_stride2": dict(x=(1, 5, 7, 6), w=(4, 5, 3, 2), strides=[2, 2], pads=[1, 0, 1, 1]),
    # 1-3 input channels: taps paired across kernel positions (conv_pairs.py), row buffers
    # with padding at every edge, odd pixel and filter counts, strides, dilation, 1-D.
    "pairs_1ch_3x3_pad1": dict(x=(1, 1, 7, 6), w=(5, 1, 3, 3), pads=[1, 1, 1, 1]),
    "pairs_1ch_stride2_asym": dict(x=(1, 1, 9, 8), w=(4, 1, 4, 3), strides=[2, 2],
                                   pads=[2, 0, 1, 2]),
    "pairs_2ch_5x5_odd": dict(x=(1, 2, 7, 7), w=(3, 2, 5, 5), pads=[2, 2, 2, 2]),
    "pairs_3ch_stride2_same": dict(x=(2, 3, 9, 9), w=(8, 3, 3, 3), strides=[2, 2],
                                   auto_pad="SAME_UPPER"),
    "pairs_3ch_dilation_1x2": dict(x=(1, 3, 6, 9), w=(6, 3, 2, 3), dilations=[1, 2],
                                   pads=[0, 2, 1, 1]),
    "pairs_1ch_kws_10x4": dict(x=(1, 1, 15, 10), w=(6, 1, 10, 4), strides=[2, 2],
                               pads=[4, 1, 5, 1]),
    "pairs_1d": dict(x=(1, 2, 13), w=(3, 2, 5), pads=[1, 3]),
    "pairs_one_column": dict(x=(1, 3, 6, 1), w=(3, 3, 3, 1), pads=[1, 0, 1, 0]),
    # Seven filters (a step of four, of two and of one on a DSP core) and 7 output columns
    # (a pair of pixels left over and a lone last one).
    "pairs_2ch_seven_filters": dict(x=(1, 2, 5, 7), w=(7, 2, 3, 3), pads=[1, 1, 1, 1]),
    # Two output rows at a time on a DSP core (above: odd heights, the last row alone, and
    # even ones) unless two rows' buffers would pass the stack budget: 500 columns.
    "pairs_one_row_at_a_time": dict(x=(1, 1, 4, 500), w=(2, 1, 3, 3)),
    # Two rows whose buffers share a run (two_row_layout): 5x5 at stride 3 (rows 3 and 4 of
    # the first row are rows 0 and 1 of the second; the other buffers in blocks of three),
    # height dilated 2 at stride 2 (rows 1 and 2 are the next row's 0 and 1); none where the
    # stride is no multiple of the run's step (rows (0, 1), (2, 3) at stride 3).
    "pairs_3ch_5x5_stride3": dict(x=(1, 3, 17, 11), w=(4, 3, 5, 5), strides=[3, 3],
                                  pads=[1, 1, 1, 1]),
    "pairs_2ch_dilation_2x1": dict(x=(1, 2, 13, 6), w=(3, 2, 3, 3), strides=[2, 1],
                                   dilations=[2, 1], pads=[0, 1, 0, 1]),
    # Two runs that could be shared (channels 0 and 2 of rows 0-4, channel 1's row pairs
    # (0, 1), (2, 3)): the one that shares more (three buffers, not one).
    "pairs_3ch_5x5_stride2_two_runs": dict(x=(1, 3, 12, 9), w=(4, 3, 5, 5), strides=[2, 2],
                                           pads=[2, 2, 2, 2]),
    "pairs_1ch_stride3_no_share": dict(x=(1, 1, 12, 7), w=(3, 1, 4, 3), strides=[3, 1]),
    # One filter a thousand times smaller than the others: its shift is 10 above theirs, so
    # scaling the others to share it would leave int16 and the kernel keeps one shift per
    # channel (ariel_requantize_hi); every other pairs case shares one.
    "pairs_3ch_shift_per_channel": dict(x=(1, 3, 7, 7), w=(5, 3, 3, 3), strides=[2, 2],
                                        pads=[1, 1, 1, 1], tiny_last=True),
    # Four pixels by two filters (filters in RAM): a stride-2 1x1 as ResNet's shortcuts, 15
    # pixels (fours, a pair and one left), 5 groups of four channels (a pass of four and
    # one), an odd filter; a padded 1x1 of 3 groups and 42 pixels (a pair left).
    "pointwise_stride2_tails": dict(x=(1, 20, 9, 5), w=(7, 20, 1, 1), strides=[2, 2]),
    "pointwise_pad_k12": dict(x=(1, 12, 6, 5), w=(6, 12, 1, 1), pads=[1, 0, 0, 1]),
    # Pixels three at a time (ariel_dot_3x2_s16): nine (three threes, VWW's 3x3 maps), 9 groups
    # of four channels (a group and two passes), an odd filter; 15 padded pixels (three fours
    # and a three) of 10 channels (fields gathered, then widened; 3 groups).
    "pointwise_nine_pixels_threes": dict(x=(1, 36, 3, 3), w=(11, 36, 1, 1)),
    "pointwise_pad_fours_and_three": dict(x=(1, 10, 4, 2), w=(6, 10, 1, 1), pads=[1, 0, 0, 1]),
    # Filters on the stack whose starts and output-stage entries would take a second block
    # beside them, so read from flash by a pointer of their own: 37 filters by nine pixels
    # (three threes), and 39, whose fields leave room for two pixels' only (pairs, one alone).
    "pointwise_steps_apart_threes": dict(x=(1, 72, 3, 3), w=(37, 72, 1, 1)),
    "pointwise_steps_apart_pairs": dict(x=(1, 72, 3, 3), w=(39, 72, 1, 1), bias=False),
    # A receptive field of 1,152 values: too large to widen on the stack, so plain C only.
    "large_field_plain_only": dict(x=(1, 128, 4, 4), w=(3, 128, 3, 3), pads=[1, 1, 1, 1]),
}

FOUR_FILTER_CASES = {"3x3_pad1", "strides_2x1", "conv1d", "odd_pixels_and_filters",
                     "pairs_1ch_3x3_pad1", "pairs_1ch_stride2_asym", "pairs_3ch_stride2_same",
                     "pairs_3ch_dilation_1x2", "pairs_2ch_seven_filters",
                     "pairs_3ch_shift_per_channel"}

# Whether the second of two rows takes some of its buffers from the first (two_row_layout).
SHARED_BUFFERS = {"3x3_pad1": True, "pairs_3ch_stride2_same": True, "pairs_1ch_kws_10x4": True,
                  "pairs_3ch_5x5_stride3": True, "pairs_2ch_dilation_2x1": True,
                  "dilation": False, "pairs_1ch_3x3_pad1": False,
                  "pairs_1ch_stride3_no_share": False}


def conv_model(rng: np.random.Generator, spec: dict) -> tuple[onnx.ModelProto, tuple]:
    spec = dict(spec)
    x_shape, w_shape = spec.pop("x"), spec.pop("w")
    constants = {"w": rng.uniform(-1, 1, w_shape).astype(np.float32)}
    if spec.pop("tiny_last", False):
        constants["w"][-1] *= np.float32(1e-3)
    if spec.pop("bias", True):
        constants["b"] = rng.uniform(-0.5, 0.5, w_shape[:1]).astype(np.float32)
    model = single_node_model("Conv", {"x": np.zeros(x_shape, np.float32)}, constants,
                              opset=13, **spec)
    return model, x_shape


def compile_conv(model: onnx.ModelProto, shape: tuple, rng: np.random.Generator,
                 low: float = -0.4, high: float = 1.2):
    """Quantized by ONNX Runtime on uniform samples in [low, high) (asymmetric by default,
    so the input zero point is not 0), compiled with int8 inputs and outputs."""
    calibration = rng.uniform(low, high, (CALIBRATION_SAMPLES, *shape)).astype(np.float32)
    return compile_onnx_int8(model, {"x": calibration}, io="int8")


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_conv_s8(case, tmp_path):
    rng = np.random.default_rng(10)
    model, shape = conv_model(rng, CASES[case])
    compiled = compile_conv(model, shape, rng)
    assert int8_ops(compiled) == ["Conv"]
    assert compiled.graph.tensor(compiled.graph.inputs[0]).quant.zero_point != 0
    spec = CASES[case]
    paired = spec["x"][1] <= 3 and spec.get("group", 1) == 1
    assert (["conv_pairs_s8"] == [k["kernel"] for k in compiled.info.kernels
                                  if k["op"] == "Conv"]) == paired
    if paired:
        # Every channel's filter scaled to share one output-stage shift, unless that would
        # overflow.
        shared = "ariel_widen_pairs_scaled_s8(filters" in compiled.files["m.c"]
        assert shared == ("ariel_requantize_common(" in compiled.files["m.c"])
        assert shared == (not spec.get("tiny_last", False))
        # Four filters per step on a DSP core where there are four and the step's code fits
        # the instruction cache (KWS's 10x4 filter of 20 words does not).
        assert ("%[a13]" in compiled.files["m.c"]) == (case in FOUR_FILTER_CASES)
        # Two rows at a time where there are two (not 1-D) and their buffers fit the stack
        # budget.
        assert ("ROWS_AT_ONCE" in compiled.files["m.c"]) == (
            len(spec["x"]) == 4 and case != "pairs_one_row_at_a_time")
        if case in SHARED_BUFFERS:
            assert ("int32_t reused" in compiled.files["m.c"]) == SHARED_BUFFERS[case]
    if case in ("pairs_1ch_3x3_pad1", "pairs_2ch_5x5_odd"):
        # The filters widened into the room the plan grants, and onto the stack.
        assert ("(int32_t *)scratch;" in compiled.files["m.c"]) == (case == "pairs_1ch_3x3_pad1")
    inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
              for _ in range(4)]
    check_int8(compiled, inputs, tmp_path, f"Conv {case}")


def test_filters_widened_scaled_share_one_shift(tmp_path):
    """A kernel with its filters in RAM and one output-stage shift for every channel widens
    each filter times 2^j (j from shifts_dsp) and its DSP path ends in SMMLA and SSAT: here
    5 filters (the odd last one widened alone, with j = 1), 9 pixels (three steps of three),
    K = 8; equal to the reference on the host, plain and with the DSP path emulated."""
    rng = np.random.default_rng(40)
    model, shape = conv_model(rng, CASES["pointwise_1x1"])
    compiled = compile_conv(model, shape, rng)
    assert "ariel_widen_scaled_s8(pair + 2" in compiled.files["m.c"]
    assert "ariel_requantize_common(" in compiled.files["m.c"]
    shifts = re.search(r"_shifts_dsp\[5\] = \{([^}]*)\}", compiled.files["m_weights.c"])
    assert [int(j) for j in shifts.group(1).split(",")] == [1, 1, 1, 0, 1]
    inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
              for _ in range(3)]
    inputs.append([rng.choice(np.array([-128, 127], np.int8), shape)])
    check_int8(compiled, inputs, tmp_path, "Conv filters widened scaled")


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (-1.0, 1.0), (-3.0, -1.0)],
                         ids=["zp_-128", "zp_near_0", "all_negative"])
def test_conv_s8_pairs_zero_points(low, high, tmp_path):
    """The paired-taps kernel (1-3 input channels) with the input's zero point at -128, near
    0 and at the top: the padded taps read it and the bias folds it."""
    rng = np.random.default_rng(16)
    model, shape = conv_model(rng, dict(x=(1, 3, 6, 5), w=(4, 3, 3, 3), pads=[1, 1, 1, 1]))
    compiled = compile_conv(model, shape, rng, low, high)
    assert "ariel_mac_pairs" in compiled.files["m.c"]
    inputs = [[quantize_input(compiled, rng.uniform(low, high, shape).astype(np.float32))]
              for _ in range(3)]
    check_int8(compiled, inputs, tmp_path, f"Conv pairs [{low}, {high})")


def test_conv_s8_saturates_at_both_ends(tmp_path):
    """Calibrated on a narrow range, run on inputs beyond it: inputs and outputs saturate,
    and the weights of each channel reach +-127."""
    rng = np.random.default_rng(11)
    model, shape = conv_model(rng, dict(x=(1, 4, 6, 6), w=(6, 4, 3, 3), pads=[1, 1, 1, 1]))
    compiled = compile_conv(model, shape, rng, -0.25, 0.25)
    conv = next(n for n in compiled.graph.nodes if n.op == "Conv")
    w = compiled.graph.tensor(conv.inputs[1]).data
    assert np.all(np.abs(w).reshape(len(w), -1).max(axis=1) == 127)
    assert {127, -127} <= set(w.reshape(-1).tolist())
    inputs = [[quantize_input(compiled, rng.uniform(-2, 2, shape).astype(np.float32))]
              for _ in range(3)]
    inputs += [[rng.choice(np.array([-128, 127], np.int8), shape)],
               [np.full(shape, 127, np.int8)], [np.full(shape, -128, np.int8)]]
    outputs = check_int8(compiled, inputs, tmp_path, "Conv saturation")
    assert outputs.min() == -128 and outputs.max() == 127


def conv_activation_model(rng, activation: str) -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])]
    constants = {"w": rng.uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32),
                 "b": rng.uniform(-0.5, 0.5, (4,)).astype(np.float32)}
    if activation == "Relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    else:
        nodes.append(helper.make_node("Clip", ["c", "low", "high"], ["y"]))
        constants.update(low=np.array(0, np.float32), high=np.array(6, np.float32))
    return chain(nodes, {"x": np.zeros((1, 3, 6, 6), np.float32)}, constants, ["y"], opset=13)


@pytest.mark.parametrize("activation", ["Relu", "Clip"])
def test_conv_s8_with_activation(activation, tmp_path):
    """ONNX Runtime's quantizer drops a Relu or Clip(0, 6) into the output's range (zero
    point -128 is the real zero); the kernel's int8 clamp then does the activation."""
    rng = np.random.default_rng(12)
    model = conv_activation_model(rng, activation)
    compiled = compile_conv(model, (1, 3, 6, 6), rng, -1.5, 3.0)
    assert int8_ops(compiled) == ["Conv"]
    out = compiled.graph.tensor(compiled.graph.outputs[0]).quant
    assert int(out.zero_point) == -128
    inputs = [[quantize_input(compiled, rng.uniform(-1.5, 3.0, (1, 3, 6, 6)).astype(
        np.float32))] for _ in range(4)]
    outputs = check_int8(compiled, inputs, tmp_path, f"Conv+{activation}")
    assert np.mean(outputs == -128) > 0.1
    if activation == "Clip":
        assert outputs.max() == 127  # real 6


def test_fused_clamp_narrows_the_output_range(tmp_path):
    """A clamp on the node (a fused activation) narrows [low, high] through OutputStage: the
    result is the unclamped kernel's output clipped to the quantized bounds."""
    rng = np.random.default_rng(13)
    model, shape = conv_model(rng, CASES["3x3_pad1"])
    plain = compile_conv(model, shape, rng)
    graph = to_graph(onnx.ModelProto.FromString(
        plain.quantized_model.SerializeToString()), "m")
    lower_quantized(graph)
    expose_int8_io(graph)
    conv = next(n for n in graph.nodes if n.op == "Conv")
    quant = graph.tensor(conv.outputs[0]).quant
    scale, zero_point = float(quant.scale), int(quant.zero_point)
    # Bounds 0.7 of a step past a whole step (0.3 before one, below): rounded, the upper
    # goes up a step and the lower down one; floored or truncated either would not.
    conv.clamp = (-5.7 * scale, 4.7 * scale)
    low, high = clamp_range(quant, conv.clamp)
    assert (low, high) == (zero_point - 6, zero_point + 5)
    clamped = compile_graph(graph, ModelSource("m.onnx", "0" * 64, []), "tests")
    x = [quantize_input(plain, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
    # The oracle: what a Clip between DequantizeLinear and QuantizeLinear computes (ONNX
    # Runtime's QDQ form), on the unclamped kernel's output.
    real = (host_model(plain, tmp_path).run(*x)[0].astype(np.float64) - zero_point) * scale
    want = np.clip(np.rint(np.clip(real, *conv.clamp) / scale) + zero_point, -128, 127)
    got = host_model(clamped, tmp_path).run(*x)[0]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(run_graph(clamped.graph, x)[0], want)
    assert got.min() == low and got.max() == high


def qlinear_conv_model(rng, per_channel: bool, bias: np.ndarray | None = None
                       ) -> onnx.ModelProto:
    """A hand-built QLinearConv: int8 input and output, int8 symmetric filters."""
    oc = 6
    w = rng.integers(-127, 128, (oc, 3, 3, 3)).astype(np.int8)
    w_scale = (rng.uniform(0.002, 0.01, oc) if per_channel else np.array(0.004)).astype(
        np.float32)
    bias = rng.integers(-3000, 3000, oc).astype(np.int32) if bias is None else bias
    constants = {"x_scale": np.array(0.03, np.float32), "x_zero_point": np.array(-20, np.int8),
                 "w": w, "w_scale": w_scale, "w_zero_point": np.zeros(w_scale.shape, np.int8),
                 "y_scale": np.array(0.09, np.float32), "y_zero_point": np.array(5, np.int8),
                 "b": bias}
    node = helper.make_node("QLinearConv", ["x", *constants], ["y"], pads=[1, 0, 1, 1],
                            strides=[2, 1])
    graph = helper.make_graph(
        [node], "qlinear_conv", [helper.make_tensor_value_info("x", TensorProto.INT8,
                                                               [1, 3, 7, 6])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, oc, 4, 5])],
        [numpy_helper.from_array(v, k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "per_tensor"])
def test_qlinear_conv(per_channel, tmp_path):
    rng = np.random.default_rng(14)
    model = qlinear_conv_model(rng, per_channel)
    compiled = compile_onnx_int8(model, None, io="int8")
    assert int8_ops(compiled) == ["Conv"]
    source = compiled.files["m.c"]
    # Per channel, the output stage reads a table per channel: the multiplier where the
    # channels share one shift (here), else (multiplier, shift - 33).
    assert ("_rq[o]" in source or "_rq[2 * o]" in source) == per_channel
    inputs = [[rng.integers(-128, 128, (1, 3, 7, 6)).astype(np.int8)] for _ in range(4)]
    label = "per channel" if per_channel else "per tensor"
    check_int8(compiled, inputs, tmp_path, f"QLinearConv {label}", model=model)


def test_conv_s8_refuses_an_accumulator_that_could_overflow():
    rng = np.random.default_rng(15)
    model = qlinear_conv_model(rng, True, bias=np.full(6, 2**31 - 1000, np.int32))
    with pytest.raises(UnsupportedError, match="int32 accumulator could reach"):
        compile_onnx_int8(model, None, io="int8")


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_pairs_load_steps_load_each_word_once_per_pixel(stride):
    """The paired kernel's assembly order (load_steps) covers every word once, and a word
    marked reused is the second pixel's word of the step just before it, in the register
    that step loaded it into: VWW's 3x3 words (three columns of four buffers, two of one)."""
    words = [(97 * k + kx, 3 * k + kx) for k in range(4) for kx in range(3)]
    words += [(388, 12), (390, 13)]
    steps = load_steps(words, stride)
    assert sorted((s.offset, s.index) for s in steps) == sorted(words)
    for before, step in zip(steps, steps[1:], strict=False):
        if step.reused:
            assert step.offset == before.offset + stride and step.first == before.second
            assert step.second == before.first
    assert not steps[0].reused
    reused = sum(s.reused for s in steps)
    assert reused == {1: 8, 2: 5, 3: 0}[stride]


@pytest.mark.parametrize("ohwi, stride_h, dilation_h", [
    ((8, 3, 3, 3), 2, 1), ((16, 3, 3, 3), 1, 1), ((6, 10, 4, 1), 2, 1), ((4, 5, 5, 3), 3, 1),
    ((4, 5, 5, 2), 1, 1), ((4, 4, 3, 1), 3, 1), ((4, 3, 3, 2), 2, 2), ((4, 7, 3, 3), 1, 1),
    ((4, 3, 3, 1), 1, 1), ((4, 5, 5, 3), 2, 1), ((4, 5, 4, 1), 1, 1)])
def test_two_row_layout_shares_only_equal_buffers(ohwi, stride_h, dilation_h):
    """The second row's buffers, `apart` widths on, land on none of the first row's, except
    each of the `reused` that lands on the one holding the same input rows, channels and
    shift; all of them within `total` widths."""
    buffers = pair_taps(np.zeros(ohwi, np.int8), 1).buffers
    layout = two_row_layout(buffers, stride_h, dilation_h)
    first = {slot: k for k, slot in enumerate(layout.slots)}
    assert len(first) == len(buffers)
    landed = 0
    for k, b in enumerate(buffers):
        slot = layout.slots[k] + layout.apart
        assert slot < layout.total
        if slot in first:
            a = buffers[first[slot]]
            # Input rows oy * stride + row * dilation: the second row's are stride further.
            assert [r * dilation_h + stride_h for r in b.rows] == [r * dilation_h
                                                                   for r in a.rows]
            assert (a.channels, a.shift) == (b.channels, b.shift)
            landed += 1
    assert landed == layout.reused
