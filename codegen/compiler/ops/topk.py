"""ONNX TopK with a constant k: the k largest (or smallest) values along one axis and their int64
indices, on row-major data of any numeric type (int8 quantized or not).

Each run of values along the axis is read once; the k best so far are kept in the output
itself, in order, by insertion (k comparisons and moves at worst per value, no scratch
memory): a value enters only if it beats the k-th, and moves ahead only past values it
strictly beats, so of equal values the one of lower index comes first, as ONNX asks. The
output is always sorted (with sorted = 0 ONNX leaves the order to the implementation).

int8: values are moved, not computed, so the values output keeps its input's scale and zero
point, and a positive scale keeps the order of the reals; the indices hold no real values."""

from __future__ import annotations

import math

import numpy as np

from codegen.compiler.c import c_index
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    attr,
    normalize_axis,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.quantize import int8_quantized
from codegen.compiler.quant.output_stage import scale_of


@register("TopK")
class TopK(OpDef):
    attributes = frozenset({"axis", "largest", "sorted", "k"})
    dtypes = NUMERIC_TYPES
    int8 = True
    int8_same_scale = True

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        if int8_quantized(x):
            if float(scale_of(x)) <= 0:
                raise unsupported(node, f"an int8 input of scale {float(scale_of(x)):g}",
                                  "int8 inputs of positive scale")
        else:
            require_dtype(node, x, self.dtypes)
        axis = attr(node, "axis", -1)
        if not -x.rank <= axis < x.rank:
            raise unsupported(node, f"axis {axis} of a rank-{x.rank} input",
                              f"axes from {-x.rank} to {x.rank - 1}")
        if len(node.inputs) > 1 and not graph.tensor(node.inputs[1]).is_const:
            raise unsupported(node, "k computed at run time", "a constant k")
        k, n = self.k(node, graph.input_tensors(node)), x.shape[normalize_axis(axis, x.rank)]
        if not 1 <= k <= n:
            raise unsupported(node, f"k {k} along an axis of {n}", f"k from 1 to {n}")

    def k(self, node: Node, inputs: list) -> int:
        """k: the constant second input (opset 10 on) or the attribute (opset 1)."""
        if len(inputs) > 1 and inputs[1] is not None:
            value = inputs[1].data if isinstance(inputs[1], Tensor) else inputs[1]
            return int(np.asarray(value).reshape(-1)[0])
        return int(attr(node, "k", 0))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x = inputs[0]
        axis = normalize_axis(attr(node, "axis", -1), x.rank)
        shape = tuple(self.k(node, inputs) if a == axis else n for a, n in enumerate(x.shape))
        return [(shape, x.dtype), (shape, "int64")]

    def reference(self, node: Node, x, k=None):
        axis = normalize_axis(attr(node, "axis", -1), x.ndim)
        count = self.k(node, [x, k])
        # A stable sort keeps equal values in index order. The largest first: the stable
        # ascending order of the reversed run, reversed, puts equal values in index order too
        # (and, unlike negated keys, holds for every integer type).
        if attr(node, "largest", 1):
            n = x.shape[axis]
            order = n - 1 - np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"),
                                    axis)
        else:
            order = np.argsort(x, axis=axis, kind="stable")
        indices = order.take(range(count), axis=axis)
        return [np.take_along_axis(x, indices, axis=axis), indices.astype(np.int64)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, values = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        axis = normalize_axis(attr(node, "axis", -1), x.rank)
        n, k = x.shape[axis], values.shape[axis]
        outer, inner = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1:])
        loops = [(size, x_stride, y_stride) for size, x_stride, y_stride in (
            (outer, n * inner, k * inner), (inner, 1, 1)) if size > 1]
        largest = bool(attr(node, "largest", 1))

        def at(index: str | int) -> str:
            """The offset of element `index` along the axis (a C expression)."""
            return str(index) if inner == 1 else f"({index}) * {inner}"

        context = {
            "ctype": x.ctype, "n": n, "k": k, "at": at,
            "loops": [size for size, _, _ in loops],
            "x_base": c_index([x_stride for _, x_stride, _ in loops]),
            "y_base": c_index([y_stride for _, _, y_stride in loops]),
            "beats": ">" if largest else "<",
            "heading": (f"the {k} {'largest' if largest else 'smallest'} of {n} "
                        f"{'int8 ' if int8_quantized(x) else ''}values along axis {axis} "
                        f"and their indices, in order, ties by the lower index"),
            "x_desc": f"{list(x.shape)} row-major",
            "y_desc": f"{list(values.shape)} row-major, values and int64 indices",
        }
        return Kernel("kernels/topk.c.j2", context)
