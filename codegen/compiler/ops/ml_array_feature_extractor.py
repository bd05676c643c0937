"""ai.onnx.ml ArrayFeatureExtractor: picks elements of x's last axis by index, y[..., j] =
x[..., indices[j]], with the indices flattened; a 1-D x gives a [1, k] output (ONNX Runtime's
reading, which onnx.reference follows). scikit-learn exports it to turn a class index into
its label (classes[argmax]).

Either input may be a constant (the classes table, fixed indices) or computed at run time
(the index an ArgMax found). A constant index outside x's last axis is refused; an index
computed at run time that falls outside it gives 0 (ONNX Runtime stops with an error: a
microcontroller has no error to raise there, and reading outside x is not an option)."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    param_of,
    register,
    require_dtype,
    unsupported,
)

TEMPLATE = "kernels/ml_array_feature_extractor.c.j2"


@register("ArrayFeatureExtractor")
class ArrayFeatureExtractor(OpDef):
    domain = "ai.onnx.ml"

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x, indices = graph.input_tensors(node)
        require_dtype(node, x, NUMERIC_TYPES)
        require_dtype(node, indices, ("int64",))
        if x.rank == 0:
            raise unsupported(node, "a scalar input", "inputs of rank 1 or more")
        if indices.is_const:
            flat = indices.data.reshape(-1)
            bad = flat[(flat < 0) | (flat >= x.shape[-1])]
            if bad.size:
                raise unsupported(node, f"index {int(bad[0])} into an axis of {x.shape[-1]}",
                                  f"indices 0..{x.shape[-1] - 1}")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x, indices = inputs
        outer = (1,) if x.rank == 1 else x.shape[:-1]
        return [((*outer, indices.size), x.dtype)]

    def reference(self, node: Node, x, indices):
        flat = indices.reshape(-1).astype(np.int64)
        valid = (flat >= 0) & (flat < x.shape[-1])
        picked = np.where(valid, x[..., np.where(valid, flat, 0)], np.zeros((), x.dtype))
        return [picked.reshape(self.infer(node, [_like(x), _like(indices)])[0][0])]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, indices = graph.input_tensors(node)
        y = graph.tensor(node.outputs[0])
        weights, arrays = {}, {}
        for key, tensor in (("x", x), ("indices", indices)):
            if tensor.is_const:
                weights[key] = tensor.data.reshape(-1)
                arrays[key] = names.weight(key)
            else:
                arrays[key] = param_of(node, graph, tensor.name)
        if indices.is_const:  # checked in range: stored as they are, read without a guard
            weights["indices"] = indices.data.reshape(-1).astype(np.uint32)
        context = {"rows": y.size // indices.size, "count": indices.size,
                   "length": x.shape[-1], "x": arrays["x"], "indices": arrays["indices"],
                   "ctype": y.ctype, "guard": not indices.is_const,
                   "note": "" if indices.is_const else
                   f" (an index outside 0..{x.shape[-1] - 1} gives 0)",
                   "x_shape": list(x.shape), "y_shape": list(y.shape)}
        return Kernel(TEMPLATE, context, weights)


def _like(array: np.ndarray) -> Tensor:
    return Tensor("", tuple(array.shape), array.dtype.name)
