"""ONNX LSTM, GRU and RNN in float32: forward, reverse and bidirectional, layout 0 and 1,
optional initial states, LSTM peepholes and input_forget, GRU's linear_before_reset, clip,
every activation ONNX names, and any subset of the outputs Y, Y_h and Y_c.

The kernel is unrolled over the static sequence: for each direction and batch row a loop over
the time steps, each step forming the gates' pre-activations as inner products and then
updating the state one element at a time. The inner products reuse the blocked float helper
of the packed Gemm and Conv kernels (ariel_dot_f32): each gate matrix (W against the step's
input, R against the previous hidden state) is re-laid at compile time by pack_blocks, eight
gate rows interleaved weight by weight. W and R are laid side by side, and the step's input
copied in front of the hidden state, so that W x + R h is one inner product per row. The
state and the pre-activations live in scratch memory the planner places in the arena
(OpDef.scratch), not on the stack.

sequence_lens is taken only when it is constant and every sequence is full length: shorter
sequences would need the state frozen per batch row, which no exported keyword spotter asks
for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codegen.compiler.c import c_float
from codegen.compiler.ir import Graph, Node, Tensor
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
from codegen.compiler.ops.inner_product import pack_blocks
from codegen.compiler.ops.recurrent_activations import ACTIVATIONS, Applied, canonical, settle

# Input and output positions shared by the three operators.
X, W, R, B, SEQUENCE_LENS, INITIAL_H, INITIAL_C, P = range(8)
Y, Y_H, Y_C = range(3)
BLOCK = 8  # gate rows per inner-product step (ariel_dot_f32 takes up to eight filters)
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


@dataclass
class Product:
    """Gate pre-activations of one step: scratch[dest + n] = bias[n] + sum over the terms of
    vector . weights row n, for `rows` rows. A term is (C pointer to the vector, weight
    key, length): x reaches on into h, so a term of length input + hidden reads [x, h]. The
    weights hold every direction's rows, one direction after another."""

    dest: int
    rows: int
    terms: list[tuple[str, str, int]]
    bias: str | None


