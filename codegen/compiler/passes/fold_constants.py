"""Evaluate every node whose inputs are all known at compile time, so that shape arithmetic
(Shape, Gather, Concat of shapes, ...) and constant sub-graphs disappear before code
generation. Evaluation uses onnx.reference, so any standard operator folds. An If whose
condition is constant becomes the branch it takes (passes/inline_if.py)."""

from __future__ import annotations

from collections import deque

import numpy as np
from onnx import GraphProto, helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from codegen.compiler.budget import check_tensor
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.base import is_quantized
from codegen.compiler.passes.inline_if import inline_branch, known_branch
from codegen.errors import ArielError

# Inputs of which only the type is read, so a node folds while their values are unknown:
# CastLike of a constant to the type of a run-time tensor (as ONNX's function bodies write
# their constants) is a constant.
TYPE_ONLY_INPUTS = {"CastLike": 1}


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
            # An int8 constant keeps the scale and zero point the QDQ lowering gave it (a
            # QuantizeLinear of a constant that an integer kernel reads).
            graph.tensors[name] = Tensor(name, tuple(value.shape), value.dtype.name, data=value,
                                         quant=graph.tensor(name).quant)
    graph.nodes = kept
    graph.remove_dead_nodes()
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
    type_only = TYPE_ONLY_INPUTS.get(node.op) if node.domain in ("", "ai.onnx") else None
    if not inputs or any(t is not None and not t.is_const and k != type_only
                         for k, t in enumerate(inputs)):
        return None
    if node.op in REGISTRY and (node.domain == "ariel" or is_quantized(graph, node)):
        return _evaluate_integer(graph, node)
    if node.proto is None or node.domain not in ("", "ai.onnx"):
        return None
    if any(isinstance(value, GraphProto) for value in node.attrs.values()):
        return None  # a body (If, Loop, Scan) reads tensors that are not among its inputs
    if any(t is not None and not t.is_const and not t.dtype for t in inputs):
        return None  # a type-only input whose type is not known yet
    feeds = {n: t.data if t.is_const else np.empty(0, t.dtype)
             for n, t in zip(node.inputs, inputs, strict=True) if t is not None}
    _check_outputs(graph, node)
    try:
        evaluator = ReferenceEvaluator(node.proto, opsets={"": graph.opset})
        values = evaluator.run(None, feeds)
        # One value per output of the proto, omitted optional ones (named "") included.
        return [value for name, value in zip(node.proto.output, values, strict=True) if name]
    except Exception as exc:  # the reference raises many types for invalid constant inputs
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArielError(f"node '{node.name}' ({node.op}): its inputs are all constants, which "
                         f"ariel computes at compile time, and ONNX's reference implementation "
                         f"could not compute them ({reason}); check the node's constant "
                         "inputs against the operator's specification") from exc


def _evaluate_integer(graph: Graph, node: Node) -> list[np.ndarray]:
    """A node the QDQ lowering made integer (int8 tensors with scales, or one of ariel's own
    operators such as a table), computed by ariel's bit-exact integer reference: ONNX's
    reference would read its int8 values as plain integers, without their scales."""
    _check_outputs(graph, node)
    inputs = [graph.tensor(n).data if n else None for n in node.inputs]
    try:
        return REGISTRY[node.op].evaluate(node, graph, *inputs)
    except (ArielError, ValueError, IndexError) as exc:
        raise ArielError(f"node '{node.name}' ({node.op}): its inputs are all constants, which "
                         f"ariel computes at compile time, but its integer reference could not "
                         f"({exc}); quantize the float model with ariel (--calib) so that "
                         "constants are folded before quantization") from exc


def _check_outputs(graph: Graph, node: Node) -> None:
    """Refuse, before evaluating, a node whose outputs would be larger than the graph's
    budget (a ConstantOfShape of 4 GB would otherwise be computed in memory). The shapes
    are ONNX's where it inferred them, else inferred now for this node alone."""
    shapes = {name: graph.tensor(name).shape for name in node.outputs}
    if any(shape is None for shape in shapes.values()) and node.proto is not None:
        shapes.update(_infer_alone(graph, node))
    for name, shape in shapes.items():
        if shape is not None:
            check_tensor(name, shape, graph.tensor(name).dtype, graph.budget,
                         f"output of {node.op} '{node.name}'")


# Constant inputs up to this many elements are handed to shape inference with their values
# (shapes, repeats, pads, scales: the inputs an output size can depend on).
VALUES_FOR_INFERENCE = 64


def _infer_alone(graph: Graph, node: Node) -> dict[str, tuple[int, ...] | None]:
    """The output shapes ONNX infers for `node` on its constant inputs, without data
    propagation (which could itself expand a long vector element by element)."""
    inputs, values = [], []
    for name in dict.fromkeys(n for n in node.inputs if n):
        data = graph.tensor(name).data
        if data.size <= VALUES_FOR_INFERENCE:
            values.append(numpy_helper.from_array(data, name))
        else:
            inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(data.dtype), data.shape))
    outputs = [helper.make_empty_tensor_value_info(n) for n in node.outputs]
    model = helper.make_model(helper.make_graph([node.proto], "fold", inputs, outputs, values),
                              opset_imports=[helper.make_opsetid("", graph.opset)])
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=False)
    except Exception:  # no shape then: the evaluation below reports what is wrong
        return {}
    shapes = {}
    for value in inferred.graph.output:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value")
                                                            for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes
