"""ONNX Where: y = condition ? x : y elementwise, the three inputs broadcast together; any
held type for x and y (one type), bool for the condition.

int8 (as ONNX Runtime's quantizer writes it: x, y and the output quantized, each with its own
scale and zero point): each branch is moved to the output's parameters by the shared output
stage, acc = q - z_branch requantized with the multiplier s_branch / s_out, one rounding;
a branch already at the output's parameters is copied as it is."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import NUMERIC_TYPES, Kernel, Names, register, unsupported
from codegen.compiler.ops.broadcast import (
    BroadcastOp,
    broadcast_operands,
    move,
    moved,
    require_one_type,
)
from codegen.compiler.ops.quantize import describe_quant, int8_quantized


@register("Where")
class Where(BroadcastOp):
    int8 = True
    dtypes = (*NUMERIC_TYPES, "bool")

    def quantized(self, graph: Graph, node: Node) -> bool:
        return int8_quantized(graph.tensor(node.outputs[0]))

    def check_types(self, node: Node, graph: Graph) -> None:
        condition, x, y = graph.input_tensors(node)
        if condition.dtype != "bool":
            raise unsupported(node, f"condition '{condition.name}' of type {condition.dtype}",
                              "a bool condition")
        if not self.quantized(graph, node):
            require_one_type(node, [x, y], self.dtypes)
            return
        for branch in (x, y):
            if not int8_quantized(branch):
                kind = "per-axis quantized" if branch.quant is not None else branch.dtype
                raise unsupported(node, f"int8 Where with a {kind} branch '{branch.name}'",
                                  "int8 branches with one scale and zero point each")

    def output_dtype(self, inputs: list[Tensor]) -> str:
        return inputs[1].dtype

    def expression(self, node: Node, graph: Graph, values: list[str]) -> str:
        return f"{values[0]} ? {values[1]} : {values[2]}"

    def reference(self, node: Node, condition, x, y):
        return [np.where(condition, x, y).astype(x.dtype)]

    def reference_s8(self, node: Node, graph: Graph, condition, x, y):
        _, x_t, y_t = graph.input_tensors(node)
        out = np.where(condition, move(graph, node, x_t, x), move(graph, node, y_t, y))
        return [out.astype(np.int8)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        if not self.quantized(graph, node):
            return super().lower(node, graph, names)
        operands = broadcast_operands(node, graph, names)
        condition, x, y = operands.values
        _, x_t, y_t = graph.input_tensors(node)
        out = graph.tensor(node.outputs[0])
        expression = (f"{condition} ? {moved(graph, node, x_t, x)} : "
                      f"{moved(graph, node, y_t, y)}")
        notes = [f"x: {describe_quant(x_t)}; y: {describe_quant(y_t)}; "
                 f"output: {describe_quant(out)}",
                 "each branch requantized to the output's scale (one rounding, half up)"]
        return self.kernel(node, graph, operands, expression, [], notes)
