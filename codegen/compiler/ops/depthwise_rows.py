"""The int8 depthwise kernel for filters three taps wide (conv_dw_rows_s8.c.j2): planes of
int16 pairs, two output pixels per step, the filter in registers.

Four channels' input rows are copied once into one plane per channel, widened to int16 and
padded with the zero point: word k of a row holds padded columns 2k (bottom half) and
2k + 1 (top). Two output pixels side by side then read each filter row's taps as two or three
words with no packing: with stride 1, u = (x0, x1) and v = (x2, x3) give the left pixel
x0 w0 + x1 w1 (SMLAD with f = (w0, w1)) + x2 w2 (SMLABT with g = (w1, w2)) and the right one
x1 w0 (SMLATB with f) + x2 w1 + x3 w2 (SMLAD with g); with stride 2, t = (x4, x5) too, and
the right pixel is v f + t's bottom half times w2, which two filter rows share a word for
(filter_words). One channel at a time, so the filter's words stay in registers over a whole
row of pixels: per pair of pixels and filter row, two or three loads and four multiplies for
six MACs."""

from __future__ import annotations

import numpy as np

# Stack for the planes of four channels: the whole padded input where it fits, else bands of
# as many output rows as fit; an input whose window's rows alone would pass it takes the
# other depthwise kernel. The same 6 KiB as conv.py's FILTER_STACK_BUDGET (the DSP boards
# reserve 8 KiB of stack; a build whose deepest chain needs more reserves more, where the
# RAM has it). Bands replace a ring of as many rows as a window spans, which cost each
# channel its filter loads and a switch on the ring's phase per output row: VWW's layers on
# 24x24x32 inputs (5.3 KiB and 5.1 KiB whole) went from 2.56 to 2.34 and 4.14 to 3.83
# cycles/MAC (Cortex-M4, flash model) taken whole instead of through the ring.
PLANES_BUDGET = 6144
# Output rows of at most this many pixel pairs take them one after the other, unrolled (a
# small map's rows pay no loop set-up, count or branch per pair); longer rows loop. Measured
# on VWW (Cortex-M4, flash model): its rows of 3 pairs went from 2.67 to 2.46 cycles/MAC
# unrolled, its rows of 6 pairs from 2.42 to 2.81 (more code, worse register allocation).
UNROLLED_PAIRS = 4
# Pixel pairs per pass of a longer row's loop, by column stride. Two with stride 2 halve the
# loop's count, compare and end-pointer reload per pair, which its five filter words leave
# room for: VWW's stride-2 layers on 48x48 and 24x24 inputs (rows of 12 and 6 pairs) went
# from 3.63 to 3.34 and 3.46 cycles/MAC (Cortex-M4, flash model). With stride 1's six filter
# words the same made its rows of 24 and 12 pairs slower (2.35 -> 2.53, 2.41 -> 2.51).
PAIRS_PER_STEP = {1: 1, 2: 2}


def oriented(geometry: dict, transposed: bool) -> dict:
    """The geometry as the kernel walks it: rows of the input and output as they are, or,
    transposed, their columns as rows (the filter transposed with them), with the strides
    in bytes between input rows and columns (x_row, x_col) and between output pixels of a
    row (out_step), and C for the start of output row `oy` (out_row)."""
    g = dict(geometry)
    ic, oc = g["ic"], g["oc"]
    if not transposed:
        return {**g, "x_row": g["iw"] * ic, "x_col": ic, "out_step": g["out_col_step"] * oc,
                "out_row": lambda oy: f"{g['pixel_at'](oy, '0')} * {oc}", "transposed": False}
    for a, b in (("ih", "iw"), ("oh", "ow"), ("kh", "kw"), ("sh", "sw"), ("dh", "dw"),
                 ("pad_top", "pad_left")):
        g[a], g[b] = geometry[b], geometry[a]
    return {**g, "x_row": ic, "x_col": geometry["iw"] * ic, "out_step": geometry["ow"] * oc,
            "out_row": lambda oy: f"{oy} * {oc}", "transposed": True}


