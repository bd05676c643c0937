"""Constant int8 filters packed two to a halfword, for a vector times a matrix (one row of A:
a classifier head, an autoencoder's dense layers), where each weight is read once per
inference, straight from flash.

Filters a and b (2q and 2q + 1) share every int16 halfword of the stream, which holds
h = 256 w_b + w_a exactly: the low byte is w_a, the high byte w_b less one where w_a < 0 (the
borrow that w_a's sign takes from the byte above). ariel_runtime.h's ariel_dot_pairs_s8 then
adds x h with one SMLAD and x w_a with another (SXTB16 of the word picks the low bytes), and
recovers x . w_b as the difference shifted right by 8: four MACs per weight word for one
SXTB16, where filters stored apart need two. The difference is exact modulo 2^32, so it is
the true 256 (x . w_b) when that lies within int32, which pack_output_pairs checks for the
largest |x| the row can hold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.compiler.ops.inner_product import INT32_MAX

PAIRS_PER_STEP = 3  # six accumulators, the column word and three weight words in registers


@dataclass(frozen=True)
class OutputPairs:
    """The packed stream and how the kernel walks it: `steps` steps of three pairs, then
    `tail` pairs (0 to 2), then, for an odd number of filters, the last filter alone (its k4
    weights as pack_pairs stores a lone filter). Each pair's words follow the widened row's
    words: word j holds k values 4 (j // 2) + j % 2 and that plus 2."""

    packed: np.ndarray
    k4: int
    steps: int
    tail: int
    single: bool

    @property
    def words(self) -> int:
        """Column words of the widened row (two int16 values each)."""
        return self.k4 // 2


def stored_high_bytes(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The byte stored above w_a so that the halfword is 256 w_b + w_a."""
    return high - (low < 0)


def pack_output_pairs(rows: np.ndarray, span: int) -> OutputPairs | None:
    """Filters [N, K] (int8 values) packed in pairs for a row whose widened values reach |x|
    <= span; None when they cannot be: fewer than two filters, a w_b of -128 above a
    negative w_a (its stored byte would be -129), or a pair whose 256 (x . w_b) could leave
    int32."""
    count, k = rows.shape
    pairs = count // 2
    if pairs == 0:
        return None
    k4 = -(-k // 4) * 4
    padded = np.zeros((count, k4), np.int64)
    padded[:, :k] = rows
    low, high = padded[0:2 * pairs:2], padded[1:2 * pairs:2]
    stored = stored_high_bytes(low, high)
    if stored.min() < -128 or 256 * span * int(np.abs(high).sum(axis=1).max()) > INT32_MAX:
        return None
    words = np.arange(k4 // 2)
    first = 4 * (words // 2) + words % 2
    second = first + 2
    stream = np.stack([low[:, first], stored[:, first], low[:, second], stored[:, second]],
                      axis=-1)  # [pairs, words, 4]
    # Each step's pairs interleaved word by word: the order the loop loads them.
    parts = [stream[start:start + PAIRS_PER_STEP].transpose(1, 0, 2).reshape(-1)
             for start in range(0, pairs, PAIRS_PER_STEP)]
    if count % 2:
        parts.append(padded[-1])
    return OutputPairs(np.concatenate(parts).astype(np.int8), k4, pairs // PAIRS_PER_STEP,
                       pairs % PAIRS_PER_STEP, bool(count % 2))


def widened_span(offset: int) -> int:
    """The largest |x + offset| over int8 x: what a widened row value can reach."""
    return max(128 - offset, 127 + offset)
