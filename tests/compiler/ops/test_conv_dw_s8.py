"""The int8 depthwise kernels (conv_dw_rows_s8.c.j2 for filter rows of three taps at column
stride 1 or 2, conv_dw_s8.c.j2 for the others): hand-built depthwise QLinearConv models over
filter sizes with an even and an odd tap count, strides, pads that leave no interior, no
border or both, dilations, batches and input zero points from -128 to 127, including the path
that subtracts the zero point from each input (when folding it into the bias could overflow),
and both ways the kernel copies its input (the whole input padded, or bands of output rows
for larger inputs: odd widths, whose last pixel the rows kernel takes alone, stride 2,
dilation), and output rows both unrolled and looped over their pixel pairs. The host C, plain
and with the DSP path on ariel_runtime.h's C twins of the instructions, equals ariel's
integer reference bit for bit and ONNX Runtime within one unit; a few shapes run on a
Cortex-M4 in QEMU (the real SMLAD, PKHBT and PKHTB) and, on the plain path, on a
Cortex-M0+."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from codegen.compiler.ops.depthwise_rows import UNROLLED_PAIRS
from codegen.compiler.reference import run_graph
from tests.compiler.ops.test_conv_s8 import check_int8
from tests.compiler.ops.test_s8_dsp_qemu import check_on_cortex_m4, firmware, run_firmware, uses
from tests.support import compile_onnx_int8, single_node_model

# name: input NCHW (or NCW), filter size, strides, pads (begins then ends), dilations,
# the input's zero point.
CASES = {
    "3x3_pad1": ((1, 8, 6, 5), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), -20),
    "3x3_stride2_pad_end": ((1, 12, 9, 8), (3, 3), (2, 2), (0, 0, 1, 1), (1, 1), 3),
    "3x3_stride2_pad_all": ((1, 4, 8, 7), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), -128),
    "3x3_stride2_odd_width": ((1, 8, 7, 9), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), -100),
    # Taller than wide: the rows kernel walks the columns (the map transposed).
    "3x3_tall_transposed": ((1, 8, 13, 4), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 50),
    "3x3_tall_strides_2x1": ((2, 4, 12, 3), (3, 3), (2, 1), (1, 0, 0, 1), (1, 1), -77),
    "3x3_strides_2x1_asym": ((2, 8, 7, 6), (3, 3), (2, 1), (1, 0, 0, 2), (1, 1), 127),
    "3x3_no_interior": ((1, 4, 2, 2), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 0),
    "3x3_no_pad": ((1, 8, 5, 6), (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 9),
    "3x3_dilated": ((1, 8, 9, 9), (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), -60),
    "5x5_pad2": ((1, 8, 7, 6), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), -5),
    "2x2_even_taps": ((1, 12, 7, 7), (2, 2), (2, 2), (0, 0, 1, 1), (1, 1), 40),
    "1x3_three_taps": ((1, 4, 6, 5), (1, 3), (1, 1), (0, 1, 0, 1), (1, 1), -1),
    "1d_kernel_3": ((1, 8, 12), (3,), (1,), (1, 1), (1,), 17),
    "64_channels": ((1, 64, 5, 4), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), -33),
    # Inputs whose padded copy would pass the budgets: the rows kernel takes bands of output
    # rows (two even ones; three at stride 2, the last shorter, with a padding row), the
    # other kernel (dilated) a ring of rows.
    "band_3x3_pad1_odd_width": ((1, 8, 30, 29), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 21),
    "band_3x3_stride2_pad_end": ((1, 4, 33, 31), (3, 3), (2, 2), (0, 0, 1, 1), (1, 1), -90),
    "band_3x3_stride2_three": ((1, 4, 45, 40), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), -41),
    "ring_3x3_dilated": ((1, 4, 29, 27), (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 64),
    # Rows of more than UNROLLED_PAIRS pixel pairs, which loop over their pairs (the shorter
    # ones above are unrolled): stride 2 with an odd width and a channel tail of 4 past 8,
    # stride 1 with an even width and 12 channels.
    "loop_3x3_stride2_odd_width": ((1, 12, 6, 21), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), -3),
    "loop_3x3_pad1_even_width": ((1, 12, 4, 18), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 101),
    # Stride 2 loops over two pairs a pass: rows of 6 pairs (no pair left over, no lone
    # pixel), and, walked by columns, of 7 (one pair left over).
    "loop_3x3_stride2_even_pairs": ((1, 8, 5, 24), (3, 3), (2, 2), (0, 0, 1, 1), (1, 1), 66),
    "loop_3x3_stride2_tall_transposed": ((1, 4, 27, 6), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1),
                                         -12),
}


def output_size(size: int, k: int, stride: int, begin: int, end: int, dilation: int) -> int:
    return (size + begin + end - (k - 1) * dilation - 1) // stride + 1


def depthwise_model(rng: np.random.Generator, x_shape: tuple, kernel: tuple, strides: tuple,
                    pads: tuple, dilations: tuple, x_zero_point: int,
                    w: np.ndarray | None = None, bias: np.ndarray | None = None,
                    w_scale: np.ndarray | None = None) -> onnx.ModelProto:
    """A hand-built depthwise QLinearConv: int8 input and output, per-channel int8 filters."""
    channels = x_shape[1]
    w = rng.integers(-127, 128, (channels, 1, *kernel)).astype(np.int8) if w is None else w
    if w_scale is None:
        w_scale = rng.uniform(0.002, 0.01, channels).astype(np.float32)
    bias = rng.integers(-3000, 3000, channels).astype(np.int32) if bias is None else bias
    constants = {"x_scale": np.array(0.03, np.float32),
                 "x_zero_point": np.array(x_zero_point, np.int8),
                 "w": w, "w_scale": w_scale, "w_zero_point": np.zeros(channels, np.int8),
                 "y_scale": np.array(0.07, np.float32), "y_zero_point": np.array(-7, np.int8),
                 "b": bias}
    return single_node_model("QLinearConv", {"x": np.zeros(x_shape, np.int8)}, constants,
                             opset=13, group=channels, kernel_shape=list(kernel),
                             strides=list(strides), pads=list(pads), dilations=list(dilations))


def kernel_of(case: str) -> str:
    """The kernel a case takes: filter rows of three taps, undilated, at column stride 1 or 2
    take the planes of int16 pairs (depthwise_rows.py), and so do such filter columns where
    the output is taller than wide; the others conv_dw_s8."""
    _, kernel, strides, _, dilations, _ = CASES[case]
    rows = kernel[-1] == 3 and dilations[-1] == 1 and strides[-1] in (1, 2)
    return "conv_dw_rows_s8" if rows or transposed(case) else "conv_dw_s8"


def transposed(case: str) -> bool:
    """Whether the rows kernel walks the case's map by columns: filter columns of three
    taps, undilated, at row stride 1 or 2, and more output rows than columns."""
    shape, kernel, strides, pads, dilations, _ = CASES[case]
    if len(kernel) != 2 or kernel[0] != 3 or dilations[0] != 1 or strides[0] not in (1, 2):
        return False
    out = [output_size(shape[2 + i], kernel[i], strides[i], pads[i], pads[2 + i], dilations[i])
           for i in range(2)]
    return out[0] > out[1]


def unrolled(case: str) -> bool:
    """Whether the rows kernel unrolls the case's output rows: at most UNROLLED_PAIRS pixel
    pairs along the way it walks the map."""
    shape, kernel, strides, pads, dilations, _ = CASES[case]
    spatial = len(kernel)
    out = [output_size(shape[2 + i], kernel[i], strides[i], pads[i], pads[spatial + i],
                       dilations[i]) for i in range(spatial)]
    return (out[0] if transposed(case) else out[-1]) // 2 <= UNROLLED_PAIRS


def walk_stride(case: str) -> int:
    """The stride along the rows the rows kernel walks."""
    strides = CASES[case][2]
    return strides[0] if transposed(case) else strides[-1]


def compile_case(rng: np.random.Generator, case: str):
    model = depthwise_model(rng, *CASES[case])
    compiled = compile_onnx_int8(model, None, io="int8")
    # (layout copies around it: the model's tensors are NCHW, the kernel's NHWC)
    assert [k["kernel"] for k in compiled.info.kernels if k["op"] == "Conv"] == [kernel_of(case)]
    return model, compiled


def samples(rng: np.random.Generator, shape: tuple, count: int) -> list[list[np.ndarray]]:
    """Random int8 inputs, then the two extremes (every product at its largest)."""
    inputs = [[rng.integers(-128, 128, shape).astype(np.int8)] for _ in range(count)]
    return inputs + [[np.full(shape, -128, np.int8)], [np.full(shape, 127, np.int8)]]


@pytest.mark.parametrize("case", CASES)
def test_depthwise_s8(case, tmp_path):
    rng = np.random.default_rng(180)
    model, compiled = compile_case(rng, case)
    source = compiled.files["m.c"]
    words = " ".join(source.replace("\n *", " ").split())  # the comments' lines joined
    if kernel_of(case) == "conv_dw_rows_s8":
        assert "ariel_pair_channels_s8x4" in source and "ariel_mac_pairs" in source
        assert ", 0, &to[" in source  # the zero point folded
        assert ("are unrolled (rows of" in words) == unrolled(case)
        assert ("for (int32_t count = " in source) != unrolled(case)
        # stride 2: the filter rows' third taps two to a word, taken by SMLABB and SMLABT
        assert ("ariel_mac_bottoms(" in source) == (walk_stride(case) == 2)
    else:
        assert "ariel_pack_bottoms" in source and "ariel_smlad" in source
        assert "ariel_sxtab16" not in source  # the zero point folded into the bias
    assert "ariel_requantize_common" in source  # one shift, the channels' filters scaled
    assert (" bands of up to " in source) == case.startswith("band")
    assert ("a ring of" in words) == case.startswith("ring")
    if case == "band_3x3_stride2_three":
        assert "in 3 bands of up to 7 output rows" in words  # (walked by columns)
    assert ("walked by columns" in source) == transposed(case)
    check_int8(compiled, samples(rng, CASES[case][0], 3), tmp_path, f"depthwise {case}",
               model=model)


def test_depthwise_s8_subtracts_the_zero_point_where_folding_could_overflow(tmp_path):
    """Positive filters, an input zero point of -128 and a bias near the int32 limit: with the
    zero point folded the sums could reach beyond int32, so each input is widened with the
    zero point subtracted (SXTAB16) instead. The outputs saturate at such a bias; the
    rounding of smaller ones is the other cases' business."""
    rng = np.random.default_rng(181)
    x_shape, kernel = (1, 8, 5, 5), (3, 3)
    w = rng.integers(90, 128, (8, 1, *kernel)).astype(np.int8)
    sums = w.astype(np.int64).reshape(8, -1).sum(axis=1)
    bias = (2**31 - 1 - 255 * sums - 5).astype(np.int32)
    model = depthwise_model(rng, x_shape, kernel, (1, 1), (1, 1, 1, 1), (1, 1), -128, w, bias)
    compiled = compile_onnx_int8(model, None, io="int8")
    source = compiled.files["m.c"]
    # (the planes' copy widens with SXTAB16, adding minus the zero point: 128)
    assert "subtracted from each input" in source
    assert ", 128, &to[" in source
    check_int8(compiled, samples(rng, x_shape, 2), tmp_path, "depthwise zero point subtracted",
               model=model)


