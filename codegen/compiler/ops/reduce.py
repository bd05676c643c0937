"""ONNX ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceSumSquare, ReduceL1,
ReduceL2, ReduceLogSum and ReduceLogSumExp over any axes of a tensor in any memory order,
float32 (and int8 for the first four). They differ only in their Reduction entry; the kernel
and its lowering are shared, also with the pooling operators whose window covers the whole
input.

int8 (one scale and zero point per tensor): ReduceMax and ReduceMin move values unchanged, so
their input and output share their parameters. A sum or mean of n values is integer only:
the values are summed in int32 (exact while n * 255 < 2**31), n * z_x is subtracted, and the
output stage requantizes with the multiplier s_x / (s_y * n) for a mean (s_x / s_y for a
sum), rounding once by the shared rule. Each output element has its own accumulator in a
register, so a global average pool of an NHWC tensor is, per channel, one loop over H * W
values. The other reductions are not linear in the quantized values; ONNX Runtime's
quantizer leaves them in float too.

ReduceLogSumExp subtracts each output element's largest value before expf (a first pass over
its values) so that large inputs cannot overflow, as ONNX's reference and ONNX Runtime do.
With noop_with_empty_axes and no axes, each value is its own output element: the elementwise
part still applies (ReduceL2 gives |x|, ReduceSumSquare x * x), as in ONNX's reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_index, c_literal
from codegen.compiler.ir import Graph, Node, Tensor, channels_last
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    add_op,
    attr,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.quantize import c_add, int8_quantized
from codegen.compiler.ops.strided import collapse_loops, operand_strides, output_loops
from codegen.compiler.quant.output_stage import OutputStage, output_stage, scale_of, zero_point_of

Axes = tuple[int, ...]


@dataclass(frozen=True)
class Reduction:
    """How values are combined: the starting value for a data type, the C statement that
    folds value `v` into accumulator `acc`, numpy's equivalent (on float64 for floats),
    whether the result is divided by the number of values (a mean), the C expression that
    finishes an accumulator `acc` (a square root, a logarithm), whether the values are
    shifted by their maximum `largest` first (log-sum-exp), and whether the reduction has an
    int8 kernel."""

    name: str
    identity: Callable[[np.dtype], float | int]
    fold: Callable[[str, str, str], str]  # (acc, v, the values' C type)
    combine: Callable[..., np.ndarray]
    divides: bool = False
    finish: Callable[[str], str] | None = None
    shifted: bool = False
    int8: bool = False


def _lowest(dtype: np.dtype) -> float | int:
    return -np.inf if np.issubdtype(dtype, np.floating) else int(np.iinfo(dtype).min)


def _highest(dtype: np.dtype) -> float | int:
    return np.inf if np.issubdtype(dtype, np.floating) else int(np.iinfo(dtype).max)


def _add(acc: str, v: str, ctype: str) -> str:
    return f"{acc} += {v};"


def _keep(compare: str) -> Callable[[str, str, str], str]:
    """Keep `v` where it compares `compare` to `acc`; on floats a NaN is kept too, and then
    stays (no value compares to it), as numpy's max and min propagate NaN: without that
    test a maximum of NaNs would be the starting -inf."""

    def fold(acc: str, v: str, ctype: str) -> str:
        nan = f" || {v} != {v}" if ctype == "float" else ""
        return f"{acc} = {v} {compare} {acc}{nan} ? {v} : {acc};"

    return fold


def _log_sum_exp(x: np.ndarray, axis: Axes, keepdims: bool) -> np.ndarray:
    largest = np.max(x, axis=axis, keepdims=True)
    y = largest + np.log(np.sum(np.exp(x - largest), axis=axis, keepdims=True))
    return y if keepdims else np.squeeze(y, axis)


SUM = Reduction("sum", lambda dtype: 0, _add, np.sum, int8=True)
MEAN = Reduction("mean", lambda dtype: 0, _add, np.sum, divides=True, int8=True)
MAX = Reduction("max", _lowest, _keep(">"), np.max, int8=True)
MIN = Reduction("min", _highest, _keep("<"), np.min, int8=True)
PROD = Reduction("product", lambda dtype: 1, lambda acc, v, ctype: f"{acc} *= {v};", np.prod)
SUM_SQUARE = Reduction("sum of squares", lambda dtype: 0,
                       lambda acc, v, ctype: f"{acc} += {v} * {v};",
                       lambda x, **kw: np.sum(x * x, **kw))
L1 = Reduction("sum of magnitudes", lambda dtype: 0,
               lambda acc, v, ctype: f"{acc} += fabsf({v});",
               lambda x, **kw: np.sum(np.abs(x), **kw))
L2 = Reduction("Euclidean norm", lambda dtype: 0, lambda acc, v, ctype: f"{acc} += {v} * {v};",
               lambda x, **kw: np.sqrt(np.sum(x * x, **kw)), finish=lambda acc: f"sqrtf({acc})")
LOG_SUM = Reduction("log of the sum", lambda dtype: 0, _add,
                    lambda x, **kw: np.log(np.sum(x, **kw)), finish=lambda acc: f"logf({acc})")
LOG_SUM_EXP = Reduction("log of the sum of exponentials", lambda dtype: 0,
                        lambda acc, v, ctype: f"{acc} += expf({v} - largest);",
                        lambda x, axis, keepdims: _log_sum_exp(x, axis, keepdims),
                        finish=lambda acc: f"largest + logf({acc})", shifted=True)

REDUCTIONS = {"ReduceMean": MEAN, "ReduceSum": SUM, "ReduceMax": MAX, "ReduceMin": MIN,
              "ReduceProd": PROD, "ReduceSumSquare": SUM_SQUARE, "ReduceL1": L1,
              "ReduceL2": L2, "ReduceLogSum": LOG_SUM, "ReduceLogSumExp": LOG_SUM_EXP}
# Reductions that move one of their values unchanged (int8: same scale on both sides).
SELECTING = (MAX, MIN)


def reduce_reference(reduction: Reduction, x: np.ndarray, axes: Axes, keepdims: bool
                     ) -> np.ndarray:
    """numpy reduction; float sums are accumulated in double and rounded once."""
    work = x.astype(np.float64) if x.dtype.kind == "f" else x
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = reduction.combine(work, axis=axes, keepdims=keepdims)
    if reduction.divides:
        y = y / _count(x.shape, axes)
    return np.asarray(y).astype(x.dtype)


@dataclass(frozen=True)
class IntegerSum:
    """How an int8 sum or mean of `count` values ends: (int32 sum + offset) requantized by
    `stage`, where offset = -count * z_x removes the input's zero point."""

    count: int
    offset: int
    stage: OutputStage

    def apply(self, sums: np.ndarray) -> np.ndarray:
        return self.stage.apply(np.asarray(sums, np.int64) + self.offset)

    def result(self, acc: str) -> str:
        """The C expression of the int8 result for accumulator `acc`."""
        s = self.stage
        return (f"(int8_t)ariel_requantize({c_add(acc, self.offset)}, "
                f"{int(s.multipliers[0])}, {int(s.shifts[0])}, {s.zero_point}, {s.low}, "
                f"{s.high})")


