"""What every operator module provides, and the registry that maps ONNX op types to them.

One operator, one module: shape inference, the numpy reference, the memory layout it wants,
and the lowering of a node to a kernel template with its constant data. Decisions are made
here in Python; templates only loop and substitute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from codegen.compiler.c import c_literal
from codegen.compiler.ir import Graph, Node, Tensor, row_major
from codegen.errors import UnsupportedError

Shape = tuple[int, ...]

# Floating-point element types the float kernels handle, and all types data movement handles.
FLOAT_TYPES = ("float32",)
NUMERIC_TYPES = ("float32", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                 "uint64")


@dataclass
class Kernel:
    """A lowered node: which template renders it, the values it substitutes, and the constant
    arrays it reads, keyed as in `Names.weight` (emitted as named `const` arrays)."""

    template: str
    context: dict[str, Any]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    # The float weights the inputs are multiplied by (filters, a constant B): the array (or
    # arrays) that may be stored at half precision (`--float-weights fp16`), its template
    # reading it through `<key>_ctype` and the runtime's half-weight products.
    multiplicand: str | tuple[str, ...] | None = None
    # Kernels this one calls, each rendered before it as a function of its own named
    # `<fn>_<suffix>` with the same parameters, its constants named by Names(prefix,
    # `<fn>_<suffix>`) (a ConvTranspose's phases are Conv kernels). The template gets their
    # texts as `parts` and the argument list to pass them as `args`.
    parts: list[tuple[str, Kernel]] = field(default_factory=list)
    # The node's MACs this kernel does not compute, their outputs known at compile time
    # (constant_channels.py): benchmarks report them beside the model's MACs.
    skipped_macs: int = 0
    # Why this kernel's time depends on the input's values, and what bounds it (None: it
    # does not); build notes and benchmarks report it.
    input_dependent: str | None = None

    def multiplicands(self) -> tuple[str, ...]:
        if self.multiplicand is None:
            return ()
        return (self.multiplicand,) if isinstance(self.multiplicand, str) else self.multiplicand


@dataclass(frozen=True)
class Names:
    """C names for one kernel: its function, and the global arrays holding its constants
    (prefixed by the model so that two models link into one firmware)."""

    prefix: str
    fn: str

    def weight(self, key: str) -> str:
        return f"{self.prefix}_{self.fn}_{key}"


class OpDef:
    """Base class of an operator; subclasses are registered with @register("OpType")."""

    op_type: ClassVar[str] = ""
    # The ONNX operator set the operator belongs to: "" for the default (ai.onnx) domain,
    # "ai.onnx.ml" for the classical machine-learning operators (scikit-learn exports).
    domain: ClassVar[str] = ""
    # Attributes this implementation understands; any other attribute stops the build.
    attributes: ClassVar[frozenset[str]] = frozenset()
    # True for operators that only relabel memory (Reshape, Transpose, ...): no kernel runs.
    is_view: ClassVar[bool] = False
    # True for operators whose kernel can apply a clamp (fused Relu or Clip) to its output.
    accepts_clamp: ClassVar[bool] = False
    # True for operators with an int8 kernel: the QDQ lowering rewires them onto int8 tensors.
    int8: ClassVar[bool] = False
    # True when that kernel moves values without rescaling them (views, MaxPool, Concat), so
    # its inputs and output must share one scale and zero point.
    int8_same_scale: ClassVar[bool] = False
    # True for such moves whose kernel can also map values to an output quantized unlike
    # its input, through a 256-entry table (Concat, Pad, Slice, ...): the QDQ lowering then
    # lets the inputs and outputs keep their own scales (ONNX Runtime gives a Concat's
    # inputs their own, and folds a Relu after a move into the move's output scale).
    int8_rescales: ClassVar[bool] = False
    # True for elementwise operators whose kernel writes its output in any memory order,
    # whatever order it reads (passes/fold_relayout.py folds a following copy into them).
    writes_any_order: ClassVar[bool] = False
    # Inputs (by position) that may be int8 constants reached through DequantizeLinear while
    # the node itself stays float (weights-only quantization: LSTM's W and R); the QDQ
    # lowering hands the node the int8 tensor with its scales.
    int8_weights: ClassVar[tuple[int, ...]] = ()
    # The element types the kernels take (check() refuses others); None: not declared, the
    # float kernels' float32 (and int8 where `int8` says so).
    dtypes: ClassVar[tuple[str, ...] | None] = None
    # What the kernels do not take that the ONNX operator allows, beyond attributes by name
    # (a value, an output, a dimensionality), in a few words: shown by `ariel ops`; check()
    # refuses each with its one line.
    limits: ClassVar[str] = ""
    # True for operators whose outputs are all optional and whose kernel writes only those
    # the node names (passes/prune_outputs.py drops the ones nothing reads).
    optional_outputs: ClassVar[bool] = False

    # -- checks -------------------------------------------------------------------------
    def check(self, node: Node, graph: Graph) -> None:
        """Raise UnsupportedError if this node uses anything the kernels do not handle."""
        unknown = sorted(set(node.attrs) - self.attributes)
        if unknown:
            raise unsupported(node, f"attribute {', '.join(unknown)}",
                              f"attributes {', '.join(sorted(self.attributes)) or '(none)'}")

    # -- semantics ----------------------------------------------------------------------
    def infer(self, node: Node, inputs: list[Tensor | None]) -> list[tuple[Shape, str]]:
        """Shape and dtype of each output, from the inputs and attributes."""
        raise NotImplementedError(f"{self.op_type}.infer")

    def reference(self, node: Node, *inputs: np.ndarray | None) -> list[np.ndarray]:
        """The numpy reference: logical-layout arrays in, logical-layout arrays out."""
        raise NotImplementedError(f"{self.op_type}.reference")

    def reference_s8(self, node: Node, graph: Graph, *inputs: np.ndarray | None
                     ) -> list[np.ndarray]:
        """The bit-exact integer reference of a quantized node (int8 in, int8 out; quant
        parameters on the graph's tensors), using only integer arithmetic and the shared
        fixed-point rule, as the C kernel does. Operators whose float reference is already
        exact on integers (moves, max, views) keep this default."""
        return self.reference(node, *inputs)

    def evaluate(self, node: Node, graph: Graph, *inputs: np.ndarray | None
                 ) -> list[np.ndarray]:
        """The node as the compiled graph holds it, for ariel's oracle (reference.py): the
        integer reference of a quantized node, else the float one. Operators whose float
        kernels read quantization parameters off the graph (int8_weights) override it."""
        if is_quantized(graph, node):
            return self.reference_s8(node, graph, *inputs)
        return self.reference(node, *inputs)

    # -- code generation ----------------------------------------------------------------
    def layout(self, node: Node, graph: Graph
               ) -> tuple[list[tuple[int, ...] | None], list[tuple[int, ...]]]:
        """(memory order required of each input, or None for any; order of each output).

        The default suits kernels written for row-major data."""
        ins = graph.input_tensors(node)
        required = [None if t is None or t.is_const else row_major(t.rank) for t in ins]
        return required, [row_major(t.rank) for t in graph.output_tensors(node)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        """The template and its context for this node, after layout and planning."""
        raise NotImplementedError(f"{self.op_type}.lower")

    def build_notes(self, node: Node, graph: Graph) -> list[str]:
        """Lines for the build's notes: choices made for this node that its user should
        know (printed by `ariel build`, listed in ariel.json), such as where the kernel gives
        an answer ONNX leaves undefined (Div by a divisor that can be zero)."""
        return []

    def macs(self, node: Node, graph: Graph) -> int:
        """Multiply-accumulates per inference (0 for operators that do none)."""
        return 0

    def view_offsets(self, node: Node, graph: Graph) -> list[int] | None:
        """When every output is a contiguous run of input 0's memory, where each starts in
        it (in elements): the outputs are then views and no kernel runs. None when the node
        runs a kernel. Read once memory orders are assigned (passes/views.py)."""
        return [0] * len(node.outputs) if self.is_view else None

    def scratch(self, node: Node, graph: Graph) -> int:
        """Bytes of working memory the kernel needs while it runs (0: none). The planner
        places them in the arena, alive at this node's step only, and the kernel receives
        them as its last parameter, `uint8_t *restrict scratch` (16-byte aligned)."""
        return 0

    def room(self, node: Node, graph: Graph) -> tuple[int, int, int] | None:
        """Working memory the kernel can use to run faster, but only where the arena has
        room for it at this node's step (the memory plan never grows for it): (bytes per
        unit, most units it can use, fewest worth having), or None. The plan grants a number
        of units in that range, or none, and records it in node.room before lowering; the
        kernel then receives the memory as `scratch`, like OpDef.scratch's."""
        return None


