"""ONNX Gemm and MatMul, float32 and int8: each output element is an inner product over k of
a row of A and a column of B. A constant factor is re-laid at compile time so that k is its
contiguous axis (B is stored [N][K]); a factor computed at run time is read where it lies,
through strides, whatever its memory order, so no copy is ever inserted for it.

A constant B (without batch axes of its own) with an A whose k is contiguous takes the packed
kernels: B packed in the order they read it (pack_pairs for int8, pack_blocks for float32),
several rows and outputs per step as in conv.py; with one row of A (each weight read once),
int8 filters packed two to a halfword instead where they allow it (output_pairs.py). Both
int8 kernels leave out the columns of B whose output is one value whatever A
(constant_channels.py) and spread their values in afterwards. Everything else takes the
strided kernel.

The int8 kernels share their checks, packing, zero-point folding and output stage with
conv.py; those live in inner_product.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from codegen.compiler.c import c_float, c_literal, c_term
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
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.constant_channels import ConstantChannels, skipped_channels
from codegen.compiler.ops.inner_product import (
    SCRATCH_BUDGET,
    Folding,
    accumulator_bound,
    bias_reader,
    check_bound,
    check_s8_product,
    describe_quant,
    fold_zero_point,
    pack_blocks,
    pack_pairs,
    product_s8,
    product_stage,
    requantize_context,
    requantizer,
    wrap_notes,
)
from codegen.compiler.ops.output_pairs import OutputPairs, pack_output_pairs, widened_span
from codegen.compiler.ops.strided import collapse
from codegen.compiler.ops.zero_words import INPUT_DEPENDENT, LIST_BYTES_PER_WORD, ZeroWords
from codegen.compiler.quant.output_stage import OutputStage, zero_point_of

TEMPLATE = "kernels/matmul_f32.c.j2"
TEMPLATE_S8 = "kernels/matmul_s8.c.j2"
TEMPLATE_S8_PACKED = "kernels/matmul_packed_s8.c.j2"
TEMPLATE_F32_PACKED = "kernels/matmul_packed_f32.c.j2"
TEMPLATE_S8_PAIRS = "kernels/matmul_pairs_s8.c.j2"


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
            "a_row": lambda row: linear([*loops, c_term(row)], [*a_batch, product.a.outer]),
            "y_row": lambda row: linear([*loops, c_term(row)], [*y_batch, n]),
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
        stage = product_stage(graph, node, a, b)
        folding = fold_zero_point(rows, start, zero_point_of(a))
        skipped = skipped_channels(stage, rows, folding)
        if skipped is not None:
            stage, rows, folding = skipped.slice(stage, rows, start, zero_point_of(a))
            start = None if start is None else start[skipped.live]
            product = replace(product, n=skipped.live.size)
            n = product.n
        packed, k4 = pack_pairs(rows)
        # The DSP path widens two rows of A at a time into int16 pairs (k4 words), or the one
        # row there is (half that).
        scratch_words = k4 if m > 1 else k4 // 2
        if 4 * scratch_words > SCRATCH_BUDGET:
            return None
        if m == 1:
            listed = self.render_s8_listed(node, graph, names, product, a, b, rows, start,
                                           stage, skipped)
            if listed is not None:
                return listed
            pairs = pack_output_pairs(rows, widened_span(folding.offset))
            if pairs is not None:
                return self.render_s8_pairs(node, graph, names, product, a, b, folding, pairs,
                                            stage, skipped)
        out, requant, weights, bias, spread = _s8_output_stage(node, graph, names, product,
                                                               stage, folding, packed, skipped)
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
        if skipped is not None:
            notes.insert(-2, skipped.note("column", "row of y"))
        context = {"loops": bounds, "m": m, "n": n, "k": k, "k4": k4,
                   "scratch_words": scratch_words, "a": product.a.array,
                   "a_row": linear([*loops, "m"], [*a_batch, product.a.outer]),
                   "a_row_next": linear([*loops, "(m + 1)"], [*a_batch, product.a.outer]),
                   "y_row": linear([*loops, "m"], [*y_batch, n]),
                   "b": names.weight("b"), "offset": folding.offset, "start": bias,
                   "widened": folding.widened, "requantize": requant.call,
                   "spread": spread, "notes": wrap_notes(notes)}
        return Kernel(TEMPLATE_S8_PACKED, context, weights,
                      skipped_macs=0 if skipped is None else skipped.skipped_macs(
                          self.macs(node, graph)))

    def render_s8_listed(self, node: Node, graph: Graph, names: Names, product: Product,
                         a: Tensor, b: Tensor, rows: np.ndarray, start: np.ndarray | None,
                         stage: OutputStage, skipped: ConstantChannels | None) -> Kernel | None:
        """The pairs kernel over a list of the row's nonzero column words (zero_words.py),
        where calibration saw the row zero often enough for the list to pay; None elsewhere.
        The zero point is subtracted from each input (a zero word must be 0), not folded.
        `rows` and `start` are the computed columns' filters and bias."""
        zero = node.listing
        if zero is None or len(zero.order) != -(-product.k // 4) * 4:
            return None
        zero_point = zero_point_of(a)
        pairs = pack_output_pairs(zero.filters(rows), widened_span(-zero_point))
        if pairs is None or 4 * pairs.words + LIST_BYTES_PER_WORD * pairs.words > SCRATCH_BUDGET:
            return None
        bias = (np.zeros(len(rows), np.int64) if start is None
                else start.astype(np.int64).reshape(-1))
        folding = Folding(bias, -zero_point, f"the input's zero point {zero_point} subtracted "
                          "from each input, so that a word of two zeros is 0")
        return self.render_s8_pairs(node, graph, names, product, a, b, folding, pairs, stage,
                                    skipped, zero)

    def render_s8_pairs(self, node: Node, graph: Graph, names: Names, product: Product,
                        a: Tensor, b: Tensor, folding: Folding, pairs: OutputPairs,
                        stage: OutputStage, skipped: ConstantChannels | None,
                        zero: ZeroWords | None = None) -> Kernel:
        """The int8 kernel for one row of A by a constant B whose filters pack two to a
        halfword (output_pairs.py): each weight is read once, so the loop's cost per weight
        is what counts; six outputs per step share each column word. `product`, `stage` and
        `folding` are those of the columns computed (`skipped` names the others); `zero`,
        where given, pairs the row's inputs into words and lists the nonzero ones."""
        n, k = product.n, product.k
        out, requant, weights, bias, spread = _s8_output_stage(node, graph, names, product,
                                                               stage, folding, pairs.packed,
                                                               skipped)
        bounds, loops, (a_batch, _, y_batch) = _batch_loops(product)
        notes = [f"A {product.a.note}; {describe_quant(a)}; {folding.note}",
                 f"B {list(b.shape)} constant, {describe_quant(b)}; filters packed two to a "
                 f"halfword (256 w[n + 1] + w[n], output_pairs.py), {pairs.words} words per "
                 f"pair (k padded to {pairs.k4}), three pairs interleaved word by word"
                 + ("; the last filter alone" if pairs.single else ""),
                 *product.notes,
                 f"y {list(out.shape)} row-major, int8, {describe_quant(out)}, clamped to "
                 f"[{stage.low}, {stage.high}]; {requant.note}",
                 f"int32 accumulator, |acc| <= {self.accumulator_bound(node, graph)} "
                 f"(checked at compile time); 256 |x . w[n + 1]| < 2^31 for every pair "
                 f"(checked), so its sum may wrap",
                 "path: one row, so each weight is read once (from flash) and the loop's "
                 "instructions per weight word decide the cost: DSP (ARIEL_DSP): the row "
                 f"widened to int16 pairs on the stack ({4 * pairs.words} bytes), then six "
                 "outputs per step, each weight word giving four MACs for one load, one "
                 "SXTB16 and two SMLAD (ariel_dot_3pairs_s8; the one or two pairs left "
                 "after the steps in assembly too, ariel_dot_pairs_s8), filter b of each "
                 "pair given its bias after the loop; plain C: the row read in "
                 "place, one product at a time, w[n + 1] recovered from its byte"]
        if skipped is not None:
            notes.insert(-2, skipped.note("column", "row of y"))
        if zero is not None:
            if not zero.in_order:
                weights["sources"] = zero.source_words()
            notes.insert(-1, zero.note())
        context = {"loops": bounds, "n": n, "k": k, "k4": pairs.k4, "words": pairs.words,
                   "listed": zero is not None, "gathered": zero is not None and not zero.in_order,
                   "sources": names.weight("sources"), "limit": zero.limit if zero else 0,
                   "steps": pairs.steps, "tail": pairs.tail, "single": pairs.single,
                   "a": product.a.array,
                   "a_row": linear([*loops, "m"], [*a_batch, product.a.outer]),
                   "y_row": linear([*loops, "m"], [*y_batch, n]),
                   "b": names.weight("b"), "offset": folding.offset, "start": bias,
                   "widened": folding.widened, "requantize": requant.call,
                   "spread": spread, "notes": wrap_notes(notes)}
        return Kernel(TEMPLATE_S8_PAIRS, context, weights,
                      skipped_macs=0 if skipped is None else skipped.skipped_macs(
                          self.macs(node, graph)),
                      input_dependent=None if zero is None else INPUT_DEPENDENT)

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
            value = f"acc * {c_float(alpha)}"
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
                return (c_literal(data.reshape(-1)[0], C_TYPES[data.dtype.name]),
                        f"C {list(c.shape)}{scaled}, a literal")
            weights["c"] = data
            strides = _bias_strides(c.shape, _row_major_strides(c.shape))
            return (f"{names.weight('c')}[{linear(['m', 'n'], strides)}]",
                    f"C {list(c.shape)}{scaled}, constant")
        strides = _bias_strides(c.shape, c.strides)
        term = f"{param_of(node, graph, c.name)}[{linear(['m', 'n'], strides)}]"
        if beta != 1:
            term = f"{term} * {c_float(beta)}"
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


def _s8_output_stage(node: Node, graph: Graph, names: Names, product: Product,
                     stage: OutputStage, folding: Folding, packed,
                     skipped: ConstantChannels | None):
    """What both int8 kernels of a constant B share: the output tensor, its requantization,
    the weights (B as the kernel packs it, beside the requantizer's tables, and the
    spreading's tables where columns are skipped), the bias, and the spreading's template
    values (None when every column is computed)."""
    out = graph.tensor(node.outputs[0])
    requant = requantizer(stage, names)
    weights = {**{key: v for key, v in product.weights.items() if key != "b"},
               **requant.weights, "b": packed}
    spread = None
    if skipped is not None:
        tables, spread = skipped.spreading(names)
        weights.update(tables)
        # Every row of y, in every batch, is one "pixel" of the spreading, all one image.
        spread["outputs"] = out.size
    return out, requant, weights, bias_reader(folding, names, weights), spread

