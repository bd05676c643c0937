"""Turn operators that only relabel memory (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
Transpose after layout) into views: their output shares the input's storage and no kernel
runs for them."""

from __future__ import annotations

from codegen.compiler.ir import Graph
from codegen.compiler.ops import REGISTRY


def mark_views(graph: Graph) -> None:
    for node in graph.nodes:
        if REGISTRY[node.op].is_view:
            source = node.inputs[0]
            if graph.tensor(source).is_const:
                continue
            graph.tensor(node.outputs[0]).buffer = graph.storage(source)


def is_kernel(graph: Graph, node) -> bool:
    """True for nodes that run code (views and already-folded nodes do not)."""
    return not REGISTRY[node.op].is_view
