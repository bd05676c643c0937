"""Binary arithmetic (Add, Sub, Mul, Div) with numpy broadcasting (the loop nest and the
float kernel are broadcast.py's: a per-channel bias or a scalar is read in place).

Add, Sub and Mul also have int8 kernels (per-tensor scales, any two input scales), integer
only and with one rounding each:

- Add/Sub: y = z_y + (s_a/s_y)(a - z_a) +- (s_b/s_y)(b - z_b). Both real ratios become 31-bit
  multipliers (quantize_multiplier) brought to one shared shift S, the smaller of their two
  shifts: the multiplier with the larger shift (the smaller ratio) is rounded right by the
  difference, which costs it no accuracy that matters (its error stays below 2**-30 of the
  larger term's scale). The zero points fold into one constant, so per element

      acc = M_a * a + M_b * b + offset                      (int64, exact)
      y   = clamp(floor((acc + 2**(S-1)) / 2**S) + z_y)    (the shared rounding rule)

  |acc| < 2**40, far inside int64. A fused Relu/Clip narrows the clamp (OutputStage's
  clamp_range), which is how ResNet's Add + Relu runs.
- Mul: acc = (a - z_a)(b - z_b) in int32, then the common output stage with the multiplier
  s_a * s_b / s_y (ariel_requantize).

Integer Div truncates toward zero, as ONNX says, and is defined where C leaves it undefined
(and where a host CPU traps with SIGFPE, and libgcc, on cores without a divider, calls a
handler): x / 0 is 0, and MIN / -1 is MIN (the quotient wrapped into the type, as numpy's
integer division gives). Both are what the Cortex-M3/M4/M7 divide instructions return with
the divide-by-zero trap off; ONNX leaves them unspecified, and onnxruntime refuses x / 0 with
an error and returns MIN for int32 MIN / -1. The kernel tests the divisor only where it can
be 0 or -1 (read at run time, or a constant holding one), and the build notes each Div whose
divisor can be zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_literal
from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    add_op,
    apply_clamp,
    describe_clamp,
    unsupported,
)
from codegen.compiler.ops.broadcast import (
    UNSIGNED_OF,
    BroadcastOp,
    broadcast_operands,
    describe_operand,
    wrapping,
)
from codegen.compiler.ops.quantize import c_add, describe_quant, int8_quantized
from codegen.compiler.quant.fixedpoint import (
    align_multiplier,
    quantize_multiplier,
    rounding_shift,
)
from codegen.compiler.quant.output_stage import clamp_range, output_stage, scale_of, zero_point_of


@dataclass(frozen=True)
class Rescale:
    """The integer form of an int8 Add or Sub: acc = mult_a * a + mult_b * b + offset in
    int64, y = clamp(rounding_shift(acc, shift) + zero_point, low, high)."""

    mult_a: int
    mult_b: int
    offset: int
    shift: int
    zero_point: int
    low: int
    high: int

    def apply(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        acc = (np.int64(self.mult_a) * a.astype(np.int64)
               + np.int64(self.mult_b) * b.astype(np.int64) + np.int64(self.offset))
        value = rounding_shift(acc, self.shift) + np.int64(self.zero_point)
        return np.clip(value, self.low, self.high).astype(np.int8)


def rescale(graph: Graph, node: Node, sign: int) -> Rescale:
    """The Rescale of an int8 Add (sign 1) or Sub (sign -1)."""
    a, b = graph.input_tensors(node)
    out = graph.tensor(node.outputs[0])
    s_y = float(scale_of(out))
    (m_a, shift_a), (m_b, shift_b) = (quantize_multiplier(float(scale_of(t)) / s_y)
                                      for t in (a, b))
    shift = min(shift_a, shift_b)
    m_a, m_b = align_multiplier(m_a, shift_a - shift), sign * align_multiplier(
        m_b, shift_b - shift)
    offset = -(m_a * zero_point_of(a) + m_b * zero_point_of(b))
    low, high = clamp_range(out.quant, node.clamp)
    return Rescale(m_a, m_b, offset, shift, zero_point_of(out), low, high)


def high_word(r: Rescale) -> dict | None:
    """The int8 Add or Sub as two 32 x 32-bit multiply-accumulates into an int64 (SMLAL on
    Armv7-M) whose high word is the answer, where the numbers allow; None elsewhere (the
    kernel then computes Rescale.apply's int64 expression as it is).

    With k = 32 - shift >= 0: floor((acc + 2^(shift-1)) / 2^shift) = floor(acc' / 2^32) for
    acc' = (acc + 2^(shift-1)) 2^k, exactly, and acc' = start + m_a (a 2^k) + m_b (b 2^k)
    with start = (offset + 2^(shift-1)) 2^k + zero_point 2^32, so the high word of acc' is
    the result with the zero point added. A shift above 32 takes acc' = acc + 2^(shift-1)
    and shifts the high word right by shift - 32 (floor of a floor) before the zero point.
    Needs a 2^k and the multipliers within int32 and every partial sum within int64
    (checked here; k is 2 or 3 in the MLPerf models)."""
    k = max(0, 32 - r.shift)
    if k > 24 or max(abs(r.mult_a), abs(r.mult_b)) >= 1 << 31:
        return None
    rounding = (r.offset + (1 << (r.shift - 1))) << k
    start = rounding + (r.zero_point << 32 if r.shift <= 32 else 0)
    if abs(start) + (abs(r.mult_a) + abs(r.mult_b)) * (128 << k) >= 1 << 63:
        return None
    high = "(int32_t)(acc >> 32)"
    if r.shift > 32:
        high = c_add(f"({high} >> {r.shift - 32})", r.zero_point)
    return {"start": c_literal(start, "int64_t"), "scale": 1 << k, "high": high}


def halves(r: Rescale) -> dict | None:
    """The int8 Add or Sub in 32-bit steps, exactly, where the numbers allow (None
    elsewhere): each multiplier split at bit 16, M = 2^16 H + L with H and L within int16,
    and the constant c = offset + 2^(shift-1) as 2^16 C_h + C_l with 0 <= C_l < 2^16. Then the
    numerator N = M_a a + M_b b + c is 2^16 (H_a a + H_b b + C_h) + P with
    P = L_a a + L_b b + C_l, so floor(N / 2^16) = H_a a + H_b b + C_h + floor(P / 2^16), and
    y = floor(N / 2^shift) + z_y is that floor shifted right by shift - 16 (a floor of a
    floor), z_y 2^(shift-16) added to C_h first. Two dual 16-bit multiply-accumulates per
    element (SMLAD on Armv7E-M, a and b packed in one word), an add and one saturating shift
    (SSAT); the multipliers stay in registers. Needs 17 <= shift <= 47, the halves within
    int16 and every partial sum within int32 (checked here)."""
    shift = r.shift - 16
    if not 1 <= shift <= 31:
        return None
    split = []
    for multiplier in (r.mult_a, r.mult_b):
        high = (multiplier + (1 << 15)) >> 16  # rounded, so that the low half is signed
        split.append((high, multiplier - (high << 16)))
    (high_a, low_a), (high_b, low_b) = split
    if max(abs(high_a), abs(high_b)) >= 1 << 15:
        return None
    constant = r.offset + (1 << (r.shift - 1))
    low_start = constant & 0xFFFF
    high_start = (constant >> 16) + (r.zero_point << shift)
    part = 128 * (abs(low_a) + abs(low_b)) + low_start
    if abs(high_start) + 128 * (abs(high_a) + abs(high_b)) + (part >> 16) + 1 >= 1 << 31:
        return None
    return {"low_mults": c_literal(_pair(low_a, low_b), "int32_t"),
            "high_mults": c_literal(_pair(high_a, high_b), "int32_t"),
            "low_start": c_literal(low_start, "int32_t"),
            "high_start": c_literal(high_start, "int32_t"), "shift": shift,
            "values": (high_a, low_a, high_b, low_b, low_start, high_start)}


def _pair(bottom: int, top: int) -> int:
    """Two int16 values as the int32 word whose halves they are (bottom, top)."""
    word = (bottom & 0xFFFF) | ((top & 0xFFFF) << 16)
    return word - (1 << 32) if word >= 1 << 31 else word


def halves_apply(r: Rescale, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """halves' arithmetic in numpy, step for step (tests check it against Rescale.apply)."""
    path = halves(r)
    high_a, low_a, high_b, low_b, low_start, high_start = path["values"]
    a, b = a.astype(np.int64), b.astype(np.int64)
    part = low_a * a + low_b * b + low_start
    value = (high_a * a + high_b * b + high_start + (part >> 16)) >> path["shift"]
    return np.clip(value, r.low, r.high).astype(np.int8)


class BinaryOp(BroadcastOp):
    accepts_clamp = True

    def __init__(self, symbol: str, numpy_op, dtypes: tuple[str, ...]):
        self.symbol, self.numpy_op, self.dtypes = symbol, numpy_op, dtypes
        self.int8 = symbol in "+-*"

    def quantized(self, graph: Graph, node: Node) -> bool:
        return self.int8 and int8_quantized(graph.tensor(node.outputs[0]))

    def check_types(self, node: Node, graph: Graph) -> None:
        if not self.quantized(graph, node):
            super().check_types(node, graph)
            return
        for tensor in graph.input_tensors(node):
            if not int8_quantized(tensor):
                kind = "per-axis quantized" if tensor.quant is not None else tensor.dtype
                raise unsupported(node, f"int8 {node.op} of a {kind} input '{tensor.name}'",
                                  "int8 inputs with one scale and zero point each")

    def reference(self, node: Node, a, b):
        with np.errstate(over="ignore"):
            y = self.numpy_op(a, b).astype(a.dtype)
        return [apply_clamp(node, y)]

    def reference_s8(self, node: Node, graph: Graph, a, b):
        if self.symbol == "*":
            x0, x1 = graph.input_tensors(node)
            acc = ((a.astype(np.int64) - zero_point_of(x0))
                   * (b.astype(np.int64) - zero_point_of(x1)))
            return [self.multiply_stage(graph, node).apply(acc)]
        return [rescale(graph, node, 1 if self.symbol == "+" else -1).apply(a, b)]

    def multiply_stage(self, graph: Graph, node: Node):
        a, b = graph.input_tensors(node)
        out = graph.tensor(node.outputs[0])
        real = float(scale_of(a)) * float(scale_of(b)) / float(scale_of(out))
        return output_stage(graph, node, np.array([real]))

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        if not self.quantized(graph, node):
            operands = broadcast_operands(node, graph, names)
            notes = []
            if self.defines_division(graph, node):
                notes.append("integer division defined where C leaves it undefined: x / 0 is "
                             "0 and MIN / -1 is MIN (codegen/compiler/ops/binary.py says why)")
            return self.kernel(node, graph, operands,
                               self.expression(node, graph, operands.values), [], notes)
        operands = broadcast_operands(node, graph, names)
        a, b = graph.input_tensors(node)
        context = {"bounds": operands.bounds, "out_strides": operands.out_strides,
                   "symbol": self.symbol, "a_desc": describe_operand(a),
                   "b_desc": describe_operand(b), "a_value": operands.values[0],
                   "b_value": operands.values[1], "halves": None, "arrays": None,
                   **self.context_s8(graph, node, *operands.values)}
        # Both inputs and the output walked by one counter at stride 1 (no broadcasting):
        # four elements per step on a DSP core, read and widened a word at a time.
        if len(operands.bounds) == 1 and operands.out_strides == [1] and all(
                index == "i0" and value.endswith("[i0]")
                for index, value in zip(operands.indices, operands.values, strict=True)):
            context["arrays"] = [value.removesuffix("[i0]") for value in operands.values]
        return Kernel("kernels/binary_s8.c.j2", context, operands.weights)

    def describe(self, node: Node, graph: Graph) -> str:
        a, b = graph.input_tensors(node)
        return (f"{describe_operand(a)} {self.symbol} {describe_operand(b)} -> "
                f"{describe_operand(graph.tensor(node.outputs[0]))}"
                f"{describe_clamp(node.clamp)}")

    def context_s8(self, graph: Graph, node: Node, a_value: str, b_value: str) -> dict:
        """Template values of the int8 kernel: the integer constants and their story."""
        a, b = graph.input_tensors(node)
        out = graph.tensor(node.outputs[0])
        params = "; ".join(f"{n}: {describe_quant(t)}" for n, t in (("a", a), ("b", b),
                                                                    ("y", out)))
        if self.symbol == "*":
            stage = self.multiply_stage(graph, node)
            return {"multiply": True, "params": params, **stage.context(),
                    "a_centred": c_add(f"(int32_t){a_value}", -zero_point_of(a)),
                    "b_centred": c_add(f"(int32_t){b_value}", -zero_point_of(b))}
        r = rescale(graph, node, 1 if self.symbol == "+" else -1)
        return {"multiply": False, "params": params, "mult_a": r.mult_a, "mult_b": r.mult_b,
                "offset": c_literal(r.offset, "int64_t"), "shift": r.shift,
                "rounded": c_add(f"ariel_rounding_shift(acc, {r.shift})", r.zero_point),
                "low": r.low, "high": r.high, "high_word": high_word(r), "halves": halves(r)}

    def expression(self, node: Node, graph: Graph, values: list[str]) -> str:
        ctype = graph.tensor(node.outputs[0]).ctype
        a, b = values
        if ctype == "float":
            return f"{a} {self.symbol} {b}"
        if self.symbol != "/":
            return wrapping(ctype, f"{{}} {self.symbol} {{}}", a, b)
        # C's / truncates toward zero, as ONNX wants; the divisors C leaves undefined are
        # tested first where they can occur (see the module's docstring).
        quotient = f"({ctype})({a} / {b})"
        if not self.defines_division(graph, node):
            return quotient
        if _overflows(ctype):
            # x / -1 as the negation in unsigned arithmetic: MIN / -1 wraps to MIN
            quotient = f"{b} == -1 ? ({ctype})(0u - ({UNSIGNED_OF[ctype]}){a}) : {quotient}"
        return f"{b} == 0 ? 0 : {quotient}"

    def defines_division(self, graph: Graph, node: Node) -> bool:
        """True for an integer Div whose divisor can be 0, or -1 where MIN / -1 overflows
        (read at run time, or a constant holding one): its kernel tests the divisor."""
        ctype = graph.tensor(node.outputs[0]).ctype
        if self.symbol != "/" or ctype == "float":
            return False
        divisor = graph.tensor(node.inputs[1])
        if not divisor.is_const:
            return True
        return bool(np.any(divisor.data == 0)
                    or (_overflows(ctype) and np.any(divisor.data == -1)))

    def build_notes(self, node: Node, graph: Graph) -> list[str]:
        divisor = graph.tensor(node.inputs[1])
        if self.symbol != "/" or divisor.dtype == "float32" or (
                divisor.is_const and not np.any(divisor.data == 0)):
            return []
        where = "a constant holding zeros" if divisor.is_const else "read at run time"
        return [f"Div '{node.name}' ({divisor.dtype}): its divisor is {where}; the kernel "
                "gives 0 for x / 0, which ONNX leaves undefined and onnxruntime refuses (and "
                "the type's minimum for MIN / -1)"]


def _overflows(ctype: str) -> bool:
    """True for the signed types whose MIN / -1 overflows C's own division (int8_t and
    int16_t are divided as int, where it does not)."""
    return ctype in ("int32_t", "int64_t")

add_op("Add", BinaryOp("+", np.add, NUMERIC_TYPES))
add_op("Sub", BinaryOp("-", np.subtract, NUMERIC_TYPES))
add_op("Mul", BinaryOp("*", np.multiply, NUMERIC_TYPES))
def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Div: true division for floats, truncation toward zero for integers, with x / 0 = 0
    and MIN / -1 = MIN (the kernel's definitions; see the module's docstring)."""
    if np.issubdtype(a.dtype, np.floating):
        return np.divide(a, b)
    a, b = np.broadcast_arrays(a, b)
    zero = b == 0
    # Divide by 1 where the quotient is defined above, so nothing overflows or warns: MIN / -1
    # becomes MIN / 1 = MIN.
    safe = np.where(zero, 1, b)
    if np.issubdtype(a.dtype, np.signedinteger):
        safe = np.where((a == np.iinfo(a.dtype).min) & (b == -1), 1, safe)
    # Floor division, one above it where the quotient is negative and inexact.
    quotient = a // safe
    inexact = a - quotient * safe != 0
    quotient = quotient + (inexact & ((a < 0) != (safe < 0)))
    return np.where(zero, 0, quotient).astype(a.dtype)


add_op("Div", BinaryOp("/", _divide, NUMERIC_TYPES))
