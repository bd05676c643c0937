"""Choose each tensor's memory order and insert a copy (ariel.Relayout) only where a kernel
needs its input in an order the producer did not write.

Spatial kernels work channels-last (NHWC) because that keeps a pixel's channels together for
the inner product; graph inputs and outputs keep the model's own layout. Transpose never
copies: its output is given the memory order that makes it the same bytes, so a copy happens
only where a later kernel needs another order (often never: a Transpose in front of a
Reshape of an [N,C,1,1] tensor is free)."""

from __future__ import annotations

from codegen.compiler.ir import Graph, Node, Tensor, row_major
from codegen.compiler.ops import REGISTRY

RELAYOUT = "ariel.Relayout"


def assign_layout(graph: Graph) -> None:
    for name in graph.inputs:
        graph.tensor(name).order = row_major(graph.tensor(name).rank)
    copies: dict[tuple[str, tuple[int, ...]], str] = {}
    nodes: list[Node] = []  # the new order: each copy just before its first reader
    for node in graph.nodes:
        required, produced = REGISTRY[node.op].layout(node, graph)
        for index, (name, order) in enumerate(zip(node.inputs, required, strict=True)):
            if order is not None and not same_layout(graph.tensor(name), order):
                node.inputs[index] = _relayout(graph, name, order, nodes, copies)
        nodes.append(node)
        for name, order in zip(node.outputs, produced, strict=True):
            graph.tensor(name).order = tuple(order)
    graph.nodes = nodes
    for name in list(graph.outputs):
        tensor = graph.tensor(name)
        if tensor.is_const or not same_layout(tensor, row_major(tensor.rank)):
            _relayout_output(graph, name)


def same_layout(tensor: Tensor, order: tuple[int, ...]) -> bool:
    """True when `order` puts the tensor's bytes where its current order does (axes of size
    1 can move freely)."""
    def moving(o):
        return [axis for axis in o if tensor.shape[axis] != 1]
    return moving(tensor.memory_order) == moving(order)


def _relayout(graph: Graph, name: str, order: tuple[int, ...], nodes: list[Node],
              copies: dict) -> str:
    key = (name, tuple(order))
    if key not in copies:
        source = graph.tensor(name)
        copy = graph.fresh_name(name)
        graph.tensors[copy] = Tensor(copy, source.shape, source.dtype, order=tuple(order),
                                     quant=source.quant)
        node = Node(f"relayout_{name}", RELAYOUT, [name], [copy], {"order": list(order)},
                    domain="ariel")
        nodes.append(node)
        copies[key] = copy
    return copies[key]


def _relayout_output(graph: Graph, name: str) -> None:
    """Give graph output `name` the model's layout in the arena: its producer now writes a
    renamed tensor (or it stays a constant) and a copy writes `name` row-major."""
    source = graph.tensor(name)
    internal = graph.fresh_name(name)
    graph.tensors[internal] = Tensor(internal, source.shape, source.dtype, data=source.data,
                                     order=source.order, quant=source.quant)
    source.data = None  # a constant output is copied into the arena like any other
    for node in graph.nodes:
        node.inputs = [internal if n == name else n for n in node.inputs]
        node.outputs = [internal if n == name else n for n in node.outputs]
    source.order = row_major(source.rank)
    graph.nodes.append(Node(f"relayout_{name}", RELAYOUT, [internal], [name],
                            {"order": list(source.order)}, domain="ariel"))
