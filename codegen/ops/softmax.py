"""ONNX Softmax, float32, on row-major data. Before opset 13 the input is seen as a matrix
split at `axis` (default 1) and each row, all trailing axes together, is normalised; from
opset 13 only the one axis (default -1) is. Both are: for each outer index and each inner
index, a run of `length` elements `inner` apart. The maximum is subtracted before expf so
that large inputs cannot overflow."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codegen.ir import Graph, Node, Tensor
from codegen.ops.base import (
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


@register("Softmax")
class Softmax(OpDef):
    attributes = frozenset({"axis"})

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
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

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        from codegen.emit import c_index  # emit imports the registry; import late
        x = graph.tensor(node.inputs[0])
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
        return Kernel("kernels/softmax_f32.c.j2", context)
