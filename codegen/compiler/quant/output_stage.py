"""The output stage of an integer kernel, worked out at compile time: per-channel multiplier
and shift, output zero point, and the clamp range (int8, narrowed by a fused activation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.compiler.ir import Graph, Node, QuantParams, Tensor
from codegen.compiler.quant.fixedpoint import quantize_multipliers, requantize

INT8_MIN, INT8_MAX = -128, 127


@dataclass
class OutputStage:
    multipliers: np.ndarray  # int32, one per output channel (or one)
    shifts: np.ndarray  # int32, same shape
    zero_point: int
    low: int
    high: int

    def apply(self, acc: np.ndarray, channel_axis: int = -1) -> np.ndarray:
        """numpy twin of the C output stage: int32 accumulators in, int8 out."""
        multipliers, shifts = self.multipliers, self.shifts
        if multipliers.size > 1:
            shape = [1] * acc.ndim
            shape[channel_axis] = multipliers.size
            multipliers, shifts = multipliers.reshape(shape), shifts.reshape(shape)
        return requantize(acc, multipliers, shifts, self.zero_point, self.low,
                          self.high).astype(np.int8)

    def context(self) -> dict:
        """Template values; per-channel arrays go to the kernel's weights as "mult"/"shift"."""
        return {"zero_point": self.zero_point, "low": self.low, "high": self.high,
                "per_channel": self.multipliers.size > 1,
                "multiplier": int(self.multipliers.reshape(-1)[0]),
                "shift": int(self.shifts.reshape(-1)[0])}

    def weights(self) -> dict[str, np.ndarray]:
        if self.multipliers.size == 1:
            return {}
        return {"mult": self.multipliers.reshape(-1).astype(np.int32),
                "shift": self.shifts.reshape(-1).astype(np.int32)}


def scale_of(tensor: Tensor) -> np.ndarray:
    return np.asarray(tensor.quant.scale, np.float64)


def zero_point_of(tensor: Tensor) -> int:
    return int(np.asarray(tensor.quant.zero_point).reshape(-1)[0])


def output_stage(graph: Graph, node: Node, real_multipliers) -> OutputStage:
    """The stage that maps accumulators (real value = acc * real_multiplier * s_y) to the
    node's int8 output, clamped to the int8 range and the node's fused activation."""
    out = graph.tensor(node.outputs[0])
    multipliers, shifts = quantize_multipliers(np.asarray(real_multipliers, np.float64))
    zero_point = zero_point_of(out)
    low, high = clamp_range(out.quant, node.clamp)
    return OutputStage(multipliers, shifts, zero_point, low, high)


def clamp_range(quant: QuantParams, clamp: tuple[float, float] | None) -> tuple[int, int]:
    """The int8 range of a tensor, narrowed to a fused activation's bounds (in real units),
    each bound quantized with the tensor's own scale and zero point."""
    low, high = INT8_MIN, INT8_MAX
    if clamp is not None:
        scale = float(np.asarray(quant.scale).reshape(-1)[0])
        zero_point = int(np.asarray(quant.zero_point).reshape(-1)[0])
        if np.isfinite(clamp[0]):
            low = max(low, zero_point + int(np.rint(clamp[0] / scale)))
        if np.isfinite(clamp[1]):
            high = min(high, zero_point + int(np.rint(clamp[1] / scale)))
    return low, min(max(high, low), INT8_MAX)
