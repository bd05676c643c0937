"""ONNX Gather: slices of `data` along one axis, picked by `indices`.

Constant indices that step evenly (one index, a range, a reversed range) are a strided part
of the data: a view when that part is contiguous in memory (`x[:, 0]` of a row-major
tensor), else a strided copy (ops/moves.py). Other constant indices, and indices read at run
time (an embedding table looked up by token), go through the gather kernel: per index, one
contiguous row of the data copied.

Run-time indices are checked: a negative index counts from the end as ONNX says, and an
index still outside [-n, n) gives a row of zeros (the zero point on int8: a real 0) instead
of reading outside the data; the numpy reference does the same. A constant index out of
range stops the build.

Everything works in the data's memory order: the output takes it, with the index axes where
the gathered axis was, so in memory the data is (outer, n, inner) and the output
(outer, indices, inner)."""

from __future__ import annotations

import math

import numpy as np

from codegen.compiler.c import c_literal
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
    rescales,
    table_for,
)
from codegen.compiler.ops.quantize import int8_quantized
from codegen.compiler.ops.slice import Part
from codegen.compiler.ops.strided import operand_logical_strides

INDEX_TYPES = ("int32", "int64")


def gather(data: np.ndarray, indices: np.ndarray, axis: int, fill=0) -> np.ndarray:
    """numpy reference: negative indices count from the end; indices outside [-n, n) give
    `fill` (the kernel's rule for run-time indices)."""
    n = data.shape[axis]
    index = np.asarray(indices, np.int64)
    index = np.where(index < 0, index + n, index)
    valid = (index >= 0) & (index < n)
    out = np.take(data, np.where(valid, index, 0), axis=axis)
    mask = valid.reshape((1,) * axis + valid.shape + (1,) * (data.ndim - axis - 1))
    return np.where(mask, out, np.asarray(fill).astype(data.dtype))


def _progression(indices: np.ndarray) -> tuple[int, int] | None:
    """(first, step) when the flattened indices step evenly, else None."""
    flat = indices.reshape(-1)
    step = int(flat[1] - flat[0]) if flat.size > 1 else 1
    if np.array_equal(flat, flat[0] + step * np.arange(flat.size)):
        return int(flat[0]), step
    return None