# The largest number of int8 values whose sum (less count * zero point) fits int32.
MAX_SUMMED = (2**31 - 1) // 256


def integer_sum(reduction: Reduction, graph: Graph, node: Node, count: int
                ) -> IntegerSum | None:
    """The IntegerSum of a quantized sum or mean over `count` values; None for anything
    else (float, or a maximum, which needs no arithmetic)."""
    x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    if reduction in SELECTING or not (int8_quantized(x) and int8_quantized(y)):
        return None
    if count > MAX_SUMMED:
        raise unsupported(node, f"an int8 {reduction.name} over {count} values",
                          f"at most {MAX_SUMMED} values (an int32 accumulator)")
    real = float(scale_of(x)) / float(scale_of(y)) / (count if reduction.divides else 1)
    return IntegerSum(count, -count * zero_point_of(x), output_stage(graph, node, [real]))


def check_int8(node: Node, graph: Graph, reduction: Reduction) -> bool:
    """True when the node runs on int8 (checked: both sides quantized per tensor, and a
    maximum or minimum keeps its parameters)."""
    x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    if not (reduction.int8 and int8_quantized(x) and int8_quantized(y)):
        return False
    if reduction in SELECTING and (float(scale_of(x)), zero_point_of(x)) != (
            float(scale_of(y)), zero_point_of(y)):
        raise unsupported(node, f"an int8 {reduction.name} with different input and output "
                          f"scales", "the same scale and zero point on both sides")
    return True


