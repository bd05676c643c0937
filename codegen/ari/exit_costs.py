"""What each output of an early-exit model costs at one precision, from one profiling run in
the emulator of the model compiled with all its outputs: every kernel's cycles, counted
exactly and estimated as `ariel calibrate` estimates a stage's, then split by the outputs
the kernel's result reaches.

A kernel that the final output needs is backbone; one that only an exit needs is that
exit's head. An exit's `prefix` is the backbone it needs (everything up to its branch point)
and its `head` the rest, so a stage resuming after an earlier exit of the same run costs its
prefix less the earlier one's, plus its head (codegen/ari/search.py)."""

from __future__ import annotations

from dataclasses import dataclass

from codegen.ari.search import Cost
from codegen.compiler.ir import Graph
from codegen.errors import ArielError

# Energy is cycles times a constant power: uJ per cycle from this many cycles' estimate.
ENERGY_REFERENCE_CYCLES = 1_000_000


@dataclass(frozen=True)
class OutputCost:
    output: str
    prefix: Cost
    head: Cost


def reached_outputs(graph: Graph) -> list[set[str]]:
    """For each node (in graph order), the graph outputs its results flow into."""
    outputs = set(graph.outputs)
    reached: dict[str, set[str]] = {}  # tensor -> outputs it flows into
    per_node: list[set[str]] = [set() for _ in graph.nodes]
    for index in reversed(range(len(graph.nodes))):
        node = graph.nodes[index]
        found: set[str] = set()
        for tensor in node.outputs:
            found |= reached.get(tensor, set())
            if tensor in outputs:
                found.add(tensor)
        per_node[index] = found
        for tensor in node.inputs:
            if tensor:
                reached.setdefault(tensor, set()).update(found)
    return per_node


def output_costs(graph: Graph, kernels: list[dict], cycles: list[float], final: str,
                 microjoules_per_cycle: float | None) -> dict[str, OutputCost]:
    """Each graph output's prefix and head cost; `kernels` as ModelInfo lists them (their
    `index` is the node's) and `cycles` the estimate per kernel."""
    if final not in graph.outputs:
        raise ArielError(f"internal: '{final}' is not an output of the compiled model")
    reached = reached_outputs(graph)
    totals = {name: [0.0, 0.0] for name in graph.outputs}  # prefix, head
    for kernel, spent in zip(kernels, cycles, strict=True):
        outputs = reached[kernel["index"]]
        backbone = final in outputs
        for name in outputs:
            totals[name][0 if backbone or name == final else 1] += spent

    def cost(value: float) -> Cost:
        return Cost(value, None if microjoules_per_cycle is None else
                    value * microjoules_per_cycle)

    return {name: OutputCost(name, cost(prefix), cost(head))
            for name, (prefix, head) in totals.items()}
