"""The fixed-point rule: multipliers are accurate, and the C helper in ariel_runtime.h gives
the numpy reference's results bit for bit, edges included."""

import ctypes
import math
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from codegen.compiler.quant.fixedpoint import (
    align_multiplier,
    quantize_bias,
    quantize_multiplier,
    quantize_multipliers,
    requantize,
)
from codegen.resources import data_dir

C_SOURCE = r"""
#include <stdint.h>
#include "ariel_runtime.h"
void requantize_many(const int32_t *acc, const int32_t *mult, const int32_t *shift,
                     int32_t zero_point, int32_t low, int32_t high, int32_t *out, int n)
{
    for (int i = 0; i < n; ++i) {
        out[i] = ariel_requantize(acc[i], mult[i], shift[i], zero_point, low, high);
    }
}
"""


@pytest.fixture(scope="module")
def c_requantize(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fixedpoint")
    (folder / "requant.c").write_text(C_SOURCE)
    library = folder / "librequant.so"
    subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    f"-I{data_dir('firmware')}", str(folder / "requant.c"), "-o", str(library)],
                   check=True)
    lib = ctypes.CDLL(str(library))

    def run(acc, mult, shift, zero_point, low, high):
        acc, mult, shift = (np.ascontiguousarray(a, np.int32) for a in (acc, mult, shift))
        out = np.zeros_like(acc)
        pointer = ctypes.c_void_p
        lib.requantize_many(pointer(acc.ctypes.data), pointer(mult.ctypes.data),
                            pointer(shift.ctypes.data), zero_point, low, high,
                            pointer(out.ctypes.data), len(acc))
        return out
    return run


@pytest.mark.parametrize("real", [1e-9, 3.1e-5, 0.0039, 0.25, 0.5, 0.7071, 0.999999, 1.0, 3.5,
                                  1000.0, 2.0**29])
def test_multiplier_is_accurate(real):
    multiplier, shift = quantize_multiplier(real)
    assert 2**30 <= multiplier < 2**31
    assert 1 <= shift <= 62
    # Rounded to the nearest: within half a unit of M, M being at least 2**30.
    assert abs(multiplier * 2.0**-shift - real) <= real * 2**-31


@pytest.mark.parametrize("real", [0.5 + 2.0**-32, 0.5 + 3 * 2.0**-33, 0.75 - 2.0**-33,
                                  1.0 - 2.0**-33, 3.0 + 2.0**-30])
def test_multiplier_rounds_the_exact_value_half_up(real):
    """Values whose M * 2**-shift is not whole (by a half, three quarters, ...): M is the
    exact rational real * 2**shift rounded half up, computed here with fractions."""
    multiplier, shift = quantize_multiplier(real)
    exact = Fraction(real) * 2**shift
    assert exact.denominator > 1
    assert multiplier == math.floor(exact + Fraction(1, 2))


def test_zero_multiplier():
    assert quantize_multiplier(0.0) == (0, 1)


def test_c_helper_equals_numpy(c_requantize):
    rng = np.random.default_rng(0)
    n = 20000
    acc = rng.integers(-2**31, 2**31, size=n, dtype=np.int64).astype(np.int32)
    acc[:8] = [0, 1, -1, 2**31 - 1, -2**31, 12345, -12345, 64]
    reals = np.exp(rng.uniform(np.log(1e-7), np.log(4.0), size=n))
    mult, shift = quantize_multipliers(reals)
    for zero_point, low, high in ((0, -128, 127), (-128, -128, 127), (17, -5, 100)):
        want = requantize(acc, mult, shift, zero_point, low, high)
        got = c_requantize(acc, mult, shift, zero_point, low, high)
        np.testing.assert_array_equal(got, want)


def test_rounds_half_up():
    # multiplier 2**30 with shift 31 is exactly one half: x * 0.5 rounded half up.
    acc = np.array([1, 3, -1, -3, 2, -2])
    got = requantize(acc, 2**30, 31, 0, -1000, 1000)
    np.testing.assert_array_equal(got, [1, 2, 0, -1, 1, -1])


def test_against_float_rounding_within_one():
    rng = np.random.default_rng(1)
    acc = rng.integers(-2**20, 2**20, size=5000)
    real = 0.0123
    mult, shift = quantize_multiplier(real)
    got = requantize(acc, mult, shift, 0, -2**31, 2**31 - 1)
    want = np.floor(acc * real + 0.5)
    assert np.abs(got - want).max() <= 1
    assert (got == want).mean() > 0.999


def test_align_multiplier_rounds_half_up():
    """A multiplier moved to a smaller shift (several multipliers sharing one) is the exact
    quotient rounded half up, fractions as the oracle, on quotients off a whole number by a
    quarter, a half and three quarters."""
    for multiplier, extra in [(2**30 + 1, 2), (2**30 + 2, 2), (2**30 + 3, 2), (1_500_000_003, 3),
                              (2**31 - 1, 5), (1_234_567_891, 1)]:
        exact = Fraction(multiplier, 2**extra)
        assert align_multiplier(multiplier, extra) == math.floor(exact + Fraction(1, 2))
    assert align_multiplier(2**30 + 3, 0) == 2**30 + 3


def test_bias_is_rounded_half_to_even_as_onnx_runtimes_quantizer_does():
    """int32 bias = bias / (s_in * s_w) rounded half to even (numpy's round in ONNX Runtime's
    quantize_bias_static_impl), fractions as the oracle; scales are powers of two so every
    quotient is exact."""
    s_in, s_w = 2.0**-3, np.array([2.0**-4, 2.0**-5])
    units = np.array([0.75, 2.5, -2.5, -0.7, 3.5, -3.25])
    for scale in s_w:
        bias = units * s_in * scale
        want = []
        for value in units:
            exact = Fraction(float(value)).limit_denominator(100)
            low = math.floor(exact)
            rest = exact - low
            want.append(low + (1 if rest > Fraction(1, 2) or (rest == Fraction(1, 2)
                                                               and low % 2) else 0))
        np.testing.assert_array_equal(quantize_bias(bias, s_in, scale), want)


ISQRT_SOURCE = r"""
#include <stdint.h>
#include "ariel_runtime.h"
void isqrt_many(const uint64_t *v, uint64_t *out, int n)
{
    for (int i = 0; i < n; ++i) {
        out[i] = ariel_isqrt_u64(v[i]);
    }
}
"""


def test_c_integer_square_root_equals_pythons(tmp_path):
    """ariel_isqrt_u64, the int8 normalizations' square root, against Python's math.isqrt
    (an implementation of its own) on exact squares, their neighbours and random values up
    to 2**64 - 1."""
    (tmp_path / "isqrt.c").write_text(ISQRT_SOURCE)
    library = tmp_path / "libisqrt.so"
    subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    f"-I{data_dir('firmware')}", str(tmp_path / "isqrt.c"), "-o", str(library)],
                   check=True)
    rng = np.random.default_rng(5)
    roots = [0, 1, 2, 3, 255, 65535, 2**32 - 1, *rng.integers(0, 2**32, 300).tolist()]
    values = sorted({v for r in roots for v in (r * r - 1, r * r, r * r + 1) if 0 <= v < 2**64}
                    | set(rng.integers(0, 2**63, 300).tolist()) | {2**64 - 1})
    v = np.array(values, np.uint64)
    out = np.zeros_like(v)
    ctypes.CDLL(str(library)).isqrt_many(ctypes.c_void_p(v.ctypes.data),
                                         ctypes.c_void_p(out.ctypes.data), len(v))
    assert out.tolist() == [math.isqrt(value) for value in values]
