"""The int8 kernels' sums to the unit: hand-built QLinearConv and QLinearMatMul models whose
output stage multiplies the accumulator by about 1/2 to 1 (y_scale near x_scale * w_scale),
with weights in -3..3 and inputs a few steps around the zero point, so that the outputs
seldom saturate and an accumulator off by one changes most of them. The other int8 tests
scale their accumulators down by a hundred or more, where such an error (in a sum, in the
bias with the zero point folded into it, in a padded tap) rounds away. One case per path
that accumulates: conv_s8's steps of four, three, two and one pixel (DSP path) and its
plain path, conv_pairs_s8 (1-3 input channels), the depthwise kernels at stride 1 and 2,
matmul_pairs_s8 and matmul_packed_s8. The host C, plain and on the DSP twins, equals the
integer reference bit for bit, and ONNX Runtime within one unit (check_int8)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.compiler.ops.test_conv_s8 import check_int8
from tests.compiler.ops.test_s8_dsp_qemu import check_on_cortex_m4
from tests.support import compile_onnx_int8, single_node_model

X_SCALE = 0.03
# The output stage's real multiplier, x_scale * w_scale / y_scale, at the mean weight scale:
# the channels' own range from about 0.45 to 0.9.
MULTIPLIER = 0.68
# The spread of the outputs around their zero point the inputs' range aims at (in steps).
OUTPUT_SPREAD = 30
# At most this share of the outputs at -128 or 127 (where an error of one may not show).
MAX_SATURATED = 0.05

# name: input NCHW (or NCW), output channels, filter size, group, strides, pads, the input's
# zero point, the kernel the case takes and the calls in its C it is there for.
CONV_CASES = {
    # conv_s8 (the plain path: ariel_dot_1x2_s8_c and _1x1_s8_c). 1x1 over 15 pixels with
    # the filters in RAM: steps of four pixels and a three.
    "conv_1x1_fours_and_three": ((1, 12, 5, 3), 6, (1, 1), 1, (1, 1), (0, 0, 0, 0), -9,
                                 "conv_s8", ["ariel_dot_4x2_s16_from", "ariel_dot_3x2_s16",
                                             "ariel_dot_1x2_s8_c"]),
    # 3x3 over 20 pixels and an odd filter: fours, and the last filter one pixel at a time.
    "conv_3x3_pad1_odd": ((1, 8, 4, 5), 5, (3, 3), 1, (1, 1), (1, 1, 1, 1), 17,
                          "conv_s8", ["ariel_dot_4x2_s16_from", "ariel_dot_1x1_s16",
                                      "ariel_dot_1x1_s8_c"]),
    # 3x3 over 16 channels: four pixels with the filters in flash.
    "conv_3x3_16ch": ((1, 16, 6, 6), 8, (3, 3), 1, (1, 1), (1, 1, 1, 1), -2,
                      "conv_s8", ["ariel_dot_4x2_s16"]),
    # Seven pixels, too few to copy the filters to RAM for: the filters read in place, two
    # pixels by two filters, by one, one pixel alone.
    "conv_1x1_filters_in_place": ((1, 12, 1, 7), 7, (1, 1), 1, (1, 1), (0, 0, 0, 0), 70,
                                  "conv_s8", ["ariel_dot_2x2_s8", "ariel_dot_2x1_s8",
                                              "ariel_dot_1x2_s8", "ariel_dot_1x1_s8"]),
    # Filters in flash apart from their output-stage entries, 39 by nine pixels: pixel
    # pairs, one pixel alone, an odd last filter.
    "conv_1x1_pairs": ((1, 72, 3, 3), 39, (1, 1), 1, (1, 1), (0, 0, 0, 0), 4,
                       "conv_s8", ["ariel_dot_2x2_s16", "ariel_dot_2x1_s16",
                                   "ariel_dot_1x2_s16", "ariel_dot_1x1_s16"]),
    # A receptive field too long to widen on the stack: the plain kernel on every core.
    "direct_3x3_long_field": ((1, 128, 3, 3), 3, (3, 3), 1, (1, 1), (1, 1, 1, 1), -30,
                              "conv_direct_s8", []),
    # 1-3 input channels: taps paired across kernel positions, seven filters (steps of four,
    # two and one on a DSP core), padded at every edge; stride 2 over three channels.
    "pairs_2ch_seven_filters": ((1, 2, 5, 7), 7, (3, 3), 1, (1, 1), (1, 1, 1, 1), -40,
                                "conv_pairs_s8", ["ariel_mac_pairs"]),
    "pairs_3ch_stride2": ((1, 3, 7, 7), 5, (3, 3), 1, (2, 2), (1, 1, 1, 1), 25,
                          "conv_pairs_s8", ["ariel_mac_pairs"]),
    "pairs_1ch_3x3": ((1, 1, 7, 6), 5, (3, 3), 1, (1, 1), (1, 1, 1, 1), 60,
                      "conv_pairs_s8", ["ariel_mac_pairs"]),
    # Depthwise rows of three taps at stride 1 and 2 (odd width: a last pixel alone), and
    # a 5x5 filter (the other depthwise kernel).
    "depthwise_3x3_stride1": ((1, 8, 6, 5), 8, (3, 3), 8, (1, 1), (1, 1, 1, 1), -20,
                              "conv_dw_rows_s8", ["ariel_mac_pairs"]),
    "depthwise_3x3_stride2_odd_width": ((1, 8, 7, 9), 8, (3, 3), 8, (2, 2), (1, 1, 1, 1), 33,
                                        "conv_dw_rows_s8", ["ariel_mac_bottoms"]),
    "depthwise_5x5": ((1, 8, 7, 6), 8, (5, 5), 8, (1, 1), (2, 2, 2, 2), -5,
                      "conv_dw_s8", ["ariel_smlad"]),
}


def input_range(k: int) -> int:
    """The half-width R of inputs uniform in zero point +- R that spreads the outputs about
    OUTPUT_SPREAD steps: a sum of k products of weights in -3..3 (standard deviation 2) and
    inputs of standard deviation R / sqrt(3), times MULTIPLIER."""
    return max(2, round(OUTPUT_SPREAD * np.sqrt(3) / (2 * np.sqrt(k) * MULTIPLIER)))


def qlinear_conv_model(rng: np.random.Generator, x_shape: tuple, channels: int, kernel: tuple,
                       group: int, strides: tuple, pads: tuple, x_zero_point: int
                       ) -> onnx.ModelProto:
    w = rng.integers(-3, 4, (channels, x_shape[1] // group, *kernel)).astype(np.int8)
    w_scale = rng.uniform(0.004, 0.008, channels).astype(np.float32)
    y_scale = X_SCALE * float(w_scale.mean()) / MULTIPLIER
    constants = {"x_scale": np.array(X_SCALE, np.float32),
                 "x_zero_point": np.array(x_zero_point, np.int8),
                 "w": w, "w_scale": w_scale, "w_zero_point": np.zeros(channels, np.int8),
                 "y_scale": np.array(y_scale, np.float32), "y_zero_point": np.array(3, np.int8),
                 "b": rng.integers(-40, 41, channels).astype(np.int32)}
    return single_node_model("QLinearConv", {"x": np.zeros(x_shape, np.int8)}, constants,
                             opset=13, group=group, kernel_shape=list(kernel),
                             strides=list(strides), pads=list(pads))


def near_zero_point(rng: np.random.Generator, shape: tuple, zero_point: int, k: int
                    ) -> list[list[np.ndarray]]:
    """Three inputs uniform in zero point +- input_range(k)."""
    spread = input_range(k)
    return [[np.clip(zero_point + rng.integers(-spread, spread + 1, shape), -128, 127)
             .astype(np.int8)] for _ in range(3)]


def check_sensitive(compiled, inputs, tmp_path, label, model) -> None:
    outputs = check_int8(compiled, inputs, tmp_path, label, model=model)
    saturated = float(np.mean((outputs == -128) | (outputs == 127)))
    assert saturated <= MAX_SATURATED, f"{saturated:.1%} of the outputs saturate"
    assert len(np.unique(outputs)) > 20  # a spread, not a constant


def conv_case(case: str):
    """A conv case's model, its compiled form (the kernel and steps checked) and inputs."""
    rng = np.random.default_rng(sum(map(ord, case)))
    x_shape, channels, kernel, group, strides, pads, zero_point, kernel_name, calls = \
        CONV_CASES[case]
    model = qlinear_conv_model(rng, x_shape, channels, kernel, group, strides, pads,
                               zero_point)
    compiled = compile_onnx_int8(model, None, io="int8")
    assert [k["kernel"] for k in compiled.info.kernels if k["op"] == "Conv"] == [kernel_name]
    for call in calls:  # the steps it is there for
        assert call + "(" in compiled.files["m.c"]
    k = x_shape[1] // group * int(np.prod(kernel))
    return model, compiled, near_zero_point(rng, x_shape, zero_point, k)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_accumulators_to_the_unit(case, tmp_path):
    model, compiled, inputs = conv_case(case)
    check_sensitive(compiled, inputs, tmp_path, f"accumulators {case}", model)


