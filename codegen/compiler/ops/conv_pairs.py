"""The int8 Conv path for few input channels (first layers: 1 to 3 channels): taps paired
across kernel positions into rows of int16 pairs, so that no receptive field is gathered.

With 1-3 input channels a pixel's taps are too few per position to fill SMLAD's pairs from one
run of memory, and gathering and widening each receptive field costs more than its MACs. So
the taps are paired at compile time, each pair a word that SMLAD multiplies by the pair of
weights: two channels of one position, else one channel of two rows at one column
(vertically), else of one row at two columns (horizontally), and a last odd tap with a zero
weight. For each output row the kernel writes, once, one row buffer per kind of pair: word j
of buffer (bottom row, top row, bottom channel, top channel, column shift) holds those two
taps at input column j - pad_left (and j - pad_left + shift), the zero point where they fall
in the padding. Pixel ox's word for a pair whose bottom tap is in kernel column kx is then
word ox * stride_w + kx * dilation_w of its buffer: a fixed offset from a pointer that moves
stride_w words per pixel, the same for every filter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Most words per filter the kernel unrolls (a 9x7 kernel on 2 channels); beyond, the
# general path.
MOST_WORDS = 64
# Most channels this path takes: with four or more, the general path widens runs of four.
MOST_CHANNELS = 3
# The smallest instruction cache in front of a DSP core's flash that ariel models
# (NUCLEO-L4R5ZI's ART accelerator: 1 KiB), and the bytes of a filter step besides its words'
# loads and SMLAD (starts, output stage, pointers, loop). A step whose code passes the cache
# misses on every pass: KWS's 10x4 filter, 20 words, four filters per step, took 2.99 cycles
# per MAC where two per step take 1.73.
ICACHE_BYTES = 1024
STEP_REST_BYTES = 200
# Bytes of code per word of a step of four filters (six loads and eight SMLAD, 32-bit each).
FOUR_FILTER_WORD_BYTES = 56


@dataclass(frozen=True)
class PairRow:
    """One buffer: bottom halves from kernel row `rows[0]`, channel `channels[0]`; top halves
    from kernel row `rows[1]`, channel `channels[1]`, `shift` input columns to the right."""

    rows: tuple[int, int]
    channels: tuple[int, int]
    shift: int

    def describe(self) -> str:
        same_row = self.rows[0] == self.rows[1]
        if same_row and self.shift == 0:
            return f"row {self.rows[0]}, channels {self.channels[0]} and {self.channels[1]}"
        if same_row:
            return (f"row {self.rows[0]}, channel {self.channels[0]}, columns kx and "
                    f"kx + 1")
        return f"rows {self.rows[0]} and {self.rows[1]}, channel {self.channels[0]}"


@dataclass(frozen=True)
class PairedTaps:
    """Taps as words: word i is buffer `words[i][0]` at kernel column `words[i][1]`;
    `weights[o, i]` is filter o's (bottom, top) weight pair for it."""

    buffers: tuple[PairRow, ...]
    words: tuple[tuple[int, int], ...]
    weights: np.ndarray  # [oc, words, 2] int8


def pair_taps(ohwi: np.ndarray, dilation_w: int) -> PairedTaps:
    """Pair the taps of filters [oc, kh, kw, ic] (ic <= 3): channels 0 and 1 of each
    position (0 and 2 of three); the channel left (1 of three, the one of one) of rows (0, 1),
    (2, 3), ... at each column; in an odd last row, columns (0, 1), (2, 3), ... and a last odd
    column with a zero top weight."""
    oc, kh, kw, ic = ohwi.shape
    buffers: list[PairRow] = []
    words: list[tuple[int, int]] = []
    pairs: list[tuple[tuple[int, int, int], tuple[int, int, int] | None]] = []

    def add(buffer: PairRow, kx: int, bottom, top) -> None:
        if buffer not in buffers:
            buffers.append(buffer)
        words.append((buffers.index(buffer), kx))
        pairs.append((bottom, top))

    # Of three channels, 0 and 2: SXTB16 widens them from one word of the input row.
    same, c = ((0, 2), 1) if ic == 3 else ((0, 1), 0)
    for ky in range(kh):
        if ic >= 2:
            for kx in range(kw):
                add(PairRow((ky, ky), same, 0), kx, (ky, kx, same[0]), (ky, kx, same[1]))
    if ic % 2:
        for ky in range(0, kh - 1, 2):
            for kx in range(kw):
                add(PairRow((ky, ky + 1), (c, c), 0), kx, (ky, kx, c), (ky + 1, kx, c))
        if kh % 2:
            row = PairRow((kh - 1, kh - 1), (c, c), dilation_w)
            for kx in range(0, kw, 2):
                top = (kh - 1, kx + 1, c) if kx + 1 < kw else None
                add(row, kx, (kh - 1, kx, c), top)
    weights = np.zeros((oc, len(words), 2), np.int8)
    for i, (bottom, top) in enumerate(pairs):
        weights[:, i, 0] = ohwi[:, bottom[0], bottom[1], bottom[2]]
        if top is not None:
            weights[:, i, 1] = ohwi[:, top[0], top[1], top[2]]
    return PairedTaps(tuple(buffers), tuple(words), weights)


