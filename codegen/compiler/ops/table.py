"""ariel.Table: a chain of elementwise real functions that an int8 model computes in float
between a DequantizeLinear and a QuantizeLinear, made one 256-entry table.

ONNX Runtime's quantizer puts Q/DQ pairs only around the operators it knows, so a chain of
others stays float: PyTorch exports GELU (opset < 20) as x / sqrt(2) -> Erf -> + 1 -> * x
-> * 0.5, and the quantizer leaves DequantizeLinear -> Div -> Erf -> QuantizeLinear; a
HardSwish written as x * relu6(x + 3) / 6 leaves a Div by 6. Each link is a function of the
one value before it (a unary real function, or an arithmetic operator whose other inputs are
constants of one element), so the chain is a function of its int8 input: the QDQ lowering
(quant/lower.py) replaces it by this node, whose table is the chain evaluated in float64 on
the 256 input values and quantized once, rounding half to even."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_float
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import REGISTRY, Kernel, Names, OpDef, register
from codegen.compiler.ops.broadcast import BroadcastOp
from codegen.compiler.ops.elementwise import UnaryOp, lookup_kernel, lookup_table
from codegen.errors import UnsupportedError

TABLE = "ariel.Table"


@dataclass(frozen=True)
class Link:
    """One node of a chain: the node (op and attributes), the position of the input that
    reads the running value, and the constants its other inputs read (as float64; None for
    an omitted optional input)."""

    node: Node
    running: int
    operands: tuple[np.ndarray | None, ...]

    def apply(self, value: np.ndarray) -> np.ndarray:
        inputs = list(self.operands)
        inputs[self.running] = value
        return REGISTRY[self.node.op].reference(self.node, *inputs)[0]

    def describe(self) -> str:
        """The link as a formula of x, for the kernel's comment: Div(x, 1.41421354)."""
        if len(self.operands) == 1:
            return self.node.op
        operands = ["x" if k == self.running else "none" if operand is None
                    else c_float(operand.reshape(-1)[0]).removesuffix("f")
                    for k, operand in enumerate(self.operands)]
        return f"{self.node.op}({', '.join(operands)})"


def link_of(graph: Graph, node: Node) -> Link | None:
    """The node as a link of a chain, or None if it is not a real function of exactly one
    run-time float32 input (its other inputs float32 constants of one element, broadcast
    into nothing larger) that ariel's kernels accept."""
    op = REGISTRY.get(node.op)
    if node.domain not in ("", "ai.onnx") or len(node.outputs) != 1:
        return None
    if not (isinstance(op, UnaryOp) and op.int8) and not isinstance(op, BroadcastOp):
        return None
    inputs = graph.input_tensors(node)
    running = [t for t in inputs if t is not None and not t.is_const]
    out = graph.tensor(node.outputs[0])
    if len(running) != 1 or running[0].dtype != "float32" or out.dtype != "float32":
        return None
    if running[0].shape is None or out.shape != running[0].shape:
        return None
    if node.inputs.count(running[0].name) != 1:
        return None
    operands = []
    for tensor in inputs:
        if tensor is not None and tensor.is_const and (tensor.dtype != "float32"
                                                       or tensor.size != 1):
            return None
        operands.append(tensor.data.astype(np.float64) if tensor is not None
                        and tensor.is_const else None)
    try:
        op.check(node, graph)
    except UnsupportedError:
        return None  # stays float, and is reported where it is checked
    return Link(node, node.inputs.index(running[0].name), tuple(operands))


@register(TABLE)
class Table(OpDef):
    """The chain's table; `chain` holds its links, first to last."""

    attributes = frozenset({"chain"})
    int8 = True

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, inputs[0].dtype)]

    def function(self, node: Node, real: np.ndarray) -> np.ndarray:
        for link in node.attrs["chain"]:
            real = link.apply(real)
        return real

    def reference(self, node: Node, x):
        return [self.function(node, x.astype(np.float64)).astype(np.float32)]

    def table(self, node: Node, graph: Graph) -> np.ndarray:
        return lookup_table(node, graph, lambda real: self.function(node, real))

    def reference_s8(self, node: Node, graph: Graph, x):
        return [self.table(node, graph)[x.astype(np.int64) + 128]]

    def layout(self, node: Node, graph: Graph):
        return [None], [graph.tensor(node.inputs[0]).memory_order]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        function = " then ".join(link.describe() for link in node.attrs["chain"])
        return lookup_kernel(node, graph, names, self.table(node, graph), function)