def test_depthwise_s8_keeps_a_shift_per_channel_where_scaling_would_overflow(tmp_path):
    """Weight scales 2^9 apart: giving the channels one shift would scale the finer
    channels' int8 weights (-128) by 2^9, beyond int16, so the output stage keeps a shift per
    channel (ariel_requantize_hi); the scales in between (2^2 apart) take one shift."""
    rng = np.random.default_rng(182)
    x_shape, kernel = (1, 8, 5, 5), (3, 3)
    for spread, common in ((2**9, False), (4.0, True)):
        w_scale = np.array([0.0005, 0.0005 * spread] * 4, np.float32)
        w = np.full((8, 1, *kernel), -128, np.int8)
        model = depthwise_model(rng, x_shape, kernel, (1, 1), (1, 1, 1, 1), (1, 1), 5, w,
                                w_scale=w_scale)
        source = compile_onnx_int8(model, None, io="int8").files["m.c"]
        assert ("ariel_requantize_common(" in source) == common
        assert ("ariel_requantize_hi(" in source) != common
        check_int8(compile_onnx_int8(model, None, io="int8"), samples(rng, x_shape, 2),
                   tmp_path, f"depthwise scales {spread} apart", model=model)


QEMU_CASES = ["3x3_strides_2x1_asym", "band_3x3_stride2_three", "5x5_pad2", "2x2_even_taps",
              "3x3_no_interior", "3x3_stride2_odd_width", "3x3_tall_strides_2x1",
              "loop_3x3_stride2_odd_width", "loop_3x3_stride2_tall_transposed", "3x3_pad1"]


@pytest.mark.qemu
@pytest.mark.parametrize("case", QEMU_CASES)
def test_depthwise_s8_on_a_cortex_m4_in_qemu(case, tmp_path):
    rng = np.random.default_rng(182)
    _, compiled = compile_case(rng, case)
    inputs = samples(rng, CASES[case][0], 2)
    check_on_cortex_m4(compiled, inputs, tmp_path)
    assert uses(tmp_path / "dsp" / "build" / "firmware.elf", "pkhbt")


@pytest.mark.qemu
def test_depthwise_s8_plain_path_on_a_cortex_m0plus_in_qemu(tmp_path):
    rng = np.random.default_rng(183)
    _, compiled = compile_case(rng, "3x3_strides_2x1_asym")
    inputs = samples(rng, CASES["3x3_strides_2x1_asym"][0], 2)
    want = np.stack([run_graph(compiled.graph, sample)[0] for sample in inputs])
    elf = firmware(compiled, tmp_path / "m0", board="nucleo-g071rb")
    got = run_firmware(compiled, elf, inputs, tmp_path / "run", board="nucleo-g071rb")
    np.testing.assert_array_equal(got, want)
