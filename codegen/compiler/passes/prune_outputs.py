"""Drop the optional outputs that nothing reads (an LSTM's whole sequence Y when only its last
state feeds the next layer), so that the planner gives them no memory and the kernel does not
write them. Only operators that declare OpDef.optional_outputs are touched."""

from __future__ import annotations

from codegen.compiler.ir import Graph
from codegen.compiler.ops import REGISTRY


def prune_outputs(graph: Graph) -> None:
    read = {name for node in graph.nodes for name in node.inputs if name}
    read |= set(graph.outputs)
    for node in graph.nodes:
        op = REGISTRY.get(node.op)
        if op is None or not op.optional_outputs:
            continue
        slots = node.output_slots or tuple(range(len(node.outputs)))
        kept = [(name, slot) for name, slot in zip(node.outputs, slots, strict=True)
                if name in read]
        if kept and len(kept) < len(node.outputs):
            node.outputs = [name for name, _ in kept]
            node.output_slots = tuple(slot for _, slot in kept)
    graph.remove_unused()
