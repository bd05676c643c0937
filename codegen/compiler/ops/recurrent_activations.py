"""The activation functions ONNX lets LSTM, GRU and RNN use in place of their defaults, named
by the `activations` attribute, with the parameters `activation_alpha` and `activation_beta`:
each as a numpy function (the reference) and a C expression (the kernel), both in float. The
logistic function and tanh are the runtime's own (ariel_sigmoidf, ariel_tanhf in
firmware/ariel_runtime.h), a few times cheaper than libm's.

The parameters are consumed in the order of the functions, each function taking the next
alpha (and beta) only if it has one (as ONNX Runtime reads them); a function whose values run
out takes the default of the ONNX operator of the same name. Where ONNX gives no default
(Affine, ScaledTanh) or ONNX Runtime does not use it (ThresholdedRelu: alpha 0 there, 1 in
ONNX), the model must give the value: ariel refuses rather than pick one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_float


@dataclass(frozen=True)
class Activation:
    """One function: how many parameters it takes (alpha, then beta), their defaults (None:
    ONNX gives none, so the model must), the numpy reference of y = f(x; alpha, beta) and
    the C expression for a float variable."""

    params: int
    defaults: tuple[float | None, ...]
    numpy: Callable[[np.ndarray, float, float], np.ndarray]
    c: Callable[[str, str, str], str]


def _sigmoid(x, a, b):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x, a, b):
    return np.logaddexp(0.0, x)


ACTIVATIONS: dict[str, Activation] = {
    "Sigmoid": Activation(0, (), _sigmoid, lambda v, a, b: f"ariel_sigmoidf({v})"),
    "Tanh": Activation(0, (), lambda x, a, b: np.tanh(x), lambda v, a, b: f"ariel_tanhf({v})"),
    "Relu": Activation(0, (), lambda x, a, b: np.maximum(x, 0.0),
                       lambda v, a, b: f"({v} > 0.0f ? {v} : 0.0f)"),
    "Affine": Activation(2, (None, None), lambda x, a, b: a * x + b,
                         lambda v, a, b: f"({a} * {v} + {b})"),
    "LeakyRelu": Activation(1, (0.01,), lambda x, a, b: np.where(x >= 0, x, a * x),
                            lambda v, a, b: f"({v} >= 0.0f ? {v} : {a} * {v})"),
    "ThresholdedRelu": Activation(1, (None,), lambda x, a, b: np.where(x > a, x, 0.0),
                                  lambda v, a, b: f"({v} > {a} ? {v} : 0.0f)"),
    "ScaledTanh": Activation(2, (None, None), lambda x, a, b: a * np.tanh(b * x),
                             lambda v, a, b: f"({a} * ariel_tanhf({b} * {v}))"),
    "HardSigmoid": Activation(2, (0.2, 0.5),
                              lambda x, a, b: np.clip(a * x + b, 0.0, 1.0),
                              lambda v, a, b: f"fminf(fmaxf({a} * {v} + {b}, 0.0f), 1.0f)"),
    "Elu": Activation(1, (1.0,), lambda x, a, b: np.where(x >= 0, x, a * np.expm1(x)),
                      lambda v, a, b: f"({v} >= 0.0f ? {v} : {a} * expm1f({v}))"),
    "Softsign": Activation(0, (), lambda x, a, b: x / (1.0 + np.abs(x)),
                           lambda v, a, b: f"({v} / (1.0f + fabsf({v})))"),
    # log(1 + e^x) without overflow: e^x is within float's range wherever it still matters.
    "Softplus": Activation(0, (), _softplus,
                           lambda v, a, b: f"({v} > 20.0f ? {v} : log1pf(expf({v})))"),
}


@dataclass(frozen=True)
class Applied:
    """An activation with its parameters settled."""

    name: str
    alpha: float
    beta: float

    def numpy(self, x: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.name].numpy(x, self.alpha, self.beta)

    def c(self, variable: str) -> str:
        return ACTIVATIONS[self.name].c(variable, c_float(self.alpha), c_float(self.beta))


def canonical(name: str) -> str | None:
    """The activation's name as ACTIVATIONS spells it (ONNX Runtime accepts any case), or
    None for one ariel does not know."""
    return next((known for known in ACTIVATIONS if known.lower() == name.lower()), None)


def settle(names: list[str], alphas: list[float], betas: list[float]
           ) -> list[Applied] | str:
    """Each function with its parameters, taken in order from `alphas` and `betas`; or the
    name of the first function that needs a value neither the model nor ONNX gives."""
    alpha_values, beta_values = iter(alphas), iter(betas)
    applied = []
    for name in names:
        spec = ACTIVATIONS[canonical(name)]
        values = []
        for index, source in enumerate((alpha_values, beta_values)[:spec.params]):
            value = next(source, spec.defaults[index])
            if value is None:
                return name
            values.append(float(np.float32(value)))
        values += [0.0] * (2 - len(values))
        applied.append(Applied(canonical(name), values[0], values[1]))
    return applied
