"""ONNX Concat, any number of inputs of any numeric type, done as a copy in memory terms.

All inputs computed at run time share one memory order (the first one's; the layout pass
copies any other), and the output takes it too. In that order the axis splits memory into
outer steps, and within each step every input contributes one contiguous block, so the
kernel is an outer loop around one plain copy per input. Constant inputs are stored in the
same order at compile time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor, row_major
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    attr,
    normalize_axis,
    param_of,
    register,
    require_dtype,
    unsupported,
)


@dataclass(frozen=True)
class Piece:
    """One input's block within an outer step: the array it comes from, its size, and the
    C expressions of where it is read and written."""

    source: str
    block: int
    read: str
    write: str


@register("Concat")
class Concat(OpDef):
    attributes = frozenset({"axis"})
    # A copy: on int8, every input and the output share one scale and zero point (inputs
    # quantized differently stay float between Dequantize/QuantizeLinear kernels).
    int8 = True
    int8_same_scale = True

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        inputs = graph.input_tensors(node)
        first = inputs[0]
        require_dtype(node, first, NUMERIC_TYPES + ("bool",))
        axis = attr(node, "axis", 1)
        if not -first.rank <= axis < first.rank:
            raise unsupported(node, f"axis {axis} of rank-{first.rank} inputs",
                              f"axes from {-first.rank} to {first.rank - 1}")
        axis = normalize_axis(axis, first.rank)
        for tensor in inputs[1:]:
            if tensor.dtype != first.dtype:
                raise unsupported(node, f"mixed input types {first.dtype} and {tensor.dtype}",
                                  "inputs of one type")
            others = [d for i, d in enumerate(tensor.shape) if i != axis]
            if tensor.rank != first.rank or others != [
                    d for i, d in enumerate(first.shape) if i != axis]:
                raise unsupported(node, f"shapes {list(first.shape)} and {list(tensor.shape)} "
                                  f"on axis {axis}", "shapes equal except on the axis")

    def axis(self, node: Node, rank: int) -> int:
        return normalize_axis(attr(node, "axis", 1), rank)

    def infer(self, node: Node, inputs: list[Tensor | None]):
        first = inputs[0]
        axis = self.axis(node, first.rank)
        shape = list(first.shape)
        shape[axis] = sum(t.shape[axis] for t in inputs)
        return [(tuple(shape), first.dtype)]

    def reference(self, node: Node, *inputs):
        return [np.concatenate(inputs, axis=self.axis(node, inputs[0].ndim))]

    def layout(self, node: Node, graph: Graph):
        inputs = graph.input_tensors(node)
        dynamic = [t for t in inputs if not t.is_const]
        order = dynamic[0].memory_order if dynamic else row_major(inputs[0].rank)
        return [None if t.is_const else order for t in inputs], [order]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        out = graph.tensor(node.outputs[0])
        inputs = graph.input_tensors(node)
        order = out.memory_order
        axis = self.axis(node, out.rank)
        position = order.index(axis)
        outer = math.prod(out.shape[a] for a in order[:position])
        after = math.prod(out.shape[a] for a in order[position + 1:])
        total = out.shape[axis] * after
        step = "i0" if outer > 1 else None  # the outer loop, left out when it runs once
        weights: dict[str, np.ndarray] = {}
        pieces, offset = [], 0
        for index, tensor in enumerate(inputs):
            block = tensor.shape[axis] * after
            if tensor.is_const:
                key = f"part{index}"
                weights[key] = np.ascontiguousarray(tensor.data.transpose(order)).reshape(-1)
                source = names.weight(key)
            else:
                source = param_of(node, graph, tensor.name)
            pieces.append(Piece(source, block, _offset(step, block, 0),
                                _offset(step, total, offset)))
            offset += block
        context = {
            "loops": [outer] if step else [], "pieces": pieces, "ctype": out.ctype,
            "axis": axis, "order": list(order), "output": list(out.shape),
            "inputs": " + ".join(str(list(t.shape)) for t in inputs),
            "outer": outer,
        }
        return Kernel("kernels/concat.c.j2", context, weights)


def _offset(step: str | None, stride: int, start: int) -> str:
    """The C index `step * stride + start + j` of element j of a block."""
    terms = [f"{step} * {stride}"] if step else []
    terms += [str(start)] if start else []
    return " + ".join([*terms, "j"])
