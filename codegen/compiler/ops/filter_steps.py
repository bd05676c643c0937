"""How an int8 convolution with its filters in RAM (conv_s8.c.j2's DSP path) lays out each
pair of filters there: the pair's two accumulator starts (the folded bias), the pair's
widened filters, then the pair's output-stage entries (multipliers, shifts). Each step of the
kernel's loops reads one pair's all, so one pointer walks them in order: nothing but that
pointer and the output pointer lives across the multiply loop's assembly, which takes every
register (separate tables cost their index and addresses on the stack, reloaded every step).

The starts and stage entries come from one flash table, a row per pair, which the kernel
copies beside the widened filters when it copies a block of them."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from codegen.compiler.ops.base import Names

# Words of output-stage entries one pair of channels may need: two per channel
# (ariel_requantize_hi's multiplier and shift, or ariel_requantize's). The memory plan
# reserves this much per pair before the kernel knows its output stage.
MOST_STAGE_WORDS = 4
# The per-channel output-stage tables a kernel's DSP path may read, by weight key.
STAGE_KEYS = ("rq", "mult", "shift", "rq_dsp")


@dataclass(frozen=True)
class PairSteps:
    """`table`: int32 [pairs, 2 + stage], per pair of channels (2q, 2q + 1) their starts, then
    each stage table's entries for the two (an odd last channel paired with itself);
    `stage`: the stage words per pair; `offsets`: where each stage table's entries begin in
    them, by the table's C name; `widths`: each table's words per channel."""

    table: np.ndarray
    stage: int
    offsets: dict[str, int]
    widths: tuple[int, ...]  # each stage table's words per channel

    def unit(self, k4: int) -> int:
        """Words one pair takes in RAM: its starts, its two widened filters, its entries."""
        return 2 + k4 + self.stage

    def reading(self, call):
        """`call` (a kernel's C-writing output stage, called with channels "0" and "1" of the
        pair) reading the pair's entries from the locals `declare` writes."""
        def from_locals(*args):
            text = call(*args)
            for name, offset in self.offsets.items():
                text = re.sub(re.escape(name) + r"\[([0-9 +*()]+)\]",
                              lambda m, offset=offset: f"stage{offset + _integer(m.group(1))}",
                              text)
            return text
        return from_locals

    def declare(self, pointer: str, offset: int = 0, channels: int = 2) -> str:
        """C declaring the pair's stage words as locals stage0.. from `pointer`[offset..]
        (with `channels` 1, only the first channel's: an odd last filter's step): read into
        registers before the int8 stores, which C lets alias them (an array would be read
        again after every store)."""
        used = [start + j for start, width in zip(self.offsets.values(), self.widths,
                                                  strict=True)
                for j in range(width * channels)]
        return "const int32_t " + ", ".join(
            f"stage{j} = {pointer}[{offset + j}]" for j in used) + ";"


def _integer(expression: str) -> int:
    """The value of a constant index (digits, +, * and parentheses) an output stage writes."""
    tokens = re.findall(r"\d+|[+*()]", expression)
    assert "".join(tokens) == expression.replace(" ", ""), expression
    return int(eval("".join(tokens), {"__builtins__": {}}))  # noqa: S307 - digits and + * ( )


def pair_steps(starts: np.ndarray, tables: dict[str, np.ndarray], names: Names) -> PairSteps:
    """The layout for channels whose accumulators start at `starts` and whose output stage
    reads `tables` (by weight key; every entry an int32, the same count per channel)."""
    channels = len(starts)
    stage = {key: np.asarray(tables[key]).reshape(channels, -1)
             for key in STAGE_KEYS if key in tables}
    assert set(stage) == set(tables), f"output-stage tables {sorted(tables)}"
    offsets, words = {}, 0
    for key, entries in stage.items():
        offsets[names.weight(key)] = words
        words += 2 * entries.shape[1]
    assert words <= MOST_STAGE_WORDS
    rows = []
    for first in range(0, channels, 2):
        pair = [first, min(first + 1, channels - 1)]
        rows.append(np.concatenate([np.asarray(starts, np.int64)[pair]]
                                   + [entries[pair].reshape(-1) for entries in stage.values()]))
    table = np.stack(rows)
    assert np.all(np.abs(table) < 2 ** 31)
    return PairSteps(table.astype(np.int32), words, offsets,
                     tuple(entries.shape[1] for entries in stage.values()))
