"""Activation functions beyond Relu, Sigmoid and Tanh (HardSigmoid, HardSwish, Gelu, Softplus,
Softsign, Elu, Selu, Celu, Mish, ThresholdedRelu, Swish): float32 kernels from libm's float
functions, and on int8 tensors the 256-entry table every real unary function gets
(elementwise.py).

The C is written so that NaN propagates as in the numpy reference (a clamp is two compares
that keep a NaN), and Softplus, also inside Mish, is evaluated in the form that cannot
overflow: x + log1p(exp(-x)) for x > 0, log1p(exp(x)) otherwise (ONNX's formula
log(exp(x) + 1) overflows to infinity from x = 89 in float32; the function is x there)."""

from __future__ import annotations

import math

import numpy as np

from codegen.compiler.c import c_float
from codegen.compiler.ir import Node
from codegen.compiler.ops.base import FLOAT_TYPES, attr, unsupported
from codegen.compiler.ops.elementwise import Elementwise, register_unary
from codegen.compiler.ops.unary_math import erf

# ONNX's defaults for Selu's attributes.
SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875
GELU_APPROXIMATIONS = ("none", "tanh")


def parameter(node: Node, name: str, default: float, x: np.ndarray):
    """An attribute as float32 (as ONNX stores it), of the reference's working type."""
    return x.dtype.type(np.float32(attr(node, name, default)))


def float_parameter(node: Node, name: str, default: float) -> str:
    return c_float(attr(node, name, default))


def clamp_unit(var: str) -> list[str]:
    """`var` confined to [0, 1], a NaN kept (max(0, min(1, var)) as numpy computes it)."""
    return [f"{var} = {var} > 1.0f ? 1.0f : {var};", f"{var} = {var} < 0.0f ? 0.0f : {var};"]


def hard_sigmoid(x: np.ndarray, alpha, beta) -> np.ndarray:
    return np.maximum(0, np.minimum(1, x * alpha + beta)).astype(x.dtype)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x).astype(x.dtype)


SOFTPLUS_C = "v > 0.0f ? v + log1pf(expf(-v)) : log1pf(expf(v))"


def _hard_sigmoid(node: Node, ctype: str) -> list[str]:
    return [f"v = v * {float_parameter(node, 'alpha', 0.2)} + "
            f"{float_parameter(node, 'beta', 0.5)};", *clamp_unit("v")]


def _hard_swish(node: Node, ctype: str) -> list[str]:
    return [f"float gate = v * {c_float(1 / 6)} + 0.5f;", *clamp_unit("gate"),
            "v = v * gate;"]


def _gelu(node: Node, ctype: str) -> list[str]:
    if gelu_approximation(node) == "tanh":
        inner = f"{c_float(math.sqrt(2 / math.pi))} * (v + 0.044715f * v * v * v)"
        return [f"v = 0.5f * v * (1.0f + tanhf({inner}));"]
    return [f"v = 0.5f * v * (1.0f + erff(v * {c_float(math.sqrt(0.5))}));"]


def check_gelu(node: Node) -> None:
    gelu_approximation(node)


def gelu_approximation(node: Node) -> str:
    approximate = attr(node, "approximate", "none")
    if approximate not in GELU_APPROXIMATIONS:
        raise unsupported(node, f"approximate '{approximate}'",
                          f"approximate {', '.join(GELU_APPROXIMATIONS)}")
    return approximate


def _gelu_reference(node: Node, x: np.ndarray) -> np.ndarray:
    wide = x.astype(np.float64)
    if gelu_approximation(node) == "tanh":
        y = 0.5 * wide * (1 + np.tanh(math.sqrt(2 / math.pi) * (wide + 0.044715 * wide**3)))
    else:
        y = 0.5 * wide * (1 + erf(wide / math.sqrt(2)))
    return y.astype(x.dtype)


def _celu(node: Node, ctype: str) -> list[str]:
    alpha = float_parameter(node, "alpha", 1.0)
    return [f"const float negative = {alpha} * expm1f(v / {alpha});",
            "v = (v < 0.0f ? 0.0f : v) + (negative > 0.0f ? 0.0f : negative);"]


def _celu_reference(node: Node, x: np.ndarray) -> np.ndarray:
    alpha = parameter(node, "alpha", 1.0, x)
    return (np.maximum(0, x) + np.minimum(0, alpha * np.expm1(x / alpha))).astype(x.dtype)


def _selu_reference(node: Node, x: np.ndarray) -> np.ndarray:
    alpha, gamma = parameter(node, "alpha", SELU_ALPHA, x), parameter(node, "gamma",
                                                                       SELU_GAMMA, x)
    return (np.where(x > 0, x, alpha * np.expm1(x)) * gamma).astype(x.dtype)


def _swish_reference(node: Node, x: np.ndarray) -> np.ndarray:
    alpha = parameter(node, "alpha", 1.0, x)
    return (x * (1 / (1 + np.exp(-alpha * x)))).astype(x.dtype)


def activation(attributes: set[str], statements, reference, check=None) -> Elementwise:
    return Elementwise(FLOAT_TYPES, frozenset(attributes), statements, reference, check=check)


ACTIVATIONS: dict[str, Elementwise] = {
    "HardSigmoid": activation(
        {"alpha", "beta"}, _hard_sigmoid,
        lambda n, x: hard_sigmoid(x, parameter(n, "alpha", 0.2, x),
                                  parameter(n, "beta", 0.5, x))),
    "HardSwish": activation(
        set(), _hard_swish,
        lambda n, x: (x * hard_sigmoid(x, x.dtype.type(np.float32(1 / 6)), 0.5)
                      ).astype(x.dtype)),
    "Gelu": activation({"approximate"}, _gelu, _gelu_reference, check_gelu),
    "Softplus": activation(set(), lambda n, ctype: [f"v = {SOFTPLUS_C};"],
                           lambda n, x: softplus(x)),
    "Softsign": activation(set(), lambda n, ctype: ["v = v / (1.0f + fabsf(v));"],
                           lambda n, x: (x / (1 + np.abs(x))).astype(x.dtype)),
    "Elu": activation(
        {"alpha"},
        lambda n, ctype: [f"v = v > 0.0f ? v : {float_parameter(n, 'alpha', 1.0)} * "
                          "expm1f(v);"],
        lambda n, x: np.where(x > 0, x, parameter(n, "alpha", 1.0, x) * np.expm1(x)
                              ).astype(x.dtype)),
    "Selu": activation(
        {"alpha", "gamma"},
        lambda n, ctype: [f"v = (v > 0.0f ? v : {float_parameter(n, 'alpha', SELU_ALPHA)} "
                          f"* expm1f(v)) * {float_parameter(n, 'gamma', SELU_GAMMA)};"],
        _selu_reference),
    "Celu": activation({"alpha"}, _celu, _celu_reference),
    "Mish": activation(set(), lambda n, ctype: [f"const float soft = {SOFTPLUS_C};",
                                                "v = v * tanhf(soft);"],
                       lambda n, x: (x * np.tanh(softplus(x))).astype(x.dtype)),
    "ThresholdedRelu": activation(
        {"alpha"},
        lambda n, ctype: [f"v = v > {float_parameter(n, 'alpha', 1.0)} ? v : 0.0f;"],
        lambda n, x: np.where(x > parameter(n, "alpha", 1.0, x), x, 0).astype(x.dtype)),
    "Swish": activation(
        {"alpha"},
        lambda n, ctype: [f"v = v * (1.0f / (1.0f + expf(-({float_parameter(n, 'alpha', 1.0)} "
                          "* v))));"],
        _swish_reference),
}

register_unary(ACTIVATIONS)
