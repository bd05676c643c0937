"""One output-stage shift for every channel of an int8 kernel whose weights are stored as
int16: each channel's filter and bias are multiplied by 2^j at compile time, so that every
channel's accumulator needs the same shift afterwards, an immediate of SSAT.

ariel_requantize_hi gives, for an accumulator a, multiplier m and shift s >= 33 (s33 = s -
33), floor(a m / 2^s + 1/2) + zp (see firmware/ariel_runtime.h). With a' = a 2^j and
32 + T = s + j, that is floor(a' m / 2^(32 + T) + 1/2) + zp = floor((h' + 2^(T-1) + zp 2^T)
/ 2^T) with h' = floor(a' m / 2^32) (a floor of a floor by an integer is one floor): the
high word of the product plus a constant, shifted by T. SMMLA adds the constant to the high
word in the same instruction, so the output stage is SMMLA then SSAT with ASR #T, the
multiplier the one value it loads per channel. T = 1 + the largest s33, so j = T - 1 - s33
>= 0; it applies where each scaled weight stays an int16 and each scaled accumulator within
int32 (the same bound fold_zero_point checks, times 2^j)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_term
from codegen.compiler.ops.base import Names
from codegen.compiler.ops.inner_product import INT8_SPAN, Folding, Requantizer
from codegen.compiler.quant.output_stage import OutputStage

INT32_MAX = 2**31 - 1
# The largest shift T kept: the constant 2^(T-1) + zp 2^T stays far inside int32.
MOST_SHIFT = 20


@dataclass(frozen=True)
class CommonShift:
    """The scale 2^j of each channel's filter and bias, and the stage's one shift T."""

    scales: np.ndarray  # int64, 2^j per channel
    shift: int  # T

    def add(self, stage: OutputStage) -> int:
        """What the stage adds to the high word before its shift: 2^(shift - 1), the
        rounding, and zp 2^shift, the zero point."""
        return (1 << (self.shift - 1)) + stage.zero_point * (1 << self.shift)

    def requantizer(self, stage: OutputStage, names: Names, key: str = "rq") -> Requantizer:
        """The output stage as ariel_requantize_common calls: one multiplier per channel, in
        the table `key` names."""
        multipliers = stage.multipliers.reshape(-1).astype(np.int64)
        tail = self.tail(stage) + ")"
        note = (f"output stage ariel_requantize_common: one shift ({self.shift}) for every "
                f"channel, each channel's filter and bias scaled by 2^(shift - 1 - its shift "
                f"- 33) at compile time (up to 2^{int(self.scales.max()).bit_length() - 1}), "
                f"so SMMLA and SSAT take the multiplier alone")
        if multipliers.size == 1:
            m = int(multipliers[0])
            return Requantizer({}, lambda acc, c: (f"(int8_t)ariel_requantize_common({acc}, "
                                                   f"{m}, {tail}"), note)
        return Requantizer({key: multipliers.astype(np.int32)},
                           lambda acc, c: (f"(int8_t)ariel_requantize_common({acc}, "
                                           f"{names.weight(key)}[{c_term(c)}], {tail}"),
                           note + f"; {key}: the multiplier per channel")

    def tail(self, stage: OutputStage) -> str:
        """ariel_requantize_common's arguments after the multiplier: add, shift, low, high."""
        return f"{self.add(stage)}, {self.shift}, {stage.low}, {stage.high}"

    def multiplier(self, stage: OutputStage, names: Names, key: str = "rq_dsp"):
        """C for channel c's multiplier (c a C expression), as requantizer's call reads it."""
        multipliers = stage.multipliers.reshape(-1)
        if multipliers.size == 1:
            return lambda c: str(int(multipliers[0]))
        return lambda c: f"{names.weight(key)}[{c_term(c)}]"


def common_shift(stage: OutputStage, rows: np.ndarray, folding: Folding
                 ) -> CommonShift | None:
    """The scaling that gives `rows`' channels ([C, K] int8 filters) one shift, or None
    where some shift is below 33, the shift would pass MOST_SHIFT, a scaled weight would
    leave int16 or a scaled accumulator int32."""
    channels = rows.shape[0]
    shifts = np.broadcast_to(stage.shifts.reshape(-1).astype(np.int64), (channels,))
    if shifts.min() < 33:
        return None
    s33 = shifts - 33
    shift = int(s33.max()) + 1
    if shift > MOST_SHIFT:
        return None
    scales = np.left_shift(np.int64(1), shift - 1 - s33)
    wide = rows.astype(np.int64) * scales[:, None]
    if wide.min(initial=0) < -2**15 or wide.max(initial=0) >= 2**15:
        return None
    # Each input as the kernel multiplies it: x (|x| <= 128) with the zero point folded,
    # else x plus the offset.
    largest = INT8_SPAN if folding.offset == 0 else 128 + abs(folding.offset)
    bound = (np.abs(folding.bias.astype(np.int64)) + largest * np.abs(rows.astype(np.int64))
             .sum(axis=1)) * scales
    if bound.max(initial=0) > INT32_MAX:
        return None
    return CommonShift(scales, shift)
