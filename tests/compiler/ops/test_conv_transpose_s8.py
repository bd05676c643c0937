"""int8 ConvTranspose: float one-node models quantized by ONNX Runtime (QDQ, weights per
channel along axis 1), and hand-built QDQ models for what its quantizer cannot write (two
groups of several channels). The generated C (host build, plain and with the DSP path
emulated) equals ariel's integer reference bit for bit, and ONNX Runtime on the same QDQ
model within one step; the phases use Conv's int8 kernels."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.errors import UnsupportedError
from tests.compiler.ops.test_conv_s8 import check_int8, int8_ops, quantize_input
from tests.support import compile_onnx_int8, single_node_model

CALIBRATION_SAMPLES = 32
LOW, HIGH = -0.4, 1.2

CASES = {
    "k2_s2": dict(x=(1, 8, 4, 5), w=(8, 4, 2, 2), strides=[2, 2]),
    "k3_s2_p1_op1": dict(x=(1, 3, 4, 5), w=(3, 4, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1],
                         output_padding=[1, 1]),
    "stride3_dilation2_asymmetric": dict(x=(1, 2, 5, 4), w=(2, 3, 3, 2), strides=[3, 2],
                                         pads=[0, 1, 2, 0], dilations=[2, 1]),
    "wide_16_to_8": dict(x=(1, 16, 4, 4), w=(16, 8, 2, 2), strides=[2, 2]),
    # One scale for all channels (axis 1 has one entry); four channels: the depthwise kernel.
    "depthwise_8": dict(x=(1, 8, 3, 3), w=(8, 1, 3, 3), strides=[2, 2], group=8,
                        pads=[1, 1, 1, 1]),
    "depthwise_3": dict(x=(1, 3, 3, 4), w=(3, 1, 2, 2), strides=[2, 2], group=3),
    "conv1d": dict(x=(1, 3, 6), w=(3, 2, 4), strides=[3], pads=[1, 2]),
    "bias_only_phases": dict(x=(1, 2, 3, 3), w=(2, 3, 1, 1), strides=[3, 2]),
    "no_bias_batch2": dict(x=(2, 2, 3, 3), w=(2, 3, 3, 3), strides=[2, 2], bias=False),
}


def float_model(rng: np.random.Generator, spec: dict) -> tuple[onnx.ModelProto, tuple]:
    spec = dict(spec)
    x_shape, w_shape = spec.pop("x"), spec.pop("w")
    constants = {"w": rng.uniform(-1, 1, w_shape).astype(np.float32)}
    if spec.pop("bias", True):
        channels = w_shape[1] * spec.get("group", 1)
        constants["b"] = rng.uniform(-0.5, 0.5, channels).astype(np.float32)
    model = single_node_model("ConvTranspose", {"x": np.zeros(x_shape, np.float32)}, constants,
                              opset=13, **spec)
    return model, x_shape


def samples(compiled, rng: np.random.Generator, shape: tuple) -> list[list[np.ndarray]]:
    inputs = [[quantize_input(compiled, rng.uniform(LOW, HIGH, shape).astype(np.float32))]
              for _ in range(4)]
    return inputs + [[rng.choice(np.array([-128, 127], np.int8), shape)]]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_conv_transpose_s8(case, tmp_path):
    rng = np.random.default_rng(30)
    model, shape = float_model(rng, CASES[case])
    calibration = rng.uniform(LOW, HIGH, (CALIBRATION_SAMPLES, *shape)).astype(np.float32)
    compiled = compile_onnx_int8(model, {"x": calibration}, io="int8")
    assert int8_ops(compiled) == ["ConvTranspose"]
    node = next(n for n in compiled.graph.nodes if n.op == "ConvTranspose")
    w = compiled.graph.tensor(node.inputs[1])
    assert w.dtype == "int8" and (w.quant.axis == 1 or np.size(w.quant.scale) == 1)
    check_int8(compiled, samples(compiled, rng, shape), tmp_path, f"ConvTranspose {case}")


def test_relu_folds_into_the_output_range(tmp_path):
    """ConvTranspose + Relu quantized by ONNX Runtime: one int8 kernel, the Relu in the
    output's range (its zero point the real zero, -128)."""
    rng = np.random.default_rng(31)
    model, shape = float_model(rng, CASES["k3_s2_p1_op1"])
    model.graph.node[0].output[0] = "c"
    model.graph.node.append(helper.make_node("Relu", ["c"], ["y0"]))
    model = onnx.shape_inference.infer_shapes(model)
    calibration = rng.uniform(LOW, HIGH, (CALIBRATION_SAMPLES, *shape)).astype(np.float32)
    compiled = compile_onnx_int8(model, {"x": calibration}, io="int8")
    assert int8_ops(compiled) == ["ConvTranspose"]
    assert int(compiled.graph.tensor(compiled.graph.outputs[0]).quant.zero_point) == -128
    check_int8(compiled, samples(compiled, rng, shape), tmp_path, "ConvTranspose + Relu")


