"""ONNX Cast and CastLike between the types ariel holds: float32, the integers and bool.

C leaves a float converted to an integer type it does not fit undefined, and ONNX leaves the
result unspecified; ariel saturates it (to the type's lowest or highest value, NaN to 0) so
that the kernel is defined on every input and the numpy reference says what it gives. In
range, a float converts by truncation toward zero, as in C and numpy. Integers convert to
narrower integers by wrapping, as numpy does (gcc defines the conversion so). To bool: any
value but zero is true."""

from __future__ import annotations

import numpy as np
import onnx

from codegen.compiler.c import c_float, c_literal
from codegen.compiler.ir import C_TYPES, Graph, Node, Tensor
from codegen.compiler.ops.base import Kernel, Names, add_op, attr, param_of, unsupported
from codegen.compiler.ops.elementwise import Elementwise, UnaryOp

HELD_TYPES = tuple(C_TYPES)
# Attributes that only matter for the float8 and float4 types ariel does not hold.
FLOAT8_ATTRIBUTES = frozenset({"saturate", "round_mode"})


def conversion(source: str, target: str) -> str:
    """C for `v` (of type `source`) converted to `target`, by the rules above."""
    ctype = C_TYPES[target]
    if source == target:
        return "v"
    if target == "bool":
        return f"(uint8_t)(v != {'0.0f' if source == 'float32' else '0'})"
    if source != "float32" or target == "float32":
        return f"({ctype})v"
    info = np.iinfo(target)
    low, high = c_literal(info.min, ctype), c_literal(info.max, ctype)
    return (f"v != v ? 0 : (v <= {c_float(info.min)} ? {low} : "
            f"(v >= {c_float(info.max + 1)} ? {high} : ({ctype})v))")


def convert(x: np.ndarray, target: str) -> np.ndarray:
    """numpy twin of `conversion`."""
    if target == "bool" or x.dtype != np.float32 or target == "float32":
        return x.astype(target)
    info = np.iinfo(target)
    below, above = x <= info.min, x >= float(info.max) + 1
    inside = ~(below | above | np.isnan(x))
    y = np.zeros(x.shape, target)
    y[below], y[above] = info.min, info.max
    y[inside] = np.trunc(x[inside]).astype(target)
    return y


def type_name(elem_type: int) -> str:
    """ariel's name of an ONNX element type (numpy's), or the ONNX name if it has none."""
    try:
        name = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return onnx.TensorProto.DataType.Name(elem_type)
    return name


class CastOp(UnaryOp):
    """Cast to the type named by the `to` attribute."""

    def __init__(self, attributes: frozenset[str]):
        super().__init__(Elementwise(HELD_TYPES, attributes, lambda n, ctype: [],
                                     lambda n, x: x))
        self.int8 = False

    def target(self, node: Node, inputs: list[Tensor | None]) -> str:
        return type_name(attr(node, "to", 0))

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        target = self.target(node, graph.input_tensors(node))
        if target not in HELD_TYPES:
            raise unsupported(node, f"cast to {target}", f"cast to {', '.join(HELD_TYPES)}")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, self.target(node, inputs))]

    def reference(self, node: Node, x, *like):
        return [convert(x, type_name(attr(node, "to", 0)))]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        return self.kernel(node, graph, [], store=conversion(x.dtype, y.dtype))


class CastLikeOp(CastOp):
    """Cast to the type of the second input (whose values are not read)."""

    def target(self, node: Node, inputs: list[Tensor | None]) -> str:
        return inputs[1].dtype

    def reference(self, node: Node, x, like):
        return [convert(x, like.dtype.name)]

    def unused_parameters(self, node: Node, graph: Graph) -> list[str]:
        like = graph.tensor(node.inputs[1])
        if like.is_const or like.name == node.inputs[0]:
            return []
        return [param_of(node, graph, like.name)]


add_op("Cast", CastOp(frozenset({"to"}) | FLOAT8_ATTRIBUTES))
add_op("CastLike", CastLikeOp(FLOAT8_ATTRIBUTES))
