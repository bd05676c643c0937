"""Run an ir.Graph with the operators' numpy references: ariel's own oracle for the whole
compiled graph, valid before or after any pass (layout copies are identities). Quantized
nodes run their bit-exact integer reference."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph
from codegen.compiler.ops import REGISTRY


def run_graph(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    values = run_graph_values(graph, inputs)
    return [values[n] for n in graph.outputs]


def run_graph_values(graph: Graph, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor's value (constants included) after running the graph on `inputs`."""
    values: dict[str, np.ndarray] = {n: t.data for n, t in graph.tensors.items() if t.is_const}
    values.update(zip(graph.inputs, inputs, strict=True))
    for node in graph.nodes:
        args = [values[n] if n else None for n in node.inputs]
        outputs = REGISTRY[node.op].evaluate(node, graph, *args)
        for name, value in zip(node.outputs, outputs, strict=True):
            values[name] = value
    return values
