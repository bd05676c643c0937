"""Binary elementwise operators (Add, Sub, Mul, Div) with numpy broadcasting. The output
keeps the memory order of its full-size input; each operand is read through its own strides,
so a per-channel bias or a scalar costs no copy."""

from __future__ import annotations

import numpy as np

from codegen.ir import Graph, Node, Tensor
from codegen.ops.base import (
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
from codegen.ops.strided import collapse, operand_strides, output_loops

# Integer arithmetic is done on the unsigned type of the same width, where C defines
# wrap-around as numpy does (signed overflow would be undefined behaviour in C).
UNSIGNED_OF = {"int8_t": "uint32_t", "uint8_t": "uint32_t", "int16_t": "uint32_t",
               "uint16_t": "uint32_t", "int32_t": "uint32_t", "uint32_t": "uint32_t",
               "int64_t": "uint64_t", "uint64_t": "uint64_t"}


class BinaryOp(OpDef):
    accepts_clamp = True

    def __init__(self, symbol: str, numpy_op, dtypes: tuple[str, ...]):
        self.symbol, self.numpy_op, self.dtypes = symbol, numpy_op, dtypes

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        a, b = graph.input_tensors(node)
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
                from codegen.emit import c_literal  # emit imports the registry
                values.append(c_literal(tensor.data.reshape(-1)[0], out.ctype))
            elif tensor.is_const:
                weights[key] = np.ascontiguousarray(tensor.data)
                values.append(f"{names.weight(key)}[{_index(stride)}]")
            else:
                values.append(f"{param_of(node, graph, tensor.name)}[{_index(stride)}]")
        context = {"bounds": bounds, "out_strides": so, "ctype": out.ctype,
                   "symbol": self.symbol, "expr": self.expression(out.ctype, *values),
                   "a_desc": _describe(operands[0]), "b_desc": _describe(operands[1]),
                   "out_desc": _describe(out) + describe_clamp(node.clamp),
                   "clamp": clamp_statements("v", node.clamp, out.ctype)}
        return Kernel("kernels/binary.c.j2", context, weights)

    def expression(self, ctype: str, a: str, b: str) -> str:
        if ctype == "float":
            return f"{a} {self.symbol} {b}"
        if self.symbol == "/":
            return f"({ctype})({a} / {b})"  # signed: truncates toward zero, as ONNX wants
        wide = UNSIGNED_OF[ctype]
        return f"({ctype})(({wide}){a} {self.symbol} ({wide}){b})"


def _index(strides: list[int]) -> str:
    from codegen.emit import c_index
    return c_index(strides)


def _describe(tensor: Tensor) -> str:
    kind = "constant " if tensor.is_const else ""
    return f"{kind}{list(tensor.shape)}"


add_op("Add", BinaryOp("+", np.add, NUMERIC_TYPES))
add_op("Sub", BinaryOp("-", np.subtract, NUMERIC_TYPES))
add_op("Mul", BinaryOp("*", np.multiply, NUMERIC_TYPES))
def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Div: true division for floats, truncation toward zero for integers."""
    if np.issubdtype(a.dtype, np.floating):
        return np.divide(a, b)
    quotient = np.abs(a.astype(np.int64)) // np.abs(b.astype(np.int64))
    return np.where((a < 0) != (b < 0), -quotient, quotient)


add_op("Div", BinaryOp("/", _divide, NUMERIC_TYPES))
