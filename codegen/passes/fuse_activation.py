"""Fuse Relu and Clip into the node that produces their input, as clamp bounds applied by
that kernel on its way out (the output of Conv, Gemm, Add, ... never goes back to memory
unclamped)."""

from __future__ import annotations

import numpy as np

from codegen.ir import Graph
from codegen.ops import REGISTRY
from codegen.ops.elementwise import activation_bounds


def fuse_activation(graph: Graph) -> None:
    for act in [n for n in graph.nodes if n.op in ("Relu", "Clip")]:
        bounds = activation_bounds(graph, act)
        producer = graph.producer(act.inputs[0])
        if bounds is None or producer is None or not REGISTRY[producer.op].accepts_clamp:
            continue
        source = act.inputs[0]
        if len(graph.consumers(source)) != 1 or source in graph.outputs:
            continue
        if graph.tensor(source).dtype != "float32" or len(producer.outputs) != 1:
            continue
        low, high = producer.clamp or (-np.inf, np.inf)
        producer.clamp = (max(low, bounds[0]), min(high, bounds[1]))
        producer.outputs = list(act.outputs)
        graph.nodes.remove(act)
        del graph.tensors[source]
