"""Unary elementwise operators: one flat loop over the tensor in whatever memory order it has,
so they never force a copy. Each operator is an Elementwise entry (its C statements and its
numpy reference) in a table; this module holds the machinery and Relu, LeakyRelu, Clip,
Sigmoid and Tanh, activations.py and unary_math.py the others, cast.py the type casts.

On int8 tensors with one scale and zero point each, any such function is exactly a table of
256 outputs, one per input value: y[q] = quantize(f(dequantize(q))), worked out at compile
time in float64 and rounded half to even as ONNX's QuantizeLinear rounds. The table goes to
flash (256 bytes) and the kernel is one indexed load per element, whatever f costs in float.
The operators share that kernel and differ only in the numpy function that fills the table
(their float reference)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_float, c_literal
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    add_op,
    attr,
    limit_statements,
    param_of,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.quantize import describe_quant, int8_quantized
from codegen.compiler.quant.output_stage import INT8_MAX, INT8_MIN, scale_of, zero_point_of

SIGNED_AND_FLOAT = ("float32", "int8", "int16", "int32", "int64")
Statements = Callable[[Node, str], list[str]]


@dataclass(frozen=True)
class Elementwise:
    """How one unary operator computes: C statements that update `v` (given the node and
    the C type), and the numpy reference of the same. An operator whose output type is not
    its input's (IsNaN: float32 -> bool) names that type in `result` and gives in `store`
    the C expression of its output from the final `v`. `check` refuses attribute values the
    statements do not handle (an UnsupportedError)."""

    dtypes: tuple[str, ...]
    attributes: frozenset[str]
    statements: Statements
    reference: Callable[[Node, np.ndarray], np.ndarray]
    result: str | None = None
    store: Callable[[Node], str] | None = None
    check: Callable[[Node], None] | None = None

    @property
    def real(self) -> bool:
        """True for a function of real numbers to real numbers, which on int8 tensors is a
        256-entry table."""
        return self.result is None and "float32" in self.dtypes


def _leaky_relu(node: Node, ctype: str) -> list[str]:
    return [f"v = v < 0.0f ? {c_float(attr(node, 'alpha', 0.01))} * v : v;"]


ELEMENTWISE: dict[str, Elementwise] = {
    "Relu": Elementwise(
        SIGNED_AND_FLOAT, frozenset(),
        # NaN stays NaN (as np.maximum and ONNX Runtime give it): only values below 0 change.
        lambda n, ctype: [f"v = v < 0 ? {'0.0f' if ctype == 'float' else '0'} : v;"],
        lambda n, x: np.maximum(x, np.zeros((), x.dtype))),
    "LeakyRelu": Elementwise(
        FLOAT_TYPES, frozenset({"alpha"}), _leaky_relu,
        lambda n, x: np.where(x < 0, np.float32(attr(n, "alpha", 0.01)) * x, x).astype(x.dtype)),
    # Clip's bounds are applied by the shared clamp (template and apply_clamp).
    "Clip": Elementwise(NUMERIC_TYPES, frozenset({"min", "max"}), lambda n, ctype: [],
                        lambda n, x: x),
    "Sigmoid": Elementwise(
        FLOAT_TYPES, frozenset(), lambda n, ctype: ["v = 1.0f / (1.0f + expf(-v));"],
        lambda n, x: (1 / (1 + np.exp(-x))).astype(x.dtype)),
    "Tanh": Elementwise(FLOAT_TYPES, frozenset(), lambda n, ctype: ["v = tanhf(v);"],
                        lambda n, x: np.tanh(x)),
}


def activation_bounds(graph: Graph, node: Node) -> tuple[float, float] | None:
    """(low, high) of a Relu, or of a Clip whose bounds are constants; None otherwise.
    Clip takes its bounds as attributes before opset 11 and as inputs after."""
    if node.op == "Relu":
        return (0.0, np.inf)
    low, high = float(attr(node, "min", -np.inf)), float(attr(node, "max", np.inf))
    for index in (1, 2):
        if len(node.inputs) > index and node.inputs[index]:
            tensor = graph.tensor(node.inputs[index])
            if not tensor.is_const:
                return None
            if index == 1:
                low = float(tensor.data)
            else:
                high = float(tensor.data)
    return (low, high)


def lookup_table(node: Node, graph: Graph, function: Callable[[np.ndarray], np.ndarray]
                 ) -> np.ndarray:
    """The 256 int8 outputs of `function` (real values in, real values out, float64) for
    the inputs -128..127 of the node's int8 input, in that order."""
    return function_table(graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0]),
                          function)


def function_table(x: Tensor, y: Tensor, function: Callable[[np.ndarray], np.ndarray]
                   ) -> np.ndarray:
    """The 256 values of `function` of x's int8 values -128..127 (dequantized), quantized
    with y's scale and zero point, rounding half to even as QuantizeLinear does."""
    q = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64)
    real = float(scale_of(x)) * (q - zero_point_of(x)).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = np.rint(function(real) / float(scale_of(y))) + zero_point_of(y)
    return np.clip(np.nan_to_num(out, nan=INT8_MIN), INT8_MIN, INT8_MAX).astype(np.int8)


def same_quantization(x: Tensor, y: Tensor) -> bool:
    """True when values of `x` stand for the same reals in `y` (or neither is quantized)."""
    if x.quant is None or y.quant is None:
        return x.quant is None and y.quant is None
    return (np.array_equal(x.quant.scale, y.quant.scale)
            and np.array_equal(x.quant.zero_point, y.quant.zero_point))