class Recurrent(OpDef):
    """What LSTM, GRU and RNN share; each subclass gives its gates and its cell."""

    gates: ClassVar[int] = 1
    default_activations: ClassVar[tuple[str, ...]] = ()
    state_inputs: ClassVar[tuple[int, ...]] = (INITIAL_H,)
    flag_attribute: ClassVar[str] = ""
    # Constant arrays the element loops read, one row per direction, by the loops' name.
    loop_arrays: ClassVar[tuple[str, ...]] = ()

    # -- checks and shapes ------------------------------------------------------------------
    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        ins = graph.input_tensors(node) + [None] * (8 - len(node.inputs))
        for tensor in ins:
            if tensor is not None and tensor is not ins[SEQUENCE_LENS]:
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
        ins = list(inputs) + [None] * (8 - len(inputs))
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
            weights = [a.astype(np.float64) for a in (ins[W][d], ins[R][d], bias[d], peep[d])]
            for step in range(spec.steps):
                t = spec.steps - 1 - step if spec.reverse[d] else step
                h, c = self.cell(spec, spec.activations[d], x[t], h, c, *weights)
                y[t, d] = h
            last_h[d], last_c[d] = h, c
        if spec.layout:
            y, last_h, last_c = y.transpose(2, 0, 1, 3), last_h.swapaxes(0, 1), \
                last_c.swapaxes(0, 1)
        values = [y, last_h, last_c]
        return [values[slot].astype(np.float32) for slot in output_slots(node)]

    def cell(self, spec: Recurrence, acts: tuple[Applied, ...], x, h, c, w, r, b, p):
        """One time step of one direction on [batch, ...] arrays: (new h, new c)."""
        raise NotImplementedError

    # -- code generation ------------------------------------------------------------------
    def scratch_floats(self, spec: Recurrence) -> int:
        """Floats of scratch: the pre-activations (`gate_rows` of them), the step's input x
        and right after it h (so that W x + R h is one inner product over [x, h] with
        [W, R]), then the rest of the state."""
        return spec.inputs + (self.gate_rows(spec) + len(self.state_names(spec))) * spec.hidden

    def scratch_layout(self, spec: Recurrence) -> list[tuple[str, int]]:
        """(name, first float) of each vector in scratch after the pre-activations."""
        start = self.gate_rows(spec) * spec.hidden
        layout = [("x", start)]
        for index, name in enumerate(self.state_names(spec)):
            layout.append((name, start + spec.inputs + index * spec.hidden))
        return layout

    def gate_rows(self, spec: Recurrence) -> int:
        return self.gates

    def state_names(self, spec: Recurrence) -> tuple[str, ...]:
        """The per-element state vectors after the pre-activations in scratch, h first."""
        return ("h",)

    def scratch(self, node: Node, graph: Graph) -> int:
        return 4 * self.scratch_floats(self.spec_of(node, graph))

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        ins = graph.input_tensors(node) + [None] * (8 - len(node.inputs))
        spec = self.spec_of(node, graph)
        weights: dict[str, np.ndarray] = {}
        products, steps = self.stages(spec, ins, weights)
        directions = []
        for d, reverse in enumerate(spec.reverse):
            stages = [self._render_product(p, d, spec, names, weights) if isinstance(p, Product)
                      else {"product": False, "loop": p} for p in steps(d, spec.activations[d])]
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
            "notes": self.notes(node, spec, ins, products),
        }
        return Kernel("kernels/recurrent_f32.c.j2", context, weights)

    def stages(self, spec: Recurrence, ins: list[Tensor | None],
               weights: dict[str, np.ndarray]):
        """The packed weights (added to `weights`), the products' descriptions, and a
        function of (direction, activations) giving one step as a list of Products and
        element loops (lists of C statements over j)."""
        raise NotImplementedError

    def notes(self, node: Node, spec: Recurrence, ins, products: list[str]) -> list[str]:
        acts = "; ".join(", ".join(a.name for a in per) for per in spec.activations)
        ways = " and ".join("reverse" if r else "forward" for r in spec.reverse)
        return [f"X {list(ins[X].shape)} (layout {spec.layout}): {spec.steps} steps, batch "
                f"{spec.batch}, input {spec.inputs}, hidden {spec.hidden}, {ways}",
                f"activations {acts}" + (f", clip {spec.clip:g}" if spec.clip else ""),
                *products,
                "state and pre-activations in the arena's scratch "
                f"({self.scratch_floats(spec)} floats)"]

    def _render_product(self, product: Product, d: int, spec: Recurrence, names: Names,
                        weights: dict[str, np.ndarray]) -> dict:
        terms = [{"vector": vector, "weights": names.weight(key), "k": k,
                  "offset": d * product.rows * k} for vector, key, k in product.terms]
        bias = None
        if product.bias is not None and weights[product.bias].any():
            bias = (names.weight(product.bias), d * product.rows)
        return {"product": True, "dest": product.dest, "rows": product.rows,
                "blocks": product.rows // BLOCK, "terms": terms, "bias": bias}

    def _initial(self, node: Node, graph: Graph, spec: Recurrence, ins, d: int,
                 names: Names, weights: dict[str, np.ndarray]) -> list[tuple[str, str | None]]:
        """For each state vector: where its start is read from (C array and row offset in
        b), or None for zeros."""
        rows = _offset([("b", spec.hidden * (spec.directions if spec.layout else 1))],
                       d * spec.hidden * (1 if spec.layout else spec.batch))
        sources = []
        for index, name in zip(self.state_inputs, self.state_names(spec), strict=False):
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


def output_slots(node: Node) -> tuple[int, ...]:
    """The operator's output position of each of the node's outputs."""
    return node.output_slots or tuple(range(len(node.outputs)))


def _offset(terms: list[tuple[str, int]], constant: int = 0) -> str:
    """A C offset expression: sum of variable * stride, plus a constant."""
    parts = [name if stride == 1 else f"{name} * {stride}u"
             for name, stride in terms if stride]
    if constant or not parts:
        parts.append(f"{constant}u")
    return " + ".join(parts)


def _biases(bias: Tensor | None, count: int, size: int) -> np.ndarray:
    """B as float32 [directions, size], zeros where the node has none."""
    return np.zeros((count, size), np.float32) if bias is None else bias.data.astype(
        np.float32)


def _packed(matrix: np.ndarray) -> np.ndarray:
    """Every direction's [rows, k] matrix packed for ariel_dot_f32, one after the other."""
    return np.concatenate([pack_blocks(m.astype(np.float32), BLOCK) for m in matrix])


def _clipped(spec: Recurrence, variable: str, value: str) -> list[str]:
    """`float variable = value;` then clip's bounds, if the node has them."""
    statements = [f"float {variable} = {value};"]
    if spec.clip is not None:
        statements += limit_statements(variable, c_float(-spec.clip), c_float(spec.clip))
    return statements


def _clip(spec: Recurrence, value: np.ndarray) -> np.ndarray:
    return value if spec.clip is None else np.clip(value, -spec.clip, spec.clip)


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

    def state_names(self, spec: Recurrence) -> tuple[str, ...]:
        return ("h", "c")

    def cell(self, spec, acts, x, h, c, w, r, b, p):
        hidden = spec.hidden
        g = x @ w.T + h @ r.T + b[:4 * hidden] + b[4 * hidden:]
        gi, go, gf, gc = (g[:, k * hidden:(k + 1) * hidden] for k in range(4))
        pi, po, pf = (p[k * hidden:(k + 1) * hidden] for k in range(3))
        i = acts[0].numpy(_clip(spec, gi + pi * c))
        f = 1.0 - i if spec.flag else acts[0].numpy(_clip(spec, gf + pf * c))
        cell = f * c + i * acts[1].numpy(_clip(spec, gc))
        o = acts[0].numpy(_clip(spec, go + po * cell))
        return o * acts[2].numpy(cell), cell

    def stages(self, spec, ins, weights):
        hidden, count = spec.hidden, spec.directions
        rows = 4 * hidden
        bias = _biases(ins[B], count, 2 * rows)
        weights["b"] = bias[:, :rows] + bias[:, rows:]
        peepholes = ins[P] is not None and bool(ins[P].data.any())
        if peepholes:
            weights["p"] = ins[P].data.astype(np.float32)
        weights["wr"] = _packed(np.concatenate([ins[W].data, ins[R].data], axis=2))
        product = Product(0, rows, [("x", "wr", spec.inputs + hidden)], "b")

        def step(d: int, acts: tuple[Applied, ...]) -> list:
            def peep(gate: int, state: str) -> str:
                if not peepholes:
                    return ""
                return f" + p[{gate * hidden}u + j] * {state}"

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
            return [product, loop]

        notes = ["gates i, o, f, c: W x + R h + Wb + Rb in one product of "
                 f"{rows} rows" + (", peepholes on the cell state" if peepholes else "")
                 + (", f = 1 - i (input_forget)" if spec.flag else "")]
        return notes, step


@register("GRU")
class GRU(Recurrent):
    """Gates z, r, h (ONNX's order). The candidate reads r * h through Rh (default), or with
    linear_before_reset r * (Rh h + Rbh)."""

    gates = 3
    default_activations = ("Sigmoid", "Tanh")
    attributes = COMMON_ATTRIBUTES | {"linear_before_reset"}
    flag_attribute = "linear_before_reset"

    def gate_rows(self, spec: Recurrence) -> int:
        return 4 if spec.flag else 3

    def state_names(self, spec: Recurrence) -> tuple[str, ...]:
        return ("h",) if spec.flag else ("h", "rh")

    def cell(self, spec, acts, x, h, c, w, r, b, p):
        n = spec.hidden
        wz, wr, wh = (w[k * n:(k + 1) * n] for k in range(3))
        rz, rr, rh = (r[k * n:(k + 1) * n] for k in range(3))
        wbz, wbr, wbh, rbz, rbr, rbh = (b[k * n:(k + 1) * n] for k in range(6))
        z = acts[0].numpy(_clip(spec, x @ wz.T + h @ rz.T + wbz + rbz))
        reset = acts[0].numpy(_clip(spec, x @ wr.T + h @ rr.T + wbr + rbr))
        if spec.flag:
            candidate = x @ wh.T + reset * (h @ rh.T + rbh) + wbh
        else:
            candidate = x @ wh.T + (reset * h) @ rh.T + rbh + wbh
        candidate = acts[1].numpy(_clip(spec, candidate))
        return (1.0 - z) * candidate + z * h, c

    def stages(self, spec, ins, weights):
        n, count = spec.hidden, spec.directions
        w, r = ins[W].data, ins[R].data
        weights["wr_zr"] = _packed(np.concatenate([w[:, :2 * n], r[:, :2 * n]], axis=2))
        weights["w_h"], weights["r_h"] = _packed(w[:, 2 * n:]), _packed(r[:, 2 * n:])
        bias = _biases(ins[B], count, 6 * n)
        weights["b_zr"] = bias[:, :2 * n] + bias[:, 3 * n:5 * n]
        zr = Product(0, 2 * n, [("x", "wr_zr", spec.inputs + n)], "b_zr")
        if spec.flag:
            weights["wb_h"], weights["rb_h"] = bias[:, 2 * n:3 * n], bias[:, 5 * n:]
            products = [zr, Product(2 * n, n, [("x", "w_h", spec.inputs)], "wb_h"),
                        Product(3 * n, n, [("h", "r_h", n)], "rb_h")]
            note = ("linear_before_reset: the candidate's W x + Wbh and R h + Rbh formed "
                    "apart, r applied between them")
        else:
            weights["b_h"] = bias[:, 2 * n:3 * n] + bias[:, 5 * n:]
            products = [zr, Product(2 * n, n, [("x", "w_h", spec.inputs), ("rh", "r_h", n)],
                                    "b_h")]
            note = "the candidate's product reads r * h, formed after the z and r gates"

        def step(d: int, acts: tuple[Applied, ...]) -> list:
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

        return [f"gates z, r from W x + R h + Wb + Rb ({2 * n} rows); {note}"], step


def _gru_blend(acts: tuple[Applied, ...]) -> list[str]:
    return [f"const float candidate = {acts[1].c('vh')};",
            "h[j] = (1.0f - z) * candidate + z * h[j];"]


@register("RNN")
class RNN(Recurrent):
    """h = f(W x + R h + Wb + Rb)."""

    gates = 1
    default_activations = ("Tanh",)
    attributes = COMMON_ATTRIBUTES

    def cell(self, spec, acts, x, h, c, w, r, b, p):
        n = spec.hidden
        return acts[0].numpy(_clip(spec, x @ w.T + h @ r.T + b[:n] + b[n:])), c

    def stages(self, spec, ins, weights):
        n = spec.hidden
        weights["wr"] = _packed(np.concatenate([ins[W].data, ins[R].data], axis=2))
        bias = _biases(ins[B], spec.directions, 2 * n)
        weights["b"] = bias[:, :n] + bias[:, n:]
        product = Product(0, n, [("x", "wr", spec.inputs + n)], "b")

        def step(d: int, acts: tuple[Applied, ...]) -> list:
            return [product, [*_clipped(spec, "v", "g[j]"), f"h[j] = {acts[0].c('v')};"]]

        return [f"W x + R h + Wb + Rb in one product of {n} rows"], step