def reduce_reference_s8(reduction: Reduction, x: np.ndarray, axes: Axes, keepdims: bool,
                        integer: IntegerSum | None) -> np.ndarray:
    """The integer reference: a maximum as is, a sum or mean through `integer`."""
    if integer is None:
        return reduce_reference(reduction, x, axes, keepdims)
    return integer.apply(np.sum(x.astype(np.int64), axis=axes, keepdims=keepdims))


def reduced_shape(shape: tuple[int, ...], axes: Axes, keepdims: bool) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if a in axes else n for a, n in enumerate(shape))
    return tuple(n for a, n in enumerate(shape) if a not in axes)


def reduced_order(x: Tensor, axes: Axes, keepdims: bool) -> tuple[int, ...]:
    """The output's memory order: the kept axes in the order the input stores them, so
    both are walked the same way (with keepdims the input's order itself)."""
    if keepdims:
        return x.memory_order
    kept = _kept_axes(x.rank, axes)
    return tuple(kept.index(a) for a in x.memory_order if a in kept)


def lower_reduction(reduction: Reduction, x: Tensor, y: Tensor, axes: Axes, heading: str,
                    integer: IntegerSum | None = None) -> Kernel:
    """The kernel that reduces `x` over `axes` into `y`, whatever their memory orders.

    When the reduced axes include the input's innermost one, each output element is
    accumulated in a register over inner loops (reduce_inner). Otherwise a kept axis is
    innermost, so the input is walked once in memory order and each value folded into its
    output element (reduce_outer): global pooling of an NHWC tensor becomes a sum over H*W
    of contiguous rows of C channels. An int8 sum or mean (`integer`) always accumulates in
    a register (int32, where y's int8 elements could not hold the sum)."""
    count = _count(x.shape, axes)
    divisor = _divisor(reduction, count)
    context = {
        "ctype": x.ctype, "acc_ctype": x.ctype, "heading": heading,
        "x_desc": f"{list(x.shape)} {layout_name(x)}",
        "y_desc": f"{list(y.shape)} {layout_name(y)}",
        "init": _literal(reduction.identity(np.dtype(x.dtype)), x.ctype),
        "values": f"{count} value{'s' if count != 1 else ''} per output element",
    }
    if integer is not None:
        s = integer.stage
        context.update(acc_ctype="int32_t", values=context["values"] + (
            f"; int8: (int32 sum - {count} * zx) requantized by {int(s.multipliers[0])} * "
            f"2^-{int(s.shifts[0])}, zero point {s.zero_point}, range [{s.low}, {s.high}]"))
        return _lower_inner(reduction, x, y, axes, None, context, integer)
    moving = [a for a in x.memory_order if x.shape[a] != 1]
    # A shifted reduction needs each output element's largest value before its sum.
    if reduction.shifted or not moving or moving[-1] in axes:
        return _lower_inner(reduction, x, y, axes, divisor, context)
    return _lower_outer(reduction, x, y, axes, divisor, context)


