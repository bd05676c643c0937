"""int8 unary operators as 256-entry tables (Relu, Clip, LeakyRelu, Sigmoid, Tanh): one table
in flash, one load per element. Every int8 input value is tried; host-compiled C equals the
integer reference exactly and ONNX Runtime on the QDQ model within one step."""

import numpy as np
import pytest

from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.quantize import dequantize
from tests.compiler.ops.test_quantize import (
    assert_integer_only,
    calibration,
    check_int8,
    kernel_ops,
    minmax_params,
    with_qdq,
)
from tests.support import compile_onnx_int8, run_reference, single_node_model

SHAPE = (1, 4, 8, 8)  # 256 elements: one sample holds every int8 value


def every_value(compiled, name: str) -> dict[str, np.ndarray]:
    """A float sample that the model's input QuantizeLinear turns into -128..127, each once."""
    quant = compiled.graph.tensor(compiled.graph.inputs[0]).quant
    q = np.arange(-128, 128, dtype=np.int8)
    np.random.default_rng(0).shuffle(q)
    return {name: dequantize(q, quant.scale, quant.zero_point).reshape(SHAPE)}


def random_samples(seed: int, low: float, high: float, count: int = 4):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(low, high, SHAPE).astype(np.float32)} for _ in range(count)]


def check_table_kernel(compiled) -> None:
    assert_integer_only(compiled)
    (kernel,) = [k for k in compiled.info.kernels]
    source = compiled.files["m.c"]
    assert f"m_{kernel['fn']}_table[x0[i] + 128]" in source
    assert "int8_t m_" + kernel["fn"] + "_table[256]" in compiled.files["m_weights.c"]


# op: (attributes, calibration range); ONNX Runtime's quantizer takes these ops directly.
BY_ONNXRUNTIME = {
    "Sigmoid": ({}, (-6.0, 6.0)),
    "LeakyRelu": ({"alpha": 0.1}, (-4.0, 3.0)),
}


@pytest.mark.parametrize("op", BY_ONNXRUNTIME)
def test_table_op_quantized_by_onnxruntime(op, tmp_path, record_property):
    attrs, (low, high) = BY_ONNXRUNTIME[op]
    samples = random_samples(31, low, high)
    model = single_node_model(op, {"x": samples[0]["x"]}, opset=17, **attrs)
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == [op]
    check_table_kernel(compiled)
    agreement = check_int8(compiled, [*samples, every_value(compiled, "x")],
                               tmp_path)
    record_property("agreement", agreement.summary)


# name: (op, attributes, constants, input range, output params same as the input's)
BY_HAND = {
    "tanh": ("Tanh", {}, None, (-3.0, 2.0), False),
    "sigmoid_narrow_input": ("Sigmoid", {}, None, (-0.5, 0.3), False),
    "relu_own_params": ("Relu", {}, None, (-2.0, 3.0), False),
    "relu_same_params": ("Relu", {}, None, (-2.0, 3.0), True),
    "clip_inputs": ("Clip", {}, {"lo": np.array(-1.0, np.float32),
                                 "hi": np.array(1.5, np.float32)}, (-3.0, 3.0), False),
    "clip_min_only": ("Clip", {}, {"lo": np.array(0.5, np.float32)}, (-3.0, 3.0), True),
    "leaky_relu_default_alpha": ("LeakyRelu", {}, None, (-8.0, 2.0), False),
}


@pytest.mark.parametrize("case", BY_HAND, ids=list(BY_HAND))
def test_table_op_hand_made_qdq(case, tmp_path, record_property):
    """Ops ONNX Runtime's quantizer leaves in float (Tanh, a Relu with nothing before it) or
    other parameters: a hand-made QDQ model. A Relu or Clip not after a requantizing
    kernel cannot fuse, so it is a table too."""
    op, attrs, constants, (low, high), same = BY_HAND[case]
    samples = random_samples(sum(map(ord, case)), low, high)
    model = single_node_model(op, {"x": samples[0]["x"]}, constants, opset=17, **attrs)
    x_params = minmax_params(calibration(samples)["x"])
    outputs = np.stack([run_reference(model, [s["x"]])[0] for s in samples])
    model = with_qdq(model, {"x": x_params, "y0": x_params if same else minmax_params(outputs)})
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == [op]
    check_table_kernel(compiled)
    agreement = check_int8(compiled, [*samples, every_value(compiled, "x")],
                               tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)


def test_table_is_quantize_of_function_rounding_half_to_even():
    """Built in float64 and rounded half to even: with scales that put f(x) exactly on
    halves, ties go to the even neighbour."""
    samples = random_samples(40, -1.0, 1.0)
    model = single_node_model("Relu", {"x": samples[0]["x"]}, opset=17)
    model = with_qdq(model, {"x": (0.5, 0), "y0": (1.0, 0)})
    compiled = compile_onnx_int8(model, io="int8")
    (node,) = compiled.graph.nodes
    values = REGISTRY["Relu"].table(node, compiled.graph)
    q = np.arange(-128, 128)
    expected = np.clip(np.rint(np.maximum(q * 0.5, 0)), -128, 127)  # 0.5 -> 0, 1.5 -> 2, ...
    np.testing.assert_array_equal(values, expected)
    assert values[128 + 1] == 0 and values[128 + 3] == 2 and values[128 + 5] == 2