@dataclass(frozen=True)
class BufferRun:
    """Buffers `first` to `first + count - 1`, alike but for their rows, each `step` kernel
    rows below the one before: the kernel builds them by one loop, its code once."""

    first: int
    count: int
    step: int


def buffer_runs(buffers: tuple[PairRow, ...]) -> list[BufferRun]:
    """The buffers in runs of consecutive ones that differ only in their rows, by the same
    step (VWW's rows 0, 1 and 2 of channels 0 and 2; KWS's rows (0, 1), (2, 3) ... (8, 9)):
    the code that builds them is the cache's to keep, and one loop over a run is a third of
    three copies."""
    runs: list[BufferRun] = []
    for i, b in enumerate(buffers):
        if runs:
            run = runs[-1]
            before = buffers[i - 1]
            step = b.rows[0] - before.rows[0]
            if (run.first + run.count == i and b.channels == before.channels
                    and b.shift == before.shift and step > 0
                    and b.rows[1] - b.rows[0] == before.rows[1] - before.rows[0]
                    and (run.count == 1 or step == run.step)):
                runs[-1] = BufferRun(run.first, run.count + 1, step)
                continue
        runs.append(BufferRun(i, 1, 0))
    return runs


@dataclass(frozen=True)
class BufferLayout:
    """Where the buffers lie, in buffer widths: the first row's buffer k at `slots[k]`, the
    second row's (two rows at a time) `apart` further on. `shared`: the run whose first
    `reused` buffers of the second row are the first row's last ones (input rows both read),
    built once; None where no run is. `total`: the widths both rows take."""

    slots: tuple[int, ...]
    apart: int
    total: int
    shared: int | None = None  # the run's first buffer
    reused: int = 0


def one_row_layout(count: int) -> BufferLayout:
    """The buffers side by side, a second row's after the first's: nothing shared."""
    return BufferLayout(tuple(range(count)), count, 2 * count)


def two_row_layout(buffers: tuple[PairRow, ...], stride_h: int, dilation_h: int
                   ) -> BufferLayout:
    """The layout for two output rows at a time where a run of buffers (buffer_runs) repeats
    `stride_h` input rows further on: the second row's buffer k of the run is the first
    row's k + m (m = stride_h over the run's step), so the run lies first, the second row's
    m widths after the first's, and its first count - m buffers are the first row's last:
    VWW's rows 0, 1, 2 (stride 2) share row 2, ResNet-8's (stride 1) rows 1 and 2. The
    other buffers alternate between the rows, m widths each, so that the second row's lie
    `m` widths after the first's too. Without such a run, one_row_layout."""
    best = None
    for run in buffer_runs(buffers):
        rows = run.step * dilation_h
        if run.count > 1 and stride_h % rows == 0 and stride_h // rows < run.count:
            reused = run.count - stride_h // rows
            if best is None or reused > best[1]:
                best = (run, reused)
    if best is None:
        return one_row_layout(len(buffers))
    run, reused = best
    apart = run.count - reused
    slots = [0] * len(buffers)
    others = [k for k in range(len(buffers)) if not run.first <= k < run.first + run.count]
    for k in range(run.count):
        slots[run.first + k] = k
    for i, k in enumerate(others):
        slots[k] = run.count + apart + i // apart * 2 * apart + i % apart
    return BufferLayout(tuple(slots), apart, max(slots) + apart + 1, run.first, reused)


