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
outputs are written once per group."""

from __future__ import annotations

import math

import numpy as np

from codegen.compiler.c import c_float, c_index
from codegen.compiler.ir import Graph, Node, Tensor, row_major
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    attr,
    normalize_axis,
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.reduce import layout_name
from codegen.compiler.ops.strided import collapse_loops, operand_logical_strides

Axes = tuple[int, ...]
# Where each axis of a parameter lies among the input's axes (None: it is not one of them).
Placement = list[int | None]


class Normalization(OpDef):
    """What LayerNormalization and InstanceNormalization share: statistics over `groups`
    axes, parameters placed against the input, the kernel."""

    def normalized_axes(self, node: Node, rank: int) -> Axes:
        raise NotImplementedError

    def placement(self, node: Node, rank: int, parameter: Tensor | np.ndarray) -> Placement:
        """For each axis of the input, the parameter's axis that lies along it, or None."""
        raise NotImplementedError

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x, *params = graph.input_tensors(node)
        for tensor in (x, *params):
            require_dtype(node, tensor, FLOAT_TYPES)
        if x.is_const:
            raise unsupported(node, "a constant input", "an input computed at run time")

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
        y = (work - mean) * inverse * self.broadcast(node, x.ndim, scale)
        if bias is not None:
            y = y + self.broadcast(node, x.ndim, bias)
        return y.astype(x.dtype), mean.astype(x.dtype), inverse.astype(x.dtype)

    def broadcast(self, node: Node, rank: int, parameter: np.ndarray) -> np.ndarray:
        """A parameter with the input's rank, its axes where placement puts them."""
        where = self.placement(node, rank, parameter)
        shape = [1] * rank
        for axis, own in enumerate(where):
            if own is not None:
                shape[axis] = parameter.shape[own]
        return parameter.astype(np.float64).reshape(shape)

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        params = graph.input_tensors(node)[1:]
        required = [None] + [None if t is None or t.is_const else row_major(t.rank)
                             for t in params]
        outputs = [x.memory_order] + [row_major(graph.tensor(n).rank) for n in node.outputs[1:]]
        return required, outputs

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, *params = graph.input_tensors(node)
        axes = self.normalized_axes(node, x.rank)
        weights: dict[str, np.ndarray] = {}
        # Each operand's stride along each input axis; y has x's memory order, so x's.
        strides = {"x": list(x.strides)}
        arrays = {}
        for key, tensor in zip(("scale", "bias"), params, strict=False):
            if tensor is None:
                continue
            strides[key] = self.parameter_strides(node, x.rank, tensor)
            if tensor.is_const:
                weights[key] = tensor.data.astype(np.float32)
                arrays[key] = names.weight(key)
            else:
                arrays[key] = param_of(node, graph, tensor.name)
        statistics = {what: name for what, name in zip(("mean", "inv_std"), node.outputs[1:],
                                                      strict=False) if name}
        for what, name in statistics.items():
            tensor = graph.tensor(name)  # 1 along the normalized axes: not walked there
            strides[what] = [0 if size == 1 else stride for size, stride in zip(
                tensor.shape, operand_logical_strides(tensor), strict=True)]
        keys = list(strides)
        per_axis = [[0 if x.shape[a] == 1 else strides[key][a] for key in keys]
                    for a in range(x.rank)]
        kept = [a for a in x.memory_order if a not in axes]
        inner = [a for a in x.memory_order if a in axes]
        outer_bounds, outer = collapse_loops([x.shape[a] for a in kept],
                                             [[per_axis[a][k] for a in kept]
                                              for k in range(len(keys))])
        inner_bounds, walk = collapse_loops([x.shape[a] for a in inner],
                                            [[per_axis[a][k] for a in inner]
                                             for k in range(len(keys))])

        def at(key: str) -> str:
            k = keys.index(key)
            terms = (c_index(outer[k], "i"), c_index(walk[k], "j"))
            return " + ".join(t for t in terms if t != "0") or "0"

        value = f"(x0[{at('x')}] - mean) * inv_std * {arrays['scale']}[{at('scale')}]"
        if "bias" in arrays:
            value += f" + {arrays['bias']}[{at('bias')}]"
        stores = [f"{param_of(node, graph, name)}[{at(what)}] = {what};"
                  for what, name in statistics.items()]
        count = math.prod(x.shape[a] for a in axes)
        context = {
            "outer_bounds": outer_bounds, "inner_bounds": inner_bounds,
            "x_index": at("x"), "value": value, "stores": stores,
            "count": c_float(count), "epsilon": c_float(attr(node, "epsilon", 1e-5)),
            "groups": math.prod(x.shape[a] for a in range(x.rank) if a not in axes),
            "values": count, "axes": list(axes),
            "x_desc": f"{list(x.shape)} {layout_name(x)}",
        }
        return Kernel("kernels/normalization_f32.c.j2", context, weights)

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
