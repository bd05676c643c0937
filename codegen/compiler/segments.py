"""A graph run segment by segment, one segment per graph output, in the outputs' order: the
nodes are ordered so that each output is computed as soon as it can be and only what it needs
runs before it (an early exit's head right after the backbone tensor it branches from, the
backbone up to the next exit after it). The memory plan then covers the whole order at once,
so whatever a later segment reads stays live across the earlier ones."""

from __future__ import annotations

from codegen.compiler.ir import Graph, Node


def order_by_outputs(graph: Graph) -> list[int]:
    """Reorder graph.nodes by segment (segment k: the nodes output k needs and no earlier
    output needs, in their previous order, which was topological and so stays so); returns
    each node's segment. Nodes no output needs, if any are left, go last."""
    producers = graph.producers()
    last = max(len(graph.outputs) - 1, 0)
    segment: dict[Node, int] = {}
    for index, output in enumerate(graph.outputs):
        pending = [output]
        while pending:
            node = producers.get(pending.pop())
            if node is None or node in segment:
                continue
            segment[node] = index
            pending.extend(name for name in node.inputs if name)
    graph.nodes = sorted(graph.nodes, key=lambda node: segment.get(node, last))
    return [segment.get(node, last) for node in graph.nodes]
