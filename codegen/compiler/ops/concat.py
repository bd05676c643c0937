"""ONNX Concat, any number of inputs of any numeric type, done as a copy in memory terms.

All inputs computed at run time share one memory order (the first one's; the layout pass
copies any other), and the output takes it too. Each input is one move (ops/moves.py) into
its block of the output: in that order the axis splits memory into outer steps, and within
each step every input fills one contiguous run. Constant inputs are stored in the same order
at compile time.

int8: inputs quantized like the output are copied unchanged. ONNX Runtime's quantizer gives
each input of a Concat its own scale (a branch's output, a skip connection): such an input
is mapped to the output's scale and zero point through a 256-entry table as it is copied,
y[q] = quantize(dequantize(q)), which is what ONNX Runtime computes."""

from __future__ import annotations

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
from codegen.compiler.ops.moves import (
    box_loops,
    copy_move,
    move_kernel,
    rescaled,
    table_for,
    whole,
)


@register("Concat")
class Concat(OpDef):
    attributes = frozenset({"axis"})
    int8 = True
    int8_same_scale = True
    int8_rescales = True

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

    def reference_s8(self, node: Node, graph: Graph, *inputs):
        return self.reference(node, *[rescaled(graph, name, node.outputs[0], values)
                                      for name, values in zip(node.inputs, inputs, strict=True)])

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        out = graph.tensor(node.outputs[0])
        order = out.memory_order
        axis = self.axis(node, out.rank)
        weights: dict[str, np.ndarray] = {}
        moves, offset = [], 0
        for index, tensor in enumerate(graph.input_tensors(node)):
            if tensor.is_const:
                key = f"part{index}"
                weights[key] = np.ascontiguousarray(tensor.data)
                source = names.weight(key)
            else:
                source = param_of(node, graph, tensor.name)
            table = table_for(graph, names, weights, tensor.name, out.name, f"table{index}")
            loops = box_loops(order, out.strides, whole(tensor))
            note = ", mapped to the output's scale" if table is not None else ""
            moves.append(copy_move(loops, "y0", source,
                                   f"input {index} {list(tensor.shape)}{note}",
                                   write_base=offset * out.strides[axis], table=table))
            offset += tensor.shape[axis]
        inputs = " + ".join(str(list(t.shape)) for t in graph.input_tensors(node))
        return move_kernel(f"{inputs} on axis {axis} -> {list(out.shape)}, {out.ctype}, "
                           f"memory order {list(order)}", moves, weights)
