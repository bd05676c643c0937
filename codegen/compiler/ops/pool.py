"""ONNX AveragePool and MaxPool (1-D and 2-D windows, channels-last like Conv), and
GlobalAveragePool and GlobalMaxPool. A window that covers the whole input, as the pooling at
the end of most classifiers does, is lowered as a reduction over the spatial axes.

int8 (one scale and zero point per tensor): the maxima move values unchanged, so input and
output share their parameters. An average is integer only: per output element and channel
the taps on the input are summed in int32, (taps on the input) * z_x is subtracted (a tap
on the padding is a real 0, so it adds nothing), and the sum is requantized with the
multiplier s_x / (s_y * count), count being the divisor ONNX uses (with or without the
padding). Where windows at the borders count differently, each distinct (taps on the input,
divisor) pair of a row and of a column is a class, and the few classes' offsets, multipliers
and shifts are small tables indexed by output row and column; otherwise they are literals.
On a core with the DSP extension, windows of at most 256 taps sum four channels per tap with
two SXTAB16 into 16-bit halves, which cannot overflow there: the same exact sums."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_literal
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
from codegen.compiler.ops.quantize import c_add, describe_quant, int8_quantized
from codegen.compiler.ops.reduce import (
    MAX,
    MAX_SUMMED,
    MEAN,
    Reduction,
    check_int8,
    integer_sum,
    lower_reduction,
    reduce_reference,
    reduce_reference_s8,
    reduced_order,
    reduced_shape,
)
from codegen.compiler.ops.spatial import Window, output_spatial, window
from codegen.compiler.quant.fixedpoint import requantize
from codegen.compiler.quant.output_stage import OutputStage, output_stage, scale_of, zero_point_of

WINDOW_ATTRIBUTES = frozenset({"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                               "strides"})


@dataclass(frozen=True)
class Pooling:
    """What tells AveragePool from MaxPool: how a window's values are combined, the data
    types the kernel handles, and the attributes beyond the window's own."""

    reduction: Reduction
    dtypes: tuple[str, ...]
    extra_attributes: frozenset[str]
    summary: str


AVERAGE = Pooling(MEAN, FLOAT_TYPES, frozenset({"count_include_pad"}), "average")
# A maximum needs no arithmetic, so the integer types come for free.
MAXIMUM = Pooling(MAX, ("float32", "int8", "uint8"), frozenset({"storage_order"}), "maximum")


def spatial_axes(rank: int) -> tuple[int, ...]:
    return tuple(range(2, rank))


def tap_positions(win: Window, axis: int) -> np.ndarray:
    """Input coordinate of each (output position, kernel tap) along `axis` (0: H, 1: W)."""
    out = np.arange(win.out_hw[axis])[:, None] * win.strides[axis]
    taps = np.arange(win.kernel[axis])[None, :] * win.dilations[axis]
    return out - win.pads[axis] + taps


def tap_inside(win: Window, axis: int, include_padding: bool) -> np.ndarray:
    """Which taps count: those on the input, or with `include_padding` those on the input
    or its explicit padding (never those past it, which only ceil_mode creates)."""
    position = tap_positions(win, axis)
    low, high = 0, win.in_hw[axis]
    if include_padding:
        low, high = -win.pads[axis], high + win.pads[axis + 2]
    return (position >= low) & (position < high)


def tap_counts(win: Window, include_padding: bool) -> tuple[np.ndarray, np.ndarray]:
    """How many taps each output row and each output column averages over; a window's
    count is the product of its row's and its column's."""
    return tuple(tap_inside(win, axis, include_padding).sum(axis=1) for axis in (0, 1))


def is_whole_input(win: Window) -> bool:
    """True when the one window is exactly the input: no padding, every value once."""
    return (win.out_hw == (1, 1) and win.kernel == win.in_hw and not any(win.pads)
            and all(d == 1 or k == 1 for d, k in zip(win.dilations, win.kernel, strict=True)))


@dataclass(frozen=True)
class AverageClasses:
    """The int8 output stage of an AveragePool. Output rows fall into `n_rows` classes and
    columns into `n_cols` by their (taps on the input, divisor) pair; window class
    row class * n_cols + column class has the offset -(taps on the input) * z_x and the
    multiplier s_x / (s_y * divisor)."""

    row_class: np.ndarray  # class of each output row
    col_class: np.ndarray  # class of each output column
    n_rows: int
    n_cols: int
    offsets: np.ndarray  # int32 per window class
    stage: OutputStage  # one multiplier and shift per window class

    def apply(self, sums: np.ndarray) -> np.ndarray:
        """Window sums [N, C, OH, OW] (int64) to int8 outputs."""
        k = self.row_class[:, None] * self.n_cols + self.col_class[None, :]
        s = self.stage
        acc = np.asarray(sums, np.int64) + self.offsets[k].astype(np.int64)
        return requantize(acc, s.multipliers[k].astype(np.int64), s.shifts[k].astype(np.int64),
                          s.zero_point, s.low, s.high).astype(np.int8)


