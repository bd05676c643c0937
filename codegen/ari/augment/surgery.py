"""The heads written into the model: each exit's nodes inserted right after the node that
computes its tensor (so that the tensor's life ends where it did, and an exit costs no
arena), its logits a new graph output `ariel_exit<i>` after the original outputs. Nothing
of the backbone changes: its nodes, weights, outputs and their order stay as they were."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from codegen.ari.augment.heads import Head
from codegen.errors import ArielError

EXIT_PREFIX = "ariel_exit"
# A metadata entry marking a model ariel augmented: `ariel augment` replaces such a file,
# and no other, at its -o path.
METADATA_KEY = "ariel.augment"
METADATA_VALUE = "ariel-exits/1"


def exit_name(number: int) -> str:
    return f"{EXIT_PREFIX}{number}"


def add_exits(model: onnx.ModelProto, exits: list[tuple[str, Head]], classes: int,
              final_output: str) -> onnx.ModelProto:
    """A copy of `model` with a head on each (tensor, head) of `exits` (in the graph's
    order); exit i's logits are output `ariel_exit<i>` of shape [batch, classes]."""
    augmented = onnx.ModelProto()
    augmented.CopyFrom(model)
    graph = augmented.graph
    _refuse_taken_names(graph, len(exits))
    batch = _batch_dim(graph, final_output)
    opset = next((o.version for o in augmented.opset_import if o.domain in ("", "ai.onnx")),
                 1)
    nodes = list(graph.node)
    producer = {out: index for index, node in enumerate(nodes) for out in node.output}
    inserted: dict[int, list[onnx.NodeProto]] = {}
    for number, (tensor, head) in enumerate(exits, start=1):
        head_nodes, weights = _head_nodes(exit_name(number), tensor, head, opset)
        inserted.setdefault(producer[tensor], []).extend(head_nodes)
        graph.initializer.extend(weights)
        output = helper.make_tensor_value_info(exit_name(number), TensorProto.FLOAT,
                                               [batch, classes])
        graph.output.append(output)
    del graph.node[:]
    for index, node in enumerate(nodes):
        graph.node.append(node)
        graph.node.extend(inserted.get(index, []))
    entry = augmented.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, METADATA_VALUE
    return augmented


def _head_nodes(name: str, tensor: str, head: Head, opset: int
                ) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    nodes: list[onnx.NodeProto] = []
    weights = []
    current = tensor
    if head.shape.pool == "sequence":
        # ReduceMean takes its axes as an attribute before opset 18, as an input since.
        axes = list(head.window)
        if opset >= 18:
            weights.append(numpy_helper.from_array(np.array(axes, np.int64), f"{name}/axes"))
            nodes.append(helper.make_node("ReduceMean", [current, f"{name}/axes"],
                                          [f"{name}/features"], name=f"{name}/pool",
                                          keepdims=0))
        else:
            nodes.append(helper.make_node("ReduceMean", [current], [f"{name}/features"],
                                          name=f"{name}/pool", axes=axes, keepdims=0))
        current = f"{name}/features"
    elif head.shape.pool != "flat":
        pooled = f"{name}/pooled"
        if head.shape.pool == "global":
            nodes.append(helper.make_node("GlobalAveragePool", [current], [pooled],
                                          name=f"{name}/pool"))
        else:
            nodes.append(helper.make_node("AveragePool", [current], [pooled],
                                          name=f"{name}/pool",
                                          kernel_shape=list(head.window),
                                          strides=list(head.window)))
        nodes.append(helper.make_node("Flatten", [pooled], [f"{name}/features"],
                                      name=f"{name}/flatten", axis=1))
        current = f"{name}/features"
    for index, (w, b) in enumerate(head.layers, start=1):
        last = index == len(head.layers)
        out = name if last else f"{name}/gemm{index}"
        weights += [numpy_helper.from_array(np.ascontiguousarray(w), f"{name}/W{index}"),
                    numpy_helper.from_array(np.ascontiguousarray(b), f"{name}/b{index}")]
        nodes.append(helper.make_node("Gemm", [current, f"{name}/W{index}", f"{name}/b{index}"],
                                      [out], name=f"{name}/gemm{index}", transB=1))
        current = out
        if not last:
            nodes.append(helper.make_node("Relu", [current], [f"{name}/relu{index}"],
                                          name=f"{name}/relu{index}"))
            current = f"{name}/relu{index}"
    return nodes, weights


def _refuse_taken_names(graph: onnx.GraphProto, count: int) -> None:
    """The heads' names all start with ariel_exit<i>: a model that already has such a name
    (one augmented before) would be ambiguous."""
    taken = {name for node in graph.node for name in [node.name, *node.output]}
    taken.update(init.name for init in graph.initializer)
    taken.update(value.name for value in [*graph.input, *graph.output])
    prefixes = tuple(exit_name(n) for n in range(1, count + 1))
    clash = sorted(name for name in taken if name.startswith(prefixes))
    if clash:
        raise ArielError(f"the model already has a name starting with '{clash[0]}' (augmented "
                         "before?): augment the original model")


def _batch_dim(graph: onnx.GraphProto, final_output: str) -> int | str:
    """The final output's leading dimension, as the exits' outputs share it."""
    value = next(v for v in graph.output if v.name == final_output)
    dims = value.type.tensor_type.shape.dim
    if dims and dims[0].HasField("dim_value"):
        return dims[0].dim_value
    return dims[0].dim_param if dims and dims[0].dim_param else "N"
