"""Binary elementwise operators (Add, Sub, Mul, Div) with numpy broadcasting. The output
keeps the memory order of its full-size input; each operand is read through its own strides,
so a per-channel bias or a scalar costs no copy.

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

from codegen.compiler.c import c_index, c_literal
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    add_op,
    apply_clamp,
    clamp_statements,
    describe_clamp,
    param_of,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.quantize import c_add, describe_quant, int8_quantized
from codegen.compiler.ops.strided import collapse, operand_strides, output_loops
from codegen.compiler.quant.fixedpoint import quantize_multiplier, rounding_shift
from codegen.compiler.quant.output_stage import clamp_range, output_stage, scale_of, zero_point_of

# Integer arithmetic is done on the unsigned type of the same width, where C defines
# wrap-around as numpy does (signed overflow would be undefined behaviour in C).
UNSIGNED_OF = {"int8_t": "uint32_t", "uint8_t": "uint32_t", "int16_t": "uint32_t",
               "uint16_t": "uint32_t", "int32_t": "uint32_t", "uint32_t": "uint32_t",
               "int64_t": "uint64_t", "uint64_t": "uint64_t"}


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
    m_a, m_b = _align(m_a, shift_a - shift), sign * _align(m_b, shift_b - shift)
    offset = -(m_a * zero_point_of(a) + m_b * zero_point_of(b))
    low, high = clamp_range(out.quant, node.clamp)
    return Rescale(m_a, m_b, offset, shift, zero_point_of(out), low, high)


def _align(multiplier: int, extra_shift: int) -> int:
    """`multiplier` * 2**-extra_shift, rounded by the shared rule (the same multiplier at a
    smaller shift)."""
    if extra_shift == 0:
        return multiplier
    return (multiplier + (1 << (extra_shift - 1))) >> extra_shift


class BinaryOp(OpDef):
    accepts_clamp = True

    def __init__(self, symbol: str, numpy_op, dtypes: tuple[str, ...]):
        self.symbol, self.numpy_op, self.dtypes = symbol, numpy_op, dtypes
        self.int8 = symbol in "+-*"

    def quantized(self, graph: Graph, node: Node) -> bool:
        return self.int8 and int8_quantized(graph.tensor(node.outputs[0]))

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        a, b = graph.input_tensors(node)
        if self.quantized(graph, node):
            for tensor in (a, b):
                if not int8_quantized(tensor):
                    kind = "per-axis quantized" if tensor.quant is not None else tensor.dtype
                    raise unsupported(node, f"int8 {node.op} of a {kind} input "
                                      f"'{tensor.name}'",
                                      "int8 inputs with one scale and zero point each")
            return
        require_dtype(node, a, self.dtypes)
        if a.dtype != b.dtype:
            raise unsupported(node, f"mixed input types {a.dtype} and {b.dtype}",
                              "inputs of one type")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        a, b = inputs
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise unsupported(node, f"shapes {list(a.shape)} and {list(b.shape)}",
                              "shapes that broadcast as numpy does") from None
        return [(shape, a.dtype)]

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

    def layout(self, node: Node, graph: Graph):
        out = graph.tensor(node.outputs[0])
        full = [t for t in graph.input_tensors(node) if not t.is_const and t.shape == out.shape]
        order = full[0].memory_order if full else tuple(range(out.rank))
        return [None, None], [order]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        out = graph.tensor(node.outputs[0])
        bounds = output_loops(out)
        operands = graph.input_tensors(node)
        strides = [operand_strides(t, out) for t in operands]
        contiguous = operand_strides(out, out)
        bounds, (sa, sb, so) = collapse(bounds, [*strides, contiguous])
        weights, values = {}, []
        for key, tensor, stride in (("a", operands[0], sa), ("b", operands[1], sb)):
            if tensor.is_const and tensor.size == 1:
                values.append(c_literal(tensor.data.reshape(-1)[0], out.ctype))
            elif tensor.is_const:
                weights[key] = np.ascontiguousarray(tensor.data)
                values.append(f"{names.weight(key)}[{_index(stride)}]")
            else:
                values.append(f"{param_of(node, graph, tensor.name)}[{_index(stride)}]")
        context = {"bounds": bounds, "out_strides": so, "ctype": out.ctype,
                   "symbol": self.symbol, "a_desc": _describe(operands[0]),
                   "b_desc": _describe(operands[1]), "a_value": values[0],
                   "b_value": values[1]}
        if self.quantized(graph, node):
            context.update(self.context_s8(graph, node, *values))
            return Kernel("kernels/binary_s8.c.j2", context, weights)
        context.update(expr=self.expression(out.ctype, *values, divisor=operands[1]),
                       defined_division=self.symbol == "/" and out.ctype != "float"
                       and _checks_divisor(out.ctype, operands[1]),
                       out_desc=_describe(out) + describe_clamp(node.clamp),
                       clamp=clamp_statements("v", node.clamp, out.ctype))
        return Kernel("kernels/binary.c.j2", context, weights)

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
                "low": r.low, "high": r.high}

    def expression(self, ctype: str, a: str, b: str, divisor: Tensor | None = None) -> str:
        if ctype == "float":
            return f"{a} {self.symbol} {b}"
        wide = UNSIGNED_OF[ctype]
        if self.symbol != "/":
            return f"({ctype})(({wide}){a} {self.symbol} ({wide}){b})"
        # C's / truncates toward zero, as ONNX wants; the divisors C leaves undefined are
        # tested first where they can occur (see the module's docstring).
        quotient = f"({ctype})({a} / {b})"
        if not _checks_divisor(ctype, divisor):
            return quotient
        if _overflows(ctype):
            # x / -1 as the negation in unsigned arithmetic: MIN / -1 wraps to MIN
            quotient = f"{b} == -1 ? ({ctype})(0u - ({wide}){a}) : {quotient}"
        return f"{b} == 0 ? 0 : {quotient}"

    def notes(self, node: Node, graph: Graph) -> list[str]:
        divisor = graph.tensor(node.inputs[1])
        if self.symbol != "/" or divisor.dtype == "float32" or (
                divisor.is_const and not np.any(divisor.data == 0)):
            return []
        where = "a constant holding zeros" if divisor.is_const else "read at run time"
        return [f"Div '{node.name}' ({divisor.dtype}): its divisor is {where}; the kernel "
                "gives 0 for x / 0, which ONNX leaves undefined and onnxruntime refuses (and "
                "the type's minimum for MIN / -1)"]


def _checks_divisor(ctype: str, divisor: Tensor | None) -> bool:
    """True when an integer division's divisor can be 0, or -1 where MIN / -1 overflows:
    read at run time, or a constant holding one."""
    if divisor is None or not divisor.is_const:
        return True
    return bool(np.any(divisor.data == 0) or (_overflows(ctype) and np.any(divisor.data == -1)))


def _overflows(ctype: str) -> bool:
    """True for the signed types whose MIN / -1 overflows C's own division (int8_t and
    int16_t are divided as int, where it does not)."""
    return ctype in ("int32_t", "int64_t")


def _index(strides: list[int]) -> str:
    return c_index(strides)


def _describe(tensor: Tensor) -> str:
    kind = "constant " if tensor.is_const else ""
    return f"{kind}{list(tensor.shape)}"


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