@register("Gather")
class Gather(OpDef):
    attributes = frozenset({"axis"})
    int8 = True
    int8_same_scale = True  # the values move unchanged...
    int8_rescales = True  # ...or through a table to an output quantized otherwise

    def axis(self, node: Node, rank: int) -> int:
        return normalize_axis(attr(node, "axis", 0), rank)

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        data, indices = graph.input_tensors(node)
        require_dtype(node, data, NUMERIC_TYPES + ("bool",))
        if indices.dtype not in INDEX_TYPES:
            raise unsupported(node, f"indices of type {indices.dtype}", "int32, int64")
        axis = attr(node, "axis", 0)
        if not -data.rank <= axis < data.rank:
            raise unsupported(node, f"axis {axis} of a rank-{data.rank} input",
                              f"axes from {-data.rank} to {data.rank - 1}")
        n = data.shape[normalize_axis(axis, data.rank)]
        if indices.is_const:
            wrong = [int(i) for i in indices.data.reshape(-1) if not -n <= i < n]
            if wrong:
                raise unsupported(node, f"constant index {wrong[0]} on an axis of {n}",
                                  f"indices from {-n} to {n - 1}")
        if indices.size == 0:
            raise unsupported(node, "an empty indices tensor", "at least one index")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        data, indices = inputs
        axis = self.axis(node, data.rank)
        return [(data.shape[:axis] + indices.shape + data.shape[axis + 1:], data.dtype)]

    def reference(self, node: Node, data, indices):
        return [gather(data, indices, self.axis(node, data.ndim))]

    def reference_s8(self, node: Node, graph: Graph, data, indices):
        data = rescaled(graph, node.inputs[0], node.outputs[0], data)
        return [gather(data, indices, self.axis(node, data.ndim), self._zero(node, graph))]

    def _zero(self, node: Node, graph: Graph) -> int:
        y = graph.tensor(node.outputs[0])
        return int(np.asarray(y.quant.zero_point).reshape(-1)[0]) if int8_quantized(y) else 0

    def layout(self, node: Node, graph: Graph):
        data, indices = graph.input_tensors(node)
        axis = self.axis(node, data.rank)
        count = indices.rank
        order = []
        for a in data.memory_order:
            if a == axis:
                order += range(axis, axis + count)
            else:
                order.append(a if a < axis else a + count - 1)
        index_order = None if indices.is_const else row_major(indices.rank)
        return [None, index_order], [tuple(order)]

    def _part(self, node: Node, graph: Graph) -> Part | None:
        """The gathered slices as a Part of the data, for at most one constant index axis
        that steps evenly; None otherwise."""
        data, indices = graph.input_tensors(node)
        if not indices.is_const or indices.rank > 1:
            return None
        axis = self.axis(node, data.rank)
        n = data.shape[axis]
        values = np.where(indices.data < 0, indices.data + n, indices.data)
        progression = _progression(values)
        if progression is None:
            return None
        starts, steps, counts = [0] * data.rank, [1] * data.rank, list(data.shape)
        starts[axis], steps[axis] = progression
        counts[axis] = values.size
        return Part(tuple(starts), tuple(steps), tuple(counts))

    def view_offsets(self, node: Node, graph: Graph) -> list[int] | None:
        part = self._part(node, graph)
        data = graph.tensor(node.inputs[0])
        if part is None or data.is_const or rescales(node, graph):
            return None
        offset = part.run_offset(data)
        return None if offset is None else [offset]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        data, indices = graph.input_tensors(node)
        y = graph.tensor(node.outputs[0])
        weights: dict[str, np.ndarray] = {}
        table = None
        if data.is_const:  # an int8 table quantized unlike the output is mapped here, once
            weights["data"] = np.ascontiguousarray(
                rescaled(graph, data.name, y.name, data.data) if int8_quantized(y)
                else data.data)
            source = names.weight("data")
        else:
            source = param_of(node, graph, data.name)
            table = table_for(graph, names, weights, data.name, y.name)
        part = self._part(node, graph)
        if part is not None:
            return self._lower_part(node, graph, part, source, weights, table)
        axis = self.axis(node, data.rank)
        position = data.memory_order.index(axis)
        order = [data.shape[a] for a in data.memory_order]
        outer, n = math.prod(order[:position]), data.shape[axis]
        inner, count = math.prod(order[position + 1:]), indices.size
        context = {
            "outer": outer, "count": count, "inner": inner, "n": n,
            "write": _row(outer, count * inner, "k", inner),
            "value": _load(source, _row(outer, n * inner, "row", inner), table),
            "checked": not indices.is_const, "zero": c_literal(self._zero(node, graph), y.ctype),
            "shape": list(data.shape), "axis": axis, "indices": list(indices.shape),
            "kind": "run-time" if not indices.is_const else "constant", "ctype": y.ctype,
        }
        if indices.is_const:
            values = indices.data.reshape(-1).astype(np.int64)
            weights["rows"] = np.where(values < 0, values + n, values).astype(np.uint32)
            context["rows"] = names.weight("rows")
        else:
            context["indices_param"] = param_of(node, graph, indices.name)
        return Kernel("kernels/gather.c.j2", context, weights)

    def _lower_part(self, node: Node, graph: Graph, part: Part, source: str,
                    weights: dict, table: str | None) -> Kernel:
        data, indices = graph.input_tensors(node)
        y = graph.tensor(node.outputs[0])
        axis = self.axis(node, data.rank)
        strides = operand_logical_strides(data)
        parts = [[(c, s * stride)] for c, s, stride in zip(part.counts, part.steps, strides,
                                                            strict=True)]
        if indices.rank == 0:  # the gathered axis disappears from the output
            del parts[axis]
        loops = box_loops(y.memory_order, y.strides, parts)
        move = copy_move(loops, "y0", source, f"y0 = x[{part.describe()}]",
                         read_base=part.offset(strides), table=table)
        return move_kernel(f"{y.ctype} {list(data.shape)} on axis {axis} at constant indices "
                           f"{_short(indices.data)}, a strided copy", [move], weights)


def _row(outer: int, outer_stride: int, row: str, inner: int) -> str:
    """The C index of element j of row `row` in block i0 of `outer` (no j for rows of
    one value)."""
    terms = [f"i0 * {outer_stride}"] if outer > 1 else []
    terms.append(f"{row} * {inner}" if inner > 1 else row)
    return " + ".join([*terms, "j"] if inner > 1 else terms)


def _load(source: str, index: str, table: str | None) -> str:
    value = f"{source}[{index}]"
    return value if table is None else f"{table}[{value} + 128]"


def _short(values: np.ndarray) -> str:
    flat = [int(v) for v in values.reshape(-1)]
    return str(flat if len(flat) <= 8 else [*flat[:8], "..."])
