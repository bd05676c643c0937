"""ONNX Gemm and MatMul, float32 and int8: each output element is an inner product over k of
a row of A and a column of B. A constant factor is re-laid at compile time so that k is its
contiguous axis (B is stored [N][K]); a factor computed at run time is read where it lies,
through strides, whatever its memory order, so no copy is ever inserted for it.

A constant B (without batch axes of its own) with an A whose k is contiguous takes the packed
kernels: B packed in the order they read it (pack_pairs for int8, pack_blocks for float32),
several rows and outputs per step as in conv.py. Everything else takes the strided kernel.

The int8 kernels (here and in conv.py) share one shape, that of codegen/compiler/quant: an int32
accumulator starts at the int32 bias, adds (x - zero_point_x) * w over the inner axis, and is
requantized once with a per-channel multiplier and shift. The packed ones fold the zero point
into the bias where that cannot overflow (fold_zero_point) and requantize with
ariel_requantize_hi where every shift allows (requantizer). The checks and output stage they
share live at the end of this module."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from codegen.compiler.c import c_float, c_literal
from codegen.compiler.ir import C_TYPES, Graph, Node, Tensor, row_major
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    apply_clamp,
    attr,
    clamp_statements,
    describe_clamp,
    is_quantized,
    normalize_axis,
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.strided import collapse
from codegen.compiler.quant.output_stage import OutputStage, output_stage, scale_of, zero_point_of

TEMPLATE = "kernels/matmul_f32.c.j2"
TEMPLATE_S8 = "kernels/matmul_s8.c.j2"
TEMPLATE_S8_PACKED = "kernels/matmul_packed_s8.c.j2"
TEMPLATE_F32_PACKED = "kernels/matmul_packed_f32.c.j2"
INT32_MAX = 2**31 - 1


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
    """What Gemm and MatMul share: layout, and rendering a Product (float32 or int8)."""

    accepts_clamp = True
    int8 = True

    def layout(self, node: Node, graph: Graph):
        out = graph.tensor(node.outputs[0])
        return [None] * len(node.inputs), [row_major(out.rank)]

    def render(self, node: Node, product: Product, out: Tensor, int8: dict | None = None
               ) -> Kernel:
        """The kernel of `product`: float32, or int8 when `int8` holds the integer kernel's
        own values (see render_s8)."""
        bounds, loops, (a_batch, b_batch, y_batch) = _batch_loops(product)
        if int8 is None and "b" in product.weights and not any(product.b.batch) and \
                product.a.inner == 1:
            return self.render_f32_packed(node, product, out)
        context = {
            "loops": bounds, "m": product.m, "n": product.n, "k": product.k,
            "a": product.a.array, "b": product.b.array,
            "a_row": linear([*loops, "m"], [*a_batch, product.a.outer]),
            "b_col": linear([*loops, "n"], [*b_batch, product.b.outer]),
            "y_row": linear([*loops, "m"], [*y_batch, product.n]),
            "a_k": linear(["k"], [product.a.inner]),
            "b_k": linear(["k"], [product.b.inner]),
            "notes": [f"A {product.a.note}", f"B {product.b.note}", *product.notes],
        }
        if int8 is not None:
            context.update(int8)
            return Kernel(TEMPLATE_S8, context, product.weights)
        context["finish"] = product.finish + clamp_statements("acc", node.clamp, "float")
        context["notes"].append(f"y {list(out.shape)} row-major, float32"
                                f"{describe_clamp(node.clamp)}")
        return Kernel(TEMPLATE, context, product.weights,
                      multiplicand="b" if "b" in product.weights else None)

    def render_f32_packed(self, node: Node, product: Product, out: Tensor) -> Kernel:
        """The float32 kernel for a constant B (stored [N][K], no batch axes of its own) and
        an A whose k is contiguous: B packed four outputs at a time, two rows of A by four
        outputs per step."""
        m, n, k = product.m, product.n, product.k
        bounds, loops, (a_batch, _, y_batch) = _batch_loops(product)
        # One row (a vector times B) takes eight outputs per step: the FPU holds 8 sums,
        # 8 weights and the input; more rows take four outputs each, up to 4 x 4.
        width = 8 if m == 1 and not bounds else 4
        weights = dict(product.weights)
        weights["b"] = pack_blocks(weights["b"].reshape(n, k), width)
        context = {
            "loops": bounds, "m": m, "n": n, "k": k, "width": width, "blocks": n // width,
            "a": product.a.array,
            "a_row": lambda row: linear([*loops, _term(row)], [*a_batch, product.a.outer]),
            "y_row": lambda row: linear([*loops, _term(row)], [*y_batch, n]),
            "finish": product.finish + clamp_statements("acc", node.clamp, "float"),
            "notes": [f"A {product.a.note}",
                      f"B {product.b.note}; packed {width} outputs at a time, interleaved "
                      f"weight by weight ([{n // width}][{k}][{width}]), then the "
                      f"{n % width} left over",
                      *product.notes,
                      f"y {list(out.shape)} row-major, float32{describe_clamp(node.clamp)}",
                      ("path: the row of A by eight outputs per step (each A value loaded "
                       "once for eight outputs)" if width == 8 else
                       "path: four rows of A by four outputs per step (each A value loaded "
                       "once for four outputs, each weight once for four rows)") +
                      "; each output adds its products in k order"]}
        context["notes"] = wrap_notes(context["notes"])
        return Kernel(TEMPLATE_F32_PACKED, context, weights, multiplicand="b")

    def render_s8(self, node: Node, graph: Graph, names: Names, product: Product,
                  a: Tensor, b: Tensor, bias: str = "0") -> Kernel:
        """The int8 kernel of `product`: A and B with their zero points removed (B's is 0 when
        it is constant), `bias` (a C expression of m and n) as the accumulator's start, the
        output stage per column n."""
        out = graph.tensor(node.outputs[0])
        stage = product_stage(graph, node, a, b)
        product.weights.update(stage.weights())
        product.notes += [f"A {describe_quant(a)}", f"B {describe_quant(b)}",
                          f"y {list(out.shape)} row-major, int8, {describe_quant(out)}, "
                          f"clamped to [{stage.low}, {stage.high}]",
                          f"int32 accumulator, |acc| <= {self.accumulator_bound(node, graph)} "
                          f"(checked at compile time)"]
        int8 = {"a_offset": -zero_point_of(a), "b_offset": 0 if b.is_const else
                -zero_point_of(b), "bias": bias, **requantize_context(stage, names, "n")}
        return self.render(node, product, out, int8)

    def render_s8_packed(self, node: Node, graph: Graph, names: Names, product: Product,
                         a: Tensor, b: Tensor, c: Tensor | None = None) -> Kernel | None:
        """The int8 kernel for a constant B, packed at compile time as ariel_runtime.h's
        helpers read it, with A's zero point folded into the bias where it can be; None when
        the product does not suit it (B computed at run time or with batch axes of its own,
        A's k not contiguous, a bias that varies along m, or rows too long for the stack)."""
        m, n, k = product.m, product.n, product.k
        if not b.is_const or any(product.b.batch) or product.a.inner != 1:
            return None
        start = None
        if c is not None:
            full = np.broadcast_to(c.data.astype(np.int64).reshape(
                (1,) * (2 - c.rank) + tuple(c.shape)), (m, n))
            if not (full == full[:1]).all():
                return None
            start = full[0]
        rows = product.weights["b"].reshape(n, k)
        packed, k4 = pack_pairs(rows)
        # The DSP path widens two rows of A at a time into int16 pairs (k4 words), or the one
        # row there is (half that).
        scratch_words = k4 if m > 1 else k4 // 2
        if 4 * scratch_words > SCRATCH_BUDGET:
            return None
        out = graph.tensor(node.outputs[0])
        stage = product_stage(graph, node, a, b)
        requant = requantizer(stage, names)
        folding = fold_zero_point(rows, start, zero_point_of(a))
        weights = {**{key: v for key, v in product.weights.items() if key != "b"},
                   **requant.weights, "b": packed}
        bias = bias_reader(folding, names, weights)
        bounds, loops, (a_batch, _, y_batch) = _batch_loops(product)
        notes = [f"A {product.a.note}; {describe_quant(a)}; {folding.note}",
                 f"B {list(b.shape)} constant, {describe_quant(b)}; packed as filter pairs "
                 f"interleaved four weights at a time, each of the {n} filters' {k} weights "
                 f"padded to {k4}",
                 *product.notes,
                 f"y {list(out.shape)} row-major, int8, {describe_quant(out)}, clamped to "
                 f"[{stage.low}, {stage.high}]; {requant.note}",
                 f"int32 accumulator, |acc| <= {self.accumulator_bound(node, graph)} "
                 f"(checked at compile time)",
                 f"path: DSP (ARIEL_DSP): two rows of A widened to int16 pairs on the stack "
                 f"({4 * scratch_words} bytes), then two outputs of B by two rows per step, "
                 f"two MACs per SMLAD; plain C: each row read in place, two outputs per step"]
        context = {"loops": bounds, "m": m, "n": n, "k": k, "k4": k4,
                   "scratch_words": scratch_words, "a": product.a.array,
                   "a_row": linear([*loops, "m"], [*a_batch, product.a.outer]),
                   "a_row_next": linear([*loops, "(m + 1)"], [*a_batch, product.a.outer]),
                   "y_row": linear([*loops, "m"], [*y_batch, n]),
                   "b": names.weight("b"), "offset": folding.offset, "start": bias,
                   "widened": folding.widened, "requantize": requant.call,
                   "notes": wrap_notes(notes)}
        return Kernel(TEMPLATE_S8_PACKED, context, weights)

    def b_inner_axis(self, node: Node, b: Tensor) -> int:
        """The axis of B that the inner product runs along (k)."""
        raise NotImplementedError

    def accumulator_bound(self, node: Node, graph: Graph) -> int:
        a, b, *rest = graph.input_tensors(node)
        return accumulator_bound(a, b, rest[0] if rest else None,
                                 (self.b_inner_axis(node, b),))


@register("Gemm")
class Gemm(MatrixProduct):
    attributes = frozenset({"alpha", "beta", "transA", "transB"})

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        a, b, *rest = graph.input_tensors(node)
        quantized = is_quantized(graph, node)
        if not quantized:
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
        if quantized:
            for name in ("alpha", "beta"):
                if attr(node, name, 1.0) != 1.0:
                    raise unsupported(node, f"{name} {attr(node, name, 1.0):g} in int8",
                                      "alpha and beta 1 (fold them into the scales)")
            check_s8_product(node, graph, a, b, c, 1 - self.b_inner_axis(node, b))
            check_bound(node, self.accumulator_bound(node, graph))

    def b_inner_axis(self, node: Node, b: Tensor) -> int:
        return 1 if attr(node, "transB", 0) else 0

    def reference_s8(self, node: Node, graph: Graph, a, b, c=None):
        a = a.T if attr(node, "transA", 0) else a
        b = b.T if attr(node, "transB", 0) else b
        return [product_s8(node, graph, a, b, c)]

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
        if is_quantized(graph, node):
            product = Product((), m, n, k, fa, fb, [], weights, list(notes))
            packed = self.render_s8_packed(node, graph, names, product, a, b, c)
            if packed is not None:
                return packed
            bias = "0"
            if c is not None:
                bias, note = self.bias(node, graph, names, c, weights)
                notes.append(note)
            product = Product((), m, n, k, fa, fb, [], weights, notes)
            return self.render_s8(node, graph, names, product, a, b, bias)
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
        is multiplied by beta at compile time, in float32 as ONNX does; an int32 C (int8
        kernels, where beta is 1) is used as it is."""
        beta = np.float32(attr(node, "beta", 1.0))
        scaled = "" if beta == 1 else f" times beta {float(beta):g}"
        if c.is_const:
            data = c.data if c.dtype == "int32" else (c.data.astype(np.float32) * beta).astype(
                np.float32)
            if data.size == 1:
                return (_c_literal(data.reshape(-1)[0], C_TYPES[data.dtype.name]),
                        f"C {list(c.shape)}{scaled}, a literal")
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
        quantized = is_quantized(graph, node)
        if not quantized:
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
        if quantized:
            check_s8_product(node, graph, a, b, None, b.rank - 1 if b.rank > 1 else None)
            check_bound(node, self.accumulator_bound(node, graph))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        a, b = inputs
        shape = _batch_shape(a.shape, b.shape)
        shape += (a.shape[-2],) if a.rank > 1 else ()
        shape += (b.shape[-1],) if b.rank > 1 else ()
        return [(shape, a.dtype)]

    def reference(self, node: Node, a, b):
        y = np.asarray(np.matmul(a.astype(np.float64), b.astype(np.float64)))
        return [apply_clamp(node, y.astype(np.float32))]

    def reference_s8(self, node: Node, graph: Graph, a, b):
        return [product_s8(node, graph, a, b)]

    def b_inner_axis(self, node: Node, b: Tensor) -> int:
        return b.rank - 2 if b.rank > 1 else 0

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
        if is_quantized(graph, node):
            packed = self.render_s8_packed(node, graph, names, product, a, b)
            return packed or self.render_s8(node, graph, names, product, a, b)
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


def _batch_loops(product: Product) -> tuple[list[int], list[str], list[list[int]]]:
    """The batch loops of `product` (collapsed), their variables, and the strides of A, B
    and Y along them."""
    y_strides = _row_major_strides((*product.batch, product.m, product.n))
    bounds, strides = collapse(list(product.batch), [list(product.a.batch),
                                                     list(product.b.batch),
                                                     list(y_strides[:-2])])
    if bounds == [1]:  # collapse keeps one loop of one step when there is no batch
        bounds, strides = [], [[], [], []]
    return bounds, [f"i{j}" for j in range(len(bounds))], strides


def linear(variables: Sequence[str], strides: Sequence[int]) -> str:
    """The C offset expression sum(variable * stride), leaving out zero strides."""
    parts = [name if stride == 1 else f"{name} * {stride}"
             for name, stride in zip(variables, strides, strict=True) if stride]
    return " + ".join(parts) or "0"


def _canonical_data(data: np.ndarray, swap: bool) -> np.ndarray:
    """A constant factor as a contiguous [..., outer, K] array of its own type."""
    if data.ndim == 1:
        data = data.reshape(1, -1)
    elif swap:
        data = np.swapaxes(data, -1, -2)
    return np.ascontiguousarray(data)


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
    return c_float(value)


def _c_literal(value, ctype: str) -> str:
    return c_literal(value, ctype)


# -- int8: what the integer inner products of this module and conv.py share ----------------

def check_s8_product(node: Node, graph: Graph, x: Tensor, w: Tensor, bias: Tensor | None,
                     channel_axis: int | None) -> None:
    """Raise unless the operands follow codegen/compiler/quant's scheme: x, w and the output int8; x
    and the output one scale per tensor; w the same, or if constant symmetric with one
    scale per output channel along `channel_axis` (None: w has no such axis); the bias a
    constant int32 at scale s_x * s_w."""
    out = graph.tensor(node.outputs[0])
    for tensor in (x, w, out):
        require_dtype(node, tensor, ("int8",))
        if tensor.quant is None:
            raise unsupported(node, f"int8 tensor '{tensor.name}' without a scale",
                              "int8 tensors with quantization parameters")
    for tensor in (x, out) if w.is_const else (x, w, out):
        if np.size(tensor.quant.scale) != 1:
            raise unsupported(node, f"per-channel quantization of activation '{tensor.name}'",
                              "one scale and zero point per activation tensor")
    if w.is_const:
        if np.any(np.asarray(w.quant.zero_point) != 0):
            raise unsupported(node, f"asymmetric weights '{w.name}' (zero point not 0)",
                              "symmetric int8 weights")
        scales = np.size(w.quant.scale)
        axis = None if w.quant.axis is None else normalize_axis(w.quant.axis, w.rank)
        if scales != 1 and (axis != channel_axis or scales != w.shape[channel_axis]):
            raise unsupported(node, f"weights '{w.name}' quantized along axis {w.quant.axis} "
                              f"with {scales} scales",
                              "one scale per tensor" if channel_axis is None else
                              f"one scale per tensor or per output channel (axis "
                              f"{channel_axis})")
    if bias is not None:
        _check_bias(node, x, w, bias)


def _check_bias(node: Node, x: Tensor, w: Tensor, bias: Tensor) -> None:
    require_dtype(node, bias, ("int32",))
    if not bias.is_const:
        raise unsupported(node, f"bias '{bias.name}' computed at run time",
                          "a constant int32 bias")
    if bias.quant is None:
        return
    expected = (scale_of(x) * scale_of(w)).reshape(-1)
    actual = scale_of(bias).reshape(-1)
    same_scale = (expected.size == actual.size or 1 in (expected.size, actual.size)) and \
        np.allclose(actual, expected, rtol=1e-5, atol=0)
    if np.any(np.asarray(bias.quant.zero_point) != 0) or not same_scale:
        raise unsupported(node, f"bias '{bias.name}' at scale {actual[:4].tolist()} with "
                          f"zero point {np.asarray(bias.quant.zero_point).reshape(-1)[:4]}",
                          "an int32 bias at scale s_x * s_w with zero point 0")


def accumulator_bound(x: Tensor, w: Tensor, bias: Tensor | None, inner_axes: tuple[int, ...]
                      ) -> int:
    """The largest |acc| an int8 inner product can reach: |bias| + sum over its taps of
    |x - zero_point_x| * |w - zero_point_w|, x at its worst and a constant w as it is. Every
    partial sum the kernel forms obeys the same bound, so none can overflow either."""
    x_span = _offset_span(x)
    if w.is_const:
        taps = np.abs(w.data.astype(np.int64)).sum(axis=inner_axes).reshape(-1)
    else:
        taps = np.array([_offset_span(w) * int(np.prod([w.shape[a] for a in inner_axes]))])
    start = np.zeros(1, np.int64) if bias is None else np.abs(
        bias.data.astype(np.int64)).reshape(-1)
    # Per output channel: a large bias and a heavy filter rarely share a channel.
    return int((start + x_span * taps).max(initial=0))


def check_bound(node: Node, bound: int) -> None:
    """Refuse shapes and weights whose int32 accumulator could overflow (the kernels do not
    check at run time)."""
    if bound > INT32_MAX:
        raise unsupported(node, f"an inner product whose int32 accumulator could reach {bound}",
                          "|bias| + sum of |x - zero point| * |w| up to 2**31 - 1")


def _offset_span(tensor: Tensor) -> int:
    """The largest |q - zero_point| over int8 q."""
    zero_point = zero_point_of(tensor)
    return max(127 - zero_point, zero_point + 128)


def product_stage(graph: Graph, node: Node, x: Tensor, w: Tensor) -> OutputStage:
    """The output stage of an inner product of x and w: real y = s_x * s_w[c] * acc."""
    real = scale_of(x) * scale_of(w) / scale_of(graph.tensor(node.outputs[0]))
    return output_stage(graph, node, real)


def product_s8(node: Node, graph: Graph, a: np.ndarray, b: np.ndarray,
               c: np.ndarray | None = None) -> np.ndarray:
    """Integer reference of a matrix product (A and B already as [.., M, K] and [.., K, N]):
    (A - zero_point_a) @ (B - zero_point_b) + C exactly in int64, then the output stage
    per column."""
    x, w = graph.input_tensors(node)[:2]
    acc = np.matmul(a.astype(np.int64) - zero_point_of(x), b.astype(np.int64) - zero_point_of(w))
    if c is not None:
        acc = acc + c.astype(np.int64)
    return product_stage(graph, node, x, w).apply(acc, -1)


def requantize_context(stage: OutputStage, names: Names, channel: str) -> dict:
    """Template values for the closing ariel_requantize call: multiplier and shift as C
    expressions (per-channel arrays indexed by `channel`, or literals), zero point, range."""
    values = stage.context()
    if values["per_channel"]:
        mult, shift = (f"{names.weight(key)}[{channel}]" for key in ("mult", "shift"))
    else:
        mult, shift = str(values["multiplier"]), str(values["shift"])
    return {"out_mult": mult, "out_shift": shift, "out_zero_point": values["zero_point"],
            "out_low": values["low"], "out_high": values["high"]}


# Stack a kernel may take for the receptive fields it widens to int16 (the boards reserve
# 8 KiB of stack; the rest of the firmware needs a few hundred bytes of it).
SCRATCH_BUDGET = 4096
INT8_SPAN = 128  # the largest |q| of an int8 value


@dataclass
class Folding:
    """How an int8 kernel meets its input's zero point: `bias` (int64, per output channel)
    starts each accumulator, `offset` is added to every input value in the inner loop."""

    bias: np.ndarray
    offset: int
    note: str

    @property
    def widened(self) -> str:
        """What a widened input holds, for the kernels' comments."""
        return "the input as it is" if self.offset == 0 else f"the input plus {self.offset}"


def wrap_notes(notes: list[str], width: int = 92) -> list[str]:
    """A kernel comment's notes as lines of at most `width` characters, each note's later
    lines indented by two."""
    return [line for note in notes for line in textwrap.wrap(
        note, width, subsequent_indent="  ", break_on_hyphens=False)]


def fold_zero_point(rows: np.ndarray, bias: np.ndarray | None, zero_point: int) -> Folding:
    """Fold the input zero point into the bias at compile time where the new sums cannot
    overflow: sum over k of (x - zp) w[n, k] = sum of x w[n, k] - zp sum of w[n, k], so the
    kernel starts at b[n] - zp sum_k w[n, k] and multiplies x as it is. `rows` are the
    filters as [N, K]. Each partial sum the kernel then forms is that bias plus products x w
    with |x| <= 128, so |acc| <= |b'| + 128 sum |w| bounds it; when that bound exceeds int32
    the zero point is subtracted from each input instead (whose sums the accumulator bound
    check_bound enforces already covers). Either way a padded tap must read zp itself, the
    byte of real 0, which the kernels do."""
    rows = rows.astype(np.int64)
    start = np.zeros(len(rows), np.int64) if bias is None else bias.astype(np.int64).reshape(-1)
    if zero_point == 0:
        return Folding(start, 0, "the input's zero point is 0")
    folded = start - zero_point * rows.sum(axis=1)
    bound = int((np.abs(folded) + INT8_SPAN * np.abs(rows).sum(axis=1)).max(initial=0))
    if bound <= INT32_MAX:
        return Folding(folded, 0, f"the input's zero point {zero_point} folded into the bias "
                       f"at compile time (b - zp * sum of w); with |x| <= 128 every partial "
                       f"sum is within {bound} (checked)")
    return Folding(start, -zero_point, f"the input's zero point {zero_point} subtracted from "
                   f"each input (folded, the sums could reach {bound}, beyond int32)")


def pack_pairs(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Filters [N, K] as the packed kernels read them: K padded with zeros to K4, a multiple
    of 4; filters taken two at a time and interleaved four weights at a time (k0..k3 of
    filter n, k0..k3 of filter n + 1, k4..k7 of filter n, ...); an odd last filter alone.
    Filter n starts at n * K4 either way. Returns the array and K4."""
    count, k = rows.shape
    k4 = -(-k // 4) * 4
    padded = np.zeros((count, k4), rows.dtype)
    padded[:, :k] = rows
    parts = [padded[n:n + 2].reshape(2, k4 // 4, 4).transpose(1, 0, 2).reshape(-1)
             for n in range(0, count - 1, 2)]
    if count % 2:
        parts.append(padded[-1])
    return np.concatenate(parts) if parts else padded.reshape(-1), k4


def pack_blocks(rows: np.ndarray, width: int = 4) -> np.ndarray:
    """Float filters [N, K] as the blocked float kernels read them: `width` at a time
    interleaved one weight at a time ([N/width][K][width]), then the N % width left over one
    after the other."""
    blocks, k = len(rows) // width, rows.shape[1]
    parts = [rows[:width * blocks].reshape(blocks, width, k).transpose(0, 2, 1).reshape(-1),
             rows[width * blocks:].reshape(-1)]
    return np.concatenate(parts).astype(np.float32)


@dataclass
class Requantizer:
    """The closing output stage of a packed int8 kernel: constant arrays, and C for one
    output (`call(acc, channel)`, both C expressions)."""

    weights: dict[str, np.ndarray]
    call: Callable[[str, str], str]
    note: str


def requantizer(stage: OutputStage, names: Names) -> Requantizer:
    """ariel_requantize_hi (per channel: a table of multiplier and shift - 33) when every
    shift is 33 or more, as in every model seen so far; else ariel_requantize."""
    multipliers = stage.multipliers.reshape(-1).astype(np.int64)
    shifts = stage.shifts.reshape(-1).astype(np.int64)
    tail = f"{stage.zero_point}, {stage.low}, {stage.high})"
    if shifts.min() >= 33:
        note = "output stage ariel_requantize_hi (every shift >= 33)"
        if multipliers.size > 1:
            rq = names.weight("rq")
            return Requantizer(
                {"rq": np.stack([multipliers, shifts - 33], axis=1).astype(np.int32).reshape(-1)},
                lambda acc, c: (f"(int8_t)ariel_requantize_hi({acc}, {rq}[2 * {_term(c)}], "
                                f"{rq}[2 * {_term(c)} + 1], {tail}"),
                note + "; rq: multiplier, shift - 33 per channel")
        m, s = int(multipliers[0]), int(shifts[0])
        return Requantizer({}, lambda acc, c: (f"(int8_t)ariel_requantize_hi({acc}, {m}, "
                                               f"{s - 33}, {tail}"), note)
    note = "output stage ariel_requantize (a shift below 33)"
    if multipliers.size > 1:
        mult, shift = names.weight("mult"), names.weight("shift")
        return Requantizer({"mult": multipliers.astype(np.int32),
                            "shift": shifts.astype(np.int32)},
                           lambda acc, c: (f"(int8_t)ariel_requantize({acc}, {mult}[{c}], "
                                           f"{shift}[{c}], {tail}"), note)
    m, s = int(multipliers[0]), int(shifts[0])
    return Requantizer({}, lambda acc, c: f"(int8_t)ariel_requantize({acc}, {m}, {s}, {tail}",
                       note)


def bias_reader(folding: Folding, names: Names, weights: dict[str, np.ndarray]
                ) -> Callable[[str], str]:
    """C for the accumulator's start of channel `c`: the folded int32 bias array, or 0."""
    if not folding.bias.any():
        return lambda c: "0"
    weights["bias"] = folding.bias.astype(np.int32)
    name = names.weight("bias")
    return lambda c: f"{name}[{c}]"


def _term(expression: str) -> str:
    """`expression` safe to multiply (parenthesized unless a name or a number)."""
    return expression if expression.replace("_", "").isalnum() else f"({expression})"


def describe_quant(tensor: Tensor) -> str:
    """A tensor's quantization parameters for a kernel's opening comment."""
    scale = np.asarray(tensor.quant.scale).reshape(-1)
    if scale.size == 1:
        return f"scale {scale[0]:.6g}, zero point {zero_point_of(tensor)}"
    return (f"{scale.size} scales along axis {tensor.quant.axis} ({scale.min():.6g} to "
            f"{scale.max():.6g}), zero point 0")
