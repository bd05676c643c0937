"""ONNX PRelu: y = x > 0 ? x : slope * x, the slope broadcast to x's shape (one per channel,
as PyTorch's nn.PReLU(channels) exports it, or one for all).

int8 (x and y quantized per tensor, the slope a float constant, as ONNX Runtime's quantizer
leaves it): one slope makes PRelu a function of x alone, so it is the 256-entry table any
unary function gets (elementwise.py). Several slopes would need a table per slope (256 bytes
each: 16 KB for 64 channels), so instead the sign of x - z_x chooses:

    x > z_x:  y = x at y's scale and zero point (a 256-entry table, or x itself)
    else:     y = requantize(x - z_x, slope[k] * s_x / s_y)

the second by the shared output stage (one rounding, half up) with a signed multiplier per
slope (a negative slope flips the sign): a constant array of the slope's shape, read through
the slope's own strides (4 bytes per slope). All slopes share one shift, that of the
largest, so that the C shifts by a constant (a shift read per element costs the Cortex-M4 a
64-bit variable shift); a smaller slope's multiplier keeps fewer bits, and with
|x - z_x| < 256 the error that adds is below 2**(7 - shift) of a step."""

from __future__ import annotations

import numpy as np

from codegen.compiler.c import c_float
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import FLOAT_TYPES, Kernel, Names, register, unsupported
from codegen.compiler.ops.broadcast import (
    BroadcastOp,
    broadcast_operands,
    broadcast_shape,
    rescale_operand,
)
from codegen.compiler.ops.elementwise import lookup_kernel, lookup_table, rescaled
from codegen.compiler.ops.quantize import c_add, describe_quant, int8_quantized
from codegen.compiler.quant.fixedpoint import align_multiplier, quantize_multiplier, requantize
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
        multipliers, shift = self.negative_stage(node, graph)
        out = graph.tensor(node.outputs[0])
        low, high = clamp_range(out.quant, node.clamp)
        acc = x.astype(np.int64) - zero_point_of(x_t)
        negative = requantize(acc, multipliers, shift, zero_point_of(out), low, high)
        return [np.where(acc > 0, rescaled(x_t, out, x), negative).astype(np.int8)]

    def table(self, node: Node, graph: Graph) -> np.ndarray:
        slope = graph.tensor(node.inputs[1]).data.reshape(-1)[0]
        return lookup_table(node, graph, lambda real: self.reference(node, real, slope)[0])

    def negative_stage(self, node: Node, graph: Graph) -> tuple[np.ndarray, int]:
        """Signed multipliers (int32, in the slope's shape) and the one shift of the
        negative side."""
        x, slope = graph.input_tensors(node)
        ratio = float(scale_of(x)) / float(scale_of(graph.tensor(node.outputs[0])))
        values = slope.data.reshape(-1).astype(np.float64)
        pairs = [quantize_multiplier(abs(value) * ratio) for value in values]
        shift = min((s for m, s in pairs if m), default=1)
        multipliers = [int(np.sign(value)) * align_multiplier(m, s - shift) if m else 0
                       for value, (m, s) in zip(values, pairs, strict=True)]
        return np.array(multipliers, np.int32).reshape(slope.shape), shift

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
        multipliers, shift = self.negative_stage(node, graph)
        negative = (f"(int8_t)ariel_requantize({acc}, {names.weight('mult')}[{index}], "
                    f"{shift}, {zero_point_of(out)}, {low}, {high})")
        operands.weights = {}  # the float slope is folded into the multipliers
        rescale_operand(operands, 0, x, out, names)
        expression = f"{value} > {zero_point_of(x)} ? {operands.values[0]} : {negative}"
        notes = [f"x: {describe_quant(x)}; y: {describe_quant(out)}",
                 "x above its zero point: read at y's scale (through a table where they "
                 f"differ); below: requantized by slope * s_x / s_y, a signed multiplier per "
                 f"slope (mult) * 2^-{shift}"]
        return self.kernel(node, graph, operands, expression, [], notes, {"mult": multipliers})
