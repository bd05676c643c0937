"""ONNX Slice and Split: outputs that are parts of their input, each a box of it taken with a
first index, a step and a count per axis (all known at compile time).

An output that is one contiguous run of the input's memory (a part along the outermost axis
in memory that is not 1, the inner axes whole) is a view at an offset into the input: no
code runs. Any other part is a strided copy (ops/moves.py) in the input's memory order, so
a channels-last tensor is never re-laid first; negative steps read backwards."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
from codegen.compiler.ops.moves import (
    box_loops,
    copy_move,
    move_kernel,
    rescaled,
    rescales,
    table_for,
)
from codegen.compiler.ops.strided import operand_logical_strides

EMPTY = "outputs with at least one element"
CONSTANT = "constant (initializer or folded) values"


@dataclass(frozen=True)
class Part:
    """A box of a tensor: per axis the first index, the step and the number taken."""

    starts: tuple[int, ...]
    steps: tuple[int, ...]
    counts: tuple[int, ...]

    def take(self, x: np.ndarray) -> np.ndarray:
        """The part of `x` (numpy reference)."""
        index = [start + step * np.arange(count) for start, step, count in
                 zip(self.starts, self.steps, self.counts, strict=True)]
        return x[np.ix_(*index)] if index else x.copy()

    def offset(self, strides: tuple[int, ...]) -> int:
        """Where the part's first element lies, for a tensor with these element strides."""
        return sum(start * stride for start, stride in zip(self.starts, strides, strict=True))

    def run_offset(self, x: Tensor) -> int | None:
        """The part's offset in `x`'s memory when it is one contiguous run there, else None:
        in memory order, the inner axes whole, one axis taken forwards by any amount and
        the outer axes one index each."""
        order = list(x.memory_order)
        while order and self._whole(x, order[-1]):
            order.pop()
        if order:
            axis = order.pop()
            if self.counts[axis] > 1 and self.steps[axis] != 1:
                return None
        if any(self.counts[axis] != 1 for axis in order):
            return None
        return self.offset(x.strides)

    def _whole(self, x: Tensor, axis: int) -> bool:
        return x.shape[axis] == 1 or (self.starts[axis] == 0 and self.steps[axis] == 1
                                      and self.counts[axis] == x.shape[axis])

    def describe(self) -> str:
        """The part in Python's slice notation."""
        axes = []
        for start, step, count in zip(self.starts, self.steps, self.counts, strict=True):
            stop = start + step * count
            text = f"{start}:{stop if stop >= 0 else ''}"
            axes.append(text if step == 1 else f"{text}:{step}")
        return ", ".join(axes)


