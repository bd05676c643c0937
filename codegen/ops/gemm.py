"""ONNX Gemm and MatMul, float32, as one kernel: each output element is an inner product over
k of a row of A and a column of B. A constant factor is re-laid at compile time so that k
is its contiguous axis (B is stored [N][K]); a factor computed at run time is read where it
lies, through strides, whatever its memory order, so no copy is ever inserted for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from codegen.ir import Graph, Node, Tensor, row_major
from codegen.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    apply_clamp,
    attr,
    clamp_statements,
    describe_clamp,
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.ops.strided import collapse

TEMPLATE = "kernels/matmul_f32.c.j2"


@dataclass(frozen=True)
class Factor:
    """A or B as the kernel reads it: the C array, and its element stride along each output
    batch axis, along its own outer axis (A's rows m, B's columns n) and along k."""

    array: str
    batch: tuple[int, ...]
    outer: int
    inner: int
    note: str


@dataclass
class Product:
    """A lowered matrix product: sizes, factors, the statements that finish each output
    element after the inner product, constant arrays and lines for the function comment."""

    batch: tuple[int, ...]
    m: int
    n: int
    k: int
    a: Factor
    b: Factor
    finish: list[str] = field(default_factory=list)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class MatrixProduct(OpDef):
    """What Gemm and MatMul share: layout, and rendering a Product."""

    accepts_clamp = True

    def layout(self, node: Node, graph: Graph):
        out = graph.tensor(node.outputs[0])
        return [None] * len(node.inputs), [row_major(out.rank)]

    def render(self, node: Node, product: Product, out: Tensor) -> Kernel:
        y_strides = _row_major_strides((*product.batch, product.m, product.n))
        bounds, (a_batch, b_batch, y_batch) = collapse(
            list(product.batch), [list(product.a.batch), list(product.b.batch),
                                  list(y_strides[:-2])])
        if bounds == [1]:  # collapse keeps one loop of one step when there is no batch
            bounds, a_batch, b_batch, y_batch = [], [], [], []
        loops = [f"i{j}" for j in range(len(bounds))]
        context = {
            "loops": bounds, "m": product.m, "n": product.n, "k": product.k,
            "a": product.a.array, "b": product.b.array,
            "a_row": linear([*loops, "m"], [*a_batch, product.a.outer]),
            "b_col": linear([*loops, "n"], [*b_batch, product.b.outer]),
            "y_row": linear([*loops, "m"], [*y_batch, product.n]),
            "a_k": linear(["k"], [product.a.inner]),
            "b_k": linear(["k"], [product.b.inner]),
            "finish": product.finish + clamp_statements("acc", node.clamp, "float"),
            "notes": [f"A {product.a.note}", f"B {product.b.note}", *product.notes,
                      f"y {list(out.shape)} row-major, float32{describe_clamp(node.clamp)}"],
        }
        return Kernel(TEMPLATE, context, product.weights)


@register("Gemm")
class Gemm(MatrixProduct):
    attributes = frozenset({"alpha", "beta", "transA", "transB"})

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        a, b, *rest = graph.input_tensors(node)
        for tensor in (a, b, *rest):
            require_dtype(node, tensor, FLOAT_TYPES)
        if a.rank != 2 or b.rank != 2:
            raise unsupported(node, f"A of rank {a.rank} and B of rank {b.rank}",
                              "2-D A and B")
        (m, k), (k_b, n) = self.matrix_shapes(node, a.shape, b.shape)
        if k != k_b:
            raise unsupported(node, f"A {list(a.shape)} and B {list(b.shape)} (inner sizes "
                              f"{k} and {k_b})", "inner sizes that match")
        c = rest[0] if rest else None
        if c is not None and not _broadcasts_to(c.shape, (m, n)):
            raise unsupported(node, f"C {list(c.shape)} for an output [{m}, {n}]",
                              "C that broadcasts to the output (scalar, [N], [1,N], [M,1], "
                              "[M,N])")

    def matrix_shapes(self, node: Node, a_shape, b_shape):
        """(M, K) of op(A) and (K, N) of op(B), after the transpositions."""
        a_shape = tuple(reversed(a_shape)) if attr(node, "transA", 0) else tuple(a_shape)
        b_shape = tuple(reversed(b_shape)) if attr(node, "transB", 0) else tuple(b_shape)
        return a_shape, b_shape

    def infer(self, node: Node, inputs: list[Tensor | None]):
        (m, _), (_, n) = self.matrix_shapes(node, inputs[0].shape, inputs[1].shape)
        return [((m, n), inputs[0].dtype)]

    def reference(self, node: Node, a, b, c=None):
        a = a.T if attr(node, "transA", 0) else a
        b = b.T if attr(node, "transB", 0) else b
        y = attr(node, "alpha", 1.0) * (a.astype(np.float64) @ b.astype(np.float64))
        if c is not None:
            y = y + attr(node, "beta", 1.0) * c.astype(np.float64)
        return [apply_clamp(node, y.astype(np.float32))]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        a, b, *rest = graph.input_tensors(node)
        c = rest[0] if rest else None
        out = graph.tensor(node.outputs[0])
        alpha = float(np.float32(attr(node, "alpha", 1.0)))
        weights: dict[str, np.ndarray] = {}
        # alpha scales a constant factor at compile time (B by preference) unless that would
        # overflow or flush values out of the normal range; otherwise it scales each sum.
        scale_b = _foldable(b, alpha)
        scale_a = not scale_b and _foldable(a, alpha)
        fa = factor(node, graph, names, "a", a, bool(attr(node, "transA", 0)), (), weights,
                    alpha if scale_a else 1.0)
        fb = factor(node, graph, names, "b", b, not attr(node, "transB", 0), (), weights,
                    alpha if scale_b else 1.0)
        (m, k), (_, n) = self.matrix_shapes(node, a.shape, b.shape)
        value = "acc"
        notes = [f"{name} used transposed (trans{name}=1)" for name in ("A", "B")
                 if attr(node, f"trans{name}", 0)]
        if scale_a or scale_b:
            notes.append(f"alpha {alpha:g} folded into constant {'B' if scale_b else 'A'}")
        elif alpha != 1.0:
            value = f"acc * {_c_float(alpha)}"
            notes.append(f"alpha {alpha:g} applied to each sum")
        if c is not None:
            bias, note = self.bias(node, graph, names, c, weights)
            value = f"{value} + {bias}"
            notes.append(note)
        product = Product((), m, n, k, fa, fb, [] if value == "acc" else [f"acc = {value};"],
                          weights, notes)
        return self.render(node, product, out)

    def bias(self, node: Node, graph: Graph, names: Names, c: Tensor,
             weights: dict[str, np.ndarray]) -> tuple[str, str]:
        """C times beta as a C expression of m and n, and a line describing it. A constant C
        is multiplied by beta at compile time, in float32 as ONNX does."""
        beta = np.float32(attr(node, "beta", 1.0))
        scaled = "" if beta == 1 else f" times beta {float(beta):g}"
        if c.is_const:
            data = (c.data.astype(np.float32) * beta).astype(np.float32)
            if data.size == 1:
                return _c_float(data.reshape(-1)[0]), f"C {list(c.shape)}{scaled}, a literal"
            weights["c"] = data
            strides = _bias_strides(c.shape, _row_major_strides(c.shape))
            return (f"{names.weight('c')}[{linear(['m', 'n'], strides)}]",
                    f"C {list(c.shape)}{scaled}, constant")
        strides = _bias_strides(c.shape, c.strides)
        term = f"{param_of(node, graph, c.name)}[{linear(['m', 'n'], strides)}]"
        if beta != 1:
            term = f"{term} * {_c_float(beta)}"
        return term, f"C {list(c.shape)}{scaled}, read through strides"

    def macs(self, node: Node, graph: Graph) -> int:
        a, b = graph.tensor(node.inputs[0]), graph.tensor(node.inputs[1])
        (m, k), (_, n) = self.matrix_shapes(node, a.shape, b.shape)
        return m * n * k


@register("MatMul")
class MatMul(MatrixProduct):
    """numpy matmul: batched over the leading axes with broadcasting; a 1-D A is a row and a
    1-D B a column, whose axis of one is dropped from the output."""

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        a, b = graph.input_tensors(node)
        for tensor in (a, b):
            require_dtype(node, tensor, FLOAT_TYPES)
        if a.rank == 0 or b.rank == 0:
            raise unsupported(node, "a scalar operand", "operands of rank 1 or more")
        if _inner(a.shape, is_b=False) != _inner(b.shape, is_b=True):
            raise unsupported(node, f"A {list(a.shape)} and B {list(b.shape)}",
                              "shapes whose inner sizes match")
        try:
            _batch_shape(a.shape, b.shape)
        except ValueError:
            raise unsupported(node, f"batch axes of A {list(a.shape)} and B {list(b.shape)}",
                              "batch axes that broadcast as numpy does") from None

    def infer(self, node: Node, inputs: list[Tensor | None]):
        a, b = inputs
        shape = _batch_shape(a.shape, b.shape)
        shape += (a.shape[-2],) if a.rank > 1 else ()
        shape += (b.shape[-1],) if b.rank > 1 else ()
        return [(shape, a.dtype)]

    def reference(self, node: Node, a, b):
        y = np.asarray(np.matmul(a.astype(np.float64), b.astype(np.float64)))
        return [apply_clamp(node, y.astype(np.float32))]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        a, b = graph.input_tensors(node)
        out = graph.tensor(node.outputs[0])
        batch = _batch_shape(a.shape, b.shape)
        weights: dict[str, np.ndarray] = {}
        fa = factor(node, graph, names, "a", a, False, batch, weights)
        fb = factor(node, graph, names, "b", b, b.rank > 1, batch, weights)
        m = a.shape[-2] if a.rank > 1 else 1
        n = b.shape[-1] if b.rank > 1 else 1
        notes = [f"batch {list(batch)}, A and B broadcast to it"] if batch else []
        product = Product(batch, m, n, _inner(a.shape, is_b=False), fa, fb, [], weights, notes)
        return self.render(node, product, out)

    def macs(self, node: Node, graph: Graph) -> int:
        a = graph.tensor(node.inputs[0])
        return graph.tensor(node.outputs[0]).size * _inner(a.shape, is_b=False)


def factor(node: Node, graph: Graph, names: Names, key: str, tensor: Tensor, swap: bool,
           batch: tuple[int, ...], weights: dict[str, np.ndarray], scale: float = 1.0
           ) -> Factor:
    """How the kernel reads `tensor` as a [..., outer, K] matrix. `swap` says its last two
    axes are [K, outer] (B untransposed, A transposed); a 1-D tensor is one row of K."""
    role = key.upper()
    if tensor.is_const:
        data = _canonical_data(tensor.data, swap)
        if scale != 1.0:
            data = (data * np.float32(scale)).astype(np.float32)
        weights[key] = data
        shape, strides = data.shape, _row_major_strides(data.shape)
        array = names.weight(key)
        layout = "[M][K]" if role == "A" else "[N][K]"
        note = f"{list(tensor.shape)} constant, stored {list(data.shape)} as {layout}"
    else:
        shape, strides = _canonical_view(tensor.shape, tensor.strides, swap)
        array = param_of(node, graph, tensor.name)
        note = (f"{list(tensor.shape)} in {array}, memory order {list(tensor.memory_order)}, "
                f"read through strides")
    batch_strides = _batch_strides(shape[:-2], strides[:-2], batch)
    return Factor(array, batch_strides, strides[-2], strides[-1], note)


def linear(variables: Sequence[str], strides: Sequence[int]) -> str:
    """The C offset expression sum(variable * stride), leaving out zero strides."""
    parts = [name if stride == 1 else f"{name} * {stride}"
             for name, stride in zip(variables, strides, strict=True) if stride]
    return " + ".join(parts) or "0"


def _canonical_data(data: np.ndarray, swap: bool) -> np.ndarray:
    """A constant factor as a contiguous [..., outer, K] float32 array."""
    if data.ndim == 1:
        data = data.reshape(1, -1)
    elif swap:
        data = np.swapaxes(data, -1, -2)
    return np.ascontiguousarray(data, dtype=np.float32)


def _canonical_view(shape: tuple[int, ...], strides: tuple[int, ...], swap: bool
                    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shape and strides of a run-time factor seen as [..., outer, K]."""
    if len(shape) == 1:
        return (1, shape[0]), (0, strides[0])
    if swap:
        return ((*shape[:-2], shape[-1], shape[-2]), (*strides[:-2], strides[-1], strides[-2]))
    return tuple(shape), tuple(strides)