def rescale_table(x: Tensor, y: Tensor) -> np.ndarray | None:
    """The 256 int8 values of `x` at `y`'s scale and zero point (the real value quantized
    again, half to even, as ONNX Runtime's DequantizeLinear -> QuantizeLinear computes it),
    or None where the values stand unchanged (quantized alike, or not quantized)."""
    if x.quant is None or y.quant is None or same_quantization(x, y):
        return None
    return function_table(x, y, lambda real: real)


def rescaled(x: Tensor, y: Tensor, q: np.ndarray) -> np.ndarray:
    """int8 values `q` of `x` at `y`'s parameters (numpy, through rescale_table's table)."""
    table = rescale_table(x, y)
    return q if table is None else table[q.astype(np.int64) + 128]


def lookup_kernel(node: Node, graph: Graph, names: Names, table: np.ndarray,
                  function: str | None = None) -> Kernel:
    """The kernel that maps each int8 element of the node's first input through `table`
    (lookup_table's of `function`, by default the node's operator), in its memory order."""
    x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    context = {"size": y.size, "table": names.weight("table"), "x_params": describe_quant(x),
               "y_params": describe_quant(y), "function": function or node.op}
    return Kernel("kernels/lookup_s8.c.j2", context, {"table": table})


class UnaryOp(OpDef):
    """A registered unary operator, driven by its Elementwise entry."""

    def __init__(self, spec: Elementwise):
        self.spec = spec
        self.dtypes = spec.dtypes
        self.attributes = spec.attributes
        self.int8 = spec.real

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        if self.spec.check is not None:
            self.spec.check(node)
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        if self.int8 and int8_quantized(x) and int8_quantized(y):
            if node.op == "Clip" and any(not t.is_const for t in graph.input_tensors(node)[1:]
                                         if t is not None):
                raise unsupported(node, "int8 Clip with bounds computed at run time",
                                  "constant bounds")
            return
        require_dtype(node, x, self.spec.dtypes)

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, self.spec.result or inputs[0].dtype)]

    def reference(self, node: Node, *inputs):
        x = inputs[0]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            y = self.spec.reference(node, x)
        if node.op == "Clip":
            low, high = _clip_bounds(node, inputs)
            y = np.minimum(np.maximum(x, low), high).astype(x.dtype)
        return [y]

    def table(self, node: Node, graph: Graph) -> np.ndarray:
        bounds = [t.data if t is not None else None for t in graph.input_tensors(node)[1:]]
        return lookup_table(node, graph, lambda real: self.reference(node, real, *bounds)[0])

    def reference_s8(self, node: Node, graph: Graph, x, *bounds):
        return [self.table(node, graph)[x.astype(np.int64) - INT8_MIN]]

    def layout(self, node: Node, graph: Graph):
        order = graph.tensor(node.inputs[0]).memory_order
        return [None] * len(node.inputs), [order]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        y = graph.tensor(node.outputs[0])
        if self.int8 and int8_quantized(y):
            return self.lower_s8(node, graph, names)
        statements = self.spec.statements(node, graph.tensor(node.inputs[0]).ctype)
        note = ""
        if node.op == "Clip":
            low, high = _clip_limits(node, graph, y.ctype)
            statements = limit_statements("v", low, high)
            note = f", clipped to [{low or '-inf'}, {high or 'inf'}]"
        return self.kernel(node, graph, statements, note)

    def kernel(self, node: Node, graph: Graph, statements: list[str], note: str = "",
               store: str | None = None) -> Kernel:
        """The unary.c.j2 kernel: `v` loaded from the input, updated by `statements`, and
        stored as `store` (default: as the entry stores it, else `v` itself)."""
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        if store is None:
            store = self.spec.store(node) if self.spec.store else "v"
        context = {"size": y.size, "in_dtype": x.dtype, "out_dtype": y.dtype,
                   "ctype": x.ctype, "note": note, "statements": statements, "store": store,
                   "unused": self.unused_parameters(node, graph)}
        return Kernel("kernels/unary.c.j2", context)

    def unused_parameters(self, node: Node, graph: Graph) -> list[str]:
        """Kernel parameters the loop does not read (Clip reads its run-time bounds)."""
        return []

    def lower_s8(self, node: Node, graph: Graph, names: Names) -> Kernel:
        return lookup_kernel(node, graph, names, self.table(node, graph))


def register_unary(table: dict[str, Elementwise]) -> None:
    """Register each entry of `table` as the operator it names."""
    for op_type, spec in table.items():
        add_op(op_type, UnaryOp(spec))


def _clip_limits(node: Node, graph: Graph, ctype: str) -> tuple[str | None, str | None]:
    """Clip's bounds as C expressions: literals for constants (attributes before opset 11,
    inputs after), the first element of the input for bounds computed at run time."""
    limits: list[str | None] = []
    for index, name in ((1, "min"), (2, "max")):
        if len(node.inputs) > index and node.inputs[index]:
            tensor = graph.tensor(node.inputs[index])
            limits.append(c_literal(tensor.data.reshape(-1)[0], ctype) if tensor.is_const
                          else f"{param_of(node, graph, tensor.name)}[0]")
        elif name in node.attrs:
            limits.append(c_literal(node.attrs[name], ctype))
        else:
            limits.append(None)
    return limits[0], limits[1]


def _clip_bounds(node: Node, inputs) -> tuple:
    low, high = attr(node, "min", -np.inf), attr(node, "max", np.inf)
    if len(inputs) > 1 and inputs[1] is not None:
        low = inputs[1]
    if len(inputs) > 2 and inputs[2] is not None:
        high = inputs[2]
    return low, high


register_unary(ELEMENTWISE)
