"""Fixed-point requantization, the one rule the numpy reference and the C helper share.

A positive real multiplier r is written as M * 2**-shift with M a 31-bit integer in
[2**30, 2**31) and 1 <= shift <= 62. Requantizing an int32 accumulator is then

    y = clamp(floor((acc * M + 2**(shift - 1)) / 2**shift) + zero_point, low, high)

computed exactly in 64-bit integers (|acc * M| < 2**62): a single rounding, half up.
ONNX Runtime computes the same step in float32 and rounds half to even, so results can
differ by one unit where the product lands near a half; the int8 report counts how often.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import UnsupportedError

MAX_SHIFT = 62


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(M, shift) with real ~= M * 2**-shift, M in [2**30, 2**31); real 0 gives (0, 1)."""
    if real < 0 or not math.isfinite(real):
        raise UnsupportedError(f"requantization multiplier {real} (it must be finite and >= 0)")
    if real == 0:
        return 0, 1
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2**exponent, 0.5 <= mantissa < 1
    multiplier = math.floor(mantissa * 2**31 + 0.5)
    if multiplier == 2**31:
        multiplier, exponent = 2**30, exponent + 1
    shift = 31 - exponent
    if shift < 1:
        raise UnsupportedError(f"requantization multiplier {real:g} is too large (at most 2**30)")
    if shift > MAX_SHIFT:
        # Too small to matter: scale M down to the largest usable shift (it may become 0).
        multiplier >>= shift - MAX_SHIFT
        shift = MAX_SHIFT
    return multiplier, shift


def align_multiplier(multiplier: int, extra_shift: int) -> int:
    """`multiplier` * 2**-extra_shift, rounded by the shared rule: the same real multiplier
    at a shift smaller by `extra_shift` (so that several multipliers share one shift)."""
    if extra_shift == 0:
        return multiplier
    return (multiplier + (1 << (extra_shift - 1))) >> extra_shift


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier over an array: (multipliers int32, shifts int32)."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, np.float64).reshape(-1)]
    multipliers = np.array([m for m, _ in pairs], np.int64).reshape(np.shape(reals))
    shifts = np.array([s for _, s in pairs], np.int64).reshape(np.shape(reals))
    return multipliers.astype(np.int32), shifts.astype(np.int32)


def rounding_shift(value: np.ndarray, shift) -> np.ndarray:
    """floor((value + 2**(shift-1)) / 2**shift) on int64: the one rounding rule."""
    value = np.asarray(value, np.int64)
    shift = np.asarray(shift, np.int64)
    return (value + (np.int64(1) << (shift - 1))) >> shift


def requantize(acc, multiplier, shift, zero_point, low: int = -128, high: int = 127
               ) -> np.ndarray:
    """The output stage of every integer kernel (numpy twin of ariel_requantize)."""
    product = np.asarray(acc, np.int64) * np.asarray(multiplier, np.int64)
    value = rounding_shift(product, shift) + np.int64(zero_point)
    return np.clip(value, low, high)


def quantize_bias(bias: np.ndarray, input_scale: float, weight_scales: np.ndarray
                  ) -> np.ndarray:
    """A float bias as int32 at scale s_in * s_w[c], rounded half to even (as ONNX Runtime's
    quantizer does), saturated to int32."""
    scale = np.float64(input_scale) * np.asarray(weight_scales, np.float64)
    values = np.rint(np.asarray(bias, np.float64) / np.where(scale == 0, 1, scale))
    return np.clip(values, -2**31, 2**31 - 1).astype(np.int32)
