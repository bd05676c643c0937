"""ONNX LSTM, GRU and RNN: forward, reverse and bidirectional, layout 0 and 1, optional
initial states, LSTM peepholes and input_forget, GRU's linear_before_reset, clip, every
activation ONNX names, and any subset of the outputs Y, Y_h and Y_c. Float32, with float32
weights, or in int8 builds with int8 weights (recurrent_products.py).

The kernel is unrolled over the static sequence: for each direction and batch row a loop over
the time steps, each step forming the gates' pre-activations as inner products of a vector
with gate rows (Products) and then updating the state one element at a time. The step's input
is copied into scratch right in front of h, and W and R laid side by side, so that W x + R h
is one inner product per row; the products reuse the packed helpers of the Gemm and Conv
kernels. The state and the pre-activations live in scratch memory the planner places in the
arena (OpDef.scratch), not on the stack.

sequence_lens is taken only when it is constant and every sequence is full length: shorter
sequences would need the state frozen per batch row, which no exported keyword spotter asks
for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codegen.compiler.c import c_float
from codegen.compiler.ir import Graph, Node, QuantParams, Tensor
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    attr,
    limit_statements,
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.recurrent_activations import ACTIVATIONS, Applied, canonical, settle
from codegen.compiler.ops.recurrent_products import BLOCK, GateWeights, Packed, pack

# Input and output positions shared by the three operators.
X, W, R, B, SEQUENCE_LENS, INITIAL_H, INITIAL_C, P = range(8)
Y, Y_H, Y_C = range(3)
DIRECTIONS = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}
COMMON_ATTRIBUTES = frozenset({"activation_alpha", "activation_beta", "activations", "clip",
                               "direction", "hidden_size", "layout"})


@dataclass(frozen=True)
class Recurrence:
    """A recurrent node's sizes and settled attributes."""

    steps: int
    batch: int
    inputs: int
    hidden: int
    reverse: tuple[bool, ...]  # per direction
    activations: tuple[tuple[Applied, ...], ...]  # per direction, in the operator's order
    clip: float | None
    layout: int
    flag: bool  # GRU: linear_before_reset; LSTM: input_forget

    @property
    def directions(self) -> int:
        return len(self.reverse)


@dataclass(frozen=True)
class Product:
    """Pre-activations of one step: g[dest + n] = bias[n] + vector . row n for the gate
    rows `rows` of W, R or both side by side (`parts`: "w", "r", "wr"; the vector's length
    follows: input, hidden, or both). `vector` names a scratch vector: "x" (the step's
    input, reaching on into h), "h", or "xr" (a second copy of the input, reaching on into
    r * h). `bias` is a key of the node's biases()."""

    dest: int
    rows: slice
    parts: str
    vector: str
    bias: str



