"""Random ONNX graphs over the operators and attributes ariel supports, bounded in size: a few
nodes on small tensors, every choice drawn from one seeded generator, so a seed names a
graph. Three flavours: float graphs, graphs for int8 (only operators with an int8 kernel;
ONNX Runtime's quantize_static turns them into QDQ on random calibration data), and int32
graphs of integer arithmetic (with zero divisors and INT_MIN / -1 among their values)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MAX_ELEMENTS = 1024  # no tensor grows beyond this many values
MAX_NODES = 7

FLOAT, INT8, INT32 = "float", "int8", "int32"


@dataclass
class GraphCase:
    """A model, one sample per input, and (int8) a batch of calibration samples."""

    model: onnx.ModelProto
    inputs: dict[str, np.ndarray]
    calibration: dict[str, np.ndarray] | None = None
    ops: list[str] = field(default_factory=list)

    def describe(self) -> str:
        shapes = ", ".join(f"{n}{list(v.shape)}" for n, v in self.inputs.items())
        return f"opset {self.model.opset_import[0].version}, {shapes}: {' > '.join(self.ops)}"


class Builder:
    """Grows a graph one node at a time, keeping every tensor's shape (from ONNX's shape
    inference) so that each new node can be drawn to fit what is there."""

    def __init__(self, rng: np.random.Generator, flavour: str, opset: int):
        self.rng, self.flavour, self.opset = rng, flavour, opset
        self.elem = TensorProto.INT32 if flavour == INT32 else TensorProto.FLOAT
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.activations: list[str] = []  # tensors computed at run time, newest last
        self.ops: list[str] = []
        self._count = 0

    # -- names and constants ------------------------------------------------------------
    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}{self._count}"

    def const(self, value: np.ndarray, stem: str = "c") -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def ints(self, values) -> str:
        return self.const(np.array(values, dtype=np.int64), "i")

    def weights(self, shape, fan_in: int) -> np.ndarray:
        if self.flavour == INT32:
            return self.rng.integers(-20, 21, size=shape).astype(np.int32)
        scale = 1.0 / math.sqrt(max(fan_in, 1))
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def add_input(self, shape: tuple[int, ...]) -> str:
        name = self.name("x")
        self.inputs.append(helper.make_tensor_value_info(name, self.elem, list(shape)))
        self.shapes[name] = tuple(shape)
        self.activations.append(name)
        return name

    # -- nodes ----------------------------------------------------------------------------
    def node(self, op: str, inputs: list[str], **attrs) -> str | None:
        """Add `op`; returns its output, or None (node dropped) when ONNX's shape inference
        rejects it or the output would be too large."""
        out = self.name(op.lower()[:4] + "_")
        proto = helper.make_node(op, inputs, [out], name=self.name(f"n_{op}_"), **attrs)
        self.nodes.append(proto)
        try:
            shape = self._infer(out)
        except Exception:
            shape = None
        if shape is None or not shape or math.prod(shape) > MAX_ELEMENTS or 0 in shape:
            self.nodes.pop()
            return None
        self.shapes[out] = shape
        self.activations.append(out)
        self.ops.append(op)
        return out

    def _infer(self, name: str) -> tuple[int, ...] | None:
        model = self.model([name])
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        for value in inferred.graph.output:
            dims = value.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                return tuple(d.dim_value for d in dims)
        return None

    def model(self, outputs: list[str]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "fuzz", self.inputs,
            [helper.make_tensor_value_info(o, self.elem, None) for o in outputs],
            self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        return model

    def pick(self) -> str:
        """A run-time tensor, the newest ones more often."""
        count = len(self.activations)
        weights = np.arange(1, count + 1, dtype=float) ** 2
        return self.activations[int(self.rng.choice(count, p=weights / weights.sum()))]


# -- the operators -----------------------------------------------------------------------
# Each takes the builder and a tensor and returns the new tensor, or None if it does not
# apply to that tensor.

def unary(op: str, **fixed):
    def add(b: Builder, x: str) -> str | None:
        return b.node(op, [x], **fixed)
    return add


def leaky_relu(b: Builder, x: str) -> str | None:
    return b.node("LeakyRelu", [x], alpha=float(b.rng.choice([0.01, 0.1, 0.2, 0.5])))


def clip(b: Builder, x: str) -> str | None:
    low = float(b.rng.uniform(-1.0, 0.0))
    high = float(b.rng.uniform(0.1, 1.5))
    kind = b.rng.integers(3)  # both bounds, the low bound only, the high bound only
    inputs = [x, b.const(np.float32(low)) if kind != 2 else "",
              b.const(np.float32(high)) if kind != 1 else ""]
    while inputs[-1] == "":
        inputs.pop()
    return b.node("Clip", inputs)


def binary(op: str):
    def add(b: Builder, x: str) -> str | None:
        shape = b.shapes[x]
        same = [t for t in b.activations if t != x and b.shapes[t] == shape]
        # Float divisors stay constants away from zero; integer ones may be anything.
        divides_floats = op == "Div" and b.flavour != INT32
        share = 0.8 if op == "Div" else 0.4
        if same and b.rng.random() < share and not divides_floats:
            other = str(b.rng.choice(same))
        else:
            other = b.const(_operand(b, shape, op))
        inputs = [x, other] if b.rng.random() < 0.8 or divides_floats else [other, x]
        return b.node(op, inputs)
    return add


def _operand(b: Builder, shape: tuple[int, ...], op: str) -> np.ndarray:
    """A constant that broadcasts against `shape`: a scalar, a per-channel vector, the last
    axis, or the full shape."""
    forms = [(), shape, (shape[-1],)]
    if len(shape) >= 3:
        forms.append((shape[1],) + (1,) * (len(shape) - 2))
    target = forms[int(b.rng.integers(len(forms)))]
    if b.flavour == INT32:
        value = b.rng.integers(-8, 9, size=target).astype(np.int32)
        return value if b.rng.random() < 0.1 else np.where(value == 0, 1, value).astype(np.int32)
    value = b.rng.uniform(-1.5, 1.5, size=target).astype(np.float32)
    if op == "Div":  # keep divisors away from zero: the float answer is then well posed
        value = (np.sign(value) + (value == 0)) * b.rng.uniform(0.5, 2.0, size=target)
    return np.asarray(value, dtype=np.float32)


def conv(b: Builder, x: str) -> str | None:
    shape = b.shapes[x]
    if len(shape) not in (3, 4):
        return None
    channels, spatial = shape[1], shape[2:]
    group = int(b.rng.choice([1, 1, channels, *[g for g in (2, 3) if channels % g == 0]]))
    out_channels = group * int(b.rng.integers(1, 4 if group > 1 else 7))
    kernel = [int(b.rng.integers(1, min(s, 4) + 1)) for s in spatial]
    attrs: dict = {"kernel_shape": kernel}
    if b.rng.random() < 0.4:
        attrs["strides"] = [int(b.rng.integers(1, 3)) for _ in spatial]
    if b.rng.random() < 0.2:
        attrs["dilations"] = [int(b.rng.integers(1, 3)) for _ in spatial]
    _pads(b, attrs, kernel)
    if not _fits(spatial, attrs) or not _oracle_runs(spatial, attrs):
        return None
    w = b.const(b.weights((out_channels, channels // group, *kernel),
                          channels // group * math.prod(kernel)), "w")
    inputs = [x, w]
    if b.rng.random() < 0.7:
        inputs.append(b.const(b.weights((out_channels,), 4), "bias"))
    if group > 1 or b.rng.random() < 0.5:
        attrs["group"] = group
    return b.node("Conv", inputs, **attrs)


def _pads(b: Builder, attrs: dict, kernel: list[int]) -> None:
    roll = b.rng.random()
    if roll < 0.15:
        attrs["auto_pad"] = str(b.rng.choice(["SAME_UPPER", "SAME_LOWER", "VALID"]))
    elif roll < 0.7:
        attrs["pads"] = [int(b.rng.integers(0, k)) if k > 1 else 0 for k in kernel] * 2
        if b.rng.random() < 0.5:
            attrs["pads"] = [int(b.rng.integers(0, k)) if k > 1 else 0 for k in kernel + kernel]


def _fits(spatial, attrs: dict) -> bool:
    """Whether each dilated window fits the padded input (ONNX's shape inference lets some
    that do not pass, and onnxruntime then refuses to run them)."""
    kernel = attrs["kernel_shape"]
    dilations = attrs.get("dilations", [1] * len(kernel))
    pads = attrs.get("pads", [0] * 2 * len(kernel))
    return all((k - 1) * d + 1 <= size + pads[i] + pads[i + len(kernel)]
               for i, (size, k, d) in enumerate(zip(spatial, kernel, dilations, strict=True)))


def _oracle_runs(spatial, attrs: dict) -> bool:
    """Whether onnxruntime runs these attributes: it refuses dilations with SAME padding,
    and SAME padding whose total would be negative (a stride beyond the kernel: ONNX pads
    by max(0, ...), onnxruntime stops with "padding values must be non-negative")."""
    if not str(attrs.get("auto_pad", "")).startswith("SAME"):
        return True
    kernel = attrs["kernel_shape"]
    strides = attrs.get("strides", [1] * len(kernel))
    if any(d > 1 for d in attrs.get("dilations", [])):
        return False
    return all((-(-size // stride) - 1) * stride + k - size >= 0
               for size, k, stride in zip(spatial, kernel, strides, strict=True))


def _ceil_shape_agrees(spatial, attrs: dict) -> bool:
    """With ceil_mode, whether ONNX's shape inference and onnxruntime agree on the output
    size: onnxruntime (and ariel) drop a last window that would start in the right padding,
    ONNX's shape inference keeps it, and ariel then refuses the model's declared shape."""
    if not attrs.get("ceil_mode"):
        return True
    kernel = attrs["kernel_shape"]
    rank = len(kernel)
    strides = attrs.get("strides", [1] * rank)
    dilations = attrs.get("dilations", [1] * rank)
    pads = attrs.get("pads", [0] * 2 * rank)
    for i, size in enumerate(spatial):
        span = size + pads[i] + pads[i + rank] - ((kernel[i] - 1) * dilations[i] + 1)
        count = -(-span // strides[i]) + 1
        if (count - 1) * strides[i] >= size + pads[i]:
            return False
    return True


def pool(op: str):
    def add(b: Builder, x: str) -> str | None:
        shape = b.shapes[x]
        if len(shape) not in (3, 4):
            return None
        kernel = [int(b.rng.integers(1, min(s, 3) + 1)) for s in shape[2:]]
        attrs: dict = {"kernel_shape": kernel}
        if b.rng.random() < 0.6:
            attrs["strides"] = [int(b.rng.integers(1, 3)) for _ in kernel]
        _pads(b, attrs, kernel)
        if b.rng.random() < 0.2 and "auto_pad" not in attrs:
            attrs["ceil_mode"] = 1
        if op == "AveragePool" and b.rng.random() < 0.4:
            attrs["count_include_pad"] = 1
        if op == "MaxPool" and b.rng.random() < 0.15:
            attrs["dilations"] = [int(b.rng.integers(1, 3)) for _ in kernel]
        if not _fits(shape[2:], attrs) or not _oracle_runs(shape[2:], attrs):
            return None
        if not _ceil_shape_agrees(shape[2:], attrs):
            return None
        return b.node(op, [x], **attrs)
    return add


def global_pool(op: str):
    def add(b: Builder, x: str) -> str | None:
        return b.node(op, [x]) if len(b.shapes[x]) in (3, 4) else None
    return add


def batchnorm(b: Builder, x: str) -> str | None:
    shape = b.shapes[x]
    if len(shape) < 2:
        return None
    c = shape[1]
    params = [b.rng.uniform(0.5, 1.5, c), b.rng.uniform(-0.5, 0.5, c),
              b.rng.uniform(-0.5, 0.5, c), b.rng.uniform(0.2, 2.0, c)]
    return b.node("BatchNormalization", [x, *(b.const(p.astype(np.float32), "bn")
                                               for p in params)],
                  epsilon=float(b.rng.choice([1e-5, 1e-3])))


def gemm(b: Builder, x: str) -> str | None:
    shape = b.shapes[x]
    if len(shape) != 2:
        return None
    trans_a = int(b.flavour == FLOAT and b.rng.random() < 0.15)
    m, k = (shape[1], shape[0]) if trans_a else shape
    n = int(b.rng.integers(1, 17))
    trans_b = int(b.rng.random() < 0.5)
    w = b.const(b.weights((n, k) if trans_b else (k, n), k), "w")
    attrs = {"transB": trans_b}
    if trans_a:
        attrs["transA"] = 1
    if b.flavour == FLOAT and b.rng.random() < 0.3:
        attrs["alpha"] = float(b.rng.choice([0.5, 2.0]))
        attrs["beta"] = float(b.rng.choice([0.5, 1.0, 2.0]))
    inputs = [x, w]
    if b.rng.random() < 0.7:
        forms = [(n,), (1, n)] + ([(m, n), ()] if b.flavour == FLOAT else [])
        inputs.append(b.const(b.weights(forms[int(b.rng.integers(len(forms)))], 4), "bias"))
    return b.node("Gemm", inputs, **attrs)


def matmul(b: Builder, x: str) -> str | None:
    shape = b.shapes[x]
    if len(shape) < 2:
        return None
    n = int(b.rng.integers(1, 13))
    return b.node("MatMul", [x, b.const(b.weights((shape[-1], n), shape[-1]), "w")])


def flatten(b: Builder, x: str) -> str | None:
    return b.node("Flatten", [x], axis=int(b.rng.integers(0, len(b.shapes[x]) + 1)))


def reshape(b: Builder, x: str) -> str | None:
    size = math.prod(b.shapes[x])
    dims = []
    rest = size
    for _ in range(int(b.rng.integers(1, 4))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = int(b.rng.choice(divisors))
        dims.append(d)
        rest //= d
    dims.append(rest)
    if b.rng.random() < 0.3:
        dims[int(b.rng.integers(len(dims)))] = -1
    return b.node("Reshape", [x, b.ints(dims)])


def transpose(b: Builder, x: str) -> str | None:
    rank = len(b.shapes[x])
    if rank < 2:
        return None
    perm = b.rng.permutation(rank).tolist()
    return b.node("Transpose", [x], perm=perm) if b.rng.random() < 0.9 else b.node(
        "Transpose", [x])


def squeeze(b: Builder, x: str) -> str | None:
    ones = [i for i, d in enumerate(b.shapes[x]) if d == 1]
    if not ones or len(b.shapes[x]) < 2:
        return None
    axes = sorted(b.rng.choice(ones, size=int(b.rng.integers(1, len(ones) + 1)),
                               replace=False).tolist())
    axes = [a - len(b.shapes[x]) if b.rng.random() < 0.3 else a for a in axes]
    return _axes_node(b, "Squeeze", x, axes, 13)


def unsqueeze(b: Builder, x: str) -> str | None:
    rank = len(b.shapes[x])
    if rank >= 5:
        return None
    return _axes_node(b, "Unsqueeze", x, [int(b.rng.integers(0, rank + 1))], 13)


def _axes_node(b: Builder, op: str, x: str, axes: list[int], since: int, **attrs):
    """`op` with `axes` as an input from opset `since`, as an attribute before."""
    if b.opset >= since:
        return b.node(op, [x, b.ints(axes)], **attrs)
    return b.node(op, [x], axes=axes, **attrs)


def concat(b: Builder, x: str) -> str | None:
    shape = b.shapes[x]
    axis = int(b.rng.integers(0, len(shape)))
    partners = [t for t in b.activations
                if len(b.shapes[t]) == len(shape)
                and all(d == e for i, (d, e) in enumerate(zip(b.shapes[t], shape, strict=True))
                        if i != axis)]
    parts = [x, str(b.rng.choice(partners))]
    if b.flavour != INT8 and b.rng.random() < 0.3:
        extra = list(shape)
        extra[axis] = int(b.rng.integers(1, 3))
        parts.append(b.const(b.weights(tuple(extra), 1), "k"))
    b.rng.shuffle(parts)
    return b.node("Concat", parts, axis=axis - len(shape) if b.rng.random() < 0.3 else axis)


def softmax(b: Builder, x: str) -> str | None:
    rank = len(b.shapes[x])
    if b.rng.random() < 0.3:
        return b.node("Softmax", [x])
    return b.node("Softmax", [x], axis=int(b.rng.integers(-rank, rank)))


def reduce(op: str):
    def add(b: Builder, x: str) -> str | None:
        rank = len(b.shapes[x])
        count = int(b.rng.integers(1, rank + 1))
        axes = sorted(b.rng.choice(rank, size=count, replace=False).tolist())
        keepdims = int(b.rng.random() < 0.6)
        since = 13 if op == "ReduceSum" else 18
        if b.rng.random() < 0.1:
            return b.node(op, [x], keepdims=keepdims)  # all axes
        return _axes_node(b, op, x, axes, since, keepdims=keepdims)
    return add


FLOAT_OPS = {
    "Relu": unary("Relu"), "Sigmoid": unary("Sigmoid"), "Tanh": unary("Tanh"),
    "Identity": unary("Identity"), "Cast": unary("Cast", to=TensorProto.FLOAT),
    "LeakyRelu": leaky_relu, "Clip": clip,
    "Add": binary("Add"), "Sub": binary("Sub"), "Mul": binary("Mul"), "Div": binary("Div"),
    "Conv": conv, "MaxPool": pool("MaxPool"), "AveragePool": pool("AveragePool"),
    "GlobalAveragePool": global_pool("GlobalAveragePool"),
    "GlobalMaxPool": global_pool("GlobalMaxPool"), "BatchNormalization": batchnorm,
    "Gemm": gemm, "MatMul": matmul, "Flatten": flatten, "Reshape": reshape,
    "Transpose": transpose, "Squeeze": squeeze, "Unsqueeze": unsqueeze, "Concat": concat,
    "Softmax": softmax, "ReduceMean": reduce("ReduceMean"), "ReduceSum": reduce("ReduceSum"),
    "ReduceMax": reduce("ReduceMax"),
}
# Operators with an int8 kernel (ops/*.py with int8 = True).
INT8_OPS = {name: FLOAT_OPS[name] for name in (
    "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "Add", "Sub", "Mul", "Conv", "MaxPool",
    "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul", "Flatten",
    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Softmax", "ReduceMean",
    "ReduceSum", "ReduceMax", "Identity")}
INT32_OPS = {name: FLOAT_OPS[name] for name in (
    "Add", "Sub", "Mul", "Div", "Reshape", "Transpose", "Concat", "Flatten", "Identity",
    "Unsqueeze", "Squeeze")}
OPS = {FLOAT: FLOAT_OPS, INT8: INT8_OPS, INT32: INT32_OPS}
OPSETS = {FLOAT: (11, 13, 17, 18, 19), INT8: (13, 17, 18), INT32: (13, 17)}


def random_graph(seed: int, flavour: str = FLOAT) -> GraphCase:
    """The graph that `seed` names: 1 or 2 inputs, 1 to MAX_NODES nodes, 1 or 2 outputs."""
    rng = np.random.default_rng(seed)
    b = Builder(rng, flavour, int(rng.choice(OPSETS[flavour])))
    rank = int(rng.choice([2, 3, 4, 4]))
    shape = _input_shape(rng, rank)
    b.add_input(shape)
    if rng.random() < (0.6 if flavour == INT32 else 0.2):
        b.add_input(shape)
    table = OPS[flavour]
    names = sorted(table)
    target = int(rng.integers(1, MAX_NODES + 1))
    for _ in range(target * 4):
        if len(b.nodes) >= target:
            break
        table[names[int(rng.integers(len(names)))]](b, b.pick())
    if not b.nodes:  # nothing fitted: one node that always does
        b.node("Relu" if flavour != INT32 else "Identity", [b.activations[-1]])
    computed = [t for t in b.activations if t not in {i.name for i in b.inputs}]
    outputs = [computed[-1]]
    if len(computed) > 1 and rng.random() < 0.25:
        outputs.insert(0, str(rng.choice(computed[:-1])))
    model = b.model(outputs)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    inputs = {i.name: _sample(rng, b.shapes[i.name], flavour) for i in b.inputs}
    calibration = None
    if flavour == INT8:
        calibration = {i.name: np.stack([_sample(rng, b.shapes[i.name], flavour)
                                         for _ in range(8)]) for i in b.inputs}
    return GraphCase(model, inputs, calibration, b.ops)


def _input_shape(rng: np.random.Generator, rank: int) -> tuple[int, ...]:
    if rank == 2:
        return (int(rng.choice([1, 1, 2, 3])), int(rng.integers(1, 33)))
    if rank == 3:
        return (1, int(rng.integers(1, 7)), int(rng.integers(1, 17)))
    return (1, int(rng.integers(1, 6)), int(rng.integers(1, 11)), int(rng.integers(1, 11)))


def _sample(rng: np.random.Generator, shape: tuple[int, ...], flavour: str) -> np.ndarray:
    if flavour == INT32:
        # Small values with the edge cases integer division must survive: zeros (divisors)
        # and INT_MIN (with a divisor of -1).
        values = rng.integers(-50, 51, size=shape).astype(np.int32)
        edges = rng.random(shape)
        values[edges < 0.05] = 0
        values[edges > 0.97] = np.iinfo(np.int32).min
        return values
    return rng.uniform(-2.0, 2.0, size=shape).astype(np.float32)
