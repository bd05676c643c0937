"""ONNX BatchNormalization in inference mode, float32, when no Conv absorbs it (the
fold_batchnorm pass handles that case). With constant statistics it is y = x * s + t per
channel (axis 1), s and t worked out at compile time; statistics fed at run time (as ONNX's
own test cases do) are combined per element instead. The output keeps the input's memory
order: the per-channel arrays are read through strides, with stride 0 on the other axes."""

from __future__ import annotations

import numpy as np

from codegen.compiler.c import c_float, c_index
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    apply_clamp,
    attr,
    clamp_statements,
    describe_clamp,
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.strided import collapse, operand_strides, output_loops

PARAMETERS = ("scale", "bias", "mean", "var")


@register("BatchNormalization")
class BatchNormalization(OpDef):
    limits = "training mode"
    # momentum only matters when training; spatial (before opset 9) must keep its default.
    attributes = frozenset({"epsilon", "momentum", "spatial", "training_mode"})
    accepts_clamp = True

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        if attr(node, "training_mode", 0) or len(node.outputs) > 1:
            raise unsupported(node, "training mode (training_mode=1 or running statistics "
                              "as outputs)", "inference mode: one output, training_mode=0")
        if not attr(node, "spatial", 1):
            raise unsupported(node, "spatial=0", "spatial=1 (statistics per channel)")
        x, *params = graph.input_tensors(node)
        for tensor in (x, *params):
            require_dtype(node, tensor, FLOAT_TYPES)
        if x.is_const:
            raise unsupported(node, "a constant input X with statistics computed at run time",
                              "X computed at run time")
        if x.rank < 2:
            raise unsupported(node, f"a rank-{x.rank} input", "inputs [N, C, ...]")
        for name, tensor in zip(PARAMETERS, params, strict=True):
            if tensor.shape != (x.shape[1],):
                raise unsupported(node, f"{name} of shape {list(tensor.shape)}",
                                  f"one value per channel, [{x.shape[1]}]")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, inputs[0].dtype)]

    def reference(self, node: Node, x, scale, bias, mean, var):
        s, t = scale_and_shift(node, scale, bias, mean, var)
        channel = (1, -1) + (1,) * (x.ndim - 2)
        y = x.astype(np.float64) * s.reshape(channel) + t.reshape(channel)
        return [apply_clamp(node, y.astype(np.float32))]

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        return [None] * len(node.inputs), [x.memory_order]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, *params = graph.input_tensors(node)
        out = graph.tensor(node.outputs[0])
        channel = Tensor("channel", (x.shape[1],) + (1,) * (x.rank - 2), x.dtype)
        bounds, (at, per_channel) = collapse(
            output_loops(out), [operand_strides(out, out), operand_strides(channel, out)])
        weights: dict[str, np.ndarray] = {}
        folded = (scale_and_shift(node, *(p.data for p in params))
                  if all(p.is_const for p in params) else None)
        if folded is not None and fits_float32(*folded):
            s, t = folded
            weights = {"s": s.astype(np.float32), "t": t.astype(np.float32)}
            expr = "x0[{x}] * {s}[{c}] + {t}[{c}]"
            how = "y = x * s + t, s and t per channel computed at compile time"
            arrays = {"s": names.weight("s"), "t": names.weight("t")}
        else:
            expr = ("(x0[{x}] - {mean}[{c}]) / sqrtf({var}[{c}] + {eps}) * {scale}[{c}]"
                    " + {bias}[{c}]")
            how = ("y = (x - mean) / sqrt(var + epsilon) * scale + bias, statistics at run time"
                   if folded is None else "y = (x - mean) / sqrt(var + epsilon) * scale + bias "
                   "in the model's order (scale / sqrt(var + epsilon) exceeds float32)")
            arrays = {}
            for key, tensor in zip(PARAMETERS, params, strict=True):
                if tensor.is_const:
                    weights[key] = tensor.data.astype(np.float32)
                    arrays[key] = names.weight(key)
                else:
                    arrays[key] = param_of(node, graph, tensor.name)
        context = {
            "bounds": bounds, "index": c_index(at),
            "expr": expr.format(x=c_index(at), c=c_index(per_channel),
                                eps=c_float(attr(node, "epsilon", 1e-5)), **arrays),
            "how": how + describe_clamp(node.clamp),
            "shape": list(x.shape), "order": list(out.memory_order),
            "clamp": clamp_statements("v", node.clamp, "float"),
        }
        return Kernel("kernels/batchnorm_f32.c.j2", context, weights)


def fits_float32(*arrays: np.ndarray) -> bool:
    """Whether values computed in float64 at compile time stay finite as float32. A scale
    near float32's largest value divided by a standard deviation below 1 does not: folded,
    it would be infinite where the model's own order of operations stays finite."""
    with np.errstate(over="ignore"):
        return all(np.isfinite(np.asarray(a).astype(np.float32)).all() for a in arrays)


def scale_and_shift(node: Node, scale, bias, mean, var) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel s and t of y = x * s + t, in float64 (rounded once, when stored)."""
    epsilon = attr(node, "epsilon", 1e-5)
    s = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + epsilon)
    return s, bias.astype(np.float64) - mean.astype(np.float64) * s