def average_classes(graph: Graph, node: Node, win: Window, include_padding: bool
                    ) -> AverageClasses:
    x = graph.tensor(node.inputs[0])
    classes = []
    for axis in (0, 1):
        pairs = list(zip(tap_inside(win, axis, False).sum(axis=1).tolist(),
                         tap_inside(win, axis, include_padding).sum(axis=1).tolist(),
                         strict=True))
        distinct = sorted(set(pairs))
        classes.append((distinct, np.array([distinct.index(p) for p in pairs], np.int64)))
    (rows, row_class), (cols, col_class) = classes
    taps = np.array([r[0] * c[0] for r in rows for c in cols], np.int64)
    if taps.max() > MAX_SUMMED:
        raise unsupported(node, f"an int8 average over {taps.max()} taps",
                          f"at most {MAX_SUMMED} (an int32 accumulator)")
    divisors = np.array([r[1] * c[1] for r in rows for c in cols], np.float64)
    reals = float(scale_of(x)) / float(scale_of(graph.tensor(node.outputs[0]))) / divisors
    return AverageClasses(row_class, col_class, len(rows), len(cols),
                          (-taps * zero_point_of(x)).astype(np.int32),
                          output_stage(graph, node, reals))


class WindowPool(OpDef):
    """AveragePool or MaxPool, as its Pooling entry says."""

    int8 = True

    def __init__(self, pooling: Pooling):
        self.pooling = pooling
        self.dtypes = pooling.dtypes
        self.attributes = WINDOW_ATTRIBUTES | pooling.extra_attributes
        self.int8_same_scale = pooling is MAXIMUM
        self.limits = "3-D and higher windows" + (
            "; the Indices output; storage_order 1" if pooling is MAXIMUM else "")

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        if not check_int8(node, graph, self.pooling.reduction):
            require_dtype(node, x, self.pooling.dtypes)
        if len(node.outputs) > 1:
            raise unsupported(node, "the Indices output", "the pooled values only")
        if attr(node, "storage_order", 0) != 0:
            raise unsupported(node, "storage_order 1 (column-major indices)", "storage_order 0")
        if x.rank not in (3, 4):
            raise unsupported(node, f"{x.rank - 2}-D pooling", "1-D and 2-D")
        win = self.geometry(node, x.shape)
        if any(not count.all() for count in tap_counts(win, include_padding=False)):
            raise unsupported(node, f"a window that lies wholly in the padding "
                              f"({win.describe()})", "windows that overlap the input")

    def geometry(self, node: Node, shape: tuple[int, ...]) -> Window:
        return window(node, tuple(shape[2:]), tuple(attr(node, "kernel_shape", ())),
                      bool(attr(node, "ceil_mode", 0)))

    def include_padding(self, node: Node) -> bool:
        return self.pooling is AVERAGE and bool(attr(node, "count_include_pad", 0))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x = inputs[0]
        win = self.geometry(node, x.shape)
        return [((*x.shape[:2], *output_spatial(win, x.rank - 2)), x.dtype)]

    def reference(self, node: Node, x):
        win = self.geometry(node, x.shape)
        identity = self.pooling.reduction.identity(x.dtype)
        y = self.pooling.reduction.combine(
            _taps(win, x.astype(np.float64) if x.dtype.kind == "f" else x, identity),
            axis=(3, 5))
        if self.pooling.reduction.divides:
            count_h, count_w = tap_counts(win, self.include_padding(node))
            y = y / (count_h[:, None] * count_w[None, :])
        return [y.astype(x.dtype).reshape(*x.shape[:2], *output_spatial(win, x.ndim - 2))]

    def reference_s8(self, node: Node, graph: Graph, x):
        if self.pooling is MAXIMUM:
            return self.reference(node, x)
        win = self.geometry(node, x.shape)
        if is_whole_input(win):
            axes = spatial_axes(x.ndim)
            integer = integer_sum(MEAN, graph, node, int(np.prod([x.shape[a] for a in axes])))
            return [reduce_reference_s8(MEAN, x, axes, True, integer)]
        sums = _taps(win, x.astype(np.int64), 0).sum(axis=(3, 5))
        y = average_classes(graph, node, win, self.include_padding(node)).apply(sums)
        return [y.reshape(*x.shape[:2], *output_spatial(win, x.ndim - 2))]

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        if is_whole_input(self.geometry(node, x.shape)):
            return [None], [reduced_order(x, spatial_axes(x.rank), keepdims=True)]
        return [channels_last(x.rank)], [channels_last(x.rank)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        win = self.geometry(node, x.shape)
        if is_whole_input(win):
            count = win.kernel[0] * win.kernel[1]
            return lower_reduction(self.pooling.reduction, x, y, spatial_axes(x.rank),
                                   f"{self.pooling.summary} over a window that is the whole "
                                   f"input ({win.describe()})",
                                   integer_sum(self.pooling.reduction, graph, node, count))
        inside = [tap_inside(win, axis, False) for axis in (0, 1)]
        context = {
            "ctype": x.ctype, "dtype": x.dtype, "n": x.shape[0], "channels": x.shape[1],
            "ih": win.in_hw[0], "iw": win.in_hw[1], "oh": win.out_hw[0], "ow": win.out_hw[1],
            "kh": win.kernel[0], "kw": win.kernel[1],
            "iy": _position(win, 0, "oy", "ky"), "ix": _position(win, 1, "ox", "kx"),
            "check_h": not inside[0].all(), "check_w": not inside[1].all(),
            "geometry": win.describe() + (", ceil_mode" if attr(node, "ceil_mode", 0) else ""),
            "init": _literal(self.pooling.reduction.identity(np.dtype(x.dtype)), x.ctype),
            "fold": self.pooling.reduction.fold("out[c]", "xp[c]", x.ctype),
            "divisor": None, "summary": f"{self.pooling.summary} of the taps on the input",
            **_max_words(self.pooling, x, win, inside),
        }
        weights: dict[str, np.ndarray] = {}
        if self.pooling.reduction.divides:
            include = self.include_padding(node)
            context["summary"] = ("average, dividing by the taps on the input or its padding"
                                  if include else context["summary"])
            if int8_quantized(y):
                return _lower_average_s8(node, graph, names, win, context)
            context["divisor"], weights = _divisor(win, include, names)
        return Kernel("kernels/pool_window.c.j2", context, weights)


def _taps(win: Window, x: np.ndarray, outside) -> np.ndarray:
    """Every window's taps, [N, C, out row, tap row, out column, tap column]; taps off the
    input hold `outside`."""
    x4 = x.reshape(*x.shape[:2], *win.in_hw)
    rows, cols = (np.clip(tap_positions(win, axis), 0, win.in_hw[axis] - 1) for axis in (0, 1))
    taps = x4[:, :, rows][..., cols]
    inside = (tap_inside(win, 0, False)[:, :, None, None]
              & tap_inside(win, 1, False)[None, None, :, :])
    return np.where(inside, taps, outside)


def _lower_average_s8(node: Node, graph: Graph, names: Names, win: Window, context: dict
                      ) -> Kernel:
    """The int8 AveragePool kernel. Of the offset, multiplier and shift, each one that is
    the same for every window is a literal; the others are tables indexed by window class
    k, found from uint8 class tables of the output row and column. (With count_include_pad
    the divisor is usually the same everywhere and only the offset changes at borders.)"""
    x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    classes = average_classes(graph, node, win, bool(attr(node, "count_include_pad", 0)))
    s = classes.stage
    weights: dict[str, np.ndarray] = {}
    values: dict[str, int | str] = {}
    for key, array in (("offset", classes.offsets), ("mult", s.multipliers),
                       ("shift", s.shifts)):
        if (array == array[0]).all():
            values[key] = int(array[0])
        else:
            weights[key] = array.astype(np.int32)
            values[key] = f"{names.weight(key)}[k]"
    terms = []
    if weights and classes.n_rows > 1:
        weights["row_class"] = classes.row_class.astype(np.uint8)
        scaled = f" * {classes.n_cols}u" if classes.n_cols > 1 else ""
        terms.append(f"{names.weight('row_class')}[oy]{scaled}")
    if weights and classes.n_cols > 1:
        weights["col_class"] = classes.col_class.astype(np.uint8)
        terms.append(f"{names.weight('col_class')}[ox]")
    offset = values["offset"]
    channels = x.shape[1]
    words = channels - channels % 4 if _max_taps(win) <= MAX_HALF_TAPS else 0
    context.update(
        words=words, max_taps=MAX_HALF_TAPS,
        class_index=" + ".join(terms) or None, classes=int(classes.offsets.size),
        acc=c_add("acc", offset) if isinstance(offset, int) else f"acc + {offset}",
        mult_value=values["mult"], shift_value=values["shift"], zero_point=s.zero_point,
        low=s.low, high=s.high,
        x_params=describe_quant(x), y_params=describe_quant(y))
    return Kernel("kernels/pool_average_s8.c.j2", context, weights)


# The most int8 taps whose sum fits a signed 16-bit half: 256 * -128 = -32768 and
# 256 * 127 = 32512. The DSP path sums four channels per tap into two words of such halves.
MAX_HALF_TAPS = 256


def _max_taps(win: Window) -> int:
    """The most taps on the input any window has."""
    rows, cols = (tap_inside(win, axis, False).sum(axis=1) for axis in (0, 1))
    return int(rows.max() * cols.max())


def _max_words(pooling: Pooling, x: Tensor, win: Window, inside: list[np.ndarray]) -> dict:
    """The int8 MaxPool's DSP path: `words` channels (the most that are a multiple of four)
    taken four at a time by ariel_max_s8x4, 0 where there is no such path; and, when every
    window lies wholly in the input (`fixed`), its first tap's coordinates and each tap's
    byte offset from it."""
    channels = x.shape[1]
    words = channels - channels % 4 if pooling is MAXIMUM and x.dtype == "int8" else 0
    fixed = all(axis.all() for axis in inside)
    offsets = [(ky * win.dilations[0] * win.in_hw[1] + kx * win.dilations[1]) * channels
               for ky in range(win.kernel[0]) for kx in range(win.kernel[1])]
    return {"words": words, "fixed": fixed, "offsets": offsets,
            "iy0": _position(win, 0, "oy", "0"), "ix0": _position(win, 1, "ox", "0")}


def _position(win: Window, axis: int, out: str, tap: str) -> str:
    """The C expression for the input coordinate of tap `tap` of output position `out`."""
    terms = [_scaled(out, win.strides[axis])]
    pad = win.pads[axis]
    if pad:
        terms.append(f"- {pad}")
    if tap != "0":
        terms.append(f"+ {_scaled(tap, win.dilations[axis])}")
    return " ".join(terms)


def _scaled(name: str, factor: int) -> str:
    return name if factor == 1 else f"{name} * {factor}"


def _divisor(win: Window, include_padding: bool, names: Names
             ) -> tuple[str, dict[str, np.ndarray]]:
    """The C expression each window's sum is divided by: one constant when every window
    counts the same number of taps (the usual case), else a product of per-row and
    per-column counts read from small tables (small integers, so the product is exact)."""
    constant, tables, weights = 1, [], {}
    for key, index, counts in zip(("count_h", "count_w"), ("oy", "ox"),
                                  tap_counts(win, include_padding), strict=True):
        if (counts == counts[0]).all():
            constant *= int(counts[0])
            continue
        weights[key] = counts.astype(np.float32)
        tables.append(f"{names.weight(key)}[{index}]")
    if not tables:
        return _literal(constant, "float"), weights
    factors = tables + ([_literal(constant, "float")] if constant != 1 else [])
    expression = " * ".join(factors)
    return (f"({expression})" if len(factors) > 1 else expression), weights


def _literal(value, ctype: str) -> str:
    return c_literal(value, ctype)


class GlobalPool(OpDef):
    """GlobalAveragePool or GlobalMaxPool: a reduction over every spatial axis, any rank and
    any memory order; output [N, C, 1, ...]."""

    int8 = True

    def __init__(self, pooling: Pooling):
        self.pooling = pooling
        self.dtypes = pooling.dtypes
        self.int8_same_scale = pooling is MAXIMUM

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        if not check_int8(node, graph, self.pooling.reduction):
            require_dtype(node, x, FLOAT_TYPES)
        if x.rank < 3:
            raise unsupported(node, f"a rank-{x.rank} input", "inputs [N, C, spatial...]")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x = inputs[0]
        return [(reduced_shape(x.shape, spatial_axes(x.rank), True), x.dtype)]

    def reference(self, node: Node, x):
        return [reduce_reference(self.pooling.reduction, x, spatial_axes(x.ndim), True)]

    def reference_s8(self, node: Node, graph: Graph, x):
        axes = spatial_axes(x.ndim)
        integer = integer_sum(self.pooling.reduction, graph, node,
                              int(np.prod([x.shape[a] for a in axes])))
        return [reduce_reference_s8(self.pooling.reduction, x, axes, True, integer)]

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        return [None], [reduced_order(x, spatial_axes(x.rank), keepdims=True)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        axes = spatial_axes(x.rank)
        return lower_reduction(self.pooling.reduction, x, y, axes,
                               f"{self.pooling.summary} over the spatial axes",
                               integer_sum(self.pooling.reduction, graph, node,
                                           int(np.prod([x.shape[a] for a in axes]))))


add_op("AveragePool", WindowPool(AVERAGE))
add_op("MaxPool", WindowPool(MAXIMUM))
add_op("GlobalAveragePool", GlobalPool(AVERAGE))
add_op("GlobalMaxPool", GlobalPool(MAXIMUM))