def rows_path(g: dict) -> dict | None:
    """What conv_dw_rows_s8.c.j2 needs besides the geometry `g` (as oriented() gives it), or
    None where it does not apply: a filter row of other than three taps, a dilated or
    wider-than-2 column stride, or planes beyond PLANES_BUDGET even for one output row."""
    if g["kw"] != 3 or g["dw"] != 1 or g["sw"] not in (1, 2):
        return None
    ow = g["ow"]
    # The last column a word load reads: stride 2's right pixel reads a third word, and a
    # lone last pixel the second word's top half.
    last = (ow - 1) * g["sw"] + 3
    words = last // 2 + 1
    window = (g["kh"] - 1) * g["dh"] + 1
    oh, sh = g["oh"], g["sh"]
    height = (oh - 1) * sh + window
    whole = 16 * height * words <= PLANES_BUDGET
    # Else bands of output rows, as even as their count allows, each copying the padded rows
    # its windows span into the planes' rows from 0 (those the bands share, copied again).
    fit = PLANES_BUDGET // (16 * words)
    if not whole and fit < window:
        return None
    bands = 1 if whole else -(-oh // ((fit - window) // sh + 1))
    band = -(-oh // bands)
    rows = (band - 1) * sh + window
    iw, left = g["iw"], g["pad_left"]
    # Words whose two columns both lie in the input: k from full_from to full_to - 1; the
    # edge words, one column in the input: (k, a's input column or None, b's).
    full_from = max(0, -(-left // 2))
    full_to = min(words, max(full_from, (iw + left - 2) // 2 + 1))
    inside = [[ix if 0 <= ix < iw else None for ix in (2 * k - left, 2 * k + 1 - left)]
              for k in range(words)]
    edges = [(k, a, b) for k, (a, b) in enumerate(inside)
             if not full_from <= k < full_to and (a is not None or b is not None)]
    holding = [k for k, (a, b) in enumerate(inside) if a is not None or b is not None]
    # Filter row ky's plane row, in words from column 0 of the window's first row.
    at_rows = [ky * g["dh"] * words for ky in range(g["kh"])]
    return {"words": words, "window": window, "filter_words": filter_words(g["kh"], g["sw"]),
            "per_step": PAIRS_PER_STEP[g["sw"]], "rows": rows, "whole": whole, "band": band,
            "bands": bands, "at_rows": at_rows, "unrolled": ow // 2 <= UNROLLED_PAIRS,
            "plane": rows * words, "full_from": full_from, "full_to": full_to,
            "edges": edges, "zero_word": any(None in (a, b) for _, a, b in edges),
            "first_word": holding[0], "end_word": holding[-1] + 1,
            "copy_top": max(0, -g["pad_top"]),
            "copy_bottom": min(g["ih"] - 1, height - 1 - g["pad_top"])}


def pack_rows_filters(rows: np.ndarray, kh: int, transposed: bool, sw: int) -> np.ndarray:
    """Depthwise filters [C, kh * kw] (int16 range, kw 3, or kh 3 when transposed) as int32
    words per channel, as filter_words() lays them: w0 in the bottom half of each."""
    taps = rows.astype(np.int64).reshape(rows.shape[0], kh, -1)
    if transposed:
        taps = taps.transpose(0, 2, 1)
    taps = taps.astype(np.int16)
    channels, height = taps.shape[:2]
    if sw == 1:
        pairs = np.stack([taps[:, :, 0:2], taps[:, :, 1:3]], axis=2)  # [C, kh, 2, 2]
        return np.ascontiguousarray(pairs).view(np.int32).reshape(-1)
    # Stride 2: f = (w0, w1) per filter row, then the rows' w2 two to a word.
    lasts = np.zeros((channels, height + height % 2), np.int16)
    lasts[:, :height] = taps[:, :, 2]
    words = np.concatenate([np.ascontiguousarray(taps[:, :, 0:2]).reshape(channels, -1),
                            lasts], axis=1)
    return np.ascontiguousarray(words).view(np.int32).reshape(-1)


def filter_words(kh: int, sw: int) -> int:
    """int32 words per channel of pack_rows_filters: with stride 1, f = (w0, w1) and
    g = (w1, w2) per filter row (the right pixel's SMLAD takes all of g); with stride 2,
    f per filter row, then (w2 of row 2i, w2 of row 2i + 1) per two rows, as the pixels
    multiply w2 by one input column only (SMLABB/SMLABT): one register fewer for a filter
    of three rows, which the loop over pixel pairs needs to hold the filter, the output
    stage and its pointers without spilling."""
    return 2 * kh if sw == 1 else kh + (kh + 1) // 2


def describe(path: dict, way: dict) -> str:
    """The kernel's path line: what it does and why."""
    sw = way["sw"]
    copy = (f"the whole padded input ({16 * path['plane']} B of stack)" if path["whole"] else
            f"in {path['bands']} bands of up to {path['band']} output rows, each copying "
            f"the {path['rows']} padded rows its windows span ({16 * path['plane']} B of "
            f"stack; the whole input would pass {PLANES_BUDGET} B; the rows two bands share "
            "copied for each; a channel's filter loaded once per band)")
    loads = "two words" if sw == 1 else "three words"
    singles = ("SMLABT/SMLATB" if sw == 1 else
               "SMLABB/SMLABT, the third taps of two filter rows sharing a word")
    pairs = way["ow"] // 2
    plural = "" if pairs == 1 else "s"
    walk = (f" Its output rows, of {pairs} pixel pair{plural}, are unrolled (rows of at most "
            f"{UNROLLED_PAIRS} pairs: no loop count or branch per pair, constant offsets)."
            if path["unrolled"] else
            f" Its output rows, of {pairs} pixel pairs, loop over them, "
            f"{path['per_step']} a pass (rows of at most {UNROLLED_PAIRS} pairs are unrolled; "
            "longer ones unrolled measured slower).")
    turned = (" The map is walked by columns (its input and filter transposed as they are "
              "copied and packed): they are longer than its rows, so fewer rows pay the set-up "
              "and fewer end in a lone pixel." if way["transposed"] else "")
    return ("path: depthwise by rows of int16 planes, one channel at a time, two output "
            f"pixels per step.{turned} Four channels' input is copied once into planes of "
            "int16 pairs "
            f"({copy}; SXTB16 and PKHBT/PKHTB on the DSP extension), so that each filter row's "
            f"taps of two neighbouring pixels are {loads} loaded as they are, no packing in "
            "the loop; the channel's filter words stay in registers across its rows. Per "
            f"pixel pair and filter row: two SMLAD and two {singles} for six MACs (two "
            "multiplies each on a core without the DSP extension, the same sums)." + walk)