REGISTRY: dict[str, OpDef] = {}


def register(op_type: str):
    """Class decorator: make an instance of `cls` the implementation of ONNX `op_type`."""

    def wrap(cls: type[OpDef]) -> type[OpDef]:
        add_op(op_type, cls())
        return cls

    return wrap


def add_op(op_type: str, opdef: OpDef) -> None:
    """Register `opdef` for `op_type` (for table-driven modules that share one class)."""
    if op_type in REGISTRY:
        raise RuntimeError(f"operator {op_type} registered twice")
    opdef.op_type = op_type
    REGISTRY[op_type] = opdef


def is_view_node(graph: Graph, node: Node) -> bool:
    """True for a node that runs no code: its outputs are views of its input's memory."""
    return REGISTRY[node.op].view_offsets(node, graph) is not None


def unsupported(node: Node, what: str, supported: str) -> UnsupportedError:
    """The one error shape for unsupported features: node, op, what, and what would work."""
    return UnsupportedError(
        f"node '{node.name}' ({node.op}): {what} is not supported; supported: {supported}")


def require_dtype(node: Node, tensor: Tensor | None, allowed: tuple[str, ...]) -> None:
    if tensor is not None and tensor.dtype not in allowed:
        raise unsupported(node, f"data type {tensor.dtype} of '{tensor.name}'",
                          ", ".join(allowed))