def qdq_grouped(rng: np.random.Generator, axis: int, float_bias: bool = False
                ) -> onnx.ModelProto:
    """Two groups of 3 output channels, per-channel weight scales along `axis`, as ONNX
    Runtime's quantizer cannot write them (it fails to broadcast the bias scales); the bias
    int32 behind a DequantizeLinear, or with `float_bias` a float constant."""
    x_shape, w_shape = (1, 4, 3, 3), (4, 3, 3, 3)
    w = rng.integers(-127, 128, w_shape).astype(np.int8)
    scales = rng.uniform(0.002, 0.01, w_shape[axis]).astype(np.float32)
    s_x, s_y = np.float32(0.01), np.float32(0.05)
    bias_scales = (s_x * np.tile(scales, 2)).astype(np.float32)
    inits = [numpy_helper.from_array(v, n) for n, v in {
        "s_x": s_x, "z_x": np.int8(5), "s_y": s_y, "z_y": np.int8(-3), "w_q": w,
        "s_w": scales, "z_w": np.zeros_like(scales, np.int8),
        "b_q": rng.integers(-2000, 2000, 6).astype(np.int32), "s_b": bias_scales,
        "z_b": np.zeros(6, np.int32)}.items()]
    if float_bias:
        inits.append(numpy_helper.from_array(rng.uniform(-0.5, 0.5, 6).astype(np.float32), "b"))
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_x", "z_x"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s_x", "z_x"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "s_w", "z_w"], ["w"], axis=axis),
             *([] if float_bias else
               [helper.make_node("DequantizeLinear", ["b_q", "s_b", "z_b"], ["b"], axis=0)]),
             helper.make_node("ConvTranspose", ["xd", "w", "b"], ["c"], strides=[2, 2],
                              group=2),
             helper.make_node("QuantizeLinear", ["c", "s_y", "z_y"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "s_y", "z_y"], ["y"])]
    graph = helper.make_graph(nodes, "grouped", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, x_shape)], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


@pytest.mark.parametrize("float_bias", [False, True])
def test_two_groups_with_per_channel_scales_along_axis_1(float_bias, tmp_path):
    """Each output channel's requantization takes the scale of its place in its group; a
    float bias is quantized with those scales."""
    rng = np.random.default_rng(32)
    model = qdq_grouped(rng, axis=1, float_bias=float_bias)
    compiled = compile_onnx_int8(model, None, io="int8")
    assert int8_ops(compiled) == ["ConvTranspose"]
    inputs = [[rng.integers(-128, 128, (1, 4, 3, 3), dtype=np.int8)] for _ in range(5)]
    check_int8(compiled, inputs, tmp_path, "ConvTranspose two groups", model=model)


def test_scales_along_axis_0_are_refused():
    """Axis 0 of a ConvTranspose's weights is the input channel: scales along it cannot be
    folded into a per-output-channel requantization."""
    rng = np.random.default_rng(33)
    model = qdq_grouped(rng, axis=0)
    with pytest.raises(UnsupportedError, match=r"quantized along axis 0 with 4 scales.*"
                       r"per output channel \(axis 1\)"):
        compile_onnx_int8(model, None, io="int8")
