"""ONNX LayerNormalization and InstanceNormalization, float32: each group of values (a row of
the trailing axes from `axis` on; one channel of one sample) is shifted by its mean and scaled
by 1 / sqrt(variance + epsilon), then multiplied by a scale and shifted by a bias.

One kernel serves both, for an input in any memory order: loops over the kept axes outside
(one group each), loops over the normalized axes inside, walked three times per group (the
sum for the mean; the squared deviations from it, a second pass as onnx.reference computes
the variance, which cannot cancel as E[x^2] - E[x]^2 can; the output). The scale and bias
are read through strides against the input's axes (0 where they are broadcast): a
LayerNormalization's aligned to the trailing axes as numpy broadcasts, an
InstanceNormalization's one per channel. LayerNormalization's optional Mean and InvStdDev
outputs are written once per group.

int8 (the QDQ form ONNX Runtime's quantizer gives both: int8 x, an int8 scale with one scale
of its own, an int32 bias): integer only, with the same loops; integer_norm.py has the
arithmetic."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from codegen.compiler.c import c_float, c_index, c_literal
from codegen.compiler.ir import Graph, Node, Tensor, row_major
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    attr,
    is_quantized,
    normalize_axis,
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.integer_norm import IntegerNorm, integer_norm
from codegen.compiler.ops.quantize import describe_quant, int8_quantized
from codegen.compiler.ops.reduce import layout_name
from codegen.compiler.ops.strided import collapse_loops, operand_logical_strides

Axes = tuple[int, ...]
# Where each axis of a parameter lies among the input's axes (None: it is not one of them).
Placement = list[int | None]


class Normalization(OpDef):
    """What LayerNormalization and InstanceNormalization share: statistics over `groups`
    axes, parameters placed against the input, the kernel."""

    int8 = True

    def normalized_axes(self, node: Node, rank: int) -> Axes:
        raise NotImplementedError

    def placement(self, node: Node, rank: int, parameter: Tensor | np.ndarray) -> Placement:
        """For each axis of the input, the parameter's axis that lies along it, or None."""
        raise NotImplementedError

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x, *params = graph.input_tensors(node)
        if x.is_const:
            raise unsupported(node, "a constant input", "an input computed at run time")
        if is_quantized(graph, node):
            if not int8_quantized(x):
                raise unsupported(node, f"input '{x.name}' of type {x.dtype} in int8",
                                  "an int8 input with one scale and zero point")
            self.integer(node, graph)
            return
        for tensor in (x, *params):
            require_dtype(node, tensor, FLOAT_TYPES)

    def integer(self, node: Node, graph: Graph) -> IntegerNorm:
        x = graph.tensor(node.inputs[0])
        axes = self.normalized_axes(node, x.rank)
        return integer_norm(node, graph, math.prod(x.shape[a] for a in axes))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, inputs[0].dtype)]

    def normalize(self, node: Node, x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """numpy in float64, rounded once: y, the mean and 1 / standard deviation (keeping
        the normalized axes as axes of size 1)."""
        axes = self.normalized_axes(node, x.ndim)
        work = x.astype(np.float64)
        mean = work.mean(axis=axes, keepdims=True)
        variance = ((work - mean) ** 2).mean(axis=axes, keepdims=True)
        inverse = 1.0 / np.sqrt(variance + np.float32(attr(node, "epsilon", 1e-5)))
        y = (work - mean) * inverse * self.broadcast(node, x.ndim, scale).astype(np.float64)
        if bias is not None:
            y = y + self.broadcast(node, x.ndim, bias).astype(np.float64)
        return y.astype(x.dtype), mean.astype(x.dtype), inverse.astype(x.dtype)

    def reference_s8(self, node: Node, graph: Graph, x, scale, bias=None):
        return [self.integer(node, graph).apply(
            x, self.normalized_axes(node, x.ndim), scale,
            lambda parameter: self.broadcast(node, x.ndim, parameter))]

    def broadcast(self, node: Node, rank: int, parameter: np.ndarray) -> np.ndarray:
        """A parameter with the input's rank, its axes where placement puts them."""
        where = self.placement(node, rank, parameter)
        shape = [1] * rank
        for axis, own in enumerate(where):
            if own is not None:
                shape[axis] = parameter.shape[own]
        return parameter.reshape(shape)

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        params = graph.input_tensors(node)[1:]
        required = [None] + [None if t is None or t.is_const else row_major(t.rank)
                             for t in params]
        outputs = [self.output_order(x)] + [row_major(graph.tensor(n).rank)
                                            for n in node.outputs[1:]]
        return required, outputs

    def output_order(self, x: Tensor) -> tuple[int, ...]:
        """The memory order of Y (its kernel reads x in any order and writes Y in any)."""
        raise NotImplementedError

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, *params = graph.input_tensors(node)
        axes = self.normalized_axes(node, x.rank)
        integer = self.integer(node, graph) if is_quantized(graph, node) else None
        weights: dict[str, np.ndarray] = {}
        # Each operand's stride along each input axis.
        strides = {"x": list(x.strides), "y": list(graph.tensor(node.outputs[0]).strides)}
        arrays = {}
        for key, tensor in zip(("scale", "bias"), params, strict=False):
            if tensor is None:
                continue
            strides[key] = self.parameter_strides(node, x.rank, tensor)
            if tensor.is_const:
                weights[key] = tensor.data.astype(np.float32) if integer is None else (
                    tensor.data if key == "scale" else integer.bias)
                arrays[key] = names.weight(key)
            else:
                arrays[key] = param_of(node, graph, tensor.name)
        statistics = {what: name for what, name in zip(("mean", "inv_std"), node.outputs[1:],
                                                      strict=False) if name}
        for what, name in statistics.items():
            tensor = graph.tensor(name)  # 1 along the normalized axes: not walked there
            strides[what] = [0 if size == 1 else stride for size, stride in zip(
                tensor.shape, operand_logical_strides(tensor), strict=True)]
        outer_bounds, inner_bounds, at = group_loops(x, axes, strides)
        count = math.prod(x.shape[a] for a in axes)
        context = {
            "outer_bounds": outer_bounds, "inner_bounds": inner_bounds, "x_index": at("x"),
            "y_index": at("y"),
            "groups": math.prod(x.shape[a] for a in range(x.rank) if a not in axes),
            "values": count, "axes": list(axes),
            "x_desc": f"{list(x.shape)} {layout_name(x)}",
            "y_desc": layout_name(graph.tensor(node.outputs[0])),
        }
        if integer is not None:
            return self.lower_s8(node, graph, names, integer, context, arrays,
                                 {key: at(key) for key in strides}, weights)
        scale = f"{arrays['scale']}[{at('scale')}]"
        value = f"(x0[{at('x')}] - mean) * inv_std * {scale}"
        context.update(
            value=value + (f" + {arrays['bias']}[{at('bias')}]" if "bias" in arrays else ""),
            stores=[f"{param_of(node, graph, name)}[{at(what)}] = {what};"
                    for what, name in statistics.items()],
            count=c_float(count), epsilon=c_float(attr(node, "epsilon", 1e-5)))
        return Kernel("kernels/normalization_f32.c.j2", context, weights)

    def lower_s8(self, node: Node, graph: Graph, names: Names, integer: IntegerNorm,
                 context: dict, arrays: dict[str, str], index: dict[str, str],
                 weights: dict[str, np.ndarray]) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        acc = f"(int32_t)ariel_rounding_shift((int64_t)t * r, {integer.shift})"
        if "bias" in arrays:
            acc += f" + {arrays['bias']}[{index['bias']}]"
        if integer.per_value:  # an output stage per value of the scale, read beside it
            weights.update(mult=integer.multipliers, shift=integer.shifts)
            stage = (f"{names.weight('mult')}[{index['scale']}], "
                     f"{names.weight('shift')}[{index['scale']}]")
        else:
            stage = f"{int(integer.multipliers)}, {int(integer.shifts)}"
        context.update(
            count=integer.count, square_shift=integer.square_shift,
            epsilon_term=c_literal(integer.epsilon_term, "uint64_t"),
            reciprocal_bits=integer.reciprocal_bits,
            gamma=f"{arrays['scale']}[{index['scale']}]", acc=acc,
            requantize=(f"(int8_t)ariel_requantize(acc, {stage}, {integer.zero_point}, "
                        f"{integer.low}, {integer.high})"),
            x_params=describe_quant(x), y_params=describe_quant(y))
        return Kernel("kernels/normalization_s8.c.j2", context, weights)

    def parameter_strides(self, node: Node, rank: int, tensor: Tensor) -> list[int]:
        """The parameter's element stride along each input axis (0 where it is broadcast)."""
        own = operand_logical_strides(tensor)
        strides = [0] * rank
        for axis, index in enumerate(self.placement(node, rank, tensor)):
            if index is not None and tensor.shape[index] != 1:
                strides[axis] = own[index]
        return strides

    def macs(self, node: Node, graph: Graph) -> int:
        return graph.tensor(node.inputs[0]).size


@register("LayerNormalization")
class LayerNormalization(Normalization):
    attributes = frozenset({"axis", "epsilon", "stash_type"})

    def normalized_axes(self, node: Node, rank: int) -> Axes:
        return tuple(range(normalize_axis(attr(node, "axis", -1), rank), rank))

    def output_order(self, x: Tensor) -> tuple[int, ...]:
        # Row-major, whatever the input's order: a transformer's LayerNorm feeds MatMuls,
        # whose fast kernels want the summed (last) axis contiguous.
        return row_major(x.rank)

    def placement(self, node: Node, rank: int, parameter) -> Placement:
        offset = rank - len(parameter.shape)
        return [a - offset if a >= offset else None for a in range(rank)]

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        if attr(node, "stash_type", 1) != 1:
            raise unsupported(node, f"stash_type {attr(node, 'stash_type', 1)}",
                              "stash_type 1 (statistics in float32)")
        x, *params = graph.input_tensors(node)
        axis = attr(node, "axis", -1)
        if not -x.rank <= axis < x.rank:
            raise unsupported(node, f"axis {axis} of a rank-{x.rank} input",
                              f"axes from {-x.rank} to {x.rank - 1}")
        normalized = x.shape[normalize_axis(axis, x.rank):]
        for name, tensor in zip(("Scale", "B"), params, strict=False):
            if tensor is not None and not _broadcasts(tensor.shape, normalized):
                raise unsupported(node, f"{name} of shape {list(tensor.shape)}",
                                  f"a {name} that broadcasts to {list(normalized)}")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x = inputs[0]
        axis = normalize_axis(attr(node, "axis", -1), x.rank)
        statistics = tuple(x.shape[:axis]) + (1,) * (x.rank - axis)
        return [(x.shape, x.dtype)] + [(statistics, x.dtype)] * (len(node.outputs) - 1)

    def reference(self, node: Node, x, scale, bias=None):
        return list(self.normalize(node, x, scale, bias))[:len(node.outputs)]


@register("InstanceNormalization")
class InstanceNormalization(Normalization):
    attributes = frozenset({"epsilon"})

    def normalized_axes(self, node: Node, rank: int) -> Axes:
        return tuple(range(2, rank))

    def output_order(self, x: Tensor) -> tuple[int, ...]:
        # The input's: an InstanceNorm between convolutions keeps their channels-last data.
        return x.memory_order

    def placement(self, node: Node, rank: int, parameter) -> Placement:
        return [0 if a == 1 else None for a in range(rank)]

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x, *params = graph.input_tensors(node)
        if x.rank < 3:
            raise unsupported(node, f"a rank-{x.rank} input", "inputs [N, C, D1, ...]")
        for name, tensor in zip(("scale", "B"), params, strict=True):
            if tensor.shape != (x.shape[1],):
                raise unsupported(node, f"{name} of shape {list(tensor.shape)}",
                                  f"one value per channel, [{x.shape[1]}]")

    def reference(self, node: Node, x, scale, bias):
        return [self.normalize(node, x, scale, bias)[0]]


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """True when `shape` stretches to `target` under numpy's rules (never the other way)."""
    if len(shape) > len(target):
        return False
    return all(size in (1, want) for size, want in zip(reversed(shape), reversed(target),
                                                         strict=False))


def group_loops(x: Tensor, axes: Axes, strides: dict[str, list[int]]
                ) -> tuple[list[int], list[int], Callable[[str], str]]:
    """The loops of a normalization of `x` over `axes`, in x's memory order: over the kept
    axes (variables i0, ...; one group each), then over the normalized ones (j0, ...); and
    the C offset of each operand (its stride along each axis of x in `strides`)."""
    keys = list(strides)
    per_axis = [[0 if x.shape[a] == 1 else strides[key][a] for key in keys]
                for a in range(x.rank)]
    kept = [a for a in x.memory_order if a not in axes]
    inner = [a for a in x.memory_order if a in axes]
    outer_bounds, outer = collapse_loops([x.shape[a] for a in kept],
                                         [[per_axis[a][k] for a in kept] for k in range(len(keys))])
    inner_bounds, walk = collapse_loops([x.shape[a] for a in inner],
                                        [[per_axis[a][k] for a in inner]
                                         for k in range(len(keys))])

    def at(key: str) -> str:
        k = keys.index(key)
        terms = (c_index(outer[k], "i"), c_index(walk[k], "j"))
        return " + ".join(t for t in terms if t != "0") or "0"

    return outer_bounds, inner_bounds, at
