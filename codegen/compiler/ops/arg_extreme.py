"""ONNX ArgMax and ArgMin: the int64 index of the largest (smallest) value along one axis, on
tensors of any numeric type (int8 quantized or not) in any memory order (the output element
outermost, the axis as the inner loop, as reduce.py walks a reduction).

On an int8 tensor quantized with a positive scale, real = scale * (q - zero_point) grows with
q, so the index of the largest q is that of the largest real: the kernel compares the int8
values as they are, with no arithmetic, and ties (equal q, hence equal reals) resolve as in
float. The QDQ lowering hands the node the int8 tensor in place of its DequantizeLinear.

Ties go to the first index, or the last with select_last_index = 1, as ONNX says. A NaN never
replaces the running extreme (numpy's argmax would return it)."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    add_op,
    attr,
    normalize_axis,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.quantize import int8_quantized
from codegen.compiler.ops.reduce import inner_loops, layout_name, reduced_order, reduced_shape
from codegen.compiler.quant.output_stage import scale_of


class ArgExtreme(OpDef):
    """ArgMax (`largest`) or ArgMin."""

    attributes = frozenset({"axis", "keepdims", "select_last_index"})
    dtypes = NUMERIC_TYPES
    # Reads int8 values where its input is quantized; its int64 output holds no real values.
    int8 = True

    def __init__(self, largest: bool):
        self.largest = largest

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        if int8_quantized(x):
            if float(scale_of(x)) <= 0:
                raise unsupported(node, f"an int8 input of scale {float(scale_of(x)):g}",
                                  "int8 inputs of positive scale")
        else:
            require_dtype(node, x, self.dtypes)
        axis = attr(node, "axis", 0)
        if not -x.rank <= axis < x.rank:
            raise unsupported(node, f"axis {axis} of a rank-{x.rank} input",
                              f"axes from {-x.rank} to {x.rank - 1}")

    def _axes(self, node: Node, rank: int) -> tuple[tuple[int, ...], bool]:
        return (normalize_axis(attr(node, "axis", 0), rank),), bool(attr(node, "keepdims", 1))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x = inputs[0]
        axes, keepdims = self._axes(node, x.rank)
        return [(reduced_shape(x.shape, axes, keepdims), "int64")]

    def reference(self, node: Node, x):
        (axis,), keepdims = self._axes(node, x.ndim)
        pick = np.argmax if self.largest else np.argmin
        if attr(node, "select_last_index", 0):
            flipped = np.flip(x, axis)
            index = x.shape[axis] - 1 - pick(flipped, axis=axis)
        else:
            index = pick(x, axis=axis)
        if keepdims:
            index = np.expand_dims(index, axis)
        return [np.asarray(index, np.int64)]

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        axes, keepdims = self._axes(node, x.rank)
        return [None], [reduced_order(x, axes, keepdims)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        axes, _ = self._axes(node, x.rank)
        loops = inner_loops(x, y, axes)
        last = bool(attr(node, "select_last_index", 0))
        relation = (">" if self.largest else "<") + ("=" if last else "")
        values = "int8 values (the order of their reals)" if int8_quantized(x) else "values"
        context = {
            "ctype": x.ctype, "bounds": loops.bounds,
            "x_first": loops.x_first, "x_index": loops.x_index, "y_index": loops.y_index,
            "count": x.shape[axes[0]], "relation": relation,
            "heading": (f"index of the {'largest' if self.largest else 'smallest'} of "
                        f"{x.shape[axes[0]]} {values} along axis {axes[0]}, ties to the "
                        f"{'last' if last else 'first'}"),
            "x_desc": f"{list(x.shape)} {layout_name(x)}",
            "y_desc": f"{list(y.shape)} {layout_name(y)}, int64",
        }
        return Kernel("kernels/arg_extreme.c.j2", context)


add_op("ArgMax", ArgExtreme(largest=True))
add_op("ArgMin", ArgExtreme(largest=False))
