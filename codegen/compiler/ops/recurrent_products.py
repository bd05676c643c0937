"""The gate products of LSTM, GRU and RNN: each time step's pre-activations are vector . row
for a block of gate rows, the vector being [x, h] (or x, h, [x, r * h]) and the rows those of
W and R side by side. This module holds the weights, float32 or int8, packed as the kernels
read them, and the numpy model of the product the kernels compute.

int8 weights (int8 builds; quant/recurrent.py makes them) are symmetric with one scale per
gate row. The vector stays float between steps (the state is float) and is quantized at each
step to int16 with a scale of its own, its largest |value| becoming `limit` (32767, or less
where 32767 times a row's sum of |weights| would not fit an int32 accumulator), so the product
is the packed int8 helpers' integer inner product (SMLAD on cores that have it) and
real = (vector scale) * (row scale) * accumulator. The integer sums are exact; the scales
are float, so the int8 path agrees with its numpy model within float rounding, not bit for
bit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.compiler.ops.inner_product import INT32_MAX, pack_blocks, pack_pairs

BLOCK = 8  # float gate rows per inner-product step (ariel_dot_f32 takes up to eight filters)
INT16_LIMIT = 32767


@dataclass
class GateWeights:
    """W [directions, gates * hidden, input] and R [directions, gates * hidden, hidden]:
    float32, or int8 with `scale`, one float32 per gate row (shared by W and R and by the
    directions)."""

    w: np.ndarray
    r: np.ndarray
    scale: np.ndarray | None = None

    @property
    def is_int8(self) -> bool:
        return self.scale is not None

    def matrix(self, rows: slice, parts: str) -> np.ndarray:
        """The gate rows `rows` of W ("w"), R ("r") or both side by side ("wr"), per
        direction: [directions, rows, k]."""
        pieces = {"w": [self.w], "r": [self.r], "wr": [self.w, self.r]}[parts]
        return np.concatenate([piece[:, rows] for piece in pieces], axis=2)

    def row_scale(self, rows: slice) -> np.ndarray | None:
        return None if self.scale is None else self.scale[rows].astype(np.float32)

    def product(self, vector: np.ndarray, rows: slice, parts: str, direction: int
                ) -> np.ndarray:
        """vector [batch, k] times the rows, as the kernel computes it (float64 result)."""
        matrix = self.matrix(rows, parts)[direction]
        if not self.is_int8:
            return vector @ matrix.astype(np.float64).T
        limit = vector_limit(self.matrix(rows, parts))
        peak = np.abs(vector).max(axis=1, keepdims=True)
        inverse = np.divide(limit, peak, out=np.zeros_like(peak), where=peak > 0)
        quantized = np.clip(np.rint(vector * inverse), -limit, limit).astype(np.int64)
        acc = quantized @ matrix.astype(np.int64).T
        return acc * (peak / limit) * self.row_scale(rows).astype(np.float64)


def vector_limit(matrix: np.ndarray) -> int:
    """The largest |q| of the quantized vector for int8 rows `matrix` (any shape, rows along
    the second last axis): 32767, or less where a row's sum of |weights| times it could leave
    int32 (every partial sum the kernel forms is then within int32 too)."""
    heaviest = int(np.abs(matrix.astype(np.int64)).sum(axis=-1).max(initial=1))
    return min(INT16_LIMIT, INT32_MAX // max(heaviest, 1))


@dataclass
class Packed:
    """One product's weights as the kernel reads them: every direction's rows packed one
    direction after another (`stride` elements apart), and for int8 the rows' scales."""

    data: np.ndarray
    stride: int
    k: int
    k4: int  # int8: k padded to a multiple of 4 (the packed rows' length)
    scale: np.ndarray | None
    limit: int


def pack(weights: GateWeights, rows: slice, parts: str) -> Packed:
    """Float rows by pack_blocks (eight rows interleaved weight by weight), int8 rows by
    pack_pairs (two rows interleaved four weights at a time, k padded to k4)."""
    matrix = weights.matrix(rows, parts)
    k = matrix.shape[2]
    if not weights.is_int8:
        data = [pack_blocks(m.astype(np.float32), BLOCK) for m in matrix]
        return Packed(np.concatenate(data), data[0].size, k, k, None, 0)
    packed = [pack_pairs(m.astype(np.int8)) for m in matrix]
    data = np.concatenate([p[0] for p in packed]).astype(np.int8)
    return Packed(data, packed[0][0].size, k, packed[0][1], weights.row_scale(rows),
                  vector_limit(matrix))
