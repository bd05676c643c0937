"""ONNX ConvTranspose, 1-D and 2-D, any group count (so depthwise too), strides, pads,
dilations, output_padding, output_shape and auto_pad; float32 and int8, NHWC inside like Conv.

Along one axis, input position i with kernel tap k adds to output position o = i * stride -
pad + k * dilation. Computed as a gather: each output sums the products that reach it, in
registers, and is written once (a scatter would add every product into the output in memory,
or for int8 into an int32 copy of the whole output). The outputs fall into phases by
(o + pad) mod stride, one per residue and axis: every output of a phase is reached by the
same taps, k * dilation = that residue (mod stride), and from input positions that advance
by one as the output advances by stride. So a phase is an ordinary convolution of the input,
stride 1, with those taps of the filters (in reverse order), written to every stride-th
output: a k x k filter at stride s costs (k / s)**2 taps per output pixel instead of the k * k
(most of them on inserted zeros) of a convolution of the dilated input. A phase no tap
reaches holds the bias.

Each phase is lowered by Conv itself (codegen/compiler/ops/conv.py): its filter packing, its
float and int8 paths (DSP included) and its output stage, with the output pixels it writes
given as an OutputGrid. The ConvTranspose kernel calls its phases in turn (Kernel.parts).
Filters computed at run time (float only) take a direct kernel instead, which checks every
tap of every output.

int8: weights are quantized along axis 1 (ONNX Runtime's quantizer does so for
ConvTranspose: W is [C_in, C_out / group, kH, kW]), one scale per output channel of a group,
shared by the groups; an int32 bias at s_x * s_w."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codegen.compiler.ir import Graph, Node, QuantParams, Tensor, channels_last
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    apply_clamp,
    attr,
    clamp_statements,
    describe_clamp,
    is_quantized,
    normalize_axis,
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.conv import Conv
from codegen.compiler.ops.inner_product import accumulator_bound, check_bound, check_s8_product
from codegen.compiler.ops.spatial import OutputGrid
from codegen.compiler.quant.output_stage import output_stage, scale_of, zero_point_of

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass(frozen=True)
class Axis:
    """One spatial axis: output position o takes input position i through tap k where
    o + pad = i * stride + k * dilation."""

    size: int  # input length
    out: int  # output length
    kernel: int
    stride: int
    dilation: int
    pad: int  # the begin pad
    natural: int  # stride * (size - 1) + output_padding + the dilated kernel

    def describe(self) -> str:
        return (f"{self.size} -> {self.out}, kernel {self.kernel}, stride {self.stride}, "
                f"dilation {self.dilation}, pad {self.pad}")


@dataclass(frozen=True)
class Phase:
    """The outputs first, first + stride, ... (`count` of them) along one axis: each reads
    input positions m + base + t * step for its taps t = 0, 1, ... (kernel positions
    `taps`), m counting the phase's outputs."""

    first: int
    count: int
    taps: tuple[int, ...]
    base: int
    step: int

    def pads(self, size: int) -> tuple[int, int]:
        """Begin and end pads of the phase as a stride-1 convolution over `size` inputs."""
        begin = -self.base
        end = self.count - 1 + (len(self.taps) - 1) * self.step + 1 - size - begin
        return begin, end


def geometry(node: Node, in_spatial: tuple[int, ...], kernel: tuple[int, ...]) -> list[Axis]:
    """Each spatial axis as ONNX defines it: output_shape given, the pads that give it
    (SAME_UPPER puts the smaller half first, everything else the larger); auto_pad SAME_*,
    output = input * stride (at most the natural length); else the explicit pads (VALID:
    none) and output_padding. The natural length is stride * (input - 1) + output_padding
    + the dilated kernel."""
    rank = len(in_spatial)
    strides = list(attr(node, "strides", [1] * rank))
    dilations = list(attr(node, "dilations", [1] * rank))
    extra = list(attr(node, "output_padding", [0] * rank))
    auto_pad = attr(node, "auto_pad", "NOTSET")
    output_shape = attr(node, "output_shape", None)
    pads = list(attr(node, "pads", [0] * 2 * rank))
    axes = []
    for a in range(rank):
        size, k, s, d = in_spatial[a], kernel[a], strides[a], dilations[a]
        natural = s * (size - 1) + extra[a] + (k - 1) * d + 1
        if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = output_shape[len(output_shape) - rank + a] if output_shape else size * s
            # Past the natural length nothing is padded (as ONNX Runtime does; with SAME_*,
            # as ONNX's shape inference does, the output then has the natural length).
            total = max(natural - out, 0)
            if output_shape is None:
                out = min(out, natural)
            begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        elif auto_pad == "VALID":
            out, begin = natural, 0
        else:
            out, begin = natural - pads[a] - pads[a + rank], pads[a]
        axes.append(Axis(size, out, k, s, d, begin, natural))
    return axes


