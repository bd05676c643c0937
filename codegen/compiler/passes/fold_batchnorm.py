"""Fold an inference-mode BatchNormalization into the Conv that feeds it: the per-channel
scale multiplies the filters and the shift joins the bias, so no kernel runs for it."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.batchnorm import fits_float32


def fold_batchnorm(graph: Graph) -> None:
    producers, consumers = graph.producers(), graph.consumer_lists()
    folded: set[Node] = set()
    for bn in [n for n in graph.nodes if n.op == "BatchNormalization"]:
        conv = producers.get(bn.inputs[0])
        if conv is None or not _foldable(graph, conv, bn, consumers):
            continue
        scale, shift, mean, var = (graph.tensor(n).data.astype(np.float64) for n in bn.inputs[1:5])
        factor = scale / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
        weight = graph.tensor(conv.inputs[1]).data
        out_channels = weight.shape[0]
        bias = (graph.tensor(conv.inputs[2]).data if len(conv.inputs) > 2 and conv.inputs[2]
                else np.zeros(out_channels, np.float32))
        new_weight = weight * factor.reshape(-1, *[1] * (weight.ndim - 1))
        new_bias = (bias - mean) * factor + shift
        if not fits_float32(new_weight, new_bias):
            continue  # the BatchNormalization then runs as a kernel, in the model's order
        new_weight, new_bias = new_weight.astype(np.float32), new_bias.astype(np.float32)
        conv.inputs = [conv.inputs[0],
                       _add_constant(graph, f"{conv.name}/folded_W", new_weight),
                       _add_constant(graph, f"{conv.name}/folded_B", new_bias)]
        conv_out = conv.outputs[0]
        conv.outputs = [bn.outputs[0]]
        producers[bn.outputs[0]] = conv
        folded.add(bn)
        del graph.tensors[conv_out]
    graph.remove_nodes(folded)
    graph.remove_unused()


def _foldable(graph: Graph, conv: Node, bn: Node, consumers: dict[str, list[Node]]) -> bool:
    if conv.op != "Conv" or conv.clamp is not None or bn.attrs.get("training_mode", 0):
        return False
    if len(bn.outputs) != 1 or len(consumers.get(conv.outputs[0], [])) != 1:
        return False
    if conv.outputs[0] in graph.outputs:
        return False
    constants = [conv.inputs[1], *(n for n in conv.inputs[2:] if n), *bn.inputs[1:5]]
    return all(graph.tensor(n).is_const for n in constants)


def _add_constant(graph: Graph, base: str, data: np.ndarray) -> str:
    name = graph.fresh_name(base)
    graph.tensors[name] = Tensor(name, tuple(data.shape), data.dtype.name, data=data)
    return name
