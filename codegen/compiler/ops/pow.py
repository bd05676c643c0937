"""ONNX Pow: x ** exponent elementwise, broadcast; x float32, the exponent float32 or any
integer type, constant or computed at run time.

libm's powf, but for a constant exponent of 1, 2 or 3 (LayerNorm's variance, the tanh form
of GELU): products, which cost a multiply where powf costs hundreds of cycles. x * x is what
a correctly rounded powf gives; x * x * x rounds twice, so it may differ from powf in the
last bit (the numpy reference computes the same products)."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import FLOAT_TYPES, NUMERIC_TYPES, register, require_dtype
from codegen.compiler.ops.broadcast import BroadcastOp

PRODUCTS = {1: "{x}", 2: "{x} * {x}", 3: "{x} * {x} * {x}"}


def constant_exponent(graph: Graph, node: Node) -> int | None:
    """The exponent when it is a constant 1, 2 or 3 (one value), else None."""
    exponent = graph.tensor(node.inputs[1])
    if not exponent.is_const or exponent.size != 1:
        return None
    value = float(exponent.data.reshape(-1)[0])
    return int(value) if value in PRODUCTS else None


@register("Pow")
class Pow(BroadcastOp):
    limits = "integer bases"
    def check_types(self, node: Node, graph: Graph) -> None:
        x, exponent = graph.input_tensors(node)
        require_dtype(node, x, FLOAT_TYPES)
        require_dtype(node, exponent, NUMERIC_TYPES)

    def output_dtype(self, inputs: list[Tensor]) -> str:
        return inputs[0].dtype

    def expression(self, node: Node, graph: Graph, values: list[str]) -> str:
        x, exponent = values
        power = constant_exponent(graph, node)
        if power is not None:
            return PRODUCTS[power].format(x=x)
        if graph.tensor(node.inputs[1]).dtype != "float32":
            exponent = f"(float){exponent}"
        return f"powf({x}, {exponent})"

    def reference(self, node: Node, x, exponent):
        if exponent.size == 1 and float(exponent.reshape(-1)[0]) in PRODUCTS:
            power = int(exponent.reshape(-1)[0])
            y = np.broadcast_to(x, np.broadcast_shapes(x.shape, exponent.shape))
            result = y
            for _ in range(power - 1):
                result = result * y
            return [np.array(result, dtype=x.dtype)]
        wide = np.power(x.astype(np.float64), exponent.astype(np.float64))
        return [wide.astype(x.dtype)]
