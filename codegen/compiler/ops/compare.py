"""Comparisons (Equal, Less, Greater, LessOrEqual, GreaterOrEqual), logical operators on bool
tensors (And, Or, Xor) and bitwise operators on integers (BitwiseAnd, BitwiseOr,
BitwiseXor), two inputs broadcast as numpy does. A bool is one byte holding 0 or 1."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops.base import NUMERIC_TYPES, add_op
from codegen.compiler.ops.broadcast import BroadcastOp

INTEGER_TYPES = tuple(t for t in NUMERIC_TYPES if t != "float32")


@dataclass(frozen=True)
class Relation:
    """One operator: the input types it takes, the C expression of an output element (a
    format of the two inputs' values), numpy's function, and the output type (None: the
    inputs' own)."""

    dtypes: tuple[str, ...]
    c: str
    numpy: Callable[[np.ndarray, np.ndarray], np.ndarray]
    result: str | None = "bool"


RELATIONS = {
    "Equal": Relation((*NUMERIC_TYPES, "bool"), "{} == {}", np.equal),
    "Less": Relation(NUMERIC_TYPES, "{} < {}", np.less),
    "Greater": Relation(NUMERIC_TYPES, "{} > {}", np.greater),
    "LessOrEqual": Relation(NUMERIC_TYPES, "{} <= {}", np.less_equal),
    "GreaterOrEqual": Relation(NUMERIC_TYPES, "{} >= {}", np.greater_equal),
    "And": Relation(("bool",), "{} && {}", np.logical_and),
    "Or": Relation(("bool",), "{} || {}", np.logical_or),
    "Xor": Relation(("bool",), "!{} != !{}", np.logical_xor),
    "BitwiseAnd": Relation(INTEGER_TYPES, "{} & {}", np.bitwise_and, None),
    "BitwiseOr": Relation(INTEGER_TYPES, "{} | {}", np.bitwise_or, None),
    "BitwiseXor": Relation(INTEGER_TYPES, "{} ^ {}", np.bitwise_xor, None),
}


class RelationOp(BroadcastOp):
    def __init__(self, relation: Relation):
        self.relation = relation
        self.dtypes = relation.dtypes

    def output_dtype(self, inputs) -> str:
        return self.relation.result or inputs[0].dtype

    def expression(self, node: Node, graph: Graph, values: list[str]) -> str:
        ctype = graph.tensor(node.outputs[0]).ctype
        return f"({ctype})({self.relation.c.format(*values)})"

    def reference(self, node: Node, a, b):
        return [self.relation.numpy(a, b).astype(self.relation.result or a.dtype)]


for _op_type, _relation in RELATIONS.items():
    add_op(_op_type, RelationOp(_relation))
