"""Fuse Relu and Clip into the node that produces their input, as clamp bounds applied by
that kernel on its way out (the output of Conv, Gemm, Add, ... never goes back to memory
unclamped).

On int8 the same holds when both nodes are integer kernels and the producer requantizes
(Conv, Gemm, Add, ...; not a same-scale move such as MaxPool): the producer then writes the
activation's output tensor directly, at that tensor's scale and zero point, and its output
stage narrows the int8 range to the bounds (OutputStage's clamp_range). One rounding instead
of two, and no table lookup."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.base import is_quantized
from codegen.compiler.ops.elementwise import activation_bounds


def fuse_activation(graph: Graph) -> None:
    producers, consumers = graph.producers(), graph.consumer_lists()
    fused: set[Node] = set()
    for act in [n for n in graph.nodes if n.op in ("Relu", "Clip")]:
        bounds = activation_bounds(graph, act)
        producer = producers.get(act.inputs[0])
        if bounds is None or producer is None or not REGISTRY[producer.op].accepts_clamp:
            continue
        source = act.inputs[0]
        if len(consumers.get(source, [])) != 1 or source in graph.outputs:
            continue
        if len(producer.outputs) != 1 or not _same_arithmetic(graph, producer, act):
            continue
        low, high = producer.clamp or (-np.inf, np.inf)
        producer.clamp = (max(low, bounds[0]), min(high, bounds[1]))
        producer.outputs = list(act.outputs)
        producers.update(dict.fromkeys(act.outputs, producer))
        fused.add(act)
        del graph.tensors[source]
    graph.remove_nodes(fused)


def _same_arithmetic(graph: Graph, producer: Node, act: Node) -> bool:
    """Both float32, or both integer kernels with a producer that can requantize to the
    activation's output parameters."""
    if is_quantized(graph, act):
        return is_quantized(graph, producer) and not REGISTRY[producer.op].int8_same_scale
    return graph.tensor(act.inputs[0]).dtype == "float32"
