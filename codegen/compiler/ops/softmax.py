"""ONNX Softmax, float32 and int8, and LogSoftmax, float32, on row-major data. Before opset 13
the input is seen as a
matrix split at `axis` (default 1) and each row, all trailing axes together, is normalised;
from opset 13 only the one axis (default -1) is. Both are: for each outer index and each inner
index, a run of `length` elements `inner` apart. The maximum is subtracted before expf so
that large inputs cannot overflow; LogSoftmax is then x - max - log(sum of exp(x - max)),
never the logarithm of a probability that rounded to 0.

int8 -> int8 (one scale and zero point per tensor) is integer only. For a row of L values:

    d[j]  = max - x[j]                      in [0, 255]
    T[d]  = rint(exp(-s_x * d) * 2**F)      a 256-entry int32 table made at compile time
    S     = sum of T[d[j]]                  int32: F is the largest (<= 30) with L * 2**F
                                            < 2**31, so S cannot overflow (refused when
                                            that leaves fewer than 15 fraction bits)
    Z     = floor((2C + S) / (2S))          once per row, int64: C/S rounded half up, where
                                            C = rint(2**K / s_y), exactly, in Python
    y[j]  = clamp(z_y + floor((T[d[j]] * Z + 2**(K-1)) / 2**K))   the shared rounding rule

so y[j] - z_y is T[d[j]] / (S * s_y), the probability in output steps, rounded half up.
(The table itself approximates exp to half a unit in 2**F: with F >= 15 that moves a
probability by about 2**-15, under 1/100 of an output step of 1/256.)
K is F + 31 or smaller so that 2C + S and T * Z fit int64 (T * Z <= C + 2**F); the per-row
rounding of Z then moves the value before its final rounding by at most T / 2**K <= 2**-16
of an output step, so only values that close to a half can round differently from the exact
rational. ONNX Runtime computes in float32 and rounds half to even: results differ from it
by at most one step, where the probability lands near a half.

Cost, compared with dequantize + float softmax + quantize: 1 KB of flash for the table (256
int32, per node); per row one 64-bit division (an __aeabi_ldivmod call); per element three
passes (maximum; subtract, table load, add; table load, a 32 x 64-bit product as MUL/MLA/UMULL,
the 64-bit rounding shift, zero point, clamp, store), no FPU and no other library call.
Measured with ariel's QEMU instruction counter on mps2-an386 (Cortex-M4, gcc 12 -O2), 16
rows of 10: 7,209 instructions, 45 per element with the divisions. The float path on the same
rows, DequantizeLinear + float Softmax (expf) + QuantizeLinear, took 1,287 + 14,372 + 8,121 =
23,780 instructions when measured, 149 per element, with the QuantizeLinear of the time (a
float division and newlib's rintf); QuantizeLinear is cheaper now, the expf is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from codegen.compiler.c import c_index, c_literal
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    attr,
    normalize_axis,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.quantize import c_add, describe_quant, int8_quantized
from codegen.compiler.quant.fixedpoint import rounding_shift
from codegen.compiler.quant.output_stage import INT8_MAX, INT8_MIN, scale_of, zero_point_of

# Fraction bits of the exponential table: at most 30 (T[0] = 2**F stays an int32 with room for
# a row of two), at least 15 (below that the table's own rounding starts to show).
MAX_FRACTION_BITS, MIN_FRACTION_BITS = 30, 15


@dataclass(frozen=True)
class Span:
    """The elements one softmax normalises together, in row-major terms."""

    outer: int
    length: int
    inner: int
    description: str


def coerced(node: Node) -> bool:
    """True for the semantics before opset 13 (all axes from `axis` on, together)."""
    return 0 < node.opset < 13


def softmax_axis(node: Node) -> int:
    return attr(node, "axis", 1 if coerced(node) else -1)


def span(node: Node, shape: tuple[int, ...]) -> Span:
    rank = len(shape)
    axis = normalize_axis(softmax_axis(node), rank)
    outer = math.prod(shape[:axis])
    if coerced(node):
        return Span(outer, math.prod(shape[axis:]), 1,
                    f"opset {node.opset}: axes {list(range(axis, rank))} together")
    return Span(outer, shape[axis], math.prod(shape[axis + 1:]), f"axis {axis}")


@dataclass(frozen=True)
class IntegerSoftmax:
    """The compile-time constants of an int8 softmax over rows of `length` (module docstring):
    the table T, its fraction bits F, the final shift K and 2C."""

    table: np.ndarray  # int32 [256]
    fraction_bits: int
    shift: int
    twice_c: int
    zero_point: int

    def apply(self, rows: np.ndarray) -> np.ndarray:
        """rows [outer, length, inner] int8 -> int8, as the C kernel computes it."""
        x = rows.astype(np.int64)
        t = self.table.astype(np.int64)[x.max(axis=1, keepdims=True) - x]
        total = t.sum(axis=1, keepdims=True)
        z = (np.int64(self.twice_c) + total) // (2 * total)
        y = rounding_shift(t * z, self.shift) + self.zero_point
        return np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8)


def integer_softmax(node: Node, graph: Graph, length: int) -> IntegerSoftmax:
    x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    # The largest F with length * 2**F <= 2**31 - 1: a row's sum (at most length * T[0],
    # T[0] = 2**F) cannot overflow int32.
    fraction_bits = min(MAX_FRACTION_BITS, ((2**31 - 1) // length).bit_length() - 1)
    if fraction_bits < MIN_FRACTION_BITS:
        raise unsupported(node, f"an int8 softmax over rows of {length}",
                          f"rows of at most {(2**31 - 1) // 2**MIN_FRACTION_BITS} values")
    d = np.arange(256, dtype=np.float64)
    table = np.rint(np.exp(-float(scale_of(x)) * d) * 2.0**fraction_bits).astype(np.int64)
    s_y = Fraction(float(scale_of(y)))
    shift = fraction_bits + 31
    while 2 * round(Fraction(2**shift) / s_y) + 2**31 >= 2**62:
        shift -= 1
    if shift < fraction_bits + 16:
        raise unsupported(node, f"an int8 softmax with output scale {float(s_y):g}",
                          "output scales from about 2**-14 up")
    twice_c = 2 * round(Fraction(2**shift) / s_y)
    return IntegerSoftmax(table.astype(np.int32), fraction_bits, shift, twice_c,
                          zero_point_of(y))


@register("Softmax")
class Softmax(OpDef):
    attributes = frozenset({"axis"})
    int8 = True

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        if int8_quantized(x) and int8_quantized(graph.tensor(node.outputs[0])):
            integer_softmax(node, graph, span(node, x.shape).length)
        else:
            require_dtype(node, x, FLOAT_TYPES)
        axis = softmax_axis(node)
        if not -x.rank <= axis < x.rank:
            raise unsupported(node, f"axis {axis} of a rank-{x.rank} input",
                              f"axes from {-x.rank} to {x.rank - 1}")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, inputs[0].dtype)]

    def reference(self, node: Node, x):
        s = span(node, x.shape)
        rows = x.astype(np.float64).reshape(s.outer, s.length, s.inner)
        e = np.exp(rows - rows.max(axis=1, keepdims=True))
        return [(e / e.sum(axis=1, keepdims=True)).astype(np.float32).reshape(x.shape)]

    def reference_s8(self, node: Node, graph: Graph, x):
        s = span(node, x.shape)
        integer = integer_softmax(node, graph, s.length)
        return [integer.apply(x.reshape(s.outer, s.length, s.inner)).reshape(x.shape)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        s = span(node, x.shape)
        loops = [(n, stride) for n, stride in ((s.outer, s.length * s.inner), (s.inner, 1))
                 if n > 1]
        context = {
            "loops": [n for n, _ in loops],
            "base": c_index([stride for _, stride in loops]),
            "length": s.length,
            "j": "j" if s.inner == 1 else f"j * {s.inner}",
            "shape": list(x.shape),
            "span": s.description,
        }
        if not int8_quantized(y):
            return Kernel("kernels/softmax_f32.c.j2", context)
        integer = integer_softmax(node, graph, s.length)
        context.update(
            table=names.weight("table"), fraction_bits=integer.fraction_bits,
            shift=integer.shift, twice_c=c_literal(integer.twice_c, "int64_t"),
            rounded=c_add(f"ariel_rounding_shift({names.weight('table')}[largest - "
                          f"x[{context['j']}]] * z, {integer.shift})", integer.zero_point),
            x_params=describe_quant(x), y_params=describe_quant(y))
        return Kernel("kernels/softmax_s8.c.j2", context, {"table": integer.table})


@register("LogSoftmax")
class LogSoftmax(Softmax):
    """The logarithm of Softmax, float32 only (ONNX Runtime's quantizer leaves it in float)."""

    int8 = False

    def check(self, node: Node, graph: Graph) -> None:
        require_dtype(node, graph.tensor(node.inputs[0]), FLOAT_TYPES)
        super().check(node, graph)

    def reference(self, node: Node, x):
        s = span(node, x.shape)
        rows = x.astype(np.float64).reshape(s.outer, s.length, s.inner)
        shifted = rows - rows.max(axis=1, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return [y.astype(np.float32).reshape(x.shape)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        kernel = super().lower(node, graph, names)
        return Kernel("kernels/log_softmax_f32.c.j2", kernel.context)
