"""ariel_requantize_common, the output stage with one shift for every channel (each channel's
filters and bias scaled by 2^j at compile time, codegen/compiler/ops/common_shift.py), equals
codegen.compiler.quant.fixedpoint.requantize of the unscaled accumulator with the channel's
own shift, on random and extreme accumulators, multipliers, shifts and zero points."""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np

from codegen.compiler.quant.fixedpoint import requantize
from codegen.resources import data_dir
from codegen.run.hostrun import HOST_CFLAGS

SOURCE = r"""
#include <stdint.h>
#include "ariel_runtime.h"

void common(const int32_t *acc, const int32_t *multiplier, const int32_t *add,
            const int32_t *shift, const int32_t *low, const int32_t *high, int32_t count,
            int32_t *out)
{
    for (int32_t i = 0; i < count; ++i) {
        out[i] = ariel_requantize_common(acc[i], multiplier[i], add[i], shift[i], low[i],
                                         high[i]);
    }
}
"""


def test_requantize_common_equals_requantize_of_the_unscaled_accumulator(tmp_path):
    (tmp_path / "rq.c").write_text(SOURCE)
    library = tmp_path / "librq.so"
    subprocess.run(["gcc", *HOST_CFLAGS, f"-I{data_dir('firmware')}", str(tmp_path / "rq.c"),
                    "-o", str(library)], check=True)
    function = ctypes.CDLL(str(library)).common
    rng = np.random.default_rng(51)
    count = 100_000
    shift = rng.integers(33, 45, count, dtype=np.int64)  # the channel's own
    common = shift - 33 + 1 + rng.integers(0, 8, count)  # T >= 1 + shift - 33
    scale = np.left_shift(np.int64(1), common - 1 - (shift - 33))
    acc = rng.integers(-2**31, 2**31, count, dtype=np.int64) // scale
    acc[:30_000] = rng.integers(-5000, 5000, 30_000)  # rounding ties are common here
    acc[30_000:30_004] = [0, -1, 1, -(2**31) // scale[30_003]]
    multiplier = rng.integers(2**30, 2**31, count, dtype=np.int64)
    multiplier[30_000:30_004] = [2**30, 2**31 - 1, 2**31 - 1, 2**31 - 1]
    zero_point = rng.integers(-128, 128, count, dtype=np.int64)
    low = rng.integers(-128, 0, count, dtype=np.int64)
    high = rng.integers(0, 128, count, dtype=np.int64)
    add = (np.left_shift(np.int64(1), common - 1) + zero_point * np.left_shift(np.int64(1),
                                                                               common))
    arrays = [np.ascontiguousarray(a, dtype=np.int32) for a in
              (acc * scale, multiplier, add, common, low, high)]
    out = np.zeros(count, np.int32)
    pointer = ctypes.POINTER(ctypes.c_int32)
    function(*[a.ctypes.data_as(pointer) for a in arrays], ctypes.c_int32(count),
             out.ctypes.data_as(pointer))
    np.testing.assert_array_equal(out, requantize(acc, multiplier, shift, zero_point, low, high))
    assert len(set(out.tolist())) > 200  # not all clamped: the test sees real values
