"""ONNX Max, Min, Sum and Mean: one or more inputs broadcast together and folded left to
right, as numpy folds them (maximum(maximum(a, b), c), ...). Max and Min take every numeric
type and, on floats, give NaN where any input is NaN, as numpy's maximum does (C's fmaxf
would drop it). Sum and Mean are float32 (ONNX defines them on floats); Mean divides the
sum once by the number of inputs. A Relu or Clip after them is fused as a clamp."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_float
from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops.base import FLOAT_TYPES, NUMERIC_TYPES, add_op, apply_clamp
from codegen.compiler.ops.broadcast import BroadcastOp


@dataclass(frozen=True)
class Fold:
    """How a variadic operator combines the running value `v` with the next input: the C
    expression (from the C type and the input's value) and numpy's function; whether the
    result is divided by the number of inputs."""

    dtypes: tuple[str, ...]
    combine: Callable[[str, str], str]
    numpy: Callable[[np.ndarray, np.ndarray], np.ndarray]
    divides: bool = False


def _keep(compare: str) -> Callable[[str, str], str]:
    """Keep `v` where it compares `compare` to the value (or, for floats, is NaN)."""

    def combine(ctype: str, value: str) -> str:
        nan = " || v != v" if ctype == "float" else ""
        return f"v {compare} {value}{nan} ? v : {value}"

    return combine


FOLDS = {
    "Max": Fold(NUMERIC_TYPES, _keep(">"), np.maximum),
    "Min": Fold(NUMERIC_TYPES, _keep("<"), np.minimum),
    "Sum": Fold(FLOAT_TYPES, lambda ctype, value: f"v + {value}", np.add),
    "Mean": Fold(FLOAT_TYPES, lambda ctype, value: f"v + {value}", np.add, divides=True),
}


class VariadicOp(BroadcastOp):
    accepts_clamp = True

    def __init__(self, fold: Fold):
        self.fold = fold
        self.dtypes = fold.dtypes

    def expression(self, node: Node, graph: Graph, values: list[str]) -> str:
        return values[0]

    def statements(self, node: Node, graph: Graph, values: list[str]) -> list[str]:
        ctype = graph.tensor(node.outputs[0]).ctype
        statements = [f"v = {self.fold.combine(ctype, value)};" for value in values[1:]]
        if self.fold.divides:
            statements.append(f"v = v / {c_float(len(values))};")
        return statements

    def reference(self, node: Node, *inputs):
        shape = np.broadcast_shapes(*(x.shape for x in inputs))
        y = np.broadcast_to(functools.reduce(self.fold.numpy, inputs), shape)
        if self.fold.divides:
            y = y / inputs[0].dtype.type(len(inputs))
        return [apply_clamp(node, np.array(y, dtype=inputs[0].dtype))]


for _op_type, _fold in FOLDS.items():
    add_op(_op_type, VariadicOp(_fold))