def slot_runs(runs: list[BufferRun], slots: tuple[int, ...]) -> list[BufferRun]:
    """The runs split where their buffers' slots stop being evenly spaced (the kernel's loop
    over a run steps by one distance)."""
    split: list[BufferRun] = []
    for run in runs:
        first = run.first
        for k in range(run.first + 1, run.first + run.count + 1):
            end = k == run.first + run.count
            spacing = slots[first + 1] - slots[first] if k - first >= 2 else None
            if end or (spacing is not None and slots[k] - slots[k - 1] != spacing):
                split.append(BufferRun(first, k - first, run.step if k - first > 1 else 0))
                first = k
    return split


def flash_order(weights: np.ndarray) -> np.ndarray:
    """The weight pairs [oc, words, 2] as int8 bytes in the order ariel_widen_pairs_s8 reads
    them: each two consecutive words (w0 = (a0, b0), w1 = (a1, b1)) of the filters laid end
    to end as the bytes a0, a1, b0, b1 (SXTB16 widens bytes 0 and 2, and bytes 1 and 3 of the
    word rotated by 8); a zero word after an odd count."""
    flat = weights.reshape(-1, 2)
    if len(flat) % 2:
        flat = np.concatenate([flat, np.zeros((1, 2), np.int8)])
    return np.ascontiguousarray(flat.reshape(-1, 2, 2).transpose(0, 2, 1)).reshape(-1)


def buffer_width(out_w: int, stride_w: int, kernel_w: int, dilation_w: int) -> int:
    """Words per row buffer: one for each input column a pixel's bottom taps reach, from the
    first pixel's first to the last pixel's last."""
    return (out_w - 1) * stride_w + (kernel_w - 1) * dilation_w + 1


def sxtb16_call(offset: int) -> str:
    """The C call that widens bytes 0 and 2 of a word to an int16 pair, `offset` added to
    each (SXTAB16 with the offset in both halves; SXTB16 for 0), its word argument left
    open: the caller appends it and the closing parenthesis."""
    if offset == 0:
        return "ariel_sxtb16("
    halves = ((offset & 0xFFFF) * 0x10001 + 2**31) % 2**32 - 2**31
    return f"ariel_sxtab16({halves}, "


def four_filters(filters: int, words: int) -> bool:
    """Whether the DSP path takes filters four at a time (two pixels by four filters: each
    pixel word loaded once for four filters, 6 loads per 8 SMLAD where two at a time take 4
    per 4): where there are four and the step's code fits the instruction cache."""
    return filters >= 4 and FOUR_FILTER_WORD_BYTES * words + STEP_REST_BYTES <= ICACHE_BYTES


@dataclass(frozen=True)
class LoadStep:
    """One word of the two-pixel loop as its assembly loads it: the word at `offset` (words
    from the first pixel's pointer) for the first pixel, in register `first`, and at `offset
    + stride_w` for the second, in `second`; weight pair `index` of each filter. `reused`:
    the first pixel's word is the second pixel's of the step before, already in `first`."""

    offset: int
    index: int
    first: str
    second: str
    reused: bool


def load_steps(words: list[tuple[int, int]], stride_w: int) -> list[LoadStep]:
    """The words (offset, weight index) in an order that chains each word whose offset is
    another's plus stride_w after that one (kernel columns kx and kx + stride_w of one
    buffer): the second pixel's word of the first is the first pixel's of the next, loaded
    once for both. The two registers swap roles along a chain. Sums in any order are the
    same (every partial sum's bound is checked)."""
    by_offset = {offset: index for offset, index in words}
    steps: list[LoadStep] = []
    for start, _ in words:
        if start - stride_w in by_offset:
            continue  # taken along the chain of the word before it
        offset, first, second, reused = start, "v0", "v1", False
        while offset in by_offset:
            steps.append(LoadStep(offset, by_offset[offset], first, second, reused))
            offset, first, second, reused = offset + stride_w, second, first, True
    return steps
