"""ONNX Resize (opsets 10 to 19) and Upsample (opsets 7 to 9): nearest, linear and cubic
interpolation along any axes, float32, and int8 where input and output share one scale.

Interpolation is separable. Along each resized axis, output position o reads a few input
positions, its taps (one for nearest, two for linear, four for cubic, more with antialias),
with weights that sum to 1; the output is the sum, over every choice of one tap per resized
axis, of the product of their weights times the input value there. Taps and weights depend
only on the shapes and attributes, so they are worked out here at compile time, following
ONNX's definition (coordinate transformation, nearest rounding, clamping at the edges,
exclude_outside, antialias), and the kernel only reads tables: no division, floor or clamp
at run time. It walks the output in memory order; the trailing axes that are not resized
(the channels of an NHWC tensor) form one contiguous block per table lookup.

int8: nearest moves values, so input and output share their scale and zero point (as ONNX
Runtime's quantizer makes them). Linear and cubic are integer only on the same condition:
with real weights w summing to 1, y = sum w (q - z) + z = sum w q, so neither the scale nor
the zero point enters. Each axis's weights become integers W summing exactly to 2**F; over r
resized axes the products sum to 2**(r F), and

    y = clamp(floor((sum W q + 2**(r F - 1)) / 2**(r F)), -128, 127)

in int32: one rounding, half up. F (at most 12) is the largest for which |sum W q| plus the
rounding term stays within int32 (checked at compile time). The weights' own rounding moves
the exact sum by a small fraction of a step (weight_error; about 0.1 for bilinear), so a
result can differ from the exactly rounded one only near a tie. ONNX Runtime, running the QDQ
model as written, computes the sum in float and rounds half to even: results agree within
one step, and differ only there. Ties are common (upsampling by 2 gives weights such as 1/4
and 3/4), so a few percent of outputs differ by one step.

Where ONNX Runtime departs from ONNX's reference implementation and its test data, ariel
follows the reference: align_corners (and half_pixel_symmetric) use the unrounded output
length scale * input where that is not whole; coordinates are computed in float64 from the
float32 scale, where ONNX Runtime's float32 arithmetic can round a source coordinate onto a
nearest-mode tie (scale 0.6, say) and pick the other input position."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from codegen.compiler.c import c_literal
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    NUMERIC_TYPES,
    Kernel,
    Names,
    OpDef,
    add_op,
    attr,
    normalize_axis,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.quantize import describe_quant, int8_quantized
from codegen.compiler.quant.fixedpoint import rounding_shift
from codegen.compiler.quant.output_stage import INT8_MAX, INT8_MIN, scale_of, zero_point_of

MODES = ("nearest", "linear", "cubic")
COORDINATES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
               "asymmetric", "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "legacy")
POLICIES = ("stretch", "not_larger", "not_smaller")
# The integer weights' fraction bits at most (see the module docstring).
MAX_FRACTION_BITS = 12
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class Settings:
    """What a Resize or Upsample node asks for, attributes and version differences
    resolved."""

    mode: str
    coordinates: str
    nearest_mode: str
    cubic_a: float
    exclude_outside: bool
    antialias: bool
    policy: str
    axes: tuple[int, ...] | None


@dataclass(frozen=True)
class AxisTaps:
    """One resized axis: output position o reads input positions index[o, t] (clamped into
    the input) with weights weight[o, t]."""

    index: np.ndarray  # int64 [out, taps]
    weight: np.ndarray  # float64 [out, taps]

    @property
    def size(self) -> int:
        return self.index.shape[0]

    @property
    def taps(self) -> int:
        return self.index.shape[1]


@dataclass(frozen=True)
class Plan:
    """A node's resizing: the output shape and, per logical axis, its taps (None where the
    axis is left as it is)."""

    shape: tuple[int, ...]
    axes: tuple[AxisTaps | None, ...]

    @property
    def resized(self) -> list[int]:
        return [a for a, taps in enumerate(self.axes) if taps is not None]


def settings(node: Node) -> Settings:
    """The node's attributes with ONNX's defaults. Upsample and Resize before opset 11 map
    output to input coordinates asymmetrically (x / scale) and, for nearest, take the input
    position below when enlarging and the one above when shrinking, as ONNX Runtime does
    (nearest_mode "legacy" here)."""
    legacy = node.op == "Upsample" or 0 < node.opset <= 10
    axes = attr(node, "axes", None)
    return Settings(
        mode=attr(node, "mode", "nearest"),
        coordinates="asymmetric" if legacy else attr(node, "coordinate_transformation_mode",
                                                     "half_pixel"),
        nearest_mode="legacy" if legacy else attr(node, "nearest_mode", "round_prefer_floor"),
        cubic_a=float(attr(node, "cubic_coeff_a", -0.75)),
        exclude_outside=bool(attr(node, "exclude_outside", 0)),
        antialias=bool(attr(node, "antialias", 0)),
        policy=attr(node, "keep_aspect_ratio_policy", "stretch"),
        axes=None if axes is None else tuple(axes))


def parameters(node: Node, inputs: list) -> tuple:
    """(roi, scales, sizes) of the node, each a value or None, from its inputs (X first;
    Tensors or arrays) or Upsample-7's `scales` attribute; empty tensors read as absent."""
    def value(index: int):
        item = inputs[index] if len(inputs) > index else None
        data = item.data if isinstance(item, Tensor) else item
        return None if data is None or np.size(data) == 0 else np.asarray(data)

    if node.op == "Upsample" and "scales" in node.attrs:
        return None, np.asarray(node.attrs["scales"], np.float32), None
    if node.op == "Upsample" or 0 < node.opset <= 10:
        return None, value(1), None
    return value(1), value(2), value(3)


