"""Geometry shared by the sliding-window operators (Conv, ConvTranspose, MaxPool,
AveragePool): kernel, strides, dilations and the padding rules of ONNX (explicit pads,
auto_pad, ceil_mode), and where a convolution kernel writes its output pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass

from codegen.compiler.c import c_term
from codegen.compiler.ir import Node
from codegen.compiler.ops.base import attr, unsupported


@dataclass(frozen=True)
class Window:
    """A 1-D or 2-D window, always as two dimensions (a 1-D window has height 1)."""

    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right

    def describe(self) -> str:
        t, lft, b, r = self.pads
        return (f"kernel {self.kernel[0]}x{self.kernel[1]}, stride "
                f"{self.strides[0]}x{self.strides[1]}, dilation "
                f"{self.dilations[0]}x{self.dilations[1]}, pads top {t} left {lft} bottom {b} "
                f"right {r}")


def window(node: Node, in_spatial: tuple[int, ...], kernel: tuple[int, ...],
           ceil_mode: bool = False) -> Window:
    """Resolve the window of `node` over an input with spatial dims `in_spatial`."""
    rank = len(in_spatial)
    if rank not in (1, 2):
        raise unsupported(node, f"{rank}-D windows", "1-D and 2-D")
    strides = tuple(attr(node, "strides", [1] * rank))
    dilations = tuple(attr(node, "dilations", [1] * rank))
    auto_pad = attr(node, "auto_pad", "NOTSET")
    pads = list(attr(node, "pads", [0] * 2 * rank))
    out = []
    begin, end = pads[:rank], pads[rank:]
    for axis in range(rank):
        size, k, s, d = in_spatial[axis], kernel[axis], strides[axis], dilations[axis]
        extent = (k - 1) * d + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = math.ceil(size / s)
            total = (o - 1) * s + extent - size
            if total < 0:
                # What negative padding means is not settled: ONNX's formula crops the input
                # (onnx.reference), TensorFlow's SAME pads 0, onnxruntime refuses.
                raise unsupported(node, f"auto_pad {auto_pad} with a stride of {s} beyond the "
                                  f"window ({extent}) on spatial axis {axis}, whose padding "
                                  f"would be negative ({total})",
                                  "explicit pads, or a window at least as wide as its stride")
            small, large = total // 2, total - total // 2
            begin[axis], end[axis] = (small, large) if auto_pad == "SAME_UPPER" else (large,
                                                                                      small)
        elif auto_pad == "VALID":
            begin[axis] = end[axis] = 0
            o = (size - extent) // s + 1
        elif auto_pad == "NOTSET":
            span = size + begin[axis] + end[axis] - extent
            o = (-(-span // s) if ceil_mode else span // s) + 1
            # With ceil_mode the last window must start inside the input or the left padding.
            if ceil_mode and (o - 1) * s >= size + begin[axis]:
                o -= 1
        else:
            raise unsupported(node, f"auto_pad {auto_pad}", "NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        if o < 1:
            raise unsupported(node, f"a window larger than its input ({size} < {extent})",
                              "windows that fit the padded input")
        out.append(o)
    if rank == 1:
        return Window((1, in_spatial[0]), (1, out[0]), (1, kernel[0]), (1, strides[0]),
                      (1, dilations[0]), (0, begin[0], 0, end[0]))
    return Window(tuple(in_spatial), tuple(out), tuple(kernel), strides, dilations,
                  (begin[0], begin[1], end[0], end[1]))


def output_spatial(win: Window, rank: int) -> tuple[int, ...]:
    return win.out_hw if rank == 2 else (win.out_hw[1],)


@dataclass(frozen=True)
class OutputGrid:
    """Where a convolution kernel writes its output pixels: pixel (row, col) of its grid of
    `cols` columns goes to pixel first + row * row_step + col * col_step of an output image
    of `image_pixels` pixels. A Conv's own grid is its whole output, row-major; a phase of a
    ConvTranspose writes every stride-th pixel of the transposed convolution's output."""

    cols: int
    image_pixels: int
    first: int = 0
    row_step: int = 0  # 0: cols (the dense grid)
    col_step: int = 1

    @property
    def dense(self) -> bool:
        return self.first == 0 and self.row_step in (0, self.cols) and self.col_step == 1

    def at(self, row: str, col: str) -> str:
        """C expression (an int32_t term) of the output pixel at (row, col) of the grid."""
        step = self.row_step or self.cols
        terms = [str(self.first)] if self.first else []
        terms += [_times(row, step), _times(col, self.col_step)]
        return c_term(" + ".join(terms))

    def pixel(self, index) -> str:
        """C expression (an int32_t term) of the output pixel of grid pixel `index`, the
        grid read row by row."""
        if self.dense:
            return c_term(str(index))
        term = c_term(str(index))
        return self.at(f"{term} / {self.cols}", f"{term} % {self.cols}")


def _times(expression: str, factor: int) -> str:
    return expression if factor == 1 else f"{c_term(expression)} * {factor}"