# name: A's rows M, B's shape [K, N], A's zero point, the kernel. K and N as the pairs
# kernel splits them: a step of six outputs, a pair, an odd last filter, K not a multiple of
# four; the packed kernel for one row (four outputs a step, a pair, one) and for three (two
# rows by two outputs, by one; the last row alone).
MATMUL_CASES = {
    "matmul_pairs_steps_pair_odd": (1, (13, 9), -25, "matmul_pairs_s8"),
    "matmul_pairs_two_pairs": (1, (40, 4), 50, "matmul_pairs_s8"),
    "matmul_packed_row": (1, (10, 7), 8, "matmul_packed_s8"),
    "matmul_packed_rows": (3, (10, 7), -60, "matmul_packed_s8"),
}


def qlinear_matmul_model(rng: np.random.Generator, m: int, k: int, n: int, zero_point: int,
                         packed: bool) -> onnx.ModelProto:
    """QLinearMatMul of int8 rows [M, K] by a constant int8 B [K, N] in -3..3, per column;
    `packed` puts a -128 above a negative weight (the pairs' packing refuses it), with its
    column's scale lowered so that its outputs stay in range."""
    b = rng.integers(-3, 4, (k, n))
    b_scale = rng.uniform(0.004, 0.008, n)
    if packed:
        b[2, 0], b[2, 1] = -2, -128
        b_scale[1] /= 16
    y_scale = X_SCALE * float(b_scale.mean()) / MULTIPLIER
    constants = {"a_scale": np.array(X_SCALE, np.float32),
                 "a_zero_point": np.array(zero_point, np.int8), "b": b.astype(np.int8),
                 "b_scale": b_scale.astype(np.float32), "b_zero_point": np.zeros(n, np.int8),
                 "y_scale": np.array(y_scale, np.float32), "y_zero_point": np.array(-3, np.int8)}
    return single_node_model("QLinearMatMul", {"a": np.zeros((m, k), np.int8)}, constants,
                             opset=13)


