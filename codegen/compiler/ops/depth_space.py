"""ONNX DepthToSpace and SpaceToDepth (modes DCR and CRD): a fixed permutation of the
values of an [N, C, H, W] tensor between channels and b x b blocks of pixels.

The kernel is a strided copy (ops/moves.py) in the input's memory order, which the output
keeps: each output axis that the permutation splits is walked as two or three loops (H*b as
h, then the row in the block), each with the input stride its index moves by. A
channels-last tensor is therefore rearranged without being re-laid first."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    attr,
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
    table_for,
)
from codegen.compiler.ops.strided import operand_logical_strides

MODES = ("DCR", "CRD")


class BlockMove(OpDef):
    """What DepthToSpace and SpaceToDepth share: checks, layout and the kernel."""

    attributes = frozenset({"blocksize", "mode"})
    int8 = True
    int8_same_scale = True  # the values move unchanged...
    int8_rescales = True  # ...or through a table to an output quantized otherwise

    def reference_s8(self, node: Node, graph: Graph, x, *rest):
        return self.reference(node, rescaled(graph, node.inputs[0], node.outputs[0], x), *rest)

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        require_dtype(node, x, NUMERIC_TYPES + ("bool",))
        if x.rank != 4:
            raise unsupported(node, f"a rank-{x.rank} input", "[N, C, H, W] inputs")
        if attr(node, "mode", "DCR") not in MODES:
            raise unsupported(node, f"mode {attr(node, 'mode', 'DCR')}", ", ".join(MODES))
        if attr(node, "blocksize", 0) < 1:
            raise unsupported(node, f"blocksize {attr(node, 'blocksize', 0)}",
                              "a blocksize of 1 or more")
        self.check_shape(node, x.shape, attr(node, "blocksize", 1))

    def check_shape(self, node: Node, shape: tuple[int, ...], b: int) -> None:
        raise NotImplementedError

    def layout(self, node: Node, graph: Graph):
        return [None], [graph.tensor(node.inputs[0]).memory_order]

    def parts(self, node: Node, x: Tensor) -> list[Parts]:
        """How each output axis walks the input (input strides per loop)."""
        raise NotImplementedError

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        weights: dict[str, np.ndarray] = {}
        table = table_for(graph, names, weights, x.name, y.name)
        loops = box_loops(y.memory_order, y.strides, self.parts(node, x))
        mode, b = attr(node, "mode", "DCR"), attr(node, "blocksize", 1)
        return move_kernel(f"{y.ctype} {list(x.shape)} -> {list(y.shape)}, blocks of {b}x{b}, "
                           f"mode {mode}, memory order {list(y.memory_order)}",
                           [copy_move(loops, "y0", "x0", "every element", table=table)], weights)


@register("DepthToSpace")
class DepthToSpace(BlockMove):
    def check_shape(self, node, shape, b):
        if shape[1] % (b * b):
            raise unsupported(node, f"{shape[1]} channels in blocks of {b}x{b}",
                              "a channel count divisible by blocksize squared")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        n, c, h, w = inputs[0].shape
        b = attr(node, "blocksize", 1)
        return [((n, c // (b * b), h * b, w * b), inputs[0].dtype)]

    def reference(self, node: Node, x):
        n, c, h, w = x.shape
        b = attr(node, "blocksize", 1)
        if attr(node, "mode", "DCR") == "DCR":  # channel = (row * b + column) * C' + c'
            blocks = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        else:  # channel = (c' * b + row) * b + column
            blocks = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        return [blocks.reshape(n, c // (b * b), h * b, w * b)]

    def parts(self, node, x):
        sn, sc, sh, sw = operand_logical_strides(x)
        b = attr(node, "blocksize", 1)
        n, c, h, w = x.shape
        depth = c // (b * b)
        if attr(node, "mode", "DCR") == "DCR":
            channel, row, column = sc, b * depth * sc, depth * sc
        else:
            channel, row, column = b * b * sc, b * sc, sc
        return [[(n, sn)], [(depth, channel)], [(h, sh), (b, row)], [(w, sw), (b, column)]]


@register("SpaceToDepth")
class SpaceToDepth(BlockMove):
    def check_shape(self, node, shape, b):
        if shape[2] % b or shape[3] % b:
            raise unsupported(node, f"a {shape[2]}x{shape[3]} input in blocks of {b}x{b}",
                              "height and width divisible by blocksize")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        n, c, h, w = inputs[0].shape
        b = attr(node, "blocksize", 1)
        return [((n, c * b * b, h // b, w // b), inputs[0].dtype)]

    def reference(self, node: Node, x):
        n, c, h, w = x.shape
        b = attr(node, "blocksize", 1)
        blocks = x.reshape(n, c, h // b, b, w // b, b)
        if attr(node, "mode", "DCR") == "DCR":  # channel = (row * b + column) * C + c
            blocks = blocks.transpose(0, 3, 5, 1, 2, 4)
        else:  # channel = (c * b + row) * b + column
            blocks = blocks.transpose(0, 1, 3, 5, 2, 4)
        return [np.ascontiguousarray(blocks).reshape(n, c * b * b, h // b, w // b)]

    def parts(self, node, x):
        sn, sc, sh, sw = operand_logical_strides(x)
        b = attr(node, "blocksize", 1)
        n, c, h, w = x.shape
        if attr(node, "mode", "DCR") == "DCR":
            channels = [(b, sh), (b, sw), (c, sc)]
        else:
            channels = [(c, sc), (b, sh), (b, sw)]
        return [[(n, sn)], channels, [(h // b, b * sh)], [(w // b, b * sw)]]
