"""Output channels whose int8 result is the same for every input are not computed
(constant_channels.py): hand-built QLinearConv models with dead filters (weight scales a
million times below the others', their bias near int32's limit as converters leave them) and
channels that saturate whatever the input, 1x1 and 3x3, one image and two, an odd count of
others (one constant channel computed to even it), filters long enough for the plain kernel.
The host C, plain and with the DSP path on ariel_runtime.h's C twins, equals ariel's integer
reference (which runs the model's own filters) bit for bit and ONNX Runtime within one unit;
one shape runs on a Cortex-M4 in QEMU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from codegen.compiler.ops.constant_channels import constant_outputs
from codegen.compiler.ops.inner_product import Folding
from codegen.compiler.quant.fixedpoint import requantize
from codegen.compiler.quant.output_stage import OutputStage
from tests.compiler.ops.test_conv_s8 import check_int8
from tests.compiler.ops.test_s8_dsp_qemu import check_on_cortex_m4
from tests.support import compile_onnx_int8, single_node_model

# name: input NCHW, output channels, filter size, pads, the dead channels (tiny scales), the
# channels that saturate low and high whatever the input.
CASES = {
    "1x1": ((1, 64, 5, 4), 24, (1, 1), (0, 0, 0, 0), [1, 2, 3, 7, 11, 12, 20, 23], [5], [6]),
    "3x3_two_images_odd_count": ((2, 16, 6, 5), 12, (3, 3), (1, 1, 1, 1),
                                 [0, 2, 3, 8, 9, 10], [11], []),
    # Filters of 1,152 values: the plain kernel (conv_direct_s8) on every core.
    "3x3_direct_long_filters": ((1, 128, 3, 3), 8, (3, 3), (1, 1, 1, 1), [1, 4, 6], [], [7]),
}


def conv_model(rng: np.random.Generator, x_shape: tuple, channels: int, kernel: tuple,
               pads: tuple, dead: list[int], low: list[int], high: list[int],
               x_zero_point: int = -5, dead_bias: int | None = None) -> onnx.ModelProto:
    """A QLinearConv with int8 filters over the full range; `dead` channels get weight
    scales of 1e-9 and biases near +-2e9 (or `dead_bias`, their weights then all 127),
    `low`/`high` ones a bias that saturates them."""
    w = rng.integers(-127, 128, (channels, x_shape[1], *kernel)).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.01, channels).astype(np.float32)
    bias = rng.integers(-3000, 3000, channels).astype(np.int32)
    w_scale[dead] = 1e-9
    bias[dead] = rng.choice([-2_000_000_000, 2_000_000_000], len(dead))
    if dead_bias is not None:
        w[dead], bias[dead] = 127, dead_bias
    bias[low], bias[high] = -1_500_000_000, 1_500_000_000
    constants = {"x_scale": np.array(0.03, np.float32),
                 "x_zero_point": np.array(x_zero_point, np.int8),
                 "w": w, "w_scale": w_scale, "w_zero_point": np.zeros(channels, np.int8),
                 "y_scale": np.array(0.05, np.float32), "y_zero_point": np.array(-20, np.int8),
                 "b": bias}
    return single_node_model("QLinearConv", {"x": np.zeros(x_shape, np.int8)}, constants,
                             opset=13, kernel_shape=list(kernel), pads=list(pads))


def samples(rng: np.random.Generator, shape: tuple) -> list[list[np.ndarray]]:
    """Random int8 inputs, then the two extremes."""
    inputs = [[rng.integers(-128, 128, shape).astype(np.int8)] for _ in range(3)]
    return inputs + [[np.full(shape, -128, np.int8)], [np.full(shape, 127, np.int8)]]


@pytest.mark.parametrize("case", CASES)
def test_constant_channels_are_not_computed(case, tmp_path):
    rng = np.random.default_rng(190)
    x_shape, channels, kernel, pads, dead, low, high = CASES[case]
    model = conv_model(rng, x_shape, channels, kernel, pads, dead, low, high)
    compiled = compile_onnx_int8(model, None, io="int8")
    source = compiled.files["m.c"]
    words = " ".join(source.replace("\n *", " ").split())
    constant = len(dead) + len(low) + len(high)
    # (an odd count left to compute takes the last constant channel back: two at a time)
    skipped = constant - (channels - constant) % 2
    assert (f"{skipped} of {channels} output channels" in words
            and "so they are not computed" in words)
    assert "spread_to" in source
    # (the build's notes tell the user, with the count of MACs left out)
    macs = np.prod(compiled.graph.tensor(compiled.graph.outputs[0]).shape) // channels \
        * skipped * int(np.prod(kernel)) * x_shape[1]
    assert [note for note in compiled.source.notes if "MACs not computed" in note] == [
        f"Conv 'qlinearconv_node': {macs:,} of its {macs // skipped * channels:,} MACs not "
        "computed: output channels that are one value whatever the input (listed in its "
        "kernel's comment), their filters not stored"]
    assert ("conv_direct_s8" in [k["kernel"] for k in compiled.info.kernels]) == (
        case == "3x3_direct_long_filters")
    outputs = check_int8(compiled, samples(rng, x_shape), tmp_path, f"constant channels {case}",
                         model=model)
    # (the skipped channels really are one value each, over every input tried)
    for channel in dead + low + high:
        assert np.unique(outputs[:, :, channel]).size == 1


def test_constant_channels_on_a_cortex_m4_in_qemu(tmp_path):
    rng = np.random.default_rng(191)
    x_shape, channels, kernel, pads, dead, low, high = CASES["3x3_two_images_odd_count"]
    model = conv_model(rng, x_shape, channels, kernel, pads, dead, low, high)
    compiled = compile_onnx_int8(model, None, io="int8")
    assert "spread_to" in compiled.files["m.c"]
    check_on_cortex_m4(compiled, samples(rng, x_shape)[:2], tmp_path)


def test_constant_channels_with_the_zero_point_subtracted(tmp_path):
    """Dead channels whose bias, with the input zero point (-128) folded in, could pass
    int32: the whole layer would subtract the zero point from each input (an offset of 128),
    so the constant channels are found over that range; the channels computed, without them,
    take the zero point folded into their bias."""
    rng = np.random.default_rng(193)
    x_shape, k = (1, 64, 3, 4), 64
    # b + 255 * 127 k stays within int32 (the accumulator bound), b + 256 * 127 k would not
    # (folding's bound).
    dead_bias = 2**31 - 1 - 255 * 127 * k - 4000
    model = conv_model(rng, x_shape, 16, (1, 1), (0, 0, 0, 0), [2, 5, 9, 14], [], [],
                       x_zero_point=-128, dead_bias=dead_bias)
    compiled = compile_onnx_int8(model, None, io="int8")
    source = compiled.files["m.c"]
    words = " ".join(source.replace("\n *", " ").split())
    assert "4 of 16 output channels (2, 5, 9, 14)" in words and "spread_to" in source
    assert "zero point -128 folded into the bias" in words
    check_int8(compiled, samples(rng, x_shape), tmp_path, "constant channels, offset",
               model=model)


def test_a_channel_is_constant_only_where_both_ends_of_its_range_agree():
    """constant_outputs against brute force: small filters over every input they can see."""
    rng = np.random.default_rng(192)
    rows = rng.integers(-127, 128, (40, 2))
    rows[:10] = 0  # zero filters: constant whatever the stage
    bias = rng.integers(-40_000, 40_000, 40)
    multipliers = np.full(40, 1 << 30, np.int64)
    shifts = rng.integers(40, 52, 40)  # some so coarse that every sum rounds alike
    stage = OutputStage(multipliers, shifts, -3, -128, 127)
    grid = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)), -1).reshape(-1, 2)
    for offset in (0, 7):
        got = constant_outputs(stage, rows, Folding(bias.astype(np.int64), offset, ""))
        for n in range(40):
            every = requantize((grid + offset) @ rows[n] + bias[n], multipliers[n], shifts[n],
                               -3)
            want = every[0] if np.unique(every).size == 1 else -1000
            assert got[n] == want, n
        assert (got[:10] != -1000).all()
        assert (got[10:] == -1000).any() and (got[10:] != -1000).any()
