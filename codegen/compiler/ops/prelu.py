"""ONNX PRelu: y = x > 0 ? x : slope * x, the slope broadcast to x's shape (one per channel,
as PyTorch's nn.PReLU(channels) exports it, or one for all).

int8 (x and y quantized per tensor, the slope a float constant, as ONNX Runtime's quantizer
leaves it): one slope makes PRelu a function of x alone, so it is the 256-entry table any
unary function gets (elementwise.py). Several slopes would need a table per slope (256 bytes
each), so instead each element takes one of two requantizations by the sign of x - z_x:

    x > z_x:  y = requantize(x - z_x, s_x / s_y)
    else:     y = requantize(x - z_x, slope[k] * s_x / s_y)

both by the shared output stage (one rounding, half up). The negative side's multiplier is
signed (a negative slope flips the sign) and, with its shift, is a constant array of the
slope's shape read through the slope's own strides."""

from __future__ import annotations

import numpy as np

from codegen.compiler.c import c_float
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import FLOAT_TYPES, Kernel, Names, register, unsupported
from codegen.compiler.ops.broadcast import (
    BroadcastOp,
    broadcast_operands,
    broadcast_shape,
    move,
    moved,
)
from codegen.compiler.ops.elementwise import lookup_kernel, lookup_table
from codegen.compiler.ops.quantize import c_add, describe_quant, int8_quantized
from codegen.compiler.quant.fixedpoint import quantize_multiplier, requantize
from codegen.compiler.quant.output_stage import clamp_range, scale_of, zero_point_of


@register("PRelu")
class PRelu(BroadcastOp):
    int8 = True
    dtypes = FLOAT_TYPES

    def quantized(self, graph: Graph, node: Node) -> bool:
        return int8_quantized(graph.tensor(node.outputs[0]))

    def check_types(self, node: Node, graph: Graph) -> None:
        if not self.quantized(graph, node):
            super().check_types(node, graph)
            return
        x, slope = graph.input_tensors(node)
        if not int8_quantized(x):
            kind = "per-axis quantized" if x.quant is not None else x.dtype
            raise unsupported(node, f"int8 PRelu of a {kind} input '{x.name}'",
                              "an int8 input with one scale and zero point")
        if not slope.is_const:
            raise unsupported(node, f"int8 PRelu with a slope '{slope.name}' computed at run "
                              "time", "a constant slope")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x, slope = inputs
        if broadcast_shape(node, inputs) != x.shape:
            raise unsupported(node, f"slope of shape {list(slope.shape)} for an input of "
                              f"shape {list(x.shape)}", "a slope that broadcasts to the input")
        return [(x.shape, x.dtype)]

    def expression(self, node: Node, graph: Graph, values: list[str]) -> str:
        x, slope = values
        return f"{x} > 0.0f ? {x} : {x} * {slope}"

    def reference(self, node: Node, x, slope):
        return [np.where(x > 0, x, x * slope).astype(x.dtype)]

    # -- int8 ----------------------------------------------------------------------------
    def reference_s8(self, node: Node, graph: Graph, x, slope):
        if slope.size == 1:
            return [self.table(node, graph)[x.astype(np.int64) + 128]]
        x_t = graph.tensor(node.inputs[0])
        multipliers, shifts = self.negative_stage(node, graph)
        out = graph.tensor(node.outputs[0])
        low, high = clamp_range(out.quant, node.clamp)
        acc = x.astype(np.int64) - zero_point_of(x_t)
        negative = requantize(acc, multipliers, shifts, zero_point_of(out), low, high)
        return [np.where(acc > 0, move(graph, node, x_t, x), negative).astype(np.int8)]

    def table(self, node: Node, graph: Graph) -> np.ndarray:
        slope = graph.tensor(node.inputs[1]).data.reshape(-1)[0]
        return lookup_table(node, graph, lambda real: self.reference(node, real, slope)[0])

    def negative_stage(self, node: Node, graph: Graph) -> tuple[np.ndarray, np.ndarray]:
        """Signed multipliers and shifts of the negative side, in the slope's shape."""
        x, slope = graph.input_tensors(node)
        ratio = float(scale_of(x)) / float(scale_of(graph.tensor(node.outputs[0])))
        pairs = [quantize_multiplier(abs(float(s)) * ratio) for s in slope.data.reshape(-1)]
        signs = np.where(slope.data.reshape(-1) < 0, -1, 1)
        multipliers = np.array([m for m, _ in pairs], np.int64) * signs
        shifts = np.array([s for _, s in pairs], np.int64)
        return (multipliers.astype(np.int32).reshape(slope.shape),
                shifts.astype(np.int32).reshape(slope.shape))

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        if not self.quantized(graph, node):
            return super().lower(node, graph, names)
        x, slope = graph.input_tensors(node)
        if slope.size == 1:
            return lookup_kernel(node, graph, names, self.table(node, graph),
                                 f"PRelu(x, {c_float(slope.data.reshape(-1)[0])})")
        operands = broadcast_operands(node, graph, names)
        value, index = operands.values[0], operands.indices[1]
        out = graph.tensor(node.outputs[0])
        low, high = clamp_range(out.quant, node.clamp)
        acc = c_add(f"(int32_t){value}", -zero_point_of(x))
        negative = (f"(int8_t)ariel_requantize({acc}, {names.weight('mult')}[{index}], "
                    f"{names.weight('shift')}[{index}], {zero_point_of(out)}, {low}, {high})")
        expression = (f"{value} > {zero_point_of(x)} ? {moved(graph, node, x, value)} : "
                      f"{negative}")
        multipliers, shifts = self.negative_stage(node, graph)
        notes = [f"x: {describe_quant(x)}; y: {describe_quant(out)}",
                 "x above its zero point: requantized to y's scale; below: by slope * s_x / "
                 "s_y, a signed multiplier per slope (mult, shift)"]
        operands.weights = {}  # the float slope is folded into the multipliers
        return self.kernel(node, graph, operands, expression, [], notes,
                           {"mult": multipliers, "shift": shifts})
