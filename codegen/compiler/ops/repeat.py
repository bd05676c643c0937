"""ONNX Expand and Tile: outputs that repeat their input's values, by broadcasting (Expand,
numpy's rules in both directions) or by tiling whole copies (Tile). Both are strided copies
(ops/moves.py) in the input's memory order: a broadcast axis is read with stride 0, and a
tiled axis is walked as two loops, the repeat (stride 0) around the axis itself. An output
with the input's shape is the input: a view."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.moves import (
    Parts,
    box_loops,
    copy_move,
    move_kernel,
    rescaled,
    rescales,
    table_for,
)
from codegen.compiler.ops.strided import operand_logical_strides


class RepeatOp(OpDef):
    """An operator whose output repeats input 0 as its constant input 1 says."""

    int8 = True
    int8_same_scale = True  # the values move unchanged...
    int8_rescales = True  # ...or through a table to an output quantized otherwise

    def reference_s8(self, node: Node, graph: Graph, x, *rest):
        return self.reference(node, rescaled(graph, node.inputs[0], node.outputs[0], x), *rest)

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x, argument = graph.input_tensors(node)
        require_dtype(node, x, NUMERIC_TYPES + ("bool",))
        if not argument.is_const:
            raise unsupported(node, "input 1 computed at run time",
                              "a constant (initializer or folded) shape or repeats")
        shape = self.output_shape(node, x.shape, argument.data)
        if 0 in shape:
            raise unsupported(node, f"an empty output {list(shape)}",
                              "outputs with at least one element")

    def output_shape(self, node: Node, shape: tuple[int, ...], argument: np.ndarray
                     ) -> tuple[int, ...]:
        raise NotImplementedError

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x, argument = inputs
        return [(self.output_shape(node, x.shape, argument.data), x.dtype)]

    def view_offsets(self, node: Node, graph: Graph) -> list[int] | None:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        return [0] if x.shape == y.shape and not rescales(node, graph) else None

    def parts(self, x: Tensor, y: Tensor) -> list[Parts]:
        raise NotImplementedError

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        weights: dict[str, np.ndarray] = {}
        table = table_for(graph, names, weights, x.name, y.name)
        loops = box_loops(y.memory_order, y.strides, self.parts(x, y))
        return move_kernel(f"{y.ctype} {list(x.shape)} -> {list(y.shape)}, memory order "
                           f"{list(y.memory_order)}",
                           [copy_move(loops, "y0", "x0", "every output element", table=table)],
                           weights)


@register("Expand")
class Expand(RepeatOp):
    def output_shape(self, node, shape, argument):
        target = tuple(int(d) for d in np.asarray(argument).reshape(-1))
        try:
            return tuple(np.broadcast_shapes(shape, target))
        except ValueError:
            raise unsupported(node, f"expanding {list(shape)} to {list(target)}",
                              "shapes that broadcast as numpy does") from None

    def reference(self, node: Node, x, shape):
        return [np.broadcast_to(x, self.output_shape(node, x.shape, shape)).copy()]

    def layout(self, node: Node, graph: Graph):
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        new = y.rank - x.rank  # leading axes the broadcast adds: outermost in memory
        return [None, None], [(*range(new), *(a + new for a in x.memory_order))]

    def parts(self, x, y):
        new = y.rank - x.rank
        strides = operand_logical_strides(x)
        return [[(size, 0 if a < new or x.shape[a - new] == 1 else strides[a - new])]
                for a, size in enumerate(y.shape)]


@register("Tile")
class Tile(RepeatOp):
    def output_shape(self, node, shape, argument):
        repeats = [int(r) for r in np.asarray(argument).reshape(-1)]
        if len(repeats) != len(shape) or min(repeats, default=1) < 0:
            raise unsupported(node, f"repeats {repeats} for a rank-{len(shape)} input",
                              "one non-negative repeat per axis")
        return tuple(n * r for n, r in zip(shape, repeats, strict=True))

    def reference(self, node: Node, x, repeats):
        return [np.tile(x, [int(r) for r in repeats.reshape(-1)])]

    def layout(self, node: Node, graph: Graph):
        return [None, None], [graph.tensor(node.inputs[0]).memory_order]

    def parts(self, x, y):
        strides = operand_logical_strides(x)
        parts = []
        for n, total, stride in zip(x.shape, y.shape, strides, strict=True):
            parts.append([(total // n, 0), (n, stride)] if total > n else [(n, stride)])
        return parts
