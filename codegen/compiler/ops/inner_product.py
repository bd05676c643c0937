"""What the int8 Gemm, MatMul and Conv kernels share: the checks of their operands against
codegen/compiler/quant's scheme, the accumulator's bound, the zero point folded into the bias,
the weights packed in the order the kernels read them (pairs for SMLAD, blocks for float),
and the one output stage (requantize, add the zero point, clamp).

Every one of these kernels has the same shape: an int32 accumulator starts at the int32 bias,
adds (x - zero_point_x) * w over the inner axis, and is requantized once with a per-channel
multiplier and shift."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_term
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import Names, normalize_axis, require_dtype, unsupported
from codegen.compiler.quant.output_stage import OutputStage, output_stage, scale_of, zero_point_of

INT32_MAX = 2**31 - 1
INT8_SPAN = 128  # the largest |q| of an int8 value


def check_s8_product(node: Node, graph: Graph, x: Tensor, w: Tensor, bias: Tensor | None,
                     channel_axis: int | None) -> None:
    """Raise unless the operands follow codegen/compiler/quant's scheme: x, w and the output int8; x
    and the output one scale per tensor; w the same, or if constant symmetric with one
    scale per output channel along `channel_axis` (None: w has no such axis); the bias a
    constant int32 at scale s_x * s_w."""
    out = graph.tensor(node.outputs[0])
    for tensor in (x, w, out):
        require_dtype(node, tensor, ("int8",))
        if tensor.quant is None:
            raise unsupported(node, f"int8 tensor '{tensor.name}' without a scale",
                              "int8 tensors with quantization parameters")
    for tensor in (x, out) if w.is_const else (x, w, out):
        if np.size(tensor.quant.scale) != 1:
            raise unsupported(node, f"per-channel quantization of activation '{tensor.name}'",
                              "one scale and zero point per activation tensor")
    if w.is_const:
        if np.any(np.asarray(w.quant.zero_point) != 0):
            raise unsupported(node, f"asymmetric weights '{w.name}' (zero point not 0)",
                              "symmetric int8 weights")
        scales = np.size(w.quant.scale)
        axis = None if w.quant.axis is None else normalize_axis(w.quant.axis, w.rank)
        if scales != 1 and (axis != channel_axis or scales != w.shape[channel_axis]):
            raise unsupported(node, f"weights '{w.name}' quantized along axis {w.quant.axis} "
                              f"with {scales} scales",
                              "one scale per tensor" if channel_axis is None else
                              f"one scale per tensor or per output channel (axis "
                              f"{channel_axis})")
    if bias is not None:
        _check_bias(node, x, w, bias)


def _check_bias(node: Node, x: Tensor, w: Tensor, bias: Tensor) -> None:
    require_dtype(node, bias, ("int32",))
    if not bias.is_const:
        raise unsupported(node, f"bias '{bias.name}' computed at run time",
                          "a constant int32 bias")
    if bias.quant is None:
        return
    expected = (scale_of(x) * scale_of(w)).reshape(-1)
    actual = scale_of(bias).reshape(-1)
    same_scale = (expected.size == actual.size or 1 in (expected.size, actual.size)) and \
        np.allclose(actual, expected, rtol=1e-5, atol=0)
    if np.any(np.asarray(bias.quant.zero_point) != 0) or not same_scale:
        raise unsupported(node, f"bias '{bias.name}' at scale {actual[:4].tolist()} with "
                          f"zero point {np.asarray(bias.quant.zero_point).reshape(-1)[:4]}",
                          "an int32 bias at scale s_x * s_w with zero point 0")


def accumulator_bound(x: Tensor, w: Tensor, bias: Tensor | None, inner_axes: tuple[int, ...]
                      ) -> int:
    """The largest |acc| an int8 inner product can reach: |bias| + sum over its taps of
    |x - zero_point_x| * |w - zero_point_w|, x at its worst and a constant w as it is. Every
    partial sum the kernel forms obeys the same bound, so none can overflow either."""
    x_span = _offset_span(x)
    if w.is_const:
        taps = np.abs(w.data.astype(np.int64)).sum(axis=inner_axes).reshape(-1)
    else:
        taps = np.array([_offset_span(w) * int(np.prod([w.shape[a] for a in inner_axes]))])
    start = np.zeros(1, np.int64) if bias is None else np.abs(
        bias.data.astype(np.int64)).reshape(-1)
    # Per output channel: a large bias and a heavy filter rarely share a channel.
    return int((start + x_span * taps).max(initial=0))


def check_bound(node: Node, bound: int) -> None:
    """Refuse shapes and weights whose int32 accumulator could overflow (the kernels do not
    check at run time)."""
    if bound > INT32_MAX:
        raise unsupported(node, f"an inner product whose int32 accumulator could reach {bound}",
                          "|bias| + sum of |x - zero point| * |w| up to 2**31 - 1")


def _offset_span(tensor: Tensor) -> int:
    """The largest |q - zero_point| over int8 q."""
    zero_point = zero_point_of(tensor)
    return max(127 - zero_point, zero_point + 128)


def product_stage(graph: Graph, node: Node, x: Tensor, w: Tensor) -> OutputStage:
    """The output stage of an inner product of x and w: real y = s_x * s_w[c] * acc."""
    real = scale_of(x) * scale_of(w) / scale_of(graph.tensor(node.outputs[0]))
    return output_stage(graph, node, real)


def product_s8(node: Node, graph: Graph, a: np.ndarray, b: np.ndarray,
               c: np.ndarray | None = None) -> np.ndarray:
    """Integer reference of a matrix product (A and B already as [.., M, K] and [.., K, N]):
    (A - zero_point_a) @ (B - zero_point_b) + C exactly in int64, then the output stage
    per column."""
    x, w = graph.input_tensors(node)[:2]
    acc = np.matmul(a.astype(np.int64) - zero_point_of(x), b.astype(np.int64) - zero_point_of(w))
    if c is not None:
        acc = acc + c.astype(np.int64)
    return product_stage(graph, node, x, w).apply(acc, -1)


def requantize_context(stage: OutputStage, names: Names, channel: str) -> dict:
    """Template values for the closing ariel_requantize call: multiplier and shift as C
    expressions (per-channel arrays indexed by `channel`, or literals), zero point, range."""
    values = stage.context()
    if values["per_channel"]:
        mult, shift = (f"{names.weight(key)}[{channel}]" for key in ("mult", "shift"))
    else:
        mult, shift = str(values["multiplier"]), str(values["shift"])
    return {"out_mult": mult, "out_shift": shift, "out_zero_point": values["zero_point"],
            "out_low": values["low"], "out_high": values["high"]}


# Stack a kernel may take for the receptive fields it widens to int16 (the boards reserve
# 8 KiB of stack; the rest of the firmware needs a few hundred bytes of it).
SCRATCH_BUDGET = 4096


@dataclass
class Folding:
    """How an int8 kernel meets its input's zero point: `bias` (int64, per output channel)
    starts each accumulator, `offset` is added to every input value in the inner loop."""

    bias: np.ndarray
    offset: int
    note: str

    @property
    def widened(self) -> str:
        """What a widened input holds, for the kernels' comments."""
        return "the input as it is" if self.offset == 0 else f"the input plus {self.offset}"


