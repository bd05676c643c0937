"""Operators that only relabel a tensor (Reshape, Flatten, Squeeze, Unsqueeze, Identity).
On row-major data their output is the input's bytes, so they become views and no code runs;
the layout pass copies the input to row-major first when it is not."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor, row_major
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    OpDef,
    attr,
    normalize_axis,
    register,
    unsupported,
)


class ViewOp(OpDef):
    is_view = True
    # On int8 tensors the bytes are the values: input and output share scale and zero point.
    int8 = True
    int8_same_scale = True
    # Which inputs after the first carry the new shape (they must be compile-time constants).
    constant_inputs: tuple[int, ...] = ()

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        for index in self.constant_inputs:
            if len(node.inputs) > index and node.inputs[index]:
                if not graph.tensor(node.inputs[index]).is_const:
                    raise unsupported(node, f"input {index} computed at run time",
                                      "a constant (initializer or folded) shape or axes")
        if graph.tensor(node.inputs[0]).dtype not in NUMERIC_TYPES + ("bool",):
            raise unsupported(node, f"data type {graph.tensor(node.inputs[0]).dtype}",
                              ", ".join(NUMERIC_TYPES))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x = inputs[0]
        constants = [t.data if t is not None else None for t in inputs]
        return [(self.output_shape(node, x.shape, constants), x.dtype)]

    def reference(self, node: Node, *inputs):
        return [inputs[0].reshape(self.output_shape(node, inputs[0].shape, list(inputs)))]

    def output_shape(self, node: Node, shape: tuple[int, ...],
                     constants: list[np.ndarray | None]) -> tuple[int, ...]:
        """The output shape; `constants[i]` is input i's value (shape and axes inputs)."""
        raise NotImplementedError

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        out = graph.tensor(node.outputs[0])
        return [row_major(x.rank)] + [None] * (len(node.inputs) - 1), [row_major(out.rank)]


def _axes(node: Node, constants, rank: int) -> list[int] | None:
    """Squeeze/Unsqueeze axes: an attribute before opset 13, the second input since."""
    axes = attr(node, "axes", None)
    if len(constants) > 1 and constants[1] is not None:
        axes = [int(a) for a in constants[1].reshape(-1)]
    return None if axes is None else sorted(normalize_axis(a, rank) for a in axes)


@register("Reshape")
class Reshape(ViewOp):
    attributes = frozenset({"allowzero"})
    constant_inputs = (1,)

    def output_shape(self, node, shape, constants):
        target = [int(d) for d in constants[1].reshape(-1)]
        if not attr(node, "allowzero", 0):
            target = [shape[i] if d == 0 else d for i, d in enumerate(target)]
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = int(np.prod(shape)) // known if known else 0
        if int(np.prod(target)) != int(np.prod(shape)):
            raise unsupported(node, f"reshape of {list(shape)} to {target}",
                              "a shape with the same number of elements")
        return tuple(target)


@register("Flatten")
class Flatten(ViewOp):
    attributes = frozenset({"axis"})

    def output_shape(self, node, shape, constants):
        axis = normalize_axis(attr(node, "axis", 1), len(shape))
        return (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))


@register("Squeeze")
class Squeeze(ViewOp):
    attributes = frozenset({"axes"})
    constant_inputs = (1,)

    def output_shape(self, node, shape, constants):
        axes = _axes(node, constants, len(shape))
        if axes is None:
            return tuple(d for d in shape if d != 1)
        if any(shape[a] != 1 for a in axes):
            raise unsupported(node, f"squeezing axes {axes} of {list(shape)}", "axes of size 1")
        return tuple(d for i, d in enumerate(shape) if i not in axes)


@register("Unsqueeze")
class Unsqueeze(ViewOp):
    attributes = frozenset({"axes"})
    constant_inputs = (1,)

    def output_shape(self, node, shape, constants):
        rank = len(shape) + len(_axes(node, constants, 0) or [])
        axes = _axes(node, constants, rank)
        out, rest = [], iter(shape)
        for i in range(rank):
            out.append(1 if i in axes else next(rest))
        return tuple(out)


@register("Identity")
class Identity(ViewOp):
    def output_shape(self, node, shape, constants):
        return tuple(shape)

    def layout(self, node: Node, graph: Graph):
        return [None], [graph.tensor(node.inputs[0]).memory_order]