def _result(reduction: Reduction, acc: str, divisor: str | None) -> str:
    """The C expression of an output element from its float accumulator `acc`."""
    value = f"{acc} / {divisor}" if divisor else acc
    return reduction.finish(value) if reduction.finish else value


@dataclass(frozen=True)
class InnerLoops:
    """A reduction walked with the output outermost: `bounds` visit the output in its memory
    order (variables i0, i1, ...), `inner` the reduced axes of the input in its memory order
    (j0, j1, ...); `x_first` is the C offset of an output element's first value, `x_index`
    of its value at j, and `y_index` of the output element."""

    bounds: list[int]
    inner: list[int]
    x_first: str
    x_index: str
    y_index: str


def inner_loops(x: Tensor, y: Tensor, axes: Axes) -> InnerLoops:
    """The loops that reduce `x` over `axes` into `y`, one output element at a time, for
    any memory orders of the two."""
    source = _source_axes(x.rank, y.rank, axes)
    x_strides = x.strides
    bounds, (x_outer, y_outer) = collapse_loops(
        output_loops(y), [[x_strides[source[a]] for a in y.memory_order],
                          operand_strides(y, y)])
    reduced = [a for a in x.memory_order if a in axes]
    inner, (x_inner,) = collapse_loops([x.shape[a] for a in reduced],
                                       [[x_strides[a] for a in reduced]])
    first = c_index(x_outer, "i")
    x_index = " + ".join(t for t in (first, c_index(x_inner, "j")) if t != "0") or "0"
    return InnerLoops(bounds, inner, first, x_index, c_index(y_outer, "i"))


def _lower_inner(reduction: Reduction, x: Tensor, y: Tensor, axes: Axes, divisor: str | None,
                 context: dict, integer: IntegerSum | None = None) -> Kernel:
    """Output elements in the output's memory order; the reduced axes as inner loops."""
    loops = inner_loops(x, y, axes)
    context.update(
        bounds=loops.bounds, inner_bounds=loops.inner, x_index=loops.x_index,
        y_index=loops.y_index, fold=reduction.fold("acc", "v", x.ctype),
        result=integer.result("acc") if integer else _result(reduction, "acc", divisor),
        largest=_literal(-np.inf, x.ctype) if reduction.shifted else None,
        strategy="one accumulator per output element, the reduced axes as inner loops" + (
            ", the largest value found first and subtracted" if reduction.shifted else ""))
    return Kernel("kernels/reduce_inner.c.j2", context)


def _lower_outer(reduction: Reduction, x: Tensor, y: Tensor, axes: Axes, divisor: str | None,
                 context: dict) -> Kernel:
    """The input walked in its memory order, each value folded into its output element."""
    target = _target_axes(x.rank, y.rank, axes)
    y_strides = y.strides
    order = x.memory_order
    bounds, (x_walk, y_walk) = collapse_loops(
        [x.shape[a] for a in order],
        [[x.strides[a] for a in order],
         [0 if a in axes else y_strides[target[a]] for a in order]])
    context.update(
        bounds=bounds, x_index=c_index(x_walk), y_size=y.size,
        fold=reduction.fold(f"y0[{c_index(y_walk)}]", "v", x.ctype),
        finish=(None if divisor is None and reduction.finish is None
                else _result(reduction, "y0[i]", divisor)),
        strategy="a kept axis innermost: x walked in memory order, folded into y")
    return Kernel("kernels/reduce_outer.c.j2", context)


def _count(shape: tuple[int, ...], axes: Axes) -> int:
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _divisor(reduction: Reduction, count: int) -> str | None:
    """The C literal a mean divides by; None when there is nothing to divide."""
    if not reduction.divides or count == 1:
        return None
    return _literal(count, "float")


def _literal(value, ctype: str) -> str:
    return c_literal(value, ctype)


def _kept_axes(rank: int, axes: Axes) -> list[int]:
    return [a for a in range(rank) if a not in axes]


