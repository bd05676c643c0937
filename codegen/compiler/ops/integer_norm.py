"""The integer arithmetic of an int8 LayerNormalization or InstanceNormalization (QDQ form:
int8 x with one scale and zero point, int8 scale g symmetric with one scale, int32 bias b).

For a group of C values q (the int8 codes of x; the zero point cancels out of x - mean):

    S = sum q,  V = C * sum q^2 - S^2                (int32, int64: C^2 times the variance)
    d_j = C * q_j - S                                 (C times q_j - mean)
    n_j = d_j / sqrt(V + E),  E = epsilon * C^2 / s_x^2   (the normalized value, exactly)
    y_j = z_y + (s_g / s_y) * (n_j * g_j + (s_b / s_g) * b_j)

Integer only, with compile-time constants:

    W   = V * 4^m + e,  e = round(E * 4^m)            m the largest with V_max * 4^m + e
                                                      < 2^62 (V_max = C^2 * 127.5^2)
    s   = isqrt(W)  (at least 1)                      ~ sqrt(V + E) * 2^m
    r   = floor(2^K / s)                              K = 30 + bits of the smallest s of a
                                                      group that is not constant: r <= 2^31
    acc = rounding_shift(d_j * g_j * r, K - m - P) + B_j,   B_j = rint(b_j * s_b / s_g * 2^P)
    y_j = requantize(acc, s_g / s_y * 2^-P)          the shared output stage

(A scale g quantized per channel, as ONNX Runtime does one of two axes or more, has its own
output stage per value of g, and no bias: ONNX Runtime 1.32's quantizer fails on a bias of
two axes.)

so acc is n_j * g_j + B_j / 2^P in units of 2^-P, P the largest (at most 20) that keeps
|acc| <= 127 * sqrt(C - 1) * 2^P + max |B| within int32 (|n_j| <= sqrt(C - 1), since the
d_j sum to 0 and their squares to C * V). Before the final rounding, n_j is off by a relative
sqrt(C) * 2^-23 at worst (r has fewest significant bits, about 23 - log2(sqrt(C)), where the
variance is largest; s has at least 31), 2^-20 for C = 64, far below an output step: the
result is the exact real rounded once, half up, but for values that close to a half. ONNX
Runtime computes in float32 and rounds half to even: one step apart at most. Per group one
64-bit integer square root and one 64-bit division; per value two multiplications, one of
them 32 x 32 -> 64 bits, and the shared output stage."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import normalize_axis, unsupported
from codegen.compiler.quant.fixedpoint import quantize_multipliers, requantize, rounding_shift
from codegen.compiler.quant.output_stage import clamp_range, scale_of, zero_point_of

INT32_MAX = 2**31 - 1
LARGEST_VARIANCE = 127.5**2  # of int8 codes: half of them -128, half 127
MAX_FRACTION_BITS = 20


@dataclass(frozen=True)
class IntegerNorm:
    """The constants of one int8 normalization (module docstring)."""

    count: int  # C
    square_shift: int  # 2m
    epsilon_term: int  # e
    reciprocal_bits: int  # K
    shift: int  # K - m - P
    bias: np.ndarray | None  # B (int32), in the bias's own shape
    multipliers: np.ndarray  # int32: one, or one per value of the scale g (its shape)
    shifts: np.ndarray
    zero_point: int
    low: int
    high: int

    @property
    def per_value(self) -> bool:
        """True when each value of g has its own output stage."""
        return self.multipliers.size > 1

    def inverse_root(self, variance: np.ndarray) -> np.ndarray:
        """r for each group's V (int64 array), as the C kernel computes it."""
        roots = [max(math.isqrt((int(v) << self.square_shift) + self.epsilon_term), 1)
                 for v in variance.reshape(-1)]
        return np.array([(1 << self.reciprocal_bits) // s for s in roots],
                        np.int64).reshape(variance.shape)

    def apply(self, q: np.ndarray, axes: tuple[int, ...], gamma: np.ndarray,
              spread: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """int8 q -> int8 y, for g as stored; `spread` places an array of g's (or the
        bias's) shape against q's axes."""
        x = q.astype(np.int64)
        total = x.sum(axis=axes, keepdims=True)
        variance = self.count * (x * x).sum(axis=axes, keepdims=True) - total * total
        r = self.inverse_root(variance)
        acc = rounding_shift((self.count * x - total) * spread(gamma).astype(np.int64) * r,
                             self.shift)
        if self.bias is not None:
            acc = acc + spread(self.bias).astype(np.int64)
        multipliers, shifts = self.multipliers, self.shifts
        if self.per_value:
            multipliers, shifts = spread(multipliers), spread(shifts)
        return requantize(acc, multipliers, shifts, self.zero_point, self.low,
                          self.high).astype(np.int8)


def integer_norm(node: Node, graph: Graph, count: int) -> IntegerNorm:
    """The constants for `node`, normalizing groups of `count` values; refuses forms the
    kernel does not take (per-channel or asymmetric scale, statistics outputs)."""
    x, gamma, *rest = graph.input_tensors(node)
    bias = rest[0] if rest else None
    y = graph.tensor(node.outputs[0])
    if len(node.outputs) > 1:
        raise unsupported(node, "Mean and InvStdDev outputs in int8", "the output Y alone")
    _check_parameter(node, gamma, "int8", per_channel=bias is None)
    if bias is not None:
        _check_parameter(node, bias, "int32")
    s_x, s_y = float(scale_of(x)), float(scale_of(y))
    s_g = _spread_scale(gamma)
    epsilon = float(np.float32(node.attrs.get("epsilon", 1e-5)))
    term = epsilon * count * count / (s_x * s_x)
    largest = count * count * LARGEST_VARIANCE
    m = 0
    while (largest + term) * 4.0 ** (m + 1) < 2.0**62:
        m += 1
    if (largest + term) >= 2.0**62:
        raise unsupported(node, f"an int8 normalization whose epsilon is {term:.3g} times "
                          f"the input's step squared", "epsilon small against s_x^2 * C^2")
    epsilon_term = round(term * 4.0**m)
    smallest = max(math.isqrt(((count - 1) << 2 * m) + epsilon_term), 1)
    reciprocal_bits = 30 + smallest.bit_length()
    # d * g in int32 (|d| <= 255 (C - 1)); d * g * r in int64: |d| / s <= sqrt(C - 1) / 2^m
    # (1 + 2^-20) for a group that is not constant, |g| <= 127 (a constant group has d = 0).
    normalized = 127 * math.sqrt(max(count - 1, 0)) * (1 + 2**-20) + 1
    if 255 * 127 * (count - 1) > INT32_MAX or \
            normalized * 2.0 ** (reciprocal_bits - m) >= 2.0**62:
        raise unsupported(node, f"an int8 normalization over groups of {count}",
                          f"groups of at most {INT32_MAX // (255 * 127) + 1} values")
    ratio = float(scale_of(bias)) / float(s_g.reshape(-1)[0]) if bias is not None else 0.0
    values = bias.data.astype(np.float64) * ratio if bias is not None else np.zeros(1)
    fraction = min(MAX_FRACTION_BITS, reciprocal_bits - m - 1)
    while fraction >= 0 and (normalized + float(np.abs(values).max())) * 2.0**fraction + 1 \
            > INT32_MAX:
        fraction -= 1
    if fraction < 8:
        raise unsupported(node, f"an int8 normalization whose bias reaches "
                          f"{float(np.abs(values).max()):.3g} steps of its scale",
                          "a bias within about 2^22 steps of the scale's")
    scaled_bias = None if bias is None else np.rint(values * 2.0**fraction).astype(np.int32)
    multipliers, shifts = quantize_multipliers(s_g / s_y * 2.0**-fraction)
    low, high = clamp_range(y.quant, node.clamp)
    return IntegerNorm(count, 2 * m, epsilon_term, reciprocal_bits,
                       reciprocal_bits - m - fraction, scaled_bias, multipliers, shifts,
                       zero_point_of(y), low, high)


def _spread_scale(gamma: Tensor) -> np.ndarray:
    """g's scale: one value (shape ()), or one per value of g (its shape) when quantized
    per channel along an axis."""
    scale = scale_of(gamma)
    if scale.size == 1:
        return scale.reshape(())
    shape = [1] * gamma.rank
    shape[normalize_axis(gamma.quant.axis, gamma.rank)] = scale.size
    return np.broadcast_to(scale.reshape(shape), gamma.shape).copy()


def _check_parameter(node: Node, tensor: Tensor, dtype: str, per_channel: bool = False
                     ) -> None:
    if not tensor.is_const or tensor.dtype != dtype or tensor.quant is None:
        raise unsupported(node, f"parameter '{tensor.name}' ({tensor.dtype}"
                          f"{'' if tensor.is_const else ', computed at run time'}) in int8",
                          f"a constant {dtype} scale and bias from DequantizeLinear")
    if np.asarray(tensor.quant.scale).size != 1 and not per_channel:
        raise unsupported(node, f"parameter '{tensor.name}' with one scale per channel"
                          f"{' beside a bias' if dtype == 'int8' else ''}",
                          "one scale for the whole parameter (or a scale quantized per "
                          "channel without a bias)")
    if np.any(np.asarray(tensor.quant.zero_point) != 0):
        raise unsupported(node, f"parameter '{tensor.name}' with a zero point",
                          "symmetric parameters (zero point 0)")
