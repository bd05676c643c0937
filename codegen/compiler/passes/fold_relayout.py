"""Fold a copy between memory orders (ariel.Relayout) into the kernel before it, where that
kernel can write any order: the model's float input quantized and then re-laid channels-last
for a Conv becomes one pass over the input instead of two."""

from __future__ import annotations

from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops import REGISTRY
from codegen.compiler.passes.layout import RELAYOUT


def fold_relayouts(graph: Graph) -> None:
    producers, consumers = graph.producers(), graph.consumer_lists()
    folded: set[Node] = set()
    for copy in [n for n in graph.nodes if n.op == RELAYOUT]:
        source = copy.inputs[0]
        producer = producers.get(source)
        if (producer is None or not REGISTRY[producer.op].writes_any_order
                or consumers.get(source) != [copy] or source in graph.outputs):
            continue
        # The producer writes the copy's output (its order, its name) directly.
        producer.outputs = [copy.outputs[0] if n == source else n for n in producer.outputs]
        producers[copy.outputs[0]] = producer
        folded.add(copy)
        del graph.tensors[source]
    graph.remove_nodes(folded)
