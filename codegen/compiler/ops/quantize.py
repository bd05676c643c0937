"""ONNX QuantizeLinear and DequantizeLinear, one scale and zero point per tensor.

They are the float boundary of an int8 model, its only kernels that touch floats; in a float
build of a QDQ model they simulate quantization between float kernels.

    QuantizeLinear:   y = saturate(rint(x / scale) + zero_point)
    DequantizeLinear: y = (float(x) - float(zero_point)) * scale

Both are computed in float32 exactly as ONNX's reference does: the division is a float32
division and rint rounds half to even (C's rintf in the default rounding mode, numpy's rint),
so the C kernel, the numpy reference and ONNX agree bit for bit. Saturation happens in float
before the conversion to the integer type (converting an out-of-range float is undefined in
C); NaN saturates to the lowest value, as ONNX's reference happens to give.

The scale and zero point are compile-time constants, or in a float build values read at run
time. In an int8 build the quantized tensor's own parameters (Tensor.quant) are used: they
already include the uint8 -> int8 shift of the lowering (zero point - 128)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from codegen.compiler.c import c_float
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    attr,
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.strided import collapse, operand_strides, output_loops

# Integer types a quantized tensor can have (ONNX allows more; ariel holds these).
QUANTIZED_TYPES = ("int8", "uint8", "int16", "uint16")
DEQUANTIZED_TYPES = (*QUANTIZED_TYPES, "int32")
PER_TENSOR = "one scale and zero point per tensor"


def int8_quantized(tensor: Tensor | None) -> bool:
    """True for an int8 tensor with per-tensor quantization parameters (an integer kernel's
    input or output)."""
    return (tensor is not None and tensor.dtype == "int8" and tensor.quant is not None
            and np.asarray(tensor.quant.scale).size == 1)


def c_add(expr: str, value: int) -> str:
    """The C expression `expr` + `value` for an integer constant, written without "+ -" or
    "- -" (zero points and offsets are often negative)."""
    if value == 0:
        return expr
    return f"{expr} {'-' if value < 0 else '+'} {abs(value)}"


def describe_quant(tensor: Tensor) -> str:
    """A tensor's per-tensor parameters, for kernel comments."""
    return (f"scale {float(np.asarray(tensor.quant.scale).reshape(-1)[0]):.9g}, zero point "
            f"{int(np.asarray(tensor.quant.zero_point).reshape(-1)[0])}")