def _source_axes(x_rank: int, y_rank: int, axes: Axes) -> list[int]:
    """The input axis that each output axis comes from."""
    return list(range(x_rank)) if y_rank == x_rank else _kept_axes(x_rank, axes)


def _target_axes(x_rank: int, y_rank: int, axes: Axes) -> dict[int, int]:
    """The output axis that each kept input axis goes to."""
    return {a: k for k, a in enumerate(_source_axes(x_rank, y_rank, axes))}


def layout_name(t: Tensor) -> str:
    if t.is_row_major:
        return "row-major"
    moving = [a for a in t.memory_order if t.shape[a] != 1]
    if moving == [a for a in channels_last(t.rank) if t.shape[a] != 1]:
        return "channels-last"
    return f"in memory order {list(t.memory_order)}"


class ReduceOp(OpDef):
    """A Reduce* operator. Axes come as an attribute up to opset 17 (12 for ReduceSum) and
    as an optional second input after; that input must be a constant."""

    attributes = frozenset({"axes", "keepdims", "noop_with_empty_axes"})

    def __init__(self, reduction: Reduction):
        self.reduction = reduction
        self.int8 = reduction.int8
        self.int8_same_scale = reduction in SELECTING

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x, *rest = graph.input_tensors(node)
        if not check_int8(node, graph, self.reduction):
            require_dtype(node, x, FLOAT_TYPES)
        if rest and rest[0] is not None and not rest[0].is_const:
            raise unsupported(node, "axes computed at run time", "constant axes")
        self.axes(node, x.rank, rest[0].data if rest and rest[0] is not None else None)

    def axes(self, node: Node, rank: int, axes_input: np.ndarray | None) -> Axes:
        """The reduced axes, sorted and non-negative; () means "copy" (noop_with_empty_axes)."""
        listed = attr(node, "axes", None)
        if axes_input is not None:
            listed = [int(a) for a in np.asarray(axes_input).reshape(-1)]
        if not listed:
            return () if attr(node, "noop_with_empty_axes", 0) else tuple(range(rank))
        if any(not -rank <= a < rank for a in listed):
            raise unsupported(node, f"axes {list(listed)} for a rank-{rank} input",
                              f"axes in [{-rank}, {rank - 1}]")
        return tuple(sorted({a % rank for a in listed}))

    def _resolve(self, node: Node, rank: int, inputs: list) -> tuple[Axes, bool]:
        axes_input = inputs[1] if len(inputs) > 1 else None
        if isinstance(axes_input, Tensor):
            axes_input = axes_input.data
        return self.axes(node, rank, axes_input), bool(attr(node, "keepdims", 1))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x = inputs[0]
        axes, keepdims = self._resolve(node, x.rank, inputs)
        return [(reduced_shape(x.shape, axes, keepdims), x.dtype)]

    def reference(self, node: Node, x, *rest):
        axes, keepdims = self._resolve(node, x.ndim, [x, *rest])
        return [reduce_reference(self.reduction, x, axes, keepdims)]

    def reference_s8(self, node: Node, graph: Graph, x, *rest):
        axes, keepdims = self._resolve(node, x.ndim, [x, *rest])
        integer = integer_sum(self.reduction, graph, node, _count(x.shape, axes))
        return [reduce_reference_s8(self.reduction, x, axes, keepdims, integer)]

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        axes, keepdims = self._resolve(node, x.rank, graph.input_tensors(node))
        return [None] * len(node.inputs), [reduced_order(x, axes, keepdims)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        axes, keepdims = self._resolve(node, x.rank, graph.input_tensors(node))
        heading = (f"{self.reduction.name} over axes {list(axes)}"
                   f"{'' if keepdims else ', axes dropped'}")
        return lower_reduction(self.reduction, x, y, axes, heading,
                               integer_sum(self.reduction, graph, node, _count(x.shape, axes)))


for _op_type, _reduction in REDUCTIONS.items():
    add_op(_op_type, ReduceOp(_reduction))
