"""ONNX Pad: constant, reflect, edge and wrap padding, with negative pads cropping.

Pads, the constant value and the axes are compile-time constants: inputs since opset 11
(axes since 18), attributes before (`pads`, `value`; `paddings` in opset 1), so a pad worked
out by a constant sub-graph (as PyTorch exports F.pad) arrives folded. Negative pads crop
first and the positive ones then pad what is left, as ONNX Runtime does; a reflection thus
mirrors the cropped input, without repeating its edge value, so it reaches at most size - 1
values out (wrap at most size).

The kernel (ops/moves.py) works in the input's memory order, which the output keeps: one
copy of the kept input into the output's interior, then for each axis in turn the slabs
before and after it, each a single move. A constant slab is a fill; an edge, reflect or wrap
slab copies from the output itself, from positions the earlier moves already wrote (axes
done before span the whole output, axes after only the interior), so corners come out as
numpy.pad makes them.

int8: the value moves unchanged; the constant is quantized to the output's scale and zero
point (0.0 is the zero point). ONNX Runtime gives a constant pad other than 0 an output scale
of its own: the input is then mapped to it through a 256-entry table."""

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
    fill_move,
    move_kernel,
    rescaled,
    table_for,
)
from codegen.compiler.ops.quantize import int8_quantized, quantize
from codegen.compiler.ops.strided import operand_logical_strides

MODES = ("constant", "reflect", "edge", "wrap")


@dataclass(frozen=True)
class PadAxis:
    """One axis: its input size and the pads before and after (negative: cropped)."""

    size: int
    begin: int
    end: int

    @property
    def cropped(self) -> int:
        """Input elements dropped before the kept ones."""
        return max(-self.begin, 0)

    @property
    def kept(self) -> int:
        return self.size - self.cropped - max(-self.end, 0)

    @property
    def start(self) -> int:
        """Where the kept input begins in the output."""
        return max(self.begin, 0)

    @property
    def out(self) -> int:
        return self.size + self.begin + self.end


@dataclass(frozen=True)
class Padding:
    mode: str
    axes: tuple[PadAxis, ...]
    value: float | int

    def describe(self) -> str:
        pads = [(a.begin, a.end) for a in self.axes]
        text = f"{self.mode} padding, (before, after) per axis {pads}"
        return text + (f", value {self.value}" if self.mode == "constant" else "")


def padding(node: Node, shape: tuple[int, ...], constants: list[np.ndarray | None]) -> Padding:
    """The node's padding of an input of `shape`; `constants[i]` is input i's value."""
    rank = len(shape)

    def given(index: int) -> np.ndarray | None:
        return constants[index] if len(constants) > index else None

    mode = attr(node, "mode", "constant")
    pads = given(1)
    if pads is None:
        pads = attr(node, "pads", attr(node, "paddings", None))
    if pads is None:
        raise unsupported(node, "a Pad without pads", "pads as an input or an attribute")
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = given(3)
    axes = list(range(rank)) if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    if len(pads) != 2 * len(axes):
        raise unsupported(node, f"{len(pads)} pads for {len(axes)} axes",
                          "two pads (before, after) per padded axis")
    if any(not -rank <= a < rank for a in axes):
        raise unsupported(node, f"axes {axes} of a rank-{rank} input",
                          f"axes from {-rank} to {rank - 1}")
    axes = [normalize_axis(a, rank) for a in axes]
    if len(set(axes)) != len(axes):
        raise unsupported(node, f"repeated axes {axes}", "each axis once")
    begin, end = [0] * rank, [0] * rank
    for k, axis in enumerate(axes):
        begin[axis], end[axis] = pads[k], pads[len(axes) + k]
    value = given(2)
    if value is None:
        value = attr(node, "value", 0)
    value = np.asarray(value).reshape(-1)
    value = value[0].item() if value.size else 0
    return Padding(mode, tuple(PadAxis(n, b, e) for n, b, e in zip(shape, begin, end,
                                                                   strict=True)), value)