def quantize(x: np.ndarray, scale, zero_point, dtype: str) -> np.ndarray:
    """numpy twin of the QuantizeLinear kernel: float32 in, `dtype` out."""
    info = np.iinfo(dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = np.rint(x.astype(np.float32) / np.float32(scale)) + np.float32(zero_point)
    value = np.where(value >= info.min, value, np.float32(info.min))
    value = np.where(value <= info.max, value, np.float32(info.max))
    return value.astype(dtype)


def dequantize(q: np.ndarray, scale, zero_point) -> np.ndarray:
    """numpy twin of the DequantizeLinear kernel: integers in, float32 out."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


@dataclass(frozen=True)
class Affine:
    """A node's scale and zero point: the values when known at compile time (None when
    read at run time), and where the kernel finds each."""

    scale: float | None
    zero_point: int | None
    scale_input: str | None
    zero_point_input: str | None


def affine(node: Node, graph: Graph, quantized: Tensor) -> Affine:
    """The parameters of a Q/DQ node whose integer side is `quantized`."""
    scale_name = node.inputs[1]
    zero_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    if quantized.quant is not None:
        return Affine(float(np.asarray(quantized.quant.scale).reshape(-1)[0]),
                      int(np.asarray(quantized.quant.zero_point).reshape(-1)[0]), None, None)
    scale_t = graph.tensor(scale_name)
    zero_t = graph.tensor(zero_name) if zero_name else None
    scale = float(scale_t.data.reshape(-1)[0]) if scale_t.is_const else None
    if zero_t is None:
        zero_point = 0
    else:
        zero_point = int(zero_t.data.reshape(-1)[0]) if zero_t.is_const else None
    return Affine(scale, zero_point, None if scale_t.is_const else scale_name,
                  None if zero_t is None or zero_t.is_const else zero_name)


def _runtime_values(inputs: tuple, params: Affine) -> tuple:
    """(scale, zero point) for a reference call: the known values, else the arrays given."""
    scale = params.scale if params.scale is not None else inputs[1].reshape(-1)[0]
    zero_point = params.zero_point
    if zero_point is None:
        zero_point = inputs[2].reshape(-1)[0]
    return scale, zero_point


def scaled_reciprocal(scale: float | None, factor: int) -> np.float32 | None:
    """factor / scale as the 8-bit quantize kernel multiplies by it (ariel_quantize_8bit with
    4096, ariel_quantize_4_fixed16 with 65536): `factor` (a power of two) times 1 / scale
    rounded to float32, exactly, or None where that is not a normal float or the scale is
    only known at run time."""
    if scale is None:
        return None
    with np.errstate(over="ignore", divide="ignore"):
        value = (np.float32(1) / np.float32(scale)) * np.float32(factor)
    if not np.isfinite(value) or abs(value) < np.finfo(np.float32).tiny:
        return None
    return value


@dataclass(frozen=True)
class Runs:
    """The fast pass of an 8-bit QuantizeLinear walks the input in runs of contiguous floats,
    four at a time (one VLDM), each run written at a fixed step of the output: the loops
    around the runs (`outer`, with the input's and the output's strides along them), how
    many groups of four and how many single values (the tail) a run holds, and the output
    step between its values (1 in the same memory order, the channel count where the
    kernel also turns NCHW into NHWC). Where that count is 3 (an RGB input) and the output
    int8, the loop over the channels is taken out of `outer`: the pass reads the three
    planes, `plane` floats apart, together, four pixels (twelve bytes, three words) a step
    (ariel_quantize_4x3_fixed16); `planes` is 3 then, else 1."""

    outer: list[int]
    outer_in: list[int]
    outer_out: list[int]
    groups: int
    tail: int
    step: int
    planes: int = 1
    plane: int = 0


def contiguous_runs(bounds: list[int], in_strides: list[int], out_strides: list[int],
                    interleave: bool = False) -> Runs | None:
    """The runs of the loop nest (bounds and strides in the output's memory order) along its
    loop whose input stride is 1, or None where no run holds four values; with `interleave`
    (an int8 output), three channel planes written a pixel's bytes apart go together."""
    if 1 not in in_strides:
        return None
    inner = in_strides.index(1)
    if bounds[inner] < 4:
        return None
    others = [k for k in range(len(bounds)) if k != inner]
    step = out_strides[inner]
    channels = [k for k in others
                if interleave and bounds[k] == step == 3 and out_strides[k] == 1]
    planes, plane = (3, in_strides[channels[0]]) if channels else (1, 0)
    others = [k for k in others if k not in channels[:1]]
    return Runs([bounds[k] for k in others], [in_strides[k] for k in others],
                [out_strides[k] for k in others], bounds[inner] // 4, bounds[inner] % 4,
                step, planes, plane)


class QuantLinear(OpDef):
    """What QuantizeLinear and DequantizeLinear share: attributes, the per-tensor check,
    the elementwise layout, and the C expressions of the parameters."""

    attributes = frozenset({"axis", "block_size", "output_dtype"})
    limits = "block_size; per-axis scales of a run-time tensor"
    quantized_position: int  # 0: the input is the integer side; 1: the output

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        if attr(node, "block_size", 0):
            raise unsupported(node, f"blocked quantization (block_size "
                              f"{attr(node, 'block_size', 0)})", PER_TENSOR)
        scale = graph.tensor(node.inputs[1])
        require_dtype(node, scale, FLOAT_TYPES)
        params = [scale]
        if len(node.inputs) > 2 and node.inputs[2]:
            params.append(graph.tensor(node.inputs[2]))
        for tensor in params:
            if tensor.shape is not None and int(np.prod(tensor.shape)) != 1:
                raise unsupported(node, f"per-axis quantization ({list(tensor.shape)} values "
                                  f"in '{tensor.name}')", PER_TENSOR)

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, self.output_type(node, inputs))]

    def output_type(self, node: Node, inputs: list[Tensor | None]) -> str:
        raise NotImplementedError

    def layout(self, node: Node, graph: Graph):
        order = graph.tensor(node.inputs[0]).memory_order
        return [None] * len(node.inputs), [order]

    def parameters(self, node: Node, graph: Graph) -> tuple[Affine, dict]:
        """The node's Affine and the template values for it (C expressions and comment)."""
        quantized = graph.tensor((node.inputs[0], node.outputs[0])[self.quantized_position])
        params = affine(node, graph, quantized)
        scale = (c_float(params.scale) if params.scale is not None
                 else f"{param_of(node, graph, params.scale_input)}[0]")
        zero_point = (c_float(params.zero_point) if params.zero_point is not None
                      else f"(float){param_of(node, graph, params.zero_point_input)}[0]")
        described = (f"scale {params.scale:.9g}" if params.scale is not None
                     else "scale read at run time")
        described += (f", zero point {params.zero_point}" if params.zero_point is not None
                      else ", zero point read at run time")
        return params, {"scale": scale, "zero_point": zero_point, "params": described}


