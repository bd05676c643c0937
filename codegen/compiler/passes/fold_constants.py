"""Evaluate every node whose inputs are all known at compile time, so that shape arithmetic
(Shape, Gather, Concat of shapes, ...) and constant sub-graphs disappear before code
generation. Evaluation uses onnx.reference, so any standard operator folds. An If whose
condition is constant becomes the branch it takes (passes/inline_if.py)."""

from __future__ import annotations

from collections import deque

import numpy as np
from onnx import GraphProto
from onnx.reference import ReferenceEvaluator

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.passes.inline_if import inline_branch, known_branch
from codegen.errors import ArielError


def fold_constants(graph: Graph) -> None:
    kept: list[Node] = []
    pending = deque(graph.nodes)
    while pending:
        node = pending.popleft()
        branch = known_branch(graph, node)
        if branch is not None:
            pending.extendleft(reversed(inline_branch(graph, node, branch)))
            continue
        values = _evaluate(graph, node)
        if values is None:
            kept.append(node)
            continue
        for name, value in zip(node.outputs, values, strict=True):
            # ascontiguousarray alone would turn a scalar into shape (1,)
            value = np.ascontiguousarray(value).reshape(np.shape(value))
            graph.tensors[name] = Tensor(name, tuple(value.shape), value.dtype.name, data=value)
    graph.nodes = kept
    graph.remove_unused()


def _evaluate(graph: Graph, node: Node) -> list[np.ndarray] | None:
    """The node's outputs if they can be computed now, else None."""
    if node.op == "Shape" and node.domain in ("", "ai.onnx"):
        source = graph.tensor(node.inputs[0])
        if source.shape is not None:
            start = node.attrs.get("start", 0)
            end = node.attrs.get("end", None)
            return [np.array(source.shape[start:end], dtype=np.int64)]
    inputs = [graph.tensor(n) if n else None for n in node.inputs]
    if not inputs or any(t is not None and not t.is_const for t in inputs):
        return None
    if node.proto is None or node.domain not in ("", "ai.onnx"):
        return None
    if any(isinstance(value, GraphProto) for value in node.attrs.values()):
        return None  # a body (If, Loop, Scan) reads tensors that are not among its inputs
    feeds = {n: t.data for n, t in zip(node.inputs, inputs, strict=True) if t is not None}
    try:
        evaluator = ReferenceEvaluator(node.proto, opsets={"": graph.opset})
        return list(evaluator.run(None, feeds))
    except Exception as exc:  # the reference raises many types for invalid constant inputs
        raise ArielError(f"node '{node.name}' ({node.op}) has only constant inputs but could "
                         f"not be evaluated at compile time: {exc}") from exc