@register("Pad")
class Pad(OpDef):
    attributes = frozenset({"mode", "pads", "value", "paddings"})
    int8 = True
    int8_same_scale = True
    int8_rescales = True

    def node_padding(self, node: Node, graph: Graph) -> Padding:
        inputs = graph.input_tensors(node)
        return padding(node, inputs[0].shape,
                       [t.data if t is not None else None for t in inputs])

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        inputs = graph.input_tensors(node)
        require_dtype(node, inputs[0], NUMERIC_TYPES + ("bool",))
        for index, tensor in enumerate(inputs[1:], start=1):
            if tensor is not None and not tensor.is_const:
                raise unsupported(node, f"input {index} computed at run time",
                                  "constant (initializer or folded) pads, value and axes")
        pad = self.node_padding(node, graph)
        if pad.mode not in MODES:
            raise unsupported(node, f"mode {pad.mode}", ", ".join(MODES))
        for axis, a in enumerate(pad.axes):
            if a.out < 1:
                raise unsupported(node, f"an empty output (axis {axis} of {a.size} padded by "
                                  f"{a.begin} and {a.end})", "outputs with at least one element")
            if pad.mode == "constant" or (a.begin <= 0 and a.end <= 0):
                continue
            reach = {"reflect": a.kept - 1, "wrap": a.kept, "edge": None}[pad.mode]
            if a.kept < 1 or (reach is not None and max(a.begin, a.end) > reach):
                raise unsupported(node, f"{pad.mode} pads {a.begin}, {a.end} on axis {axis} "
                                  f"of {a.kept} kept values",
                                  "reflect pads up to size - 1, wrap pads up to size")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        pad = padding(node, inputs[0].shape, [t.data if t is not None else None for t in inputs])
        return [(tuple(a.out for a in pad.axes), inputs[0].dtype)]

    def reference(self, node: Node, x, *rest):
        return [self._pad(padding(node, x.shape, [x, *rest]), x, None)]

    def reference_s8(self, node: Node, graph: Graph, x, *rest):
        pad = padding(node, x.shape, [x, *rest])
        return [self._pad(pad, rescaled(graph, node.inputs[0], node.outputs[0], x),
                          self.stored_value(node, graph, pad))]

    def _pad(self, pad: Padding, x: np.ndarray, value) -> np.ndarray:
        kept = x[tuple(slice(a.cropped, a.cropped + a.kept) for a in pad.axes)]
        widths = [(a.start, max(a.end, 0)) for a in pad.axes]
        if pad.mode != "constant":
            return np.pad(kept, widths, mode=pad.mode)
        value = pad.value if value is None else value
        return np.pad(kept, widths, constant_values=np.asarray(value).astype(x.dtype))

    def stored_value(self, node: Node, graph: Graph, pad: Padding):
        """The constant as the output stores it: quantized on an int8 output."""
        y = graph.tensor(node.outputs[0])
        if not int8_quantized(y):
            return pad.value
        return int(quantize(np.array(pad.value, np.float32), y.quant.scale,
                            y.quant.zero_point, "int8"))

    def layout(self, node: Node, graph: Graph):
        order = graph.tensor(node.inputs[0]).memory_order
        return [None] * len(node.inputs), [order]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        pad = self.node_padding(node, graph)
        x_strides, y_strides = operand_logical_strides(x), y.strides
        weights: dict[str, np.ndarray] = {}
        table = table_for(graph, names, weights, x.name, y.name)
        interior = [[(a.kept, stride)] for a, stride in zip(pad.axes, x_strides, strict=True)]
        moves = [copy_move(
            box_loops(y.memory_order, y_strides, interior), "y0", "x0",
            "the kept input" + (", mapped to the output's scale" if table is not None else ""),
            write_base=_offset([a.start for a in pad.axes], y_strides),
            read_base=_offset([a.cropped for a in pad.axes], x_strides),
            table=table)]
        value = self.stored_value(node, graph, pad)
        for axis in range(len(pad.axes)):
            moves += self._slabs(pad, axis, y, value)
        summary = f"{y.ctype} {list(x.shape)} -> {list(y.shape)}, {pad.describe()}"
        if int8_quantized(y) and pad.mode == "constant":
            summary += f" (stored as {value})"
        return move_kernel(summary + f"; memory order {list(y.memory_order)}", moves, weights)

    def _slabs(self, pad: Padding, axis: int, y: Tensor, value) -> list:
        """The moves that fill the padding before and after `axis`: over the whole output
        on the axes before it and over the interior on the axes after it."""
        a, strides = pad.axes[axis], y.strides
        moves = []
        for side, first, count in (("before", 0, a.begin), ("after", a.start + a.kept, a.end)):
            if count <= 0:
                continue
            starts, parts = [], []
            for other, b in enumerate(pad.axes):
                start, size = (0, b.out) if other < axis else (b.start, b.kept)
                if other == axis:
                    start, size = first, count
                starts.append(start)
                parts.append([(size, strides[other])])
            write = _offset(starts, strides)
            comment = f"axis {axis}: {count} {pad.mode} value(s) {side}"
            if pad.mode == "constant":
                loops = box_loops(y.memory_order, strides, parts)
                moves.append(fill_move(loops, "y0", value, y.ctype, comment, write))
                continue
            source, step = _source(pad.mode, a, side, count)
            parts[axis] = [(count, step * strides[axis])]
            loops = box_loops(y.memory_order, strides, parts)
            read = write + (source - first) * strides[axis]
            moves.append(copy_move(loops, "y0", "y0", comment, write, read))
        return moves


def _source(mode: str, a: PadAxis, side: str, count: int) -> tuple[int, int]:
    """(output position the first padded value is read from, step per padded value) on the
    padded axis; the kept input lies at [a.start, a.start + a.kept)."""
    last = a.start + a.kept - 1
    if side == "before":
        return {"edge": (a.start, 0), "reflect": (2 * a.start, -1),
                "wrap": (last + 1 - count, 1)}[mode]
    return {"edge": (last, 0), "reflect": (last - 1, -1), "wrap": (a.start, 1)}[mode]


def _offset(index: list[int], strides: tuple[int, ...]) -> int:
    return sum(i * s for i, s in zip(index, strides, strict=True))

