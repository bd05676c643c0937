"""Transpose, and the copy that changes a tensor's memory order (ariel.Relayout).

A Transpose is always a view: its output is given the memory order that makes it the same
bytes as its input. Only when a later kernel needs another order does the layout pass insert
an ariel.Relayout, the one operator that really moves data between orders."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    attr,
    register,
    require_dtype,
)
from codegen.compiler.ops.moves import box_loops, copy_move, move_kernel, whole


def _perm(node: Node, rank: int) -> list[int]:
    return list(attr(node, "perm", list(reversed(range(rank)))))


@register("Transpose")
class Transpose(OpDef):
    attributes = frozenset({"perm"})
    is_view = True
    # Moves int8 values unchanged: input and output share scale and zero point.
    int8 = True
    int8_same_scale = True

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        require_dtype(node, graph.tensor(node.inputs[0]), NUMERIC_TYPES + ("bool",))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x = inputs[0]
        return [(tuple(x.shape[p] for p in _perm(node, x.rank)), x.dtype)]

    def reference(self, node: Node, x):
        return [np.transpose(x, _perm(node, x.ndim))]

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        inverse = np.argsort(_perm(node, x.rank))
        # Memory dimension k holds input axis m[k], which is output axis inverse[m[k]].
        return [None], [tuple(int(inverse[a]) for a in x.memory_order)]


@register("ariel.Relayout")
class Relayout(OpDef):
    """Copy a tensor into the memory order in attribute `order` (logical value unchanged)."""

    attributes = frozenset({"order"})
    int8 = True
    int8_same_scale = True

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, inputs[0].dtype)]

    def reference(self, node: Node, x):
        return [x]

    def layout(self, node: Node, graph: Graph):
        return [None], [tuple(node.attrs["order"])]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        # A constant model output is copied out of its array in flash.
        weights = {"source": np.ascontiguousarray(x.data)} if x.is_const else {}
        source = names.weight("source") if x.is_const else "x0"
        loops = box_loops(y.memory_order, y.strides, whole(x))
        order = "row-major constant" if x.is_const else f"memory order {list(x.memory_order)}"
        return move_kernel(f"{y.ctype} {list(y.shape)} from {order} to "
                           f"{list(y.memory_order)}",
                           [copy_move(loops, "y0", source, "every element")], weights)