class Recurrent(OpDef):
    limits = "sequence_lens shorter than the sequence or computed at run time"
    """What LSTM, GRU and RNN share; each subclass gives its gates, cell and stages."""

    gates: ClassVar[int] = 1
    default_activations: ClassVar[tuple[str, ...]] = ()
    state_inputs: ClassVar[tuple[int, ...]] = (INITIAL_H,)
    flag_attribute: ClassVar[str] = ""
    # Constant arrays the element loops read, one row per direction, by the loops' name.
    loop_arrays: ClassVar[tuple[str, ...]] = ()
    # W and R may arrive as int8 constants through DequantizeLinear (quant/lower.py).
    int8_weights: ClassVar[tuple[int, ...]] = (W, R)
    optional_outputs = True

    # -- checks and shapes ------------------------------------------------------------------
    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        ins = _padded(graph.input_tensors(node))
        for index, tensor in enumerate(ins):
            if tensor is not None and index != SEQUENCE_LENS and not (
                    index in (W, R) and tensor.dtype == "int8"):
                require_dtype(node, tensor, FLOAT_TYPES)
        x, w, r = ins[X], ins[W], ins[R]
        if (x.rank, w.rank, r.rank) != (3, 3, 3):
            raise unsupported(node, f"X, W and R of ranks {x.rank}, {w.rank} and {r.rank}",
                              "3-D X, W and R")
        for index, what in ((W, "W"), (R, "R"), (B, "B"), (P, "P")):
            tensor = ins[index]
            if tensor is not None and not tensor.is_const:
                raise unsupported(node, f"{what} '{tensor.name}' computed at run time",
                                  "constant weights, biases and peepholes (initializers)")
        spec = self.settings(node, x.shape, w.shape, r.shape)
        self._check_shapes(node, spec, ins)
        self._check_lengths(node, spec, ins[SEQUENCE_LENS])
        self._check_int8_weights(node, w, r)

    def _check_int8_weights(self, node: Node, w: Tensor, r: Tensor) -> None:
        """int8 W and R (quant/recurrent.py's form): both, symmetric, one scale per gate row
        along axis 1, the same scales for W and R."""
        if "int8" not in (w.dtype, r.dtype):
            return
        scales = []
        for tensor in (w, r):
            quant = tensor.quant
            if tensor.dtype != "int8" or quant is None or quant.axis not in (1, -2) or \
                    np.size(quant.scale) != w.shape[1] or np.any(quant.zero_point != 0):
                raise unsupported(node, f"weights '{tensor.name}' of type {tensor.dtype} "
                                  f"quantized as {_describe(quant)}",
                                  "float32 W and R, or both int8, symmetric, one scale per "
                                  "gate row (axis 1)")
            scales.append(np.asarray(quant.scale, np.float32).reshape(-1))
        if not np.array_equal(*scales):
            raise unsupported(node, "int8 W and R with different scales for a gate row",
                              "one scale per gate row shared by W and R")

    def settings(self, node: Node, x: tuple[int, ...], w: tuple[int, ...],
                 r: tuple[int, ...]) -> Recurrence:
        """The node's attributes checked and settled, with the sizes of X, W and R."""
        direction = attr(node, "direction", "forward")
        if direction not in DIRECTIONS:
            raise unsupported(node, f"direction '{direction}'",
                              "forward, reverse, bidirectional")
        layout = attr(node, "layout", 0)
        if layout not in (0, 1):
            raise unsupported(node, f"layout {layout}", "0 and 1")
        steps, batch = (x[1], x[0]) if layout else (x[0], x[1])
        hidden = r[-1]
        count = len(DIRECTIONS[direction])
        if attr(node, "hidden_size", hidden) != hidden:
            raise unsupported(node, f"hidden_size {attr(node, 'hidden_size', 0)} with R of "
                              f"shape {list(r)}", "hidden_size equal to R's last dimension")
        if (w[0], r[0]) != (count, count) or w[1:] != (self.gates * hidden, x[2]) or \
                r[1] != self.gates * hidden:
            raise unsupported(node, f"W {list(w)} and R {list(r)} for X {list(x)}, "
                              f"direction {direction}",
                              f"W [{count}, {self.gates}*hidden, input] and R [{count}, "
                              f"{self.gates}*hidden, hidden]")
        clip = attr(node, "clip", None)
        if clip is not None and not clip > 0:
            raise unsupported(node, f"clip {clip}", "a positive clip threshold")
        flag = attr(node, self.flag_attribute, 0) if self.flag_attribute else 0
        if flag not in (0, 1):
            raise unsupported(node, f"{self.flag_attribute} {flag}", "0 and 1")
        return Recurrence(steps, batch, x[2], hidden, DIRECTIONS[direction],
                          self._activations(node, count), None if clip is None else
                          float(np.float32(clip)), layout, bool(flag))

    def _activations(self, node: Node, count: int) -> tuple[tuple[Applied, ...], ...]:
        per = len(self.default_activations)
        names = list(attr(node, "activations", list(self.default_activations) * count))
        if len(names) != per * count:
            raise unsupported(node, f"{len(names)} activations for {count} direction(s)",
                              f"{per} per direction ({', '.join(self.default_activations)})")
        unknown = [name for name in names if canonical(name) is None]
        if unknown:
            raise unsupported(node, f"activation {unknown[0]}",
                              f"activations {', '.join(ACTIVATIONS)}")
        applied = settle(names, list(attr(node, "activation_alpha", [])),
                         list(attr(node, "activation_beta", [])))
        if isinstance(applied, str):
            both = ACTIVATIONS[canonical(applied)].params == 2
            given = "activation_alpha and activation_beta" if both else "activation_alpha"
            raise unsupported(node, f"activation {applied} without {given}",
                              f"{applied} with {'both' if both else 'its alpha'} given")
        return tuple(tuple(applied[d * per:(d + 1) * per]) for d in range(count))

    def _check_shapes(self, node: Node, spec: Recurrence, ins: list[Tensor | None]) -> None:
        gates, hidden, count = self.gates, spec.hidden, spec.directions
        state = [count, spec.batch, hidden] if spec.layout == 0 else [spec.batch, count,
                                                                       hidden]
        expected = {B: ("B", [count, 2 * gates * hidden]), P: ("P", [count, 3 * hidden]),
                    INITIAL_H: ("initial_h", state), INITIAL_C: ("initial_c", state)}
        for index, (what, shape) in expected.items():
            tensor = ins[index]
            if tensor is not None and list(tensor.shape) != shape:
                raise unsupported(node, f"{what} of shape {list(tensor.shape)}",
                                  f"{what} of shape {shape}")

    def _check_lengths(self, node: Node, spec: Recurrence, lengths: Tensor | None) -> None:
        if lengths is None:
            return
        if not lengths.is_const:
            raise unsupported(node, f"sequence_lens '{lengths.name}' computed at run time",
                              "no sequence_lens, or a constant one equal to the sequence "
                              f"length {spec.steps} for every batch row")
        values = np.asarray(lengths.data).reshape(-1)
        if values.shape != (spec.batch,) or np.any(values != spec.steps):
            raise unsupported(node, f"sequence_lens {values.tolist()[:8]} (sequences shorter "
                              f"than {spec.steps} steps)", "every sequence of the full length "
                              f"{spec.steps}")

    def spec_of(self, node: Node, graph: Graph) -> Recurrence:
        x, w, r = (graph.tensor(node.inputs[i]) for i in (X, W, R))
        return self.settings(node, x.shape, w.shape, r.shape)

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x, w, r = inputs[X], inputs[W], inputs[R]
        spec = self.settings(node, x.shape, w.shape, r.shape)
        shapes = self.output_shapes(spec)
        return [(shapes[slot], x.dtype) for slot in output_slots(node)]

    def output_shapes(self, spec: Recurrence) -> list[tuple[int, ...]]:
        n, t, b, h = spec.directions, spec.steps, spec.batch, spec.hidden
        if spec.layout:
            return [(b, t, n, h), (b, n, h), (b, n, h)]
        return [(t, n, b, h), (n, b, h), (n, b, h)]

    def macs(self, node: Node, graph: Graph) -> int:
        spec = self.spec_of(node, graph)
        return (spec.steps * spec.directions * spec.batch * self.gates * spec.hidden
                * (spec.inputs + spec.hidden))

    # -- reference ------------------------------------------------------------------------
    def reference(self, node: Node, *inputs):
        ins = _padded(list(inputs))
        return self.unroll(node, ins, GateWeights(ins[W], ins[R]))

    def evaluate(self, node: Node, graph: Graph, *inputs):
        """With int8 weights, the float reference of the int8 product: the weights' scales
        are on the graph's tensors."""
        ins = _padded(list(inputs))
        return self.unroll(node, ins, gate_weights(graph, node, ins[W], ins[R]))

    def unroll(self, node: Node, ins: list, weights: GateWeights) -> list[np.ndarray]:
        spec = self.settings(node, ins[X].shape, ins[W].shape, ins[R].shape)
        x, h0, c0 = ins[X].astype(np.float64), ins[INITIAL_H], ins[INITIAL_C]
        if spec.layout:
            x = x.swapaxes(0, 1)
            h0, c0 = (None if s is None else s.swapaxes(0, 1) for s in (h0, c0))
        n, hidden = spec.directions, spec.hidden
        zeros = np.zeros((n, spec.batch, hidden))
        bias = np.zeros((n, 2 * self.gates * hidden)) if ins[B] is None else ins[B]
        peep = np.zeros((n, 3 * hidden)) if ins[P] is None else ins[P]
        y = np.zeros((spec.steps, n, spec.batch, hidden))
        last_h, last_c = zeros.copy(), zeros.copy()
        for d in range(n):
            h = zeros[d] if h0 is None else h0[d].astype(np.float64)
            c = zeros[d] if c0 is None else c0[d].astype(np.float64)
            fixed = [a.astype(np.float64) for a in (bias[d], peep[d])]

            def product(vector, rows, parts, d=d):
                return weights.product(vector, rows, parts, d)

            for step in range(spec.steps):
                t = spec.steps - 1 - step if spec.reverse[d] else step
                h, c = self.cell(spec, spec.activations[d], product, x[t], h, c, *fixed)
                y[t, d] = h
            last_h[d], last_c[d] = h, c
        if spec.layout:
            y, last_h, last_c = y.transpose(2, 0, 1, 3), last_h.swapaxes(0, 1), \
                last_c.swapaxes(0, 1)
        values = [y, last_h, last_c]
        return [values[slot].astype(np.float32) for slot in output_slots(node)]

    def cell(self, spec: Recurrence, acts: tuple[Applied, ...], product, x, h, c, b, p):
        """One time step of one direction on [batch, ...] arrays: (new h, new c).
        `product(vector, rows, parts)` is vector times gate rows as the kernel forms it."""
        raise NotImplementedError

    # -- code generation ------------------------------------------------------------------
    def gate_rows(self, spec: Recurrence) -> int:
        """Rows of pre-activations the scratch holds (the gates, or more)."""
        return self.gates

    def scratch_layout(self, spec: Recurrence) -> list[tuple[str, int]]:
        """(name, first float) of each vector in scratch after the pre-activations: the
        step's input x and right after it h, then the rest of the state."""
        start = self.gate_rows(spec) * spec.hidden
        layout = [("x", start), ("h", start + spec.inputs)]
        offset = start + spec.inputs + spec.hidden
        for name in self.more_state(spec):
            layout.append((name, offset))
            offset += spec.inputs if name == "xr" else spec.hidden
        return layout

    def more_state(self, spec: Recurrence) -> tuple[str, ...]:
        """Scratch vectors after [x, h], in order (each `hidden` long, but "xr": `inputs`)."""
        return ()

    def scratch_floats(self, spec: Recurrence) -> int:
        name, start = self.scratch_layout(spec)[-1]
        return start + (spec.inputs if name == "xr" else spec.hidden)

    def scratch(self, node: Node, graph: Graph) -> int:
        spec = self.spec_of(node, graph)
        weights = gate_weights(graph, node)
        words = 0
        if weights.is_int8:
            words = max(_k4(_length(spec, p)) // 2 for p in self.products(spec))
        return 4 * (self.scratch_floats(spec) + words)

    def products(self, spec: Recurrence) -> list[Product]:
        raise NotImplementedError

    def biases(self, spec: Recurrence, bias: np.ndarray) -> dict[str, np.ndarray]:
        """The bias of each product by key, [directions, rows] float32, from B."""
        raise NotImplementedError

    def step(self, spec: Recurrence, acts: tuple[Applied, ...], peepholes: bool) -> list:
        """One step as the kernel runs it: Products and element loops (lists of C
        statements over j), in order."""
        raise NotImplementedError

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        ins = _padded(graph.input_tensors(node))
        spec = self.spec_of(node, graph)
        weights: dict[str, np.ndarray] = {}
        gate = gate_weights(graph, node)
        count = spec.directions
        bias = (np.zeros((count, 2 * self.gates * spec.hidden), np.float32) if ins[B] is None
                else ins[B].data.astype(np.float32))
        for key, value in self.biases(spec, bias).items():
            weights[key] = value.astype(np.float32)
        peepholes = ins[P] is not None and bool(ins[P].data.any())
        if peepholes:
            weights["p"] = ins[P].data.astype(np.float32)
        products, rendered = self.products(spec), []
        for index, product in enumerate(products):
            packed = pack(gate, product.rows, product.parts)
            rendered.append((f"m{index}", packed))
            weights[f"m{index}"] = packed.data
            if packed.scale is not None:
                weights[f"m{index}_scale"] = packed.scale
        directions = []
        for d, reverse in enumerate(spec.reverse):
            stages = [self._render_product(p, d, rendered[products.index(p)], names, weights)
                      if isinstance(p, Product) else {"product": False, "loop": p}
                      for p in self.step(spec, spec.activations[d], peepholes)]
            directions.append({
                "name": "reverse" if reverse else "forward",
                "arrays": [(key, f"{names.weight(key)} + {d * weights[key].shape[-1]}u")
                           for key in self.loop_arrays if key in weights],
                "time": f"{spec.steps - 1}u - s" if reverse else "s",
                "stages": stages,
                "initial": self._initial(node, graph, spec, ins, d, names, weights),
                "outputs": self._outputs(node, graph, spec, d)})
        context = {
            "spec": spec, "directions": directions, "hidden": spec.hidden,
            "x_row": _offset([("t", spec.inputs * (1 if spec.layout else spec.batch)),
                              ("b", spec.inputs * (spec.steps if spec.layout else 1))]),
            "state": self.scratch_layout(spec),
            "copy_xr": "xr" in self.more_state(spec),
            "int8": gate.is_int8, "words_at": self.scratch_floats(spec),
            "notes": self.notes(spec, ins, gate, peepholes),
        }
        float_products = () if gate.is_int8 else tuple(key for key, _ in rendered)
        return Kernel("kernels/recurrent_f32.c.j2", context, weights, float_products)

    def notes(self, spec: Recurrence, ins, gate: GateWeights, peepholes: bool) -> list[str]:
        acts = "; ".join(", ".join(a.name for a in per) for per in spec.activations)
        ways = " and ".join("reverse" if r else "forward" for r in spec.reverse)
        if gate.is_int8:
            weights = ("int8 weights, one scale per gate row; each step's vector quantized "
                       "to int16 by its largest value, products in int32, state in float")
        else:
            weights = "float32 weights"
        return [f"X {list(ins[X].shape)} (layout {spec.layout}): {spec.steps} steps, batch "
                f"{spec.batch}, input {spec.inputs}, hidden {spec.hidden}, {ways}",
                f"activations {acts}" + (f", clip {spec.clip:g}" if spec.clip else ""),
                *self.describe(spec, peepholes), weights,
                "state and pre-activations in the arena's scratch "
                f"({self.scratch_floats(spec)} floats)"]

    def describe(self, spec: Recurrence, peepholes: bool) -> list[str]:
        raise NotImplementedError

    def _render_product(self, product: Product, d: int, rendered: tuple[str, Packed],
                        names: Names, weights: dict[str, np.ndarray]) -> dict:
        key, packed = rendered
        bias = None
        if weights[product.bias].any():
            bias = (names.weight(product.bias), d * weights[product.bias].shape[-1])
        context = {"product": True, "dest": product.dest,
                   "rows": product.rows.stop - product.rows.start,
                   "vector": product.vector, "k": packed.k, "bias": bias,
                   "weights": names.weight(key), "offset": d * packed.stride}
        context["blocks"] = context["rows"] // BLOCK
        if packed.scale is not None:
            context.update(k4=packed.k4, groups=packed.k4 // 4, limit=packed.limit,
                           scale=names.weight(f"{key}_scale"))
        return context

    def _initial(self, node: Node, graph: Graph, spec: Recurrence, ins, d: int,
                 names: Names, weights: dict[str, np.ndarray]) -> list[tuple[str, str | None]]:
        """For each state vector with an initial value: where its start is read from (C
        array and row offset in b), or None for zeros."""
        rows = _offset([("b", spec.hidden * (spec.directions if spec.layout else 1))],
                       d * spec.hidden * (1 if spec.layout else spec.batch))
        sources = []
        for index, name in zip(self.state_inputs, ("h", "c"), strict=False):
            tensor = ins[index]
            if tensor is None or (tensor.is_const and not tensor.data.any()):
                sources.append((name, None))
            elif tensor.is_const:
                weights[f"initial_{name}"] = tensor.data.astype(np.float32)
                sources.append((name, f"&{names.weight(f'initial_{name}')}[{rows}]"))
            else:
                sources.append((name, f"&{param_of(node, graph, tensor.name)}[{rows}]"))
        return sources

    def _outputs(self, node: Node, graph: Graph, spec: Recurrence, d: int) -> dict:
        """Where each output's rows go: Y's per step (in t and b), Y_h's and Y_c's at the
        end (in b), as C offsets, with the kernel parameter."""
        h, n, batch, steps = spec.hidden, spec.directions, spec.batch, spec.steps
        if spec.layout:
            y = _offset([("t", n * h), ("b", steps * n * h)], d * h)
            last = _offset([("b", n * h)], d * h)
        else:
            y = _offset([("t", n * batch * h), ("b", h)], d * batch * h)
            last = _offset([("b", h)], d * batch * h)
        found = {"sequence": None, "last": []}
        for name, slot in zip(node.outputs, output_slots(node), strict=True):
            param = param_of(node, graph, name)
            if slot == Y:
                found["sequence"] = f"&{param}[{y}]"
            else:
                found["last"].append((f"&{param}[{last}]", "h" if slot == Y_H else "c"))
        return found


def gate_weights(graph: Graph, node: Node, w: np.ndarray | None = None,
                 r: np.ndarray | None = None) -> GateWeights:
    """The node's W and R (their constant data unless given), with the per-row scales when
    they are int8."""
    tw, tr = graph.tensor(node.inputs[W]), graph.tensor(node.inputs[R])
    w = tw.data if w is None else w
    r = tr.data if r is None else r
    if tw.dtype != "int8":
        return GateWeights(w, r)
    return GateWeights(w, r, np.asarray(tw.quant.scale, np.float32).reshape(-1))


def output_slots(node: Node) -> tuple[int, ...]:
    """The operator's output position of each of the node's outputs."""
    return node.output_slots or tuple(range(len(node.outputs)))


def _padded(inputs: list) -> list:
    """The node's inputs with the omitted trailing ones as None."""
    return list(inputs) + [None] * (8 - len(inputs))


def _describe(quant: QuantParams | None) -> str:
    if quant is None:
        return "nothing"
    return f"{np.size(quant.scale)} scale(s) along axis {quant.axis}"


def _length(spec: Recurrence, product: Product) -> int:
    """How many values of its vector a product reads."""
    return {"w": spec.inputs, "r": spec.hidden, "wr": spec.inputs + spec.hidden}[product.parts]


def _k4(k: int) -> int:
    return -(-k // 4) * 4


def _offset(terms: list[tuple[str, int]], constant: int = 0) -> str:
    """A C offset expression: sum of variable * stride, plus a constant."""
    parts = [name if stride == 1 else f"{name} * {stride}u"
             for name, stride in terms if stride]
    if constant or not parts:
        parts.append(f"{constant}u")
    return " + ".join(parts)


def _clipped(spec: Recurrence, variable: str, value: str) -> list[str]:
    """`float variable = value;` then clip's bounds, if the node has them."""
    statements = [f"float {variable} = {value};"]
    if spec.clip is not None:
        statements += limit_statements(variable, c_float(-spec.clip), c_float(spec.clip))
    return statements


def _clip(spec: Recurrence, value: np.ndarray) -> np.ndarray:
    return value if spec.clip is None else np.clip(value, -spec.clip, spec.clip)


ALL = slice(None)


@register("LSTM")
class LSTM(Recurrent):
    """Gates i, o, f, c (ONNX's order) from W x + R h + Wb + Rb, peepholes P (i, o, f) on
    the cell state; input_forget makes f = 1 - i."""

    gates = 4
    default_activations = ("Sigmoid", "Tanh", "Tanh")
    attributes = COMMON_ATTRIBUTES | {"input_forget"}
    state_inputs = (INITIAL_H, INITIAL_C)
    loop_arrays = ("p",)
    flag_attribute = "input_forget"

    def more_state(self, spec):
        return ("c",)

    def cell(self, spec, acts, product, x, h, c, b, p):
        hidden = spec.hidden
        g = product(np.concatenate([x, h], axis=1), ALL, "wr") + b[:4 * hidden] + \
            b[4 * hidden:]
        gi, go, gf, gc = (g[:, k * hidden:(k + 1) * hidden] for k in range(4))
        pi, po, pf = (p[k * hidden:(k + 1) * hidden] for k in range(3))
        i = acts[0].numpy(_clip(spec, gi + pi * c))
        f = 1.0 - i if spec.flag else acts[0].numpy(_clip(spec, gf + pf * c))
        cell = f * c + i * acts[1].numpy(_clip(spec, gc))
        o = acts[0].numpy(_clip(spec, go + po * cell))
        return o * acts[2].numpy(cell), cell

    def products(self, spec):
        return [Product(0, slice(0, 4 * spec.hidden), "wr", "x", "b")]

    def biases(self, spec, bias):
        rows = 4 * spec.hidden
        return {"b": bias[:, :rows] + bias[:, rows:]}

    def step(self, spec, acts, peepholes):
        hidden = spec.hidden

        def peep(gate: int, state: str) -> str:
            return f" + p[{gate * hidden}u + j] * {state}" if peepholes else ""

        loop = [*_clipped(spec, "vi", f"g[j]{peep(0, 'c[j]')}"),
                f"const float i = {acts[0].c('vi')};"]
        if spec.flag:
            loop.append("const float f = 1.0f - i;")
        else:
            loop += [*_clipped(spec, "vf", f"g[{2 * hidden}u + j]{peep(2, 'c[j]')}"),
                     f"const float f = {acts[0].c('vf')};"]
        loop += [*_clipped(spec, "vc", f"g[{3 * hidden}u + j]"),
                 f"const float cell = f * c[j] + i * {acts[1].c('vc')};",
                 *_clipped(spec, "vo", f"g[{hidden}u + j]{peep(1, 'cell')}"),
                 f"const float o = {acts[0].c('vo')};",
                 "c[j] = cell;",
                 f"h[j] = o * {acts[2].c('cell')};"]
        return [*self.products(spec), loop]

    def describe(self, spec, peepholes):
        return ["gates i, o, f, c: [W R] [x h] + Wb + Rb in one product of "
                f"{4 * spec.hidden} rows" + (", peepholes on the cell state" if peepholes
                                             else "")
                + (", f = 1 - i (input_forget)" if spec.flag else "")]


@register("GRU")
class GRU(Recurrent):
    """Gates z, r, h (ONNX's order). The candidate reads r * h through Rh (default), or with
    linear_before_reset r * (Rh h + Rbh)."""

    gates = 3
    default_activations = ("Sigmoid", "Tanh")
    attributes = COMMON_ATTRIBUTES | {"linear_before_reset"}
    flag_attribute = "linear_before_reset"

    def gate_rows(self, spec):
        return 4 if spec.flag else 3

    def more_state(self, spec):
        return () if spec.flag else ("xr", "rh")

    def cell(self, spec, acts, product, x, h, c, b, p):
        n = spec.hidden
        wbz, wbr, wbh, rbz, rbr, rbh = (b[k * n:(k + 1) * n] for k in range(6))
        zr = product(np.concatenate([x, h], axis=1), slice(0, 2 * n), "wr")
        z = acts[0].numpy(_clip(spec, zr[:, :n] + wbz + rbz))
        reset = acts[0].numpy(_clip(spec, zr[:, n:] + wbr + rbr))
        rows = slice(2 * n, 3 * n)
        if spec.flag:
            candidate = product(x, rows, "w") + reset * (product(h, rows, "r") + rbh) + wbh
        else:
            candidate = product(np.concatenate([x, reset * h], axis=1), rows, "wr") + rbh + wbh
        candidate = acts[1].numpy(_clip(spec, candidate))
        return (1.0 - z) * candidate + z * h, c

    def products(self, spec):
        n = spec.hidden
        zr = Product(0, slice(0, 2 * n), "wr", "x", "b_zr")
        rows = slice(2 * n, 3 * n)
        if spec.flag:
            return [zr, Product(2 * n, rows, "w", "x", "wb_h"),
                    Product(3 * n, rows, "r", "h", "rb_h")]
        return [zr, Product(2 * n, rows, "wr", "xr", "b_h")]

    def biases(self, spec, bias):
        n = spec.hidden
        values = {"b_zr": bias[:, :2 * n] + bias[:, 3 * n:5 * n]}
        if spec.flag:
            values.update(wb_h=bias[:, 2 * n:3 * n], rb_h=bias[:, 5 * n:])
        else:
            values["b_h"] = bias[:, 2 * n:3 * n] + bias[:, 5 * n:]
        return values

    def step(self, spec, acts, peepholes):
        n = spec.hidden
        products = self.products(spec)
        update = [*_clipped(spec, "vz", "g[j]"), f"const float z = {acts[0].c('vz')};"]
        if spec.flag:
            update = [*update, *_clipped(spec, "vr", f"g[{n}u + j]"),
                      f"const float r = {acts[0].c('vr')};",
                      *_clipped(spec, "vh", f"g[{2 * n}u + j] + r * g[{3 * n}u + j]")]
            return [*products, update + _gru_blend(acts)]
        reset = [*_clipped(spec, "vr", f"g[{n}u + j]"),
                 f"const float r = {acts[0].c('vr')};", "rh[j] = r * h[j];"]
        update += _clipped(spec, "vh", f"g[{2 * n}u + j]")
        return [products[0], reset, products[1], update + _gru_blend(acts)]

    def describe(self, spec, peepholes):
        n = spec.hidden
        if spec.flag:
            note = ("linear_before_reset: the candidate's W x + Wbh and R h + Rbh formed "
                    "apart, r applied between them")
        else:
            note = ("the candidate's product reads [x, r * h] (a second copy of x in front "
                    "of r * h), formed after the z and r gates")
        return [f"gates z, r: [W R] [x h] + Wb + Rb ({2 * n} rows); {note}"]


def _gru_blend(acts: tuple[Applied, ...]) -> list[str]:
    return [f"const float candidate = {acts[1].c('vh')};",
            "h[j] = (1.0f - z) * candidate + z * h[j];"]


@register("RNN")
class RNN(Recurrent):
    """h = f(W x + R h + Wb + Rb)."""

    gates = 1
    default_activations = ("Tanh",)
    attributes = COMMON_ATTRIBUTES

    def cell(self, spec, acts, product, x, h, c, b, p):
        n = spec.hidden
        g = product(np.concatenate([x, h], axis=1), ALL, "wr") + b[:n] + b[n:]
        return acts[0].numpy(_clip(spec, g)), c

    def products(self, spec):
        return [Product(0, slice(0, spec.hidden), "wr", "x", "b")]

    def biases(self, spec, bias):
        n = spec.hidden
        return {"b": bias[:, :n] + bias[:, n:]}

    def step(self, spec, acts, peepholes):
        return [*self.products(spec), [*_clipped(spec, "v", "g[j]"),
                                       f"h[j] = {acts[0].c('v')};"]]

    def describe(self, spec, peepholes):
        return [f"[W R] [x h] + Wb + Rb in one product of {spec.hidden} rows"]
