"""Turn operators that only relabel memory (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
Transpose after layout) and those whose outputs are contiguous parts of their input (a Slice
or Split along the outermost axis in memory) into views: their outputs share the input's
storage, at an offset for a part, and no kernel runs for them."""

from __future__ import annotations

from codegen.compiler.ir import Graph
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.base import is_view_node


def mark_views(graph: Graph) -> None:
    for node in graph.nodes:
        offsets = REGISTRY[node.op].view_offsets(node, graph)
        if offsets is None:
            continue
        source = graph.tensor(node.inputs[0])
        if source.is_const:
            continue
        for name, offset in zip(node.outputs, offsets, strict=True):
            out = graph.tensor(name)
            out.buffer = graph.storage(source.name)
            out.view_offset = source.view_offset + offset


def is_kernel(graph: Graph, node) -> bool:
    """True for nodes that run code (views and already-folded nodes do not)."""
    return not is_view_node(graph, node)