class PartsOp(OpDef):
    """An operator whose outputs are parts of input 0 (Slice, Split)."""

    int8 = True
    int8_same_scale = True  # the values move unchanged...
    int8_rescales = True  # ...or through a table to an output quantized otherwise
    constant_inputs: tuple[int, ...] = ()

    def parts(self, node: Node, shape: tuple[int, ...], constants: list[np.ndarray | None]
              ) -> list[Part]:
        """The part each output takes; `constants[i]` is input i's value."""
        raise NotImplementedError

    def node_parts(self, node: Node, graph: Graph) -> list[Part]:
        inputs = graph.input_tensors(node)
        return self.parts(node, inputs[0].shape,
                          [t.data if t is not None else None for t in inputs])

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        inputs = graph.input_tensors(node)
        require_dtype(node, inputs[0], NUMERIC_TYPES + ("bool",))
        for index in self.constant_inputs:
            if index < len(inputs) and inputs[index] is not None and not inputs[index].is_const:
                raise unsupported(node, f"input {index} computed at run time", CONSTANT)
        for part in self.node_parts(node, graph):
            if 0 in part.counts:
                raise unsupported(node, f"an empty output (counts {list(part.counts)})", EMPTY)

    def infer(self, node: Node, inputs: list[Tensor | None]):
        constants = [t.data if t is not None else None for t in inputs]
        return [(part.counts, inputs[0].dtype)
                for part in self.parts(node, inputs[0].shape, constants)]

    def reference(self, node: Node, x, *rest):
        return [part.take(x) for part in self.parts(node, x.shape, [x, *rest])]

    def reference_s8(self, node: Node, graph: Graph, x, *rest):
        return [rescaled(graph, node.inputs[0], name, values)
                for name, values in zip(node.outputs, self.reference(node, x, *rest),
                                        strict=True)]

    def layout(self, node: Node, graph: Graph):
        order = graph.tensor(node.inputs[0]).memory_order
        return [None] * len(node.inputs), [order] * len(node.outputs)

    def view_offsets(self, node: Node, graph: Graph) -> list[int] | None:
        x = graph.tensor(node.inputs[0])
        if rescales(node, graph):
            return None
        offsets = [part.run_offset(x) for part in self.node_parts(node, graph)]
        return None if None in offsets else offsets

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x = graph.tensor(node.inputs[0])
        strides = operand_logical_strides(x)
        moves, weights = [], {}
        for index, part in enumerate(self.node_parts(node, graph)):
            y = graph.tensor(node.outputs[index])
            parts = [[(count, step * stride)] for count, step, stride in
                     zip(part.counts, part.steps, strides, strict=True)]
            table = table_for(graph, names, weights, x.name, y.name, f"table{index}")
            note = ", mapped to its scale" if table else ""
            moves.append(copy_move(box_loops(y.memory_order, y.strides, parts), f"y{index}",
                                   "x0", f"y{index} = x[{part.describe()}]{note}",
                                   read_base=part.offset(strides), table=table))
        return move_kernel(f"{x.ctype} {list(x.shape)} in memory order "
                           f"{list(x.memory_order)}, {len(moves)} part(s)", moves, weights)


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def slice_bounds(dim: int, start: int, end: int, step: int) -> tuple[int, int]:
    """(first index, count) of ONNX Slice along one axis of size `dim`: negative starts
    and ends count from the end, then both are clamped (to [0, dim] going forwards,
    [-1, dim - 1] going backwards, where -1 stands for "before the first")."""
    start, end = (v + dim if v < 0 else v for v in (start, end))
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        return start, max(0, -(-(end - start) // step))
    start, end = min(max(start, -1), dim - 1), min(max(end, -1), dim - 1)
    return start, max(0, -(-(start - end) // -step))


@register("Slice")
class Slice(PartsOp):
    attributes = frozenset({"starts", "ends", "axes"})  # attributes before opset 10
    constant_inputs = (1, 2, 3, 4)

    def _arguments(self, node: Node, constants) -> tuple[list[int], ...]:
        if len(constants) < 2:  # opset 1-9: attributes, no steps
            starts, ends = _ints(attr(node, "starts", [])), _ints(attr(node, "ends", []))
            axes = attr(node, "axes", None)
            steps = [1] * len(starts)
        else:
            starts, ends = _ints(constants[1]), _ints(constants[2])
            axes = constants[3] if len(constants) > 3 else None
            steps = (_ints(constants[4]) if len(constants) > 4 and constants[4] is not None
                     else [1] * len(starts))
        axes = list(range(len(starts))) if axes is None else _ints(axes)
        return starts, ends, axes, steps

    def parts(self, node, shape, constants):
        starts, ends, axes, steps = self._arguments(node, constants)
        first, step, count = [0] * len(shape), [1] * len(shape), list(shape)
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise unsupported(node, "starts, ends, axes and steps of different lengths",
                              "one value per sliced axis in each")
        for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
            if not -len(shape) <= a < len(shape):
                raise unsupported(node, f"axis {a} of a rank-{len(shape)} input",
                                  f"axes from {-len(shape)} to {len(shape) - 1}")
            if st == 0:
                raise unsupported(node, "a step of 0", "non-zero steps")
            a = normalize_axis(a, len(shape))
            step[a] = st
            first[a], count[a] = slice_bounds(shape[a], s, e, st)
        return [Part(tuple(first), tuple(step), tuple(count))]


@register("Split")
class Split(PartsOp):
    attributes = frozenset({"axis", "split", "num_outputs"})
    constant_inputs = (1,)

    def parts(self, node, shape, constants):
        rank = len(shape)
        axis = attr(node, "axis", 0)
        if not -rank <= axis < rank:
            raise unsupported(node, f"axis {axis} of a rank-{rank} input",
                              f"axes from {-rank} to {rank - 1}")
        axis = normalize_axis(axis, rank)
        dim = shape[axis]
        count = len(node.outputs)
        if len(constants) > 1 and constants[1] is not None:
            sizes = _ints(constants[1])
        elif "split" in node.attrs:  # before opset 13
            sizes = _ints(node.attrs["split"])
        elif "num_outputs" in node.attrs:  # opset 18: the last part may be smaller
            chunk = -(-dim // node.attrs["num_outputs"])
            sizes = [min(chunk, dim - k * chunk) for k in range(node.attrs["num_outputs"])]
        elif dim % count == 0:
            sizes = [dim // count] * count
        else:
            raise unsupported(node, f"an equal split of {dim} into {count}",
                              "a split size list, num_outputs, or a divisible axis")
        if len(sizes) != count or sum(sizes) != dim or min(sizes) < 0:
            raise unsupported(node, f"split sizes {sizes} of an axis of {dim} into {count} "
                              "outputs", "one non-negative size per output, summing to the axis")
        parts, first = [], 0
        for size in sizes:
            starts = [0] * rank
            starts[axis] = first
            counts = list(shape)
            counts[axis] = size
            parts.append(Part(tuple(starts), (1,) * rank, tuple(counts)))
            first += size
        return parts
