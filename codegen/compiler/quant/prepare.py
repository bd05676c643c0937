"""A float model made ready for ONNX Runtime's quantizer: ariel's support check first, then its
constant sub-graphs folded, the same two steps (passes/fold_constants.py, passes/resolve.py)
that a float build runs.

Why before the quantizer and not after: the quantizer quantizes what it meets. An unsupported
operator would otherwise be named by ONNX Runtime (or by the integer lowering, after
calibration) in other words than a float build's; and a constant reached through a node
rather than stored as an initializer (PyTorch routes identical zero biases through Identity,
writes GELU's constants as Constant nodes, a decoder's grid as arithmetic on constants) is
quantized as an activation or leaves its consumer unquantized: ONNX Runtime quantizes a
Conv's bias only when it is an initializer, so SqueezeNet kept 18 of its 26 convolutions in
float. After folding, every constant is an initializer."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from codegen.compiler.budget import Budget
from codegen.compiler.frontend import to_graph
from codegen.compiler.ir import Graph, Node
from codegen.compiler.passes.fold_constants import fold_constants
from codegen.compiler.passes.resolve import check_support
from codegen.errors import UnsupportedError

ML_DOMAIN = "ai.onnx.ml"


def prepare_for_quantization(model: onnx.ModelProto, name: str, budget: Budget
                             ) -> onnx.ModelProto:
    """`model` with its constant sub-graphs folded into initializers, once ariel has found
    every operator supported (the float build's one-line error if not) and no ai.onnx.ml
    operator computing on float data (which would stay float in an int8 build)."""
    graph = to_graph(model, name, budget)
    fold_constants(graph)
    check_support(graph)
    _refuse_float_ml(graph)
    return _as_model(model, graph)


def _refuse_float_ml(graph: Graph) -> None:
    """ONNX Runtime's quantizer leaves the ai.onnx.ml operators (scikit-learn's models) in
    float: an int8 build of one would run its real work in float32 under an int8 name. An ml
    operator on integers only (ArrayFeatureExtractor picking a class label by an ArgMax
    index) computes nothing to quantize and is left as it is."""
    for node in graph.nodes:
        if node.domain != ML_DOMAIN:
            continue
        floats = [n for n in node.inputs if n and graph.tensor(n).dtype == "float32"
                  and not graph.tensor(n).is_const]
        if floats:
            raise UnsupportedError(
                f"node '{node.name}' ({ML_DOMAIN}.{node.op}): --precision int8 is not "
                f"supported for ai.onnx.ml operators on float data ('{floats[0]}'), which "
                "ONNX Runtime's quantizer leaves in float; supported: --precision float")


def _as_model(model: onnx.ModelProto, graph: Graph) -> onnx.ModelProto:
    """`model` holding `graph`'s nodes (as their ONNX protos) and every constant they or the
    outputs read as an initializer; its inputs, outputs, opsets and metadata unchanged."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    g = result.graph
    initializers = {init.name for init in model.graph.initializer}
    runtime_inputs = [value for value in model.graph.input if value.name not in initializers]
    read = [n for node in graph.nodes for n in node.inputs if n] + graph.outputs
    constants = [name for name in dict.fromkeys(read) if graph.tensors[name].is_const]
    del g.node[:], g.initializer[:], g.value_info[:], g.input[:]
    g.input.extend(runtime_inputs)
    g.node.extend(_proto(node) for node in graph.nodes)
    g.initializer.extend(numpy_helper.from_array(np.asarray(graph.tensors[name].data), name)
                         for name in constants)
    return result


def _proto(node: Node) -> onnx.NodeProto:
    """The node's ONNX proto under the name ariel gives it (an unnamed node's index name),
    so that ONNX Runtime's nodes and messages use the names a float build reports."""
    proto = helper.make_node(node.proto.op_type, list(node.proto.input),
                             list(node.proto.output), name=node.name,
                             domain=node.proto.domain or None)
    proto.attribute.extend(node.proto.attribute)
    proto.doc_string = node.proto.doc_string
    return proto
