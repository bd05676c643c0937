"""The one kernel of data movement: a list of moves, each a loop nest that writes
`target[write] = value` over a box of the output. Slice, Split, Pad, Expand, Tile,
DepthToSpace, SpaceToDepth, Gather (constant indices), Concat and the copies between memory
orders (ariel.Relayout) are all lowered to it. Python works out each loop's bound and the
strides on both sides; the template (kernels/copy.c.j2) only writes the loops.

A box is described per logical axis of the target as a list of parts (size, source
stride), outer to inner, whose sizes multiply to the box's extent on that axis: an axis
read backwards has a negative stride, a broadcast one stride 0, and an axis that a
rearrangement splits (DepthToSpace's H*b) several parts. The loops visit the target in its
memory order, so the innermost runs are contiguous there, and neighbouring loops that both
sides walk contiguously merge into one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_index, c_literal
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops import elementwise
from codegen.compiler.ops.base import Kernel, Names
from codegen.compiler.ops.strided import collapse, operand_logical_strides

Parts = list[tuple[int, int]]  # (size, source stride) per loop of one target axis


@dataclass(frozen=True)
class Loop:
    size: int
    write: int  # stride in the target
    read: int  # stride in the source


@dataclass(frozen=True)
class Move:
    """One loop nest of a movement kernel: target[write] = value at every point."""

    bounds: list[int]
    target: str
    write: str
    value: str
    comment: str


def box_loops(order: tuple[int, ...], target_strides: tuple[int, ...],
              parts: list[Parts]) -> list[Loop]:
    """The loops over a box of a target laid out in memory order `order` with element
    strides `target_strides` (per logical axis); `parts[a]` walks logical axis a."""
    loops = []
    for axis in order:
        inner = math.prod(size for size, _ in parts[axis])
        for size, read in parts[axis]:
            inner //= size
            loops.append(Loop(size, target_strides[axis] * inner, read))
    return loops


def whole(tensor: Tensor) -> list[Parts]:
    """Parts that read every element of `tensor` once, in place (a plain copy)."""
    return [[(size, stride)] for size, stride in zip(
        tensor.shape, operand_logical_strides(tensor), strict=True)]


def copy_move(loops: list[Loop], target: str, source: str, comment: str, write_base: int = 0,
              read_base: int = 0, table: str | None = None) -> Move:
    """target[write_base + ...] = source[read_base + ...] over `loops`; with `table`, each
    int8 value is mapped through that 256-entry table on the way."""
    bounds, (writes, reads) = _collapsed(loops)
    value = f"{source}[{c_index(reads, base=read_base)}]"
    if table is not None:
        value = f"{table}[{value} + 128]"
    return Move(bounds, target, c_index(writes, base=write_base), value, comment)


def fill_move(loops: list[Loop], target: str, value, ctype: str, comment: str,
              write_base: int = 0) -> Move:
    """target[write_base + ...] = the constant `value` over `loops`."""
    bounds, (writes, _) = _collapsed(loops)
    return Move(bounds, target, c_index(writes, base=write_base), c_literal(value, ctype),
                comment)


def _collapsed(loops: list[Loop]) -> tuple[list[int], list[list[int]]]:
    bounds, (writes, reads) = collapse([loop.size for loop in loops],
                                       [[loop.write for loop in loops],
                                        [loop.read for loop in loops]])
    if bounds == [1]:  # a single element: no loop at all
        return [], [[], []]
    return bounds, [writes, reads]


def move_kernel(summary: str, moves: list[Move], weights: dict[str, np.ndarray] | None = None
                ) -> Kernel:
    return Kernel("kernels/copy.c.j2", {"summary": summary, "moves": moves}, weights or {})


def rescale_table(graph: Graph, source: str, target: str) -> np.ndarray | None:
    """For an int8 move: the 256-entry table taking tensor `source` to the scale and zero
    point of tensor `target`, or None where the values move unchanged (also on float
    tensors)."""
    return elementwise.rescale_table(graph.tensor(source), graph.tensor(target))


def table_for(graph: Graph, names: Names, weights: dict[str, np.ndarray], source: str,
              target: str, key: str = "table") -> str | None:
    """The C name of the rescale table from `source` to `target`, added to the kernel's
    `weights` under `key`; None when the values move unchanged."""
    table = rescale_table(graph, source, target)
    if table is None:
        return None
    weights[key] = table
    return names.weight(key)


def rescaled(graph: Graph, source: str, target: str, values: np.ndarray) -> np.ndarray:
    """`values` of tensor `source` at the parameters of tensor `target` (the numpy twin of
    the table)."""
    return elementwise.rescaled(graph.tensor(source), graph.tensor(target), values)


def rescales(node: Node, graph: Graph) -> bool:
    """True when some output of a move is quantized unlike its input 0 (it cannot be a
    view then: the values change)."""
    x = graph.tensor(node.inputs[0])
    return any(not elementwise.same_quantization(x, graph.tensor(name))
               for name in node.outputs)
