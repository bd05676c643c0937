"""ONNX Where: y = condition ? x : y elementwise, the three inputs broadcast together; any
held type for x and y (one type), bool for the condition.

int8 (as ONNX Runtime's quantizer writes it: x, y and the output quantized, each with its own
scale and zero point): a branch at the output's scale and zero point is copied as it is;
another is read through a 256-entry table of its values at the output's (the real value
quantized again, half to even, as ONNX Runtime's DequantizeLinear -> QuantizeLinear does);
a constant branch is rescaled at compile time. Measured on the Cortex-M4 (bench/
elementwise.py), the tables cost 256 bytes of flash each and save about half the
instructions of requantizing each element by a multiplier (the shared output stage)."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import NUMERIC_TYPES, Kernel, Names, register, unsupported
from codegen.compiler.ops.broadcast import (
    BroadcastOp,
    broadcast_operands,
    require_one_type,
    rescale_operand,
)
from codegen.compiler.ops.elementwise import rescaled
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
        out = graph.tensor(node.outputs[0])
        return [np.where(condition, rescaled(x_t, out, x), rescaled(y_t, out, y)
                         ).astype(np.int8)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        if not self.quantized(graph, node):
            return super().lower(node, graph, names)
        operands = broadcast_operands(node, graph, names)
        _, x, y = graph.input_tensors(node)
        out = graph.tensor(node.outputs[0])
        for position, branch in ((1, x), (2, y)):
            rescale_operand(operands, position, branch, out, names)
        notes = [f"x: {describe_quant(x)}; y: {describe_quant(y)}; "
                 f"output: {describe_quant(out)}",
                 "a branch of other parameters is read through a table of its values at the "
                 "output's"]
        return self.kernel(node, graph, operands,
                           self.expression(node, graph, operands.values), [], notes)
