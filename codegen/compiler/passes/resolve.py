"""Check, node by node in order, that ariel can compile the graph, and infer every shape
with the operators' own rules (cross-checking those ONNX inferred). Stops at the first
problem with one message naming the node, the op, what is unsupported and what is."""

from __future__ import annotations

import copy

from codegen.compiler.budget import check_tensor
from codegen.compiler.frontend import check_dtype_supported
from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops import REGISTRY
from codegen.compiler.passes.prune_outputs import prune_outputs
from codegen.errors import ArielError, UnsupportedError


def resolve(graph: Graph) -> None:
    for name in graph.inputs:
        tensor = graph.tensor(name)
        if tensor.shape is None:
            raise ArielError(f"input '{name}' has no static shape; give it with --input-shape")
        check_dtype_supported(tensor)
    for node in graph.nodes:
        if node.domain in ("", "ai.onnx"):
            node.opset = graph.opset
        problem = operator_problem(node)
        if problem is None:
            try:
                REGISTRY[node.op].check(node, graph)
            except UnsupportedError as exc:
                problem = str(exc)
        if problem is not None:
            raise UnsupportedError(problem + _others(graph, node))
        _infer(graph, node)
    for name in graph.outputs:
        check_dtype_supported(graph.tensor(name))


def check_support(graph: Graph) -> None:
    """What a build checks of a folded graph (prune_outputs, then resolve), raising the same
    error, on a copy: `graph` keeps its shapes and nodes. For the steps that must name an
    unsupported operator as a float build does: int8's preparation and `ariel inspect`."""
    checked = copy.copy(graph)
    checked.tensors = {name: copy.copy(tensor) for name, tensor in graph.tensors.items()}
    checked.nodes = [copy.copy(node) for node in graph.nodes]
    prune_outputs(checked)
    resolve(checked)


def operator_problem(node: Node) -> str | None:
    """Why no implementation exists for `node`'s operator, or None when one does."""
    if node.op in REGISTRY and (node.domain == "ariel" or _domain(node.domain)
                                == REGISTRY[node.op].domain):
        return None
    if node.op == "If" and node.domain in ("", "ai.onnx"):
        return (f"node '{node.name}': operator If is supported only when its condition is "
                "known at compile time (ariel then compiles the branch it takes); this one's "
                f"condition '{node.inputs[0] if node.inputs else ''}' is computed at run time")
    op = node.op if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op}"
    return (f"node '{node.name}': operator {op} is not supported; supported operators: "
            f"{', '.join(supported_operators())}")


def _domain(domain: str) -> str:
    """The operator set a node's domain names, with "ai.onnx" spelled "" as ONNX allows."""
    return "" if domain == "ai.onnx" else domain


def supported_operators() -> list[str]:
    """The operators a model may use, those of other domains than ai.onnx under their
    domain's name (ai.onnx.ml.TreeEnsembleClassifier)."""
    return sorted(f"{opdef.domain}.{op}" if opdef.domain else op
                  for op, opdef in REGISTRY.items() if not op.startswith("ariel."))


def _others(graph: Graph, first: Node) -> str:
    later = graph.nodes[graph.nodes.index(first) + 1:]
    ops = sorted({n.op for n in later if operator_problem(n)} - {first.op})
    return f" (other unsupported operators in this model: {', '.join(ops)})" if ops else ""


def _infer(graph: Graph, node: Node) -> None:
    inferred = REGISTRY[node.op].infer(node, graph.input_tensors(node))
    for name, (shape, dtype) in zip(node.outputs, inferred, strict=True):
        tensor = graph.tensor(name)
        shape = tuple(int(d) for d in shape)
        if tensor.shape is not None and tensor.dtype and (tensor.shape, tensor.dtype) != (
                shape, dtype):
            raise ArielError(
                f"node '{node.name}' ({node.op}): ariel infers {dtype}{list(shape)} for "
                f"'{name}' but the model declares {tensor.dtype}{list(tensor.shape)}")
        tensor.shape, tensor.dtype = shape, dtype
        check_dtype_supported(tensor)
        # Shapes ONNX could not infer are known from here on: held to the budget too.
        check_tensor(name, shape, dtype, graph.budget, f"output of {node.op} '{node.name}'")
