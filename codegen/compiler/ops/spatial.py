"""Geometry shared by the sliding-window operators (Conv, MaxPool, AveragePool): kernel,
strides, dilations and the padding rules of ONNX (explicit pads, auto_pad, ceil_mode)."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
            total = max(0, (o - 1) * s + extent - size)
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