def plan(node: Node, shape: tuple[int, ...], scales, sizes) -> Plan:
    """Output shape and taps for an input of `shape` (ONNX's rules, as its reference
    implementation applies them: sizes give the scale out / in; keep_aspect_ratio_policy
    picks one scale for the resized axes)."""
    config = settings(node)
    rank = len(shape)
    axes = [normalize_axis(a, rank) for a in (config.axes or range(rank))]
    factors = [1.0] * rank
    out = list(shape)
    if sizes is not None:
        for k, axis in enumerate(axes):
            out[axis] = int(sizes[k])
        factors = [out[a] / shape[a] for a in range(rank)]
        if config.policy != "stretch":
            pick = min if config.policy == "not_larger" else max
            scale = pick(factors[a] for a in axes)
            factors = [scale if a in axes else 1.0 for a in range(rank)]
            out = [int(scale * shape[a] + 0.5) if a in axes else shape[a] for a in range(rank)]
    else:
        for k, axis in enumerate(axes):
            factors[axis] = float(scales[k])
        out = [int(np.float64(factors[a]) * shape[a]) for a in range(rank)]
    taps = []
    for axis in range(rank):
        unchanged = math.isclose(factors[axis], 1.0) and out[axis] == shape[axis]
        taps.append(None if unchanged or out[axis] == 0 else
                    axis_taps(config, shape[axis], out[axis], factors[axis]))
    return Plan(tuple(out), tuple(taps))


