"""Unary mathematical functions (Exp, Log, Sqrt, Reciprocal, Erf, trigonometric and hyperbolic
functions and their inverses, Floor, Ceil, Round), the sign operators (Neg, Abs, Sign) and the
predicates and bitwise negations (IsNaN, IsInf, Not, BitwiseNot).

float32 kernels call libm's float functions (expf, erff, ...); the numpy references compute
in float64 and round once, so they are the correctly rounded result a float function
approximates (newlib's and glibc's functions differ from it, and from each other, in the
last bits). Round is rintf: half to even, as ONNX wants, in C's default rounding mode.
Integer Neg and Abs wrap as numpy's do (-(-128) is -128 in int8) and are computed on the
unsigned type, so C's signed overflow never happens. Every real function here (not the
predicates, Not or BitwiseNot) is a 256-entry table on int8 tensors."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from codegen.compiler.ir import C_TYPES, Node
from codegen.compiler.ops.base import FLOAT_TYPES, NUMERIC_TYPES, attr
from codegen.compiler.ops.broadcast import wrapping
from codegen.compiler.ops.elementwise import Elementwise, register_unary

SIGNED_TYPES = ("int8", "int16", "int32", "int64")
UNSIGNED_C_TYPES = frozenset(C_TYPES[t] for t in ("uint8", "uint16", "uint32", "uint64"))
INTEGER_TYPES = tuple(t for t in NUMERIC_TYPES if t != "float32")


def erf(x: np.ndarray) -> np.ndarray:
    """The error function of each element, in float64."""
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def precise(function: Callable[[np.ndarray], np.ndarray]):
    """A reference that evaluates `function` in float64 and rounds to the input's type."""
    return lambda node, x: function(x.astype(np.float64)).astype(x.dtype)


def libm(name: str, function: Callable[[np.ndarray], np.ndarray]) -> Elementwise:
    """A float32 function that is one call of libm's `name`."""
    return Elementwise(FLOAT_TYPES, frozenset(), lambda n, ctype: [f"v = {name}(v);"],
                       precise(function))


def negated(ctype: str) -> str:
    """C for -v in `ctype`, wrapping for integers."""
    return "-v" if ctype == "float" else wrapping(ctype, "0u - {}", "v")


def _abs(node: Node, ctype: str) -> list[str]:
    if ctype == "float":
        return ["v = fabsf(v);"]
    if ctype in UNSIGNED_C_TYPES:
        return []
    return [f"v = v < 0 ? {negated(ctype)} : v;"]


def _sign(node: Node, ctype: str) -> list[str]:
    if ctype == "float":
        return ["v = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v);"]  # keeps 0, -0 and NaN
    if ctype in UNSIGNED_C_TYPES:
        return ["v = v != 0;"]
    return [f"v = ({ctype})((v > 0) - (v < 0));"]


def _is_inf(node: Node) -> str:
    positive, negative = attr(node, "detect_positive", 1), attr(node, "detect_negative", 1)
    if positive and negative:
        return "(uint8_t)(isinf(v) != 0)"
    if positive or negative:
        return f"(uint8_t)(v == {'' if positive else '-'}INFINITY)"
    return "(uint8_t)0"


def _is_inf_reference(node: Node, x: np.ndarray) -> np.ndarray:
    positive, negative = attr(node, "detect_positive", 1), attr(node, "detect_negative", 1)
    return np.isinf(x) & (((x > 0) & bool(positive)) | ((x < 0) & bool(negative)))


UNARY_MATH: dict[str, Elementwise] = {
    "Exp": libm("expf", np.exp),
    "Log": libm("logf", np.log),
    "Sqrt": libm("sqrtf", np.sqrt),
    "Erf": libm("erff", erf),
    "Sin": libm("sinf", np.sin),
    "Cos": libm("cosf", np.cos),
    "Tan": libm("tanf", np.tan),
    "Asin": libm("asinf", np.arcsin),
    "Acos": libm("acosf", np.arccos),
    "Atan": libm("atanf", np.arctan),
    "Sinh": libm("sinhf", np.sinh),
    "Cosh": libm("coshf", np.cosh),
    "Asinh": libm("asinhf", np.arcsinh),
    "Acosh": libm("acoshf", np.arccosh),
    "Atanh": libm("atanhf", np.arctanh),
    "Floor": libm("floorf", np.floor),
    "Ceil": libm("ceilf", np.ceil),
    "Round": libm("rintf", np.rint),
    "Reciprocal": Elementwise(FLOAT_TYPES, frozenset(), lambda n, ctype: ["v = 1.0f / v;"],
                              lambda n, x: np.reciprocal(x)),
    "Neg": Elementwise(FLOAT_TYPES + SIGNED_TYPES, frozenset(),
                       lambda n, ctype: [f"v = {negated(ctype)};"],
                       lambda n, x: np.negative(x)),
    "Abs": Elementwise(NUMERIC_TYPES, frozenset(), _abs, lambda n, x: np.abs(x)),
    "Sign": Elementwise(NUMERIC_TYPES, frozenset(), _sign, lambda n, x: np.sign(x)),
    "IsNaN": Elementwise(FLOAT_TYPES, frozenset(), lambda n, ctype: [],
                         lambda n, x: np.isnan(x), result="bool",
                         store=lambda n: "(uint8_t)(isnan(v) != 0)"),
    "IsInf": Elementwise(FLOAT_TYPES, frozenset({"detect_negative", "detect_positive"}),
                         lambda n, ctype: [] if _is_inf(n) != "(uint8_t)0" else ["(void)v;"],
                         _is_inf_reference, result="bool", store=_is_inf),
    "Not": Elementwise(("bool",), frozenset(), lambda n, ctype: ["v = !v;"],
                       lambda n, x: np.logical_not(x)),
    "BitwiseNot": Elementwise(INTEGER_TYPES, frozenset(),
                              lambda n, ctype: [f"v = ({ctype})~v;"],
                              lambda n, x: np.invert(x)),
}

register_unary(UNARY_MATH)