@register("QuantizeLinear")
class QuantizeLinear(QuantLinear):
    attributes = QuantLinear.attributes | {"saturate", "precision"}
    quantized_position = 1
    writes_any_order = True

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        require_dtype(node, graph.tensor(node.inputs[0]), FLOAT_TYPES)
        precision = attr(node, "precision", 0)
        if precision not in (0, onnx.TensorProto.FLOAT):
            raise unsupported(node, f"precision {onnx.TensorProto.DataType.Name(precision)}",
                              "FLOAT")
        out_type = self.output_type(node, graph.input_tensors(node))
        if out_type not in QUANTIZED_TYPES:
            raise unsupported(node, f"quantized type {out_type}", ", ".join(QUANTIZED_TYPES))

    def output_type(self, node: Node, inputs: list[Tensor | None]) -> str:
        """The zero point's type, else the output_dtype attribute, else uint8 (ONNX)."""
        if len(inputs) > 2 and inputs[2] is not None:
            return inputs[2].dtype
        code = attr(node, "output_dtype", 0)
        if code:
            return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(code)).name
        return "uint8"

    def reference(self, node: Node, x, scale, zero_point=None):
        dtype = zero_point.dtype.name if zero_point is not None else self.output_type(node, [])
        return [quantize(x, scale.reshape(-1)[0],
                         0 if zero_point is None else zero_point.reshape(-1)[0], dtype)]

    def reference_s8(self, node: Node, graph: Graph, *inputs):
        out = graph.tensor(node.outputs[0])
        params = affine(node, graph, out)
        return [quantize(inputs[0], *_runtime_values(inputs, params), out.dtype)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        params, context = self.parameters(node, graph)
        info = np.iinfo(y.dtype)
        bounds, (in_strides, out_strides) = collapse(
            output_loops(y), [operand_strides(x, y), operand_strides(y, y)])
        context.update(size=y.size, shape=list(y.shape), out_dtype=y.dtype, out_ctype=y.ctype,
                       low=int(info.min), high=int(info.max), bounds=bounds,
                       in_strides=in_strides, out_strides=out_strides,
                       in_order=list(x.memory_order), out_order=list(y.memory_order))
        reciprocal = scaled_reciprocal(params.scale, 4096) if info.bits == 8 else None
        context["reciprocal4096"] = None if reciprocal is None else c_float(reciprocal)
        fast = scaled_reciprocal(params.scale, 65536) if reciprocal is not None else None
        runs = None if fast is None else contiguous_runs(bounds, in_strides, out_strides,
                                                         interleave=y.dtype == "int8")
        context["reciprocal65536"] = None if runs is None else c_float(fast)
        context["runs"] = runs
        return Kernel("kernels/quantize_linear.c.j2", context)


@register("DequantizeLinear")
class DequantizeLinear(QuantLinear):
    quantized_position = 0

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        require_dtype(node, x, DEQUANTIZED_TYPES)
        if len(node.inputs) > 2 and node.inputs[2]:
            zero_point = graph.tensor(node.inputs[2])
            if zero_point.dtype != x.dtype:
                raise unsupported(node, f"a zero point of type {zero_point.dtype} for "
                                  f"{x.dtype} values", "a zero point of the input's type")
        code = attr(node, "output_dtype", 0)
        if code not in (0, onnx.TensorProto.FLOAT):
            raise unsupported(node, f"output_dtype {onnx.TensorProto.DataType.Name(code)}",
                              "FLOAT")

    def output_type(self, node: Node, inputs: list[Tensor | None]) -> str:
        return "float32"

    def reference(self, node: Node, x, scale, zero_point=None):
        return [dequantize(x, scale.reshape(-1)[0],
                           0 if zero_point is None else zero_point.reshape(-1)[0])]

    def reference_s8(self, node: Node, graph: Graph, *inputs):
        params = affine(node, graph, graph.tensor(node.inputs[0]))
        return [dequantize(inputs[0], *_runtime_values(inputs, params))]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x = graph.tensor(node.inputs[0])
        _, context = self.parameters(node, graph)
        context.update(size=x.size, shape=list(x.shape), in_dtype=x.dtype, in_ctype=x.ctype)
        # 8-bit values go four at a time (ariel_dequantize_4) where the FPU allows.
        eight_bit = np.dtype(x.dtype).itemsize == 1
        context.update(groups=x.size // 4 if eight_bit else 0, tail=x.size % 4)
        return Kernel("kernels/dequantize_linear.c.j2", context)