def source_coordinates(config: Settings, length: int, size: int, scale: float) -> np.ndarray:
    """Where each of `size` output positions lies in an input of `length` positions (ONNX's
    coordinate_transformation_mode)."""
    y = np.arange(size, dtype=np.float64)
    width = scale * length  # ONNX's formulas use the unrounded output length
    mode = config.coordinates
    if mode == "align_corners":
        return np.zeros(size) if width == 1 else y * (length - 1) / (width - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "pytorch_half_pixel":
        return np.full(size, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    if mode == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale
    if mode == "half_pixel_symmetric":
        offset = length / 2 * (1 - size / width)
        return offset + (y + 0.5) / scale - 0.5
    return (y + 0.5) / scale - 0.5


def coefficients(config: Settings, ratio: np.ndarray, scale: float) -> np.ndarray:
    """The interpolation weights [out, n] for each output's fraction `ratio` in (0, 1] past
    the input position below it (1 when it lies exactly on one)."""
    r = ratio[:, None]
    if config.mode == "nearest":
        rounding = config.nearest_mode
        if rounding == "legacy":
            rounding = "floor" if scale >= 1 else "ceil"
        right = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5,
                 "floor": r == 1, "ceil": np.ones_like(r, bool)}[rounding]
        right = right | (r == 1)
        return np.concatenate([~right, right], axis=1).astype(np.float64)
    if config.antialias and scale < 1:
        return _antialias(config, r, scale)
    if config.mode == "linear":
        return np.concatenate([1 - r, r], axis=1)
    a = config.cubic_a
    return np.concatenate([_cubic(1 + r, a), _cubic(r, a), _cubic(1 - r, a), _cubic(2 - r, a)],
                          axis=1)


def _cubic(distance: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter a, at |distance| < 2."""
    d = np.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _antialias(config: Settings, r: np.ndarray, scale: float) -> np.ndarray:
    """Downsampling with antialias: the kernel stretched by 1 / scale, normalised."""
    if config.mode == "linear":
        start = math.floor(-1 / scale) + 1
        offsets = np.arange(start, 2 - start, dtype=np.float64)
        weights = np.clip(1 - np.abs((offsets[None, :] - r) * scale), 0, 1)
    else:
        start = math.floor(-2 / scale) + 1
        offsets = np.arange(start, 2 - start, dtype=np.float64)
        weights = _cubic((offsets[None, :] - r) * scale, config.cubic_a)
    return weights / weights.sum(axis=1, keepdims=True)


def axis_taps(config: Settings, length: int, size: int, scale: float) -> AxisTaps:
    """Taps and weights of every output position along one axis: the n input positions
    nearest its source coordinate (ties to the lower ones), clamped into the input as ONNX's
    edge padding does; exclude_outside drops those outside and renormalises."""
    x = source_coordinates(config, length, size, scale)
    below = np.floor(x)
    ratio = np.where(x == below, 1.0, x - below)
    weight = coefficients(config, ratio, scale)
    n = weight.shape[1]
    pad = -(-n // 2)
    shifted = x + pad
    first = np.floor(shifted)
    fraction = shifted - first
    if n % 2 == 0:
        offset = np.where(fraction == 0, -(n // 2), 1 - n // 2)
    else:
        offset = np.where(fraction <= 0.5, -((n - 1) // 2), 1 - (n - 1) // 2)
    index = (first + offset).astype(np.int64)[:, None] + np.arange(n)[None, :] - pad
    if config.exclude_outside:
        weight = np.where((index < 0) | (index >= length), 0.0, weight)
        total = weight.sum(axis=1, keepdims=True)
        weight = weight / np.where(total == 0, 1.0, total)
    index = np.clip(index, 0, length - 1)
    if config.mode == "nearest":
        chosen = weight.argmax(axis=1)
        rows = np.arange(size)
        return AxisTaps(index[rows, chosen][:, None], np.ones((size, 1)))
    return AxisTaps(index, weight)


def integer_weights(taps: AxisTaps, bits: int) -> np.ndarray:
    """The weights as integers summing exactly to 2**bits per output position: each rounded,
    then what the rounding lost or gained given to (taken from) the largest."""
    total = 1 << bits
    scaled = np.rint(taps.weight * total).astype(np.int64)
    rows = np.arange(taps.size)
    largest = np.abs(taps.weight).argmax(axis=1)
    scaled[rows, largest] += total - scaled.sum(axis=1)
    return scaled


def fraction_bits(plan: Plan) -> int:
    """F of the module docstring: the largest bits <= MAX_FRACTION_BITS such that
    128 * prod over axes of max_o sum_t |W| plus the rounding term fits in int32."""
    for bits in range(MAX_FRACTION_BITS, 0, -1):
        spread = 1
        for taps in plan.axes:
            if taps is not None:
                spread *= int(np.abs(integer_weights(taps, bits)).sum(axis=1).max())
        shift = bits * len(plan.resized)
        if (-INT8_MIN) * spread + (1 << (shift - 1)) <= INT32_MAX:
            return bits
    raise AssertionError("no fraction bits fit")  # 1 bit always fits a handful of axes


def weight_error(plan: Plan, bits: int) -> float:
    """The most the integer weights can move an int8 result from the exact sum, in steps:
    max over outputs of sum over tap combinations |W / 2**(r F) - w| times 127.5 (the
    weights' errors sum to 0, so they act on q minus the middle of the int8 range)."""
    exact = approximate = np.ones(1)  # per output position (leading axes), per combination
    for taps in plan.axes:
        if taps is None:
            continue
        integer = integer_weights(taps, bits) / float(1 << bits)
        exact = _combine(exact, taps.weight)
        approximate = _combine(approximate, integer)
    error = np.abs(approximate - exact)
    return float(error.sum(axis=-1).max()) * 127.5


def _combine(products: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Products of weights over tap combinations [..., combos], extended by one more axis's
    weights [out, taps]: [..., out, combos * taps]."""
    joined = products[..., None, :, None] * weight[:, None, :]
    return joined.reshape(*joined.shape[:-2], -1)


def interpolate(x: np.ndarray, plan: Plan, weights: list[np.ndarray | None]) -> np.ndarray:
    """Sum over taps of weight times input, one axis at a time (exact on int64 inputs with
    integer weights; float64 otherwise)."""
    result = x
    for axis, taps in enumerate(plan.axes):
        if taps is None:
            continue
        gathered = np.take(result, taps.index, axis=axis)  # [..., out, taps, ...]
        shape = [1] * gathered.ndim
        shape[axis], shape[axis + 1] = taps.size, taps.taps
        result = (gathered * weights[axis].reshape(shape)).sum(axis=axis + 1)
    return result


class ResizeOp(OpDef):
    limits = "coordinate mode tf_crop_and_resize"
    """Resize or Upsample."""

    int8 = True
    # Input and output share one scale and zero point (module docstring).
    int8_same_scale = True

    def __init__(self, attributes: frozenset[str]):
        self.attributes = attributes

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        config = settings(node)
        x, *rest = graph.input_tensors(node)
        y = graph.tensor(node.outputs[0])
        for tensor in rest:
            if tensor is not None and not tensor.is_const:
                raise unsupported(node, f"input '{tensor.name}' computed at run time",
                                  "constant (initializer or folded) roi, scales and sizes")
        _check_choice(node, "mode", config.mode, MODES if node.op == "Resize" else MODES[:2])
        _check_choice(node, "coordinate_transformation_mode", config.coordinates, COORDINATES)
        _check_choice(node, "nearest_mode", config.nearest_mode, NEAREST_MODES[:-1]
                      if node.op == "Resize" and node.opset > 10 else NEAREST_MODES)
        _check_choice(node, "keep_aspect_ratio_policy", config.policy, POLICIES)
        if config.antialias and config.mode == "nearest":
            raise unsupported(node, "antialias with mode nearest", "antialias with linear or "
                              "cubic")
        roi, scales, sizes = parameters(node, graph.input_tensors(node))
        if (scales is None) == (sizes is None):
            raise unsupported(node, "giving both scales and sizes, or neither",
                              "exactly one of scales and sizes")
        count = len(config.axes) if config.axes is not None else x.rank
        given = scales if sizes is None else sizes
        if given.size != count:
            raise unsupported(node, f"{given.size} scales or sizes for {count} axes",
                              "one per resized axis")
        if config.axes is not None and any(not -x.rank <= a < x.rank for a in config.axes):
            raise unsupported(node, f"axes {list(config.axes)} of a rank-{x.rank} input",
                              f"axes from {-x.rank} to {x.rank - 1}")
        if scales is not None and not np.all(scales > 0):
            raise unsupported(node, f"scales {scales.tolist()}", "scales above 0")
        if node.op == "Upsample" and not np.all(scales >= 1):
            raise unsupported(node, f"scales {scales.tolist()} (Upsample only enlarges)",
                              "scales of 1 or more; Resize for smaller outputs")
        shape = plan(node, x.shape, scales, sizes).shape
        if min(shape) < 1:
            raise unsupported(node, f"an output of shape {list(shape)} (a dimension of size 0)",
                              "outputs with every dimension at least 1")
        if config.mode == "nearest":
            require_dtype(node, x, NUMERIC_TYPES)
        elif int8_quantized(x) and int8_quantized(y):
            if scale_of(x) != scale_of(y) or zero_point_of(x) != zero_point_of(y):
                raise unsupported(node, f"int8 {config.mode} resizing between different "
                                  f"scales ({describe_quant(x)}; {describe_quant(y)})",
                                  "one scale and zero point for input and output")
        else:
            require_dtype(node, x, FLOAT_TYPES)

    def plan_of(self, node: Node, x_shape: tuple[int, ...], inputs: list) -> Plan:
        _, scales, sizes = parameters(node, [None, *inputs])
        return plan(node, x_shape, scales, sizes)

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x = inputs[0]
        return [(self.plan_of(node, x.shape, inputs[1:]).shape, x.dtype)]

    def reference(self, node: Node, x, *rest):
        resizing = self.plan_of(node, x.shape, list(rest))
        if settings(node).mode == "nearest":
            y = x
            for axis, taps in enumerate(resizing.axes):
                if taps is not None:
                    y = np.take(y, taps.index[:, 0], axis=axis)
            return [y]
        weights = [None if t is None else t.weight for t in resizing.axes]
        return [interpolate(x.astype(np.float64), resizing, weights).astype(x.dtype)]

    def reference_s8(self, node: Node, graph: Graph, x, *rest):
        """Integer only: the integer weights' sums in int64, one rounding (module
        docstring)."""
        if settings(node).mode == "nearest":
            return self.reference(node, x, *rest)
        resizing = self.plan_of(node, x.shape, list(rest))
        bits = fraction_bits(resizing)
        weights = [None if t is None else integer_weights(t, bits) for t in resizing.axes]
        acc = interpolate(x.astype(np.int64), resizing, weights)
        y = rounding_shift(acc, bits * len(resizing.resized))
        return [np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8)]

    def layout(self, node: Node, graph: Graph):
        """Any memory order: the output takes the input's, so no copy is ever needed."""
        order = graph.tensor(node.inputs[0]).memory_order
        return [None] * len(node.inputs), [order]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, *rest = graph.input_tensors(node)
        y = graph.tensor(node.outputs[0])
        resizing = self.plan_of(node, x.shape, rest)
        config = settings(node)
        integer = config.mode != "nearest" and int8_quantized(y)
        bits = fraction_bits(resizing) if integer else 0
        order = y.memory_order
        # The trailing memory dimensions that are not resized: one contiguous block.
        block_dims = 0
        while block_dims < len(order) and resizing.axes[order[-1 - block_dims]] is None:
            block_dims += 1
        outer = order[:len(order) - block_dims]
        block = math.prod(y.shape[a] for a in order[len(order) - block_dims:])
        weights: dict[str, np.ndarray] = {}
        loops, identity_terms, tap_terms = [], [], []
        for axis in outer:
            if y.shape[axis] == 1 and resizing.axes[axis] is None:
                continue
            var = f"i{len(loops)}"
            loop = {"var": var, "bound": y.shape[axis], "declarations": []}
            loops.append(loop)
            taps = resizing.axes[axis]
            if taps is None:
                identity_terms.append(_scaled(var, x.strides[axis]))
                continue
            count = taps.taps
            weights[f"src{axis}"] = (taps.index * x.strides[axis]).astype(np.uint32)
            at = var if count == 1 else f"{var} * {count}u"
            loop["declarations"].append(
                f"const uint32_t *at{axis} = &{names.weight(f'src{axis}')}[{at}];")
            per_tap = [(f"at{axis}[{t}]", None) for t in range(count)]
            if config.mode != "nearest":
                table = (integer_weights(taps, bits).astype(np.int16) if integer
                         else taps.weight.astype(np.float32))
                weights[f"w{axis}"] = table
                ctype = "int16_t" if integer else "float"
                loop["declarations"].append(
                    f"const {ctype} *wt{axis} = &{names.weight(f'w{axis}')}[{at}];")
                per_tap = [(source, f"wt{axis}[{t}]") for t, (source, _) in enumerate(per_tap)]
            tap_terms.append(per_tap)
        combos = []
        for choice in itertools.product(*tap_terms):
            source = " + ".join([*identity_terms, *(s for s, _ in choice)]) or "0"
            factors = [w for _, w in choice if w is not None]
            combos.append({"source": source, "weight": _product(factors, integer)})
        for depth, loop in enumerate(loops):
            loop["indent"] = "    " * (depth + 1)
        index = "c" if block > 1 else "0"
        context = {
            "ctype": y.ctype, "mode": config.mode, "block": block, "loops": loops,
            "taps": combos, "indent": "    " * (len(loops) + 1), "integer": integer,
            "in_shape": list(x.shape), "out_shape": list(y.shape), "order": list(order),
            "summary": _summary(node, config, resizing),
            "block_bytes": block * y.itemsize,
            "sum": " + ".join(f"w{k} * p{k}[{index}]" for k in range(len(combos))),
            "index": index,
        }
        if integer:
            shift = bits * len(resizing.resized)
            cubic_overshoot = any(np.any(t.weight < 0) for t in resizing.axes if t is not None)
            context.update(
                shift=shift, rounding=1 << (shift - 1), fraction_bits=bits,
                clamp=cubic_overshoot, params=describe_quant(x),
                error=f"{weight_error(resizing, bits):.3f}")
        return Kernel("kernels/resize.c.j2", context, weights)

    def macs(self, node: Node, graph: Graph) -> int:
        """Multiply-adds: every tap combination of every output (none for nearest)."""
        if settings(node).mode == "nearest":
            return 0
        x, *rest = graph.input_tensors(node)
        resizing = self.plan_of(node, x.shape, rest)
        taps = math.prod(t.taps for t in resizing.axes if t is not None)
        return graph.tensor(node.outputs[0]).size * taps


def _check_choice(node: Node, name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise unsupported(node, f"{name} {value}", ", ".join(allowed))


def _scaled(var: str, stride: int) -> str:
    return var if stride == 1 else f"{var} * {c_literal(stride, 'uint32_t')}"


def _product(factors: list[str], integer: bool) -> str | None:
    if not factors:
        return None
    if integer and len(factors) > 1:
        return " * ".join([f"(int32_t){factors[0]}", *factors[1:]])
    return " * ".join(factors)


def _summary(node: Node, config: Settings, resizing: Plan) -> str:
    what = config.mode
    if config.mode == "nearest":
        what += f" ({config.nearest_mode})"
    if config.mode == "cubic":
        what += f" (a = {config.cubic_a:g}{', exclude_outside' if config.exclude_outside else ''})"
    if config.antialias:
        what += ", antialias"
    axes = ", ".join(f"axis {a}: {t.taps} tap{'s' if t.taps > 1 else ''}"
                     for a, t in enumerate(resizing.axes) if t is not None) or "no axis"
    return f"{what}, {config.coordinates} coordinates; {axes}"


RESIZE_ATTRIBUTES = frozenset({"antialias", "axes", "coordinate_transformation_mode",
                               "cubic_coeff_a", "exclude_outside", "extrapolation_value",
                               "keep_aspect_ratio_policy", "mode", "nearest_mode"})
add_op("Resize", ResizeOp(RESIZE_ATTRIBUTES))
add_op("Upsample", ResizeOp(frozenset({"mode", "scales"})))
