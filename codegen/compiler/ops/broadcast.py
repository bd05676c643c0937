"""Elementwise operators over several inputs broadcast as numpy does (Add, Max, Equal, Where,
PRelu, ...): what they share. Python works out one loop nest over the output and each
input's strides in it, so a per-channel constant or a scalar is read in place and never
copied; the operator gives the C expression of one output element. The output keeps the
memory order of its full-size run-time input, so an elementwise operator after a
channels-last Conv costs no copy. All of them render kernels/broadcast.c.j2. For int8
kernels that select among inputs of other scales (Where, PRelu), an input is brought to the
output's scale and zero point through a 256-entry table (or at compile time, if constant)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codegen.compiler.c import c_index, c_literal
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    clamp_statements,
    describe_clamp,
    param_of,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.elementwise import rescale_table
from codegen.compiler.ops.strided import collapse, operand_strides, output_loops

# Integer arithmetic is done on the unsigned type of the same width, where C defines
# wrap-around as numpy does (signed overflow would be undefined behaviour in C).
UNSIGNED_OF = {"int8_t": "uint32_t", "uint8_t": "uint32_t", "int16_t": "uint32_t",
               "uint16_t": "uint32_t", "int32_t": "uint32_t", "uint32_t": "uint32_t",
               "int64_t": "uint64_t", "uint64_t": "uint64_t"}


@dataclass
class Operands:
    """One broadcast loop nest: the loop bounds, the output's strides in them, and for each
    input its index expression in the loop counters and its value as C (a literal for a
    scalar constant, else the constant array or kernel parameter at that index), with the
    constant arrays the values read (by key, as in Names.weight)."""

    bounds: list[int]
    out_strides: list[int]
    indices: list[str]
    values: list[str]
    weights: dict[str, np.ndarray]


def operand_key(position: int) -> str:
    """The weight key of the constant at input `position`: a, b, c, ..."""
    return chr(ord("a") + position) if position < 26 else f"in{position}"


def broadcast_operands(node: Node, graph: Graph, names: Names) -> Operands:
    out = graph.tensor(node.outputs[0])
    operands = graph.input_tensors(node)
    strides = [operand_strides(t, out) for t in operands]
    bounds, (*strides, out_strides) = collapse(output_loops(out),
                                               [*strides, operand_strides(out, out)])
    indices, values, weights = [], [], {}
    for position, (tensor, stride) in enumerate(zip(operands, strides, strict=True)):
        index = c_index(stride)
        indices.append(index)
        if tensor.is_const and tensor.size == 1:
            values.append(c_literal(tensor.data.reshape(-1)[0], tensor.ctype))
        elif tensor.is_const:
            key = operand_key(position)
            weights[key] = np.ascontiguousarray(tensor.data)
            values.append(f"{names.weight(key)}[{index}]")
        else:
            values.append(f"{param_of(node, graph, tensor.name)}[{index}]")
    return Operands(bounds, out_strides, indices, values, weights)


def broadcast_shape(node: Node, inputs: list[Tensor | None]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*(t.shape for t in inputs)))
    except ValueError:
        shapes = " and ".join(str(list(t.shape)) for t in inputs)
        raise unsupported(node, f"shapes {shapes}",
                          "shapes that broadcast as numpy does") from None


def require_one_type(node: Node, tensors: list[Tensor], dtypes: tuple[str, ...]) -> None:
    """`tensors` all of one type, one of `dtypes`."""
    for tensor in tensors:
        require_dtype(node, tensor, dtypes)
    kinds = sorted({t.dtype for t in tensors})
    if len(kinds) > 1:
        raise unsupported(node, f"mixed input types {' and '.join(kinds)}", "inputs of one type")


def describe_operand(tensor: Tensor) -> str:
    kind = "constant " if tensor.is_const else ""
    return f"{kind}{list(tensor.shape)}"


class BroadcastOp(OpDef):
    """An elementwise operator of broadcast inputs. Subclasses give `expression` (and
    `statements` after it, if one expression is not enough) and the numpy reference."""

    # Element types the inputs may have; all inputs share one type unless check says else.
    dtypes: ClassVar[tuple[str, ...]] = NUMERIC_TYPES

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        self.check_types(node, graph)

    def check_types(self, node: Node, graph: Graph) -> None:
        """Every input of a type in `dtypes`, all of one type."""
        require_one_type(node, graph.input_tensors(node), self.dtypes)

    def output_dtype(self, inputs: list[Tensor]) -> str:
        return inputs[0].dtype

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(broadcast_shape(node, inputs), self.output_dtype(inputs))]

    def layout(self, node: Node, graph: Graph):
        out = graph.tensor(node.outputs[0])
        full = [t for t in graph.input_tensors(node) if not t.is_const and t.shape == out.shape]
        order = full[0].memory_order if full else tuple(range(out.rank))
        return [None] * len(node.inputs), [order]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        operands = broadcast_operands(node, graph, names)
        return self.kernel(node, graph, operands,
                           self.expression(node, graph, operands.values),
                           self.statements(node, graph, operands.values))

    def kernel(self, node: Node, graph: Graph, operands: Operands, expression: str,
               statements: list[str], notes: list[str] = (),
               weights: dict[str, np.ndarray] | None = None) -> Kernel:
        """The broadcast.c.j2 kernel computing `v = expression; statements...` per element
        (then a fused clamp, if any)."""
        out = graph.tensor(node.outputs[0])
        context = {"bounds": operands.bounds, "out_strides": operands.out_strides,
                   "ctype": out.ctype, "expr": expression,
                   "statements": [*statements, *clamp_statements("v", node.clamp, out.ctype)],
                   "description": self.describe(node, graph), "notes": list(notes)}
        return Kernel("kernels/broadcast.c.j2", context, {**operands.weights, **(weights or {})})

    def describe(self, node: Node, graph: Graph) -> str:
        """The kernel's comment: its inputs' and output's shapes."""
        out = graph.tensor(node.outputs[0])
        inputs = ", ".join(describe_operand(t) for t in graph.input_tensors(node))
        return (f"{inputs} -> {out.dtype} {describe_operand(out)}"
                f"{describe_clamp(node.clamp)}")

    def expression(self, node: Node, graph: Graph, values: list[str]) -> str:
        """C for one output element, from the inputs' values at it."""
        raise NotImplementedError(f"{self.op_type}.expression")

    def statements(self, node: Node, graph: Graph, values: list[str]) -> list[str]:
        """C statements that finish `v` after `v = expression` (none by default)."""
        return []


