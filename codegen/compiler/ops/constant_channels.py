"""Output channels of an int8 convolution whose result cannot depend on the input: found at
compile time, not computed, their value written.

Models trained with channels that died, or pruned by zeroing filters, keep them: VWW
MobileNet's float filters in its last 1x1 layers are about 1e-30 in 1,030 of 1,568 output
channels (234 of 256 in the last). Quantized, such a channel's weight scale is tiny and its
int8 output is one value whatever the input, yet a kernel would spend the layer's full share
of MACs on it.

Whether a channel is constant is decided exactly: the accumulator is the bias plus products
of the weights with inputs in a known range (int8, plus the kernel's offset), so it lies
between two bounds, and the output stage is monotonic in the accumulator (for either sign of
the multiplier). Where both bounds give the same output, every input gives it. The kernel then
computes only the other channels, each pixel's outputs packed at the start of its row, and
spreads them to their places afterwards with the constants between them (conv_s8.c.j2).

A dense layer (gemm.py, constant B) is the same with its output columns as the channels and
each row of A, in every batch, as a pixel: dead neurons of pruned MLPs, filters left dead by
converters."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from codegen.compiler.ops.base import Names
from codegen.compiler.ops.inner_product import Folding, fold_zero_point
from codegen.compiler.quant.fixedpoint import requantize
from codegen.compiler.quant.output_stage import OutputStage

# Skipped where the MACs saved per pixel (constant channels times the filter length) are at
# least this many times the bytes the spreading writes per pixel. Measured on VWW (Cortex-M4,
# flash model): 16 skips its layers with 71 to 234 constant channels of 128 or 256 and keeps
# those with 4 of 64 and 21 of 128 whole; 4 skipped those two as well, and the model went from
# 7.70 M to 7.74 M cycles (fewer filters change the kernel's blocks and output-stage path).
# Dense layers (gemm.py) keep the rule: on hand-built QDQ Gemms (Cortex-M4, flash model), at
# exactly 16 a layer of 1 x 64 by 64 took 8.0 k cycles instead of 10.0 k (pairs kernel), 8 x 32
# by 64 21.3 k instead of 36.2 k (packed); 8 still paid a little (9.5 k instead of 10.0 k,
# 59.6 k instead of 63.1 k), 2 lost (10.3 k, 65.7 k).
MACS_PER_SPREAD_BYTE = 16


@dataclass(frozen=True)
class ConstantChannels:
    """The channels a kernel computes (`live`, in order) and every channel's constant output
    (0 for the live ones)."""

    live: np.ndarray  # int64 channel indices
    values: np.ndarray  # int8 per channel

    @property
    def channels(self) -> int:
        return self.values.size

    def places(self) -> np.ndarray:
        """The channel of each computed output, in the order the kernel computes them: the
        spreading's table (uint8 where the channels allow)."""
        return self.live.astype(np.uint8 if self.channels <= 256 else np.int32)

    def slice(self, stage: OutputStage, rows: np.ndarray, bias: np.ndarray | None,
              zero_point: int) -> tuple[OutputStage, np.ndarray, Folding]:
        """The stage, filters ([N, K]) and folding of the computed channels alone (the
        zero point folded into their bias again: without the others' it may fit where it did
        not)."""
        if stage.multipliers.size > 1:
            stage = replace(stage, multipliers=stage.multipliers.reshape(-1)[self.live],
                            shifts=stage.shifts.reshape(-1)[self.live])
        rows = rows[self.live]
        bias = None if bias is None else bias[self.live]
        return stage, rows, fold_zero_point(rows, bias, zero_point)

    def spreading(self, names: Names) -> tuple[dict[str, np.ndarray], dict]:
        """The spreading's tables (the kernel's weights spread_to and spread_values) and
        the spread_channels macro's values (without `outputs`, which a dense kernel adds)."""
        return ({"spread_to": self.places(), "spread_values": self.values},
                {"channels": self.channels, "places": names.weight("spread_to"),
                 "constants": names.weight("spread_values")})

    def skipped_macs(self, macs: int) -> int:
        """The share of a layer's `macs` that its constant channels would have cost."""
        return (self.channels - self.live.size) * macs // self.channels

    def note(self, channel: str = "channel", row: str = "pixel's row") -> str:
        """The kernel comment's line on what is skipped and why (`channel` and `row` name an
        output channel and a row of them: a conv's, or a dense layer's column and row)."""
        constant = np.setdiff1d(np.arange(self.channels), self.live)
        listed = ", ".join(str(c) for c in constant[:8]) + (", ..." if constant.size > 8 else "")
        return (f"{constant.size} of {self.channels} output {channel}s ({listed}) give one output "
                f"whatever the input (checked at compile time over the accumulator's range: "
                f"every sum rounds or saturates to the same value), so they are not "
                f"computed: the kernel computes the other {self.live.size}, packed at the start "
                f"of each {row}, then spreads each row to its places with the constants "
                f"between them (spread_to, spread_values)")


def constant_outputs(stage: OutputStage, rows: np.ndarray, folding: Folding) -> np.ndarray:
    """Per output channel (rows: [N, K] filters), its int8 output where it is the same for
    every input, else -1000."""
    weights = rows.astype(np.int64)
    low_x, high_x = -128 + folding.offset, 127 + folding.offset
    bias = folding.bias.astype(np.int64)
    least = bias + np.minimum(weights * low_x, weights * high_x).sum(axis=1)
    most = bias + np.maximum(weights * low_x, weights * high_x).sum(axis=1)
    multipliers = np.broadcast_to(stage.multipliers.reshape(-1).astype(np.int64), bias.shape)
    shifts = np.broadcast_to(stage.shifts.reshape(-1).astype(np.int64), bias.shape)
    lows, highs = (requantize(bound, multipliers, shifts, stage.zero_point, stage.low,
                              stage.high) for bound in (least, most))
    return np.where(lows == highs, lows, -1000)


def skipped_channels(stage: OutputStage, rows: np.ndarray, folding: Folding
                     ) -> ConstantChannels | None:
    """The layer's constant channels where skipping them pays (MACS_PER_SPREAD_BYTE), but
    the last of them where the others' count is odd, else None; never every channel (a
    kernel with no filter is not worth a path of its own)."""
    outputs = constant_outputs(stage, rows, folding)
    constant = outputs != -1000
    channels, k = rows.shape
    if constant.all() or constant.sum() * k < MACS_PER_SPREAD_BYTE * channels:
        return None
    if (~constant).sum() % 2:
        # An even count computed: the kernels take filters two at a time, and a lone last one
        # costs more than computing one constant channel (VWW int8, Cortex-M4, flash model:
        # 7.68 M -> 7.58 M cycles).
        constant[np.flatnonzero(constant)[-1]] = False
    values = np.where(constant, outputs, 0).astype(np.int8)
    return ConstantChannels(np.flatnonzero(~constant), values)