def attr(node: Node, name: str, default: Any) -> Any:
    return node.attrs.get(name, default)


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def clamp_statements(var: str, bounds: tuple[float, float] | None, ctype: str) -> list[str]:
    """C statements that clamp `var` to (low, high), in the order np.clip uses (raise to low,
    then cut to high, so low > high gives high); nothing for an unbounded side."""
    if bounds is None:
        return []
    low, high = bounds
    return limit_statements(var, None if np.isneginf(low) else c_literal(low, ctype),
                            None if np.isposinf(high) else c_literal(high, ctype))


def limit_statements(var: str, low: str | None, high: str | None) -> list[str]:
    """Clamp statements for C expressions `low` and `high` (None: no limit on that side)."""
    statements = []
    if low is not None:
        statements.append(f"{var} = {var} < {low} ? {low} : {var};")
    if high is not None:
        statements.append(f"{var} = {var} > {high} ? {high} : {var};")
    return statements


def describe_clamp(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f", output clamped to [{bounds[0]:g}, {bounds[1]:g}]"


def is_quantized(graph: Graph, node: Node) -> bool:
    """True for a node lowered to integer arithmetic (its outputs are quantized int8)."""
    return any(graph.tensor(n).quant is not None and graph.tensor(n).dtype == "int8"
               for n in node.outputs)


def apply_clamp(node: Node, y: np.ndarray) -> np.ndarray:
    if node.clamp is None:
        return y
    return np.clip(y, node.clamp[0], node.clamp[1]).astype(y.dtype)


def kernel_params(node: Node, graph: Graph) -> list[tuple[str, str]]:
    """(tensor, parameter name) for each kernel argument, in call order: the distinct
    non-constant inputs as x0, x1, ..., then the outputs as y0, y1, ..."""
    params: list[tuple[str, str]] = []
    for name in node.inputs:
        if name and not graph.tensor(name).is_const and name not in dict(params):
            params.append((name, f"x{len(params)}"))
    params += [(name, f"y{i}") for i, name in enumerate(node.outputs)]
    return params


def param_of(node: Node, graph: Graph, tensor: str) -> str:
    """The kernel parameter through which `tensor` is reached."""
    return dict(kernel_params(node, graph))[tensor]