def wrapping(ctype: str, expression: str, *values: str) -> str:
    """`expression` (a format string of the values) on the unsigned type of `ctype`'s
    width, cast back: integer arithmetic that wraps as numpy's does, where the signed
    operation could overflow (undefined in C)."""
    wide = UNSIGNED_OF[ctype]
    return f"({ctype})({expression.format(*(f'({wide}){v}' for v in values))})"


# -- int8: a value moved from its tensor's scale and zero point to the output's ------------

def rescale_operand(operands: Operands, position: int, tensor: Tensor, target: Tensor,
                    names: Names) -> None:
    """Make input `position`'s value in `operands` read at `target`'s parameters: a
    constant is rescaled at compile time (a literal, or an array in place of the
    original), a run-time value through a 256-entry table (weight "<key>_table")."""
    table = rescale_table(tensor, target)
    if table is None:
        return
    key = operand_key(position)
    if tensor.is_const and tensor.size == 1:
        operands.values[position] = str(int(table[int(tensor.data.reshape(-1)[0]) + 128]))
    elif tensor.is_const:
        operands.weights[key] = table[tensor.data.astype(np.int64) + 128]
    else:
        operands.weights[f"{key}_table"] = table
        operands.values[position] = (f"{names.weight(key + '_table')}"
                                     f"[{operands.values[position]} + 128]")