def wrap_notes(notes: list[str], width: int = 92) -> list[str]:
    """A kernel comment's notes as lines of at most `width` characters, each note's later
    lines indented by two."""
    return [line for note in notes for line in textwrap.wrap(
        note, width, subsequent_indent="  ", break_on_hyphens=False)]


def fold_zero_point(rows: np.ndarray, bias: np.ndarray | None, zero_point: int) -> Folding:
    """Fold the input zero point into the bias at compile time where the new sums cannot
    overflow: sum over k of (x - zp) w[n, k] = sum of x w[n, k] - zp sum of w[n, k], so the
    kernel starts at b[n] - zp sum_k w[n, k] and multiplies x as it is. `rows` are the
    filters as [N, K]. Each partial sum the kernel then forms is that bias plus products x w
    with |x| <= 128, so |acc| <= |b'| + 128 sum |w| bounds it; when that bound exceeds int32
    the zero point is subtracted from each input instead (whose sums the accumulator bound
    check_bound enforces already covers). Either way a padded tap must read zp itself, the
    byte of real 0, which the kernels do."""
    rows = rows.astype(np.int64)
    start = np.zeros(len(rows), np.int64) if bias is None else bias.astype(np.int64).reshape(-1)
    if zero_point == 0:
        return Folding(start, 0, "the input's zero point is 0")
    folded = start - zero_point * rows.sum(axis=1)
    bound = int((np.abs(folded) + INT8_SPAN * np.abs(rows).sum(axis=1)).max(initial=0))
    if bound <= INT32_MAX:
        return Folding(folded, 0, f"the input's zero point {zero_point} folded into the bias "
                       f"at compile time (b - zp * sum of w); with |x| <= 128 every partial "
                       f"sum is within {bound} (checked)")
    return Folding(start, -zero_point, f"the input's zero point {zero_point} subtracted from "
                   f"each input (folded, the sums could reach {bound}, beyond int32)")