def _batch_strides(shape: tuple[int, ...], strides: tuple[int, ...], batch: tuple[int, ...]
                   ) -> tuple[int, ...]:
    """Strides along the output's batch axes, aligned to the right; broadcast axes get 0."""
    offset = len(batch) - len(shape)
    return tuple(0 if j < offset or shape[j - offset] == 1 else strides[j - offset]
                 for j in range(len(batch)))


def _bias_strides(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, int]:
    """Strides of Gemm's C along m and n under unidirectional broadcasting."""
    missing = 2 - len(shape)
    full = (1,) * missing + tuple(shape)
    steps = (0,) * missing + tuple(strides)
    return tuple(0 if size == 1 else step for size, step in zip(full, steps, strict=True))


def _row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def _inner(shape: tuple[int, ...], is_b: bool) -> int:
    """The summed size K as MatMul's A (last axis) or B (second last, or only) holds it."""
    return shape[-2] if is_b and len(shape) > 1 else shape[-1]


def _batch_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, int]) -> bool:
    """Unidirectional (Gemm C) broadcasting: `shape` stretches to `target`, never the other
    way round."""
    if len(shape) > 2:
        return False
    padded = (1,) * (2 - len(shape)) + tuple(shape)
    return all(size in (1, want) for size, want in zip(padded, target, strict=True))


def _foldable(tensor: Tensor, alpha: float) -> bool:
    """True when `tensor` is constant and alpha can scale it at compile time without an
    overflow, or a non-zero value falling out of float32's normal range."""
    if alpha == 1.0 or not tensor.is_const:
        return False
    data = tensor.data.astype(np.float32)
    with np.errstate(over="ignore", under="ignore"):
        scaled = data * np.float32(alpha)
    overflow = np.isinf(scaled) & np.isfinite(data)
    underflow = (data != 0) & (np.abs(scaled) < np.finfo(np.float32).tiny)
    return not (overflow.any() or underflow.any())


def _c_float(value: float) -> str:
    from codegen.emit import c_float  # emit imports the registry; import late
    return c_float(value)
