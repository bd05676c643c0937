"""Dense layers that leave out the zero words of their row: a vector times constant filters
(output_pairs.py's kernel), where the row is a ReLU's output and so often half zeros.

The kernel widens the row into column words of two int16 inputs each, the zero point
subtracted, so a word whose two inputs are both at their zero point (real 0) is 0 and adds
nothing to any output. The kernel lists the nonzero words of each row once
(ariel_list_words_s8), then runs each step of six outputs over the list alone
(ariel_dot_3pairs_listed_s8): the words left out are neither multiplied nor read from flash.

Which inputs share a word, and in which order, is chosen here from the calibration data:
inputs paired greedily by how often both were zero together, the words then ordered least
often zero first. Inputs that are zero together share words, and the words most often left
out lie together at the end of each step's weights, so whole flash double words go unread.
The kernel gathers its row into that order through a table, unless the row's producer
writes it so (quant/zero_rows.py's plan_listing; `in_order` here).

A list costs more per word than the dense loop, and what it saves depends on the input, so
each row decides at run time: a row with more than `limit` entries runs the dense loop over
its column words instead. A layer then never costs more than its dense loop and the list's
making; it is built this way only where the calibration data says the list pays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Cortex-M4 cycles per column word for a step of six outputs, RAM speed (ariel_runtime.h):
# ariel_dot_3pairs_s8's loop, 14 a word and 3 per eight words for the count and branch;
# ariel_dot_3pairs_listed_s8's, 17 an entry and 4 per eight entries.
DENSE_WORD_CYCLES = 14 + 3 / 8
LISTED_ENTRY_CYCLES = 17 + 4 / 8
# Each column word's weights, 12 bytes, read from flash: 1.5 double words, each missing the
# flash's data cache at the board's wait states. Both loops pay it per word they read, so it
# makes the list pay sooner; a board with no wait states (or weights in RAM) pays nothing.
DOUBLE_WORDS_PER_WORD = 1.5
# The wait states assumed where no board is known (the reference board's, NUCLEO-L4R5ZI).
REFERENCE_WAIT_STATES = 5
# Making the list, per column word of the row: gathered through the table (loads of the
# index pair and both inputs, the packing, the test and the entry) or scanned as it lies
# (ariel_list_nonzero), against the dense kernel's widening alone, about 2; and per step of
# six outputs, the list's extra (the jump into its loop, the test of the row, registers
# moved around the call). Fitted so that the model agrees with the measured sign and about
# the size of the difference on digits_mlp's first layer (32 words, 5 steps: the list 263
# cycles dearer on mps2-an386, with no wait states, and about 200 cheaper on NUCLEO-L4R5ZI)
# and on AD's layers.
GATHER_WORD_CYCLES = 24
SCAN_WORD_CYCLES = 8
LISTED_STEP_CYCLES = 24
PAIRS_PER_STEP = 3
LIST_BYTES_PER_WORD = 8  # an entry: the distance and the column word, on the stack
STEP_OUTPUTS = 2 * PAIRS_PER_STEP
# Below this, a layer's weights cost too little to read for a list to pay back its making,
# and its calibration statistics are not gathered (codegen/compiler/quant/zero_rows.py).
MIN_WEIGHT_BYTES = 2048
# What a listing kernel's time depends on (Kernel.input_dependent, for build notes).
INPUT_DEPENDENT = ("dense layers that leave out the zero inputs of their row take longer on a "
                   "row with fewer zeros, at most their dense loop's time plus the list's "
                   "making")
# pair_inputs' greedy pairing sorts all K (K - 1) / 2 pairs: up to this K (half a million).
GREEDY_INPUTS = 1024


@dataclass(frozen=True)
class ZeroWords:
    """How a layer's row is paired into column words: word j holds inputs sources[j, 0]
    and sources[j, 1]; `order` is the same as a row of K4 positions (position
    4 (j // 2) + j % 2 holds word j's first input, that plus 2 its second, as
    output_pairs.py packs them), `padding` marks the positions that pad K to K4 (their
    weights are 0; they read the input most often zero, so that their words are left out
    with it). `limit` is the most entries a row may list before the dense loop is faster;
    `listed_share` the share of words listed, on average over the calibration rows."""

    sources: np.ndarray
    order: np.ndarray
    padding: np.ndarray
    limit: int
    listed_share: float

    @property
    def words(self) -> int:
        return len(self.sources)

    @property
    def in_order(self) -> bool:
        """Whether the row lies in the pairing's order (no gather: the kernel widens it)."""
        return bool((self.order == np.arange(len(self.order))).all())

    def source_words(self) -> np.ndarray:
        """The kernel's table: per word, its first input in the bottom half, its second in
        the top (ariel_list_words_s8)."""
        return (self.sources[:, 0] | self.sources[:, 1] << 16).astype(np.uint32)

    def filters(self, rows: np.ndarray) -> np.ndarray:
        """Filters [N, K] as rows of K4 positions in this order (padding weights 0)."""
        return np.where(self.padding, 0, rows[:, self.order])

    def note(self) -> str:
        """The kernel comment's line on the list."""
        return (f"the row's column words listed where nonzero (inputs paired and ordered by "
                f"how often calibration saw them zero: {1 - self.listed_share:.0%} of the "
                f"words zero on average; the list {LIST_BYTES_PER_WORD * self.words} bytes "
                f"on the stack), each step over the list alone; a row of more than "
                f"{self.limit} of the {self.words} words runs the dense loop instead")


def plan_zero_words(zeros: np.ndarray, outputs: int, wait_states: int = REFERENCE_WAIT_STATES,
                    in_order: bool = False, decided: bool = False) -> ZeroWords | None:
    """The pairing of a row whose calibration rows were zero where `zeros` ([rows, K] bool)
    says, for a layer of `outputs` filters whose weights are read at `wait_states` (the
    board's flash; 0 in RAM); None when a list would not pay on them. With
    `in_order`, the row already lies in its pairing's order (its producer writes it so,
    quant/zero_rows.py's plan_listing): word j pairs the inputs the kernel's widening puts
    together, 4 (j // 2) + j % 2 and that plus 2. `decided`: the list is wanted whatever the
    cost model says (measured by --tune, codegen/tune.py), where a row has a step at all."""
    k = zeros.shape[1]
    k4 = -(-k // 4) * 4
    steps = outputs // STEP_OUTPUTS
    if steps == 0 or len(zeros) == 0:
        return None
    if k4 > 1 << 16:  # the kernel's table holds each input's index in 16 bits
        return None
    flash = DOUBLE_WORDS_PER_WORD * wait_states
    costs = Costs(DENSE_WORD_CYCLES + flash, LISTED_ENTRY_CYCLES + flash,
                  SCAN_WORD_CYCLES if in_order else GATHER_WORD_CYCLES)
    words = k4 // 2
    if not decided and not costs.pays(steps, words, 1 - float(zeros.mean())):
        return None  # no pairing leaves out more words than there are zero inputs
    # Padding positions count as always zero; the kernel reads the input most often zero
    # for them (their weights are 0, so only whether their word is listed depends on it).
    padded = np.concatenate([zeros, np.ones((len(zeros), k4 - k), bool)], axis=1)
    word = np.arange(words)
    first = 4 * (word // 2) + word % 2
    if in_order:
        pairs = np.stack([first, first + 2], axis=1)
        zero_words = padded[:, pairs[:, 0]] & padded[:, pairs[:, 1]]
    else:
        pairs = pair_inputs(padded)
        zero_words = padded[:, pairs[:, 0]] & padded[:, pairs[:, 1]]
        pairs = pairs[np.argsort(zero_words.mean(axis=0), kind="stable")]  # least often zero first
    share = 1 - float(zero_words.mean())
    padding = pairs >= k
    sources = np.where(padding, int(np.argmax(zeros.mean(axis=0))), pairs)
    if not decided and not costs.pays(steps, words, share):
        return None
    order, positions_padded = np.empty(k4, np.int64), np.empty(k4, bool)
    order[first], order[first + 2] = sources[:, 0], sources[:, 1]
    positions_padded[first], positions_padded[first + 2] = padding[:, 0], padding[:, 1]
    return ZeroWords(sources, order, positions_padded, int(words * costs.dense / costs.listed),
                     share)


@dataclass(frozen=True)
class Costs:
    """Cycles per column word of a step, dense and listed (weights' flash reads included),
    and per column word of the row to make the list."""

    dense: float
    listed: float
    making: float

    def pays(self, steps: int, words: int, share: float) -> bool:
        """Whether listing `share` of the words saves more over the steps than the list
        costs to make and to enter."""
        saved = steps * (words * (self.dense - share * self.listed) - LISTED_STEP_CYCLES)
        return saved > words * self.making


def pair_inputs(zeros: np.ndarray) -> np.ndarray:
    """The inputs ([rows, K] bool: where each was zero, K even) paired into K / 2 words so
    that the two of a word tend to be zero together: greedily, the pair zero together most
    often first (for K up to GREEDY_INPUTS; beyond, inputs sorted by how often they are
    zero, neighbours paired)."""
    k = zeros.shape[1]
    if k > GREEDY_INPUTS:
        return np.argsort(zeros.mean(axis=0), kind="stable").reshape(-1, 2)
    counts = zeros.T.astype(np.int32) @ zeros.astype(np.int32)  # [K, K]: zero together
    first, second = np.triu_indices(k, 1)
    free = np.ones(k, bool)
    pairs = []
    for index in np.argsort(-counts[first, second], kind="stable"):
        i, j = first[index], second[index]
        if free[i] and free[j]:
            pairs.append((i, j))
            free[i] = free[j] = False
            if len(pairs) == k // 2:
                break
    return np.array(pairs, np.int64).reshape(-1, 2)