def pack_pairs(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Filters [N, K] as the packed kernels read them: K padded with zeros to K4, a multiple
    of 4; filters taken two at a time and interleaved four weights at a time (k0..k3 of
    filter n, k0..k3 of filter n + 1, k4..k7 of filter n, ...); an odd last filter alone.
    Filter n starts at n * K4 either way. Returns the array and K4."""
    count, k = rows.shape
    k4 = -(-k // 4) * 4
    padded = np.zeros((count, k4), rows.dtype)
    padded[:, :k] = rows
    parts = [padded[n:n + 2].reshape(2, k4 // 4, 4).transpose(1, 0, 2).reshape(-1)
             for n in range(0, count - 1, 2)]
    if count % 2:
        parts.append(padded[-1])
    return np.concatenate(parts) if parts else padded.reshape(-1), k4


def pack_blocks(rows: np.ndarray, width: int = 4) -> np.ndarray:
    """Float filters [N, K] as the blocked float kernels read them: `width` at a time
    interleaved one weight at a time ([N/width][K][width]), then the N % width left over one
    after the other."""
    blocks, k = len(rows) // width, rows.shape[1]
    parts = [rows[:width * blocks].reshape(blocks, width, k).transpose(0, 2, 1).reshape(-1),
             rows[width * blocks:].reshape(-1)]
    return np.concatenate(parts).astype(np.float32)


@dataclass
class Requantizer:
    """The closing output stage of a packed int8 kernel: constant arrays, and C for one
    output (`call(acc, channel)`, both C expressions)."""

    weights: dict[str, np.ndarray]
    call: Callable[[str, str], str]
    note: str


def requantizer(stage: OutputStage, names: Names) -> Requantizer:
    """ariel_requantize_hi (per channel: a table of multiplier and shift - 33) when every
    shift is 33 or more, as in every model seen so far; else ariel_requantize."""
    multipliers = stage.multipliers.reshape(-1).astype(np.int64)
    shifts = stage.shifts.reshape(-1).astype(np.int64)
    tail = f"{stage.zero_point}, {stage.low}, {stage.high})"
    if shifts.min() >= 33:
        note = "output stage ariel_requantize_hi (every shift >= 33)"
        if multipliers.size > 1:
            rq = names.weight("rq")
            return Requantizer(
                {"rq": np.stack([multipliers, shifts - 33], axis=1).astype(np.int32).reshape(-1)},
                lambda acc, c: (f"(int8_t)ariel_requantize_hi({acc}, {rq}[2 * {c_term(c)}], "
                                f"{rq}[2 * {c_term(c)} + 1], {tail}"),
                note + "; rq: multiplier, shift - 33 per channel")
        m, s = int(multipliers[0]), int(shifts[0])
        return Requantizer({}, lambda acc, c: (f"(int8_t)ariel_requantize_hi({acc}, {m}, "
                                               f"{s - 33}, {tail}"), note)
    note = "output stage ariel_requantize (a shift below 33)"
    if multipliers.size > 1:
        mult, shift = names.weight("mult"), names.weight("shift")
        return Requantizer({"mult": multipliers.astype(np.int32),
                            "shift": shifts.astype(np.int32)},
                           lambda acc, c: (f"(int8_t)ariel_requantize({acc}, {mult}[{c}], "
                                           f"{shift}[{c}], {tail}"), note)
    m, s = int(multipliers[0]), int(shifts[0])
    return Requantizer({}, lambda acc, c: f"(int8_t)ariel_requantize({acc}, {m}, {s}, {tail}",
                       note)


def bias_reader(folding: Folding, names: Names, weights: dict[str, np.ndarray],
                key: str = "bias") -> Callable[[str], str]:
    """C for the accumulator's start of channel `c`: the folded int32 bias array (added to
    `weights` as `key`), or 0."""
    if not folding.bias.any():
        return lambda c: "0"
    weights[key] = folding.bias.astype(np.int32)
    name = names.weight(key)
    return lambda c: f"{name}[{c}]"


def describe_quant(tensor: Tensor) -> str:
    """A tensor's quantization parameters for a kernel's opening comment."""
    scale = np.asarray(tensor.quant.scale).reshape(-1)
    if scale.size == 1:
        return f"scale {scale[0]:.6g}, zero point {zero_point_of(tensor)}"
    return (f"{scale.size} scales along axis {tensor.quant.axis} ({scale.min():.6g} to "
            f"{scale.max():.6g}), zero point 0")
