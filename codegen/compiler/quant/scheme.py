"""Check that a quantized ONNX model uses the one scheme ariel implements (see
codegen/compiler/quant/__init__.py), before anything is converted: int8 or uint8 activations with
one scale per tensor, int8 weights symmetric per channel or per tensor, int32 biases.
Anything else (int4, int16, float8, blocked quantization, asymmetric weights) stops the
build with the tensor or node named."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from codegen.errors import UnsupportedError

QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                 "QLinearAdd", "QLinearAveragePool", "QLinearGlobalAveragePool"}
ACTIVATION_TYPES = {TensorProto.INT8, TensorProto.UINT8}
SCHEME = ("int8 or uint8 activations with one scale per tensor; int8 weights, symmetric "
          "(zero point 0), per channel or per tensor; int32 biases")


def is_quantized_model(model: onnx.ModelProto) -> bool:
    return any(node.op_type in QUANTIZED_OPS for node in model.graph.node)


def check_scheme(model: onnx.ModelProto) -> None:
    graph = model.graph
    types = _element_types(model)
    constants = {init.name: init for init in graph.initializer}
    # The weights of multiply-accumulate operators must be symmetric; other quantized
    # constants (an Add's operand, say) may have any zero point.
    filters = {node.input[1] for node in graph.node
               if node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")
               and len(node.input) > 1}
    for node in graph.node:
        where = f"node '{node.name or node.op_type}' ({node.op_type})"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        for name in _scale_inputs(node):
            if name in constants and constants[name].data_type != TensorProto.FLOAT:
                kind = TensorProto.DataType.Name(constants[name].data_type)
                raise _error(where, f"scale '{name}' of type {kind} (float32 scales are)")
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            if attrs.get("block_size", 0):
                raise _error(where, f"blocked quantization (block_size {attrs['block_size']})")
            quantized = node.output[0] if node.op_type == "QuantizeLinear" else node.input[0]
            _check_type(where, quantized, types.get(quantized),
                        ACTIVATION_TYPES | ({TensorProto.INT32}
                                            if node.op_type == "DequantizeLinear" else set()))
            scale = constants.get(node.input[1])
            if scale is None:
                raise _error(where, "a scale computed at run time")
            if node.input[0] not in constants and numpy_helper.to_array(scale).size > 1:
                raise _error(where, f"per-channel quantization of activation '{node.input[0]}'")
        if (node.op_type == "DequantizeLinear" and node.output[0] in filters
                and node.input[0] in constants):
            _check_symmetric(where, node.input[0], node.input[2:3], constants)
        if node.op_type in ("QLinearConv", "QLinearMatMul") and node.input[3] in constants:
            _check_type(where, node.input[3], types.get(node.input[3]), {TensorProto.INT8})
            _check_symmetric(where, node.input[3], node.input[5:6], constants)


def _scale_inputs(node: onnx.NodeProto) -> list[str]:
    positions = {"QuantizeLinear": (1,), "DequantizeLinear": (1,), "QLinearConv": (1, 4, 6),
                 "QLinearMatMul": (1, 4, 6), "QLinearAdd": (1, 4, 6)}.get(node.op_type, ())
    return [node.input[p] for p in positions if p < len(node.input)]


def _element_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {init.name: init.data_type for init in inferred.graph.initializer}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if value.type.HasField("tensor_type"):
            types.setdefault(value.name, value.type.tensor_type.elem_type)
    return types


def _check_type(where: str, name: str, elem_type: int | None, allowed: set[int]) -> None:
    if elem_type is not None and elem_type not in allowed:
        kind = TensorProto.DataType.Name(elem_type)
        raise _error(where, f"quantized type {kind} of '{name}'")


def _check_symmetric(where: str, weight: str, zero_point: list[str], constants) -> None:
    if not zero_point or not zero_point[0]:
        return
    if zero_point[0] not in constants:
        raise _error(where, f"a zero point of '{weight}' computed at run time")
    values = numpy_helper.to_array(constants[zero_point[0]])
    if np.any(values != 0):
        raise _error(where, f"asymmetric weights '{weight}' (zero points "
                     f"{sorted(set(values.reshape(-1).tolist()))[:4]})")


def _error(where: str, what: str) -> UnsupportedError:
    return UnsupportedError(f"{where}: {what} is not supported; supported: {SCHEME}")