def axis_phases(axis: Axis) -> list[Phase]:
    """The phases of one axis that hold outputs, by residue (o + pad) mod stride."""
    phases = []
    step = axis.dilation // math.gcd(axis.stride, axis.dilation)
    for residue in range(axis.stride):
        first = (residue - axis.pad) % axis.stride
        count = len(range(first, axis.out, axis.stride))
        if count == 0:
            continue
        # Taps reaching this residue, the one reading the lowest input position first.
        taps = sorted((k for k in range(axis.kernel)
                       if (k * axis.dilation - residue) % axis.stride == 0), reverse=True)
        base = (first + axis.pad - taps[0] * axis.dilation) // axis.stride if taps else 0
        phases.append(Phase(first, count, tuple(taps), base, step))
    return phases


@register("ConvTranspose")
class ConvTranspose(OpDef):
    limits = "3-D and higher"
    attributes = frozenset({"auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                            "output_shape", "pads", "strides"})
    accepts_clamp = True
    int8 = True

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x, w, *rest = graph.input_tensors(node)
        quantized = is_quantized(graph, node)
        if not quantized:
            for tensor in (x, w, *rest):
                require_dtype(node, tensor, FLOAT_TYPES)
        if x.rank not in (3, 4):
            raise unsupported(node, f"{x.rank - 2}-D transposed convolution", "1-D and 2-D")
        group = attr(node, "group", 1)
        if w.rank != x.rank or w.shape[0] != x.shape[1] or x.shape[1] % group:
            raise unsupported(node, f"group {group} with {x.shape[1]} input channels and "
                              f"weights {list(w.shape)}",
                              "weights [C, M / group, kernel...] with group dividing C")
        kernel = tuple(w.shape[2:])
        if tuple(attr(node, "kernel_shape", kernel)) != kernel:
            raise unsupported(node, f"kernel_shape {list(attr(node, 'kernel_shape', []))} "
                              f"with weights {list(w.shape)}", "the weights' own kernel size")
        if attr(node, "auto_pad", "NOTSET") not in AUTO_PADS:
            raise unsupported(node, f"auto_pad {attr(node, 'auto_pad', '')}",
                              ", ".join(AUTO_PADS))
        axes = self.axes(node, x, w)
        if any(a.out < 1 for a in axes):
            raise unsupported(node, f"an output of {[a.out for a in axes]} positions",
                              "outputs of at least one position per axis")
        # An output_shape more than stride - 1 past the natural length leaves an input
        # position unread; ONNX Runtime refuses it as inconsistent, and so does ariel.
        if any(a.out - a.natural > a.stride - 1 for a in axes):
            raise unsupported(node, f"output_shape {list(attr(node, 'output_shape', []))} for "
                              f"a {list(x.shape[2:])} input",
                              "an output_shape at most stride - 1 past stride * (input - 1) + "
                              "output_padding + the dilated kernel")
        if quantized:
            self.check_s8(node, graph, x, w, rest[0] if rest else None)

    def check_s8(self, node: Node, graph: Graph, x: Tensor, w: Tensor, bias: Tensor | None
                 ) -> None:
        if not w.is_const:
            raise unsupported(node, "int8 filters computed at run time", "constant int8 filters")
        axis = None if w.quant is None or w.quant.axis is None else normalize_axis(
            w.quant.axis, w.rank)
        if w.quant is not None and np.size(w.quant.scale) != 1 and (
                axis != 1 or np.size(w.quant.scale) != w.shape[1]):
            raise unsupported(node, f"weights '{w.name}' quantized along axis {w.quant.axis} "
                              f"with {np.size(w.quant.scale)} scales",
                              "one scale per tensor or per output channel (axis 1)")
        filters = self.conv_filters(node, w)
        check_s8_product(node, graph, x, filters, bias, 0)
        inner = tuple(range(1, w.rank))
        check_bound(node, max((accumulator_bound(x, self.phase_filters(filters, row, col), bias,
                                                 inner)
                               for row, col in self.phases(node, x, w) if row.taps and col.taps),
                              default=0))

    def axes(self, node: Node, x: Tensor | np.ndarray, w: Tensor | np.ndarray) -> list[Axis]:
        """The spatial axes, a 1-D transposed convolution's as one (its height is 1)."""
        return geometry(node, tuple(x.shape[2:]), tuple(w.shape[2:]))

    def phases(self, node: Node, x: Tensor, w: Tensor) -> list[tuple[Phase, Phase]]:
        """(row phase, column phase) of every phase that holds outputs."""
        axes = self.axes(node, x, w)
        rows = axis_phases(axes[0]) if len(axes) == 2 else [Phase(0, 1, (0,), 0, 1)]
        return [(row, col) for row in rows for col in axis_phases(axes[-1])]

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x, w = inputs[0], inputs[1]
        out = [a.out for a in self.axes(node, x, w)]
        return [((x.shape[0], w.shape[1] * attr(node, "group", 1), *out), x.dtype)]

    # -- references: the definition, as a scatter -------------------------------------------
    def reference(self, node: Node, x, w, b=None):
        y = self.scatter(node, x.astype(np.float64), w.astype(np.float64))
        if b is not None:
            y += b.astype(np.float64).reshape(1, -1, *[1] * (x.ndim - 2))
        return [apply_clamp(node, y.astype(np.float32))]

    def reference_s8(self, node: Node, graph: Graph, x, w, b=None):
        """Exact in int64: x minus its zero point scattered through the filters, the bias
        added, then the output stage per output channel."""
        x_tensor, w_tensor = graph.input_tensors(node)[:2]
        acc = self.scatter(node, x.astype(np.int64) - zero_point_of(x_tensor), w.astype(np.int64))
        if b is not None:
            acc += b.astype(np.int64).reshape(1, -1, *[1] * (x.ndim - 2))
        return [self.output_stage(node, graph).apply(acc, 1)]

    def scatter(self, node: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Every input position times every tap added at o = i * stride - pad + k *
        dilation, outside the output dropped; (N, M, spatial...) out, in the arrays' type."""
        axes = self.axes(node, x, w)
        group = attr(node, "group", 1)
        x4, w4 = _as_2d(x), _as_2d(w)
        rows, cols = (axes if len(axes) == 2 else [Axis(1, 1, 1, 1, 1, 0, 1), axes[0]])
        n, channels = x4.shape[:2]
        icg, ocg = channels // group, w4.shape[1]
        y = np.zeros((n, ocg * group, rows.out, cols.out), x.dtype)
        for g in range(group):
            xg = x4[:, g * icg:(g + 1) * icg]
            for ky in range(rows.kernel):
                oy = np.arange(rows.size) * rows.stride - rows.pad + ky * rows.dilation
                keep_y = (oy >= 0) & (oy < rows.out)
                for kx in range(cols.kernel):
                    ox = np.arange(cols.size) * cols.stride - cols.pad + kx * cols.dilation
                    keep_x = (ox >= 0) & (ox < cols.out)
                    products = np.einsum("nchw,co->nohw", xg[:, :, keep_y][..., keep_x],
                                         w4[g * icg:(g + 1) * icg, :, ky, kx])
                    target = y[:, g * ocg:(g + 1) * ocg]
                    target[:, :, oy[keep_y][:, None], ox[keep_x][None, :]] += products
        return y.reshape(n, ocg * group, *[a.out for a in axes])

    # -- code generation -------------------------------------------------------------------
    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        return [channels_last(x.rank)] + [None] * (len(node.inputs) - 1), [channels_last(x.rank)]

    def conv_filters(self, node: Node, w: Tensor) -> Tensor:
        """The filters as a Conv's: [M, C / group, kernel...] (output channel first), with
        one scale per output channel along axis 0 when they are quantized per channel."""
        group = attr(node, "group", 1)
        icg, ocg = w.shape[0] // group, w.shape[1]
        data = w.data.reshape(group, icg, ocg, *w.shape[2:]).swapaxes(1, 2).reshape(
            group * ocg, icg, *w.shape[2:])
        quant = w.quant
        if quant is not None and np.size(quant.scale) > 1:
            quant = QuantParams(np.tile(np.asarray(quant.scale).reshape(-1), group),
                                np.tile(np.asarray(quant.zero_point).reshape(-1), group), 0)
        return Tensor(w.name, tuple(data.shape), w.dtype, data=np.ascontiguousarray(data),
                      quant=quant)

    def phase_filters(self, filters: Tensor, row: Phase, col: Phase) -> Tensor:
        """A phase's taps of the Conv-order filters, as a Conv's filters."""
        data = _as_2d(filters.data)[:, :, list(row.taps)][:, :, :, list(col.taps)]
        if filters.rank == 3:
            data = data.reshape(*data.shape[:2], data.shape[3])
        return Tensor(f"{filters.name}_phase", tuple(data.shape), filters.dtype,
                      data=np.ascontiguousarray(data), quant=filters.quant)

    def output_stage(self, node: Node, graph: Graph):
        x, w = graph.input_tensors(node)[:2]
        filters = self.conv_filters(node, w)
        real = scale_of(x) * scale_of(filters) / scale_of(graph.tensor(node.outputs[0]))
        return output_stage(graph, node, real)

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, w, *rest = graph.input_tensors(node)
        bias = rest[0] if rest else None
        if not w.is_const:
            return self.lower_runtime_filters(node, graph, names)
        y = graph.tensor(node.outputs[0])
        axes = self.axes(node, x, w)
        rows, cols = (axes if len(axes) == 2 else [Axis(1, 1, 1, 1, 1, 0, 1), axes[0]])
        filters = self.conv_filters(node, w)
        quantized = is_quantized(graph, node)
        parts, calls, fills, lines = [], [], [], []
        for row, col in self.phases(node, x, w):
            where = _describe_phase(row, col, rows, cols, len(axes))
            grid = OutputGrid(col.count, rows.out * cols.out, row.first * cols.out + col.first,
                              rows.stride * cols.out, cols.stride)
            if not (row.taps and col.taps):
                fills.append({"grid": grid, "rows": row.count, "cols": col.count,
                              "what": where})
                lines.append(f"{where}: no tap, the bias")
                continue
            suffix = f"p{len(parts)}"
            conv_node, conv_graph = self.phase_conv(node, graph, filters, bias, row, col, rows)
            part = Conv().lower(conv_node, conv_graph, Names(names.prefix, f"{names.fn}_{suffix}"),
                                grid)
            part.context["title"] = (f"ConvTranspose '{node.name}', phase {suffix} (the "
                                     f"convolution writing {where})")
            parts.append((suffix, part))
            calls.append(f"{names.fn}_{suffix}")
            lines.append(f"{where}: {names.fn}_{suffix}, taps "
                         f"{_describe_taps(row, col, len(axes))}")
        weights = {}
        if fills:
            weights["fill"] = self.fill_row(node, graph, bias)
            lines.append("fill: what a pixel no tap reaches holds, per output channel")
        context = {
            "n": x.shape[0], "ih": rows.size, "iw": cols.size, "ic": x.shape[1],
            "oh": rows.out, "ow": cols.out, "oc": y.shape[1], "ocg": w.shape[1],
            "kh": rows.kernel, "kw": cols.kernel, "group": attr(node, "group", 1),
            "ctype": y.ctype, "dtype": "int8" if quantized else "float32",
            "geometry": _describe_axes(axes) + describe_clamp(node.clamp),
            "phase_lines": lines, "calls": calls, "fills": fills,
            "image": rows.out * cols.out * y.shape[1], "fill_name": names.weight("fill"),
        }
        return Kernel("kernels/conv_transpose.c.j2", context, weights, parts=parts)

    def phase_conv(self, node: Node, graph: Graph, filters: Tensor, bias: Tensor | None,
                   row: Phase, col: Phase, rows: Axis) -> tuple[Node, Graph]:
        """A phase as a Conv node of its own little graph: the input as it is, the phase's
        filters, the bias, and an output of the phase's shape with the node's quantization."""
        x = graph.tensor(node.inputs[0])
        y = graph.tensor(node.outputs[0])
        phase_w = self.phase_filters(filters, row, col)
        cols_size = x.shape[-1]
        left, right = col.pads(cols_size)
        if x.rank == 4:
            top, bottom = row.pads(rows.size)
            attrs = {"kernel_shape": [len(row.taps), len(col.taps)], "strides": [1, 1],
                     "dilations": [row.step, col.step], "pads": [top, left, bottom, right]}
            out_shape = (y.shape[0], y.shape[1], row.count, col.count)
        else:
            attrs = {"kernel_shape": [len(col.taps)], "strides": [1],
                     "dilations": [col.step], "pads": [left, right]}
            out_shape = (y.shape[0], y.shape[1], col.count)
        attrs["group"] = attr(node, "group", 1)
        out = Tensor(f"{y.name}_phase", out_shape, y.dtype, order=channels_last(y.rank),
                     quant=y.quant)
        tensors = {x.name: x, phase_w.name: phase_w, out.name: out}
        inputs = [x.name, phase_w.name]
        if bias is not None:
            tensors[bias.name] = bias
            inputs.append(bias.name)
        conv = Node(f"{node.name}_phase", "Conv", inputs, [out.name], attrs, clamp=node.clamp)
        return conv, Graph(graph.name, tensors, [conv], [x.name], [out.name], graph.opset)

    def fill_row(self, node: Node, graph: Graph, bias: Tensor | None) -> np.ndarray:
        """What a pixel no tap reaches holds, per output channel: the bias (0 without one)
        through the clamp, or for int8 the bias through the output stage."""
        channels = graph.tensor(node.outputs[0]).shape[1]
        values = np.zeros(channels) if bias is None else bias.data.reshape(-1)
        if is_quantized(graph, node):
            return self.output_stage(node, graph).apply(values.astype(np.int64)[None], 1)[0]
        return apply_clamp(node, values.astype(np.float32))

    def lower_runtime_filters(self, node: Node, graph: Graph, names: Names) -> Kernel:
        """Filters computed at run time are read where they lie ([C, M / group, kernel...]),
        every tap of every output checked."""
        x, w, *rest = graph.input_tensors(node)
        bias = rest[0] if rest else None
        weights = {}
        if bias is not None and bias.is_const:
            weights["b"] = bias.data.astype(np.float32)
        axes = self.axes(node, x, w)
        rows, cols = (axes if len(axes) == 2 else [Axis(1, 1, 1, 1, 1, 0, 1), axes[0]])
        strides = w.strides
        w_stride_h, w_stride_w = (strides[2], strides[3]) if w.rank == 4 else (0, strides[2])
        group = attr(node, "group", 1)
        context = {
            "n": x.shape[0], "ih": rows.size, "iw": cols.size, "ic": x.shape[1],
            "oh": rows.out, "ow": cols.out, "oc": w.shape[1] * group, "ocg": w.shape[1],
            "icg": x.shape[1] // group, "group": group, "kh": rows.kernel, "kw": cols.kernel,
            "sh": rows.stride, "sw": cols.stride, "dh": rows.dilation, "dw": cols.dilation,
            "pad_top": rows.pad, "pad_left": cols.pad,
            "w": param_of(node, graph, w.name), "w_stride_c": strides[0],
            "w_stride_o": strides[1], "w_stride_h": w_stride_h, "w_stride_w": w_stride_w,
            "b": (None if bias is None else names.weight("b") if bias.is_const
                  else param_of(node, graph, bias.name)),
            "geometry": _describe_axes(axes) + describe_clamp(node.clamp),
            "clamp": clamp_statements("acc", node.clamp, "float"),
        }
        return Kernel("kernels/conv_transpose_f32_runtime.c.j2", context, weights)

    def macs(self, node: Node, graph: Graph) -> int:
        """Products that land in the output: per axis, the (output, tap) pairs reading an
        input position, times the input channels of a group, times the output channels."""
        x, w = graph.input_tensors(node)[:2]
        valid = math.prod(_valid_pairs(axis) for axis in self.axes(node, x, w))
        group = attr(node, "group", 1)
        return x.shape[0] * valid * (x.shape[1] // group) * w.shape[1] * group


def _valid_pairs(axis: Axis) -> int:
    """(output position, tap) pairs of one axis whose input position lies in the input."""
    total = 0
    for phase in axis_phases(axis):
        for t in range(len(phase.taps)):
            reads = np.arange(phase.count) + phase.base + t * phase.step
            total += int(((reads >= 0) & (reads < axis.size)).sum())
    return total


def _describe_axes(axes: list[Axis]) -> str:
    labels = ["rows", "columns"][-len(axes):]
    return "; ".join(f"{label} {axis.describe()}" for label, axis in zip(labels, axes,
                                                                         strict=True))


def _describe_phase(row: Phase, col: Phase, rows: Axis, cols: Axis, rank: int) -> str:
    columns = f"columns {col.first}, {col.first + cols.stride}, ... ({col.count})"
    if rank == 1:
        return columns
    return f"rows {row.first}, {row.first + rows.stride}, ... ({row.count}), {columns}"


def _describe_taps(row: Phase, col: Phase, rank: int) -> str:
    kx = "kx " + ", ".join(map(str, col.taps))
    return kx if rank == 1 else "ky " + ", ".join(map(str, row.taps)) + " x " + kx


def _as_2d(array):
    """View 1-D arrays (N, C, W) as (N, C, 1, W)."""
    return array if array.ndim == 4 else array.reshape(*array.shape[:2], 1, array.shape[2])