def matmul_case(case: str):
    """A matmul case's model, its compiled form (the kernel checked) and inputs."""
    rng = np.random.default_rng(sum(map(ord, case)))
    m, (k, n), zero_point, kernel_name = MATMUL_CASES[case]
    model = qlinear_matmul_model(rng, m, k, n, zero_point, kernel_name == "matmul_packed_s8")
    compiled = compile_onnx_int8(model, None, io="int8")
    assert [kernel["kernel"] for kernel in compiled.info.kernels] == [kernel_name]
    spread = input_range(k)
    inputs = [[np.clip(zero_point + rng.integers(-spread, spread + 1, (m, k)), -128, 127)
               .astype(np.int8)] for _ in range(8)]
    return model, compiled, inputs


@pytest.mark.parametrize("case", MATMUL_CASES)
def test_matmul_accumulators_to_the_unit(case, tmp_path):
    model, compiled, inputs = matmul_case(case)
    check_sensitive(compiled, inputs, tmp_path, f"accumulators {case}", model)


# The assembly the host cannot run (real SMLAD and SMLABB/SMLABT, the four- and three-pixel
# steps, the first layers' steps, the dense pairs' steps), to the unit on a Cortex-M4.
QEMU_CASES = {"conv_1x1_fours_and_three": conv_case, "pairs_2ch_seven_filters": conv_case,
              "depthwise_3x3_stride2_odd_width": conv_case,
              "matmul_pairs_steps_pair_odd": matmul_case}


@pytest.mark.qemu
@pytest.mark.parametrize("case", QEMU_CASES)
def test_accumulators_to_the_unit_on_a_cortex_m4_in_qemu(case, tmp_path):
    _, compiled, inputs = QEMU_CASES[case](case)
    check_on_cortex_m4(compiled, inputs[:2], tmp_path, plain_too=False)
