"""ariel_requantize_hi, the 32-bit output stage the packed int8 kernels use for shifts of 33
or more, equals ariel_requantize (and so codegen.compiler.quant.fixedpoint.requantize) on every
accumulator, multiplier, shift and zero point tried, extremes included."""

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

void both(const int32_t *acc, const int32_t *multiplier, const int32_t *shift,
          const int32_t *zero_point, const int32_t *low, const int32_t *high, int32_t count,
          int32_t *generic, int32_t *hi)
{
    for (int32_t i = 0; i < count; ++i) {
        generic[i] = ariel_requantize(acc[i], multiplier[i], shift[i], zero_point[i], low[i],
                                      high[i]);
        hi[i] = ariel_requantize_hi(acc[i], multiplier[i], shift[i] - 33, zero_point[i],
                                    low[i], high[i]);
    }
}
"""


def test_requantize_hi_equals_requantize(tmp_path):
    (tmp_path / "rq.c").write_text(SOURCE)
    library = tmp_path / "librq.so"
    subprocess.run(["gcc", *HOST_CFLAGS, f"-I{data_dir('firmware')}", str(tmp_path / "rq.c"),
                    "-o", str(library)], check=True)
    both = ctypes.CDLL(str(library)).both
    rng = np.random.default_rng(50)
    count = 200_000
    acc = rng.integers(-2**31, 2**31, count, dtype=np.int64)
    acc[:8] = [-2**31, 2**31 - 1, -1, 0, 1, -2**30, 2**30, 12345]
    multiplier = rng.integers(2**30, 2**31, count, dtype=np.int64)
    multiplier[8:16] = [2**30, 2**31 - 1, 2**30, 2**31 - 1, 0, 1, 2**31 - 1, 2**30]
    shift = rng.integers(33, 63, count, dtype=np.int64)
    shift[:16:2] = 33
    shift[1:16:2] = 62
    # Small accumulators too, where rounding ties (exact halves) are common.
    acc[16:50_000] = rng.integers(-4096, 4096, 50_000 - 16)
    shift[16:50_000] = rng.integers(33, 45, 50_000 - 16)
    zero_point = rng.integers(-128, 128, count, dtype=np.int64)
    low = rng.integers(-128, 0, count, dtype=np.int64)
    high = rng.integers(0, 128, count, dtype=np.int64)
    arrays = [np.ascontiguousarray(a, dtype=np.int32) for a in
              (acc, multiplier, shift, zero_point, low, high)]
    generic = np.zeros(count, np.int32)
    hi = np.zeros(count, np.int32)
    pointer = ctypes.POINTER(ctypes.c_int32)
    both(*[a.ctypes.data_as(pointer) for a in arrays], ctypes.c_int32(count),
         generic.ctypes.data_as(pointer), hi.ctypes.data_as(pointer))
    want = requantize(acc, multiplier, shift, zero_point, low, high)
    np.testing.assert_array_equal(generic, want)
    np.testing.assert_array_equal(hi, want)
    assert len(set(hi.tolist())) > 200  # not all clamped: the test sees real values
