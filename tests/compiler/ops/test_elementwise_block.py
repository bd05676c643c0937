"""A MobileNetV3-style inverted residual block built with onnx.helper, as PyTorch exports one:
1x1 expansion, HardSwish, depthwise 3x3, HardSwish, squeeze-excite (global average pool,
1x1, Relu, 1x1, HardSigmoid, a Mul broadcast over the channels), 1x1 projection, the
residual Add, then a SiLU (Sigmoid(x) * x). Float: the host C against onnx.reference.
int8, quantized by ONNX Runtime: every kernel is integer (HardSwish and HardSigmoid, which
ONNX Runtime's quantizer leaves between Q and DQ, become tables; the squeeze-excite Mul
broadcasts per channel), and each layer is within one step of ONNX Runtime running the QDQ
model as written."""

import numpy as np
from onnx import helper

from tests.compiler.ops.test_elementwise_s8 import assert_as_written
from tests.compiler.ops.test_elementwise_unary import model_of
from tests.compiler.ops.test_quantize import assert_integer_only, calibration, kernel_ops
from tests.support import (
    compile_for_cortex_m4,
    compile_onnx,
    compile_onnx_int8,
    host_model,
    run_reference,
)

CHANNELS, EXPANDED, SQUEEZED, SIZE = 8, 16, 4, 10


def block():
    rng = np.random.default_rng(14)

    def weights(*shape, scale=0.4):
        return rng.normal(0, scale, shape).astype(np.float32)

    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w_expand", "b_expand"], ["expanded"]),
        node("HardSwish", ["expanded"], ["expanded_act"]),
        node("Conv", ["expanded_act", "w_depthwise", "b_depthwise"], ["depthwise"],
             group=EXPANDED, pads=[1, 1, 1, 1]),
        node("HardSwish", ["depthwise"], ["depthwise_act"]),
        node("GlobalAveragePool", ["depthwise_act"], ["pooled"]),
        node("Conv", ["pooled", "w_reduce", "b_reduce"], ["reduced"]),
        node("Relu", ["reduced"], ["reduced_act"]),
        node("Conv", ["reduced_act", "w_restore", "b_restore"], ["restored"]),
        node("HardSigmoid", ["restored"], ["gate"], alpha=1 / 6, beta=0.5),
        node("Mul", ["depthwise_act", "gate"], ["excited"]),
        node("Conv", ["excited", "w_project", "b_project"], ["projected"]),
        node("Add", ["projected", "x"], ["residual"]),
        node("Sigmoid", ["residual"], ["sigmoid"]),
        node("Mul", ["residual", "sigmoid"], ["y0"]),
    ]
    constants = {
        "w_expand": weights(EXPANDED, CHANNELS, 1, 1), "b_expand": weights(EXPANDED, scale=0.2),
        "w_depthwise": weights(EXPANDED, 1, 3, 3), "b_depthwise": weights(EXPANDED, scale=0.2),
        "w_reduce": weights(SQUEEZED, EXPANDED, 1, 1), "b_reduce": weights(SQUEEZED, scale=0.2),
        "w_restore": weights(EXPANDED, SQUEEZED, 1, 1), "b_restore": weights(EXPANDED),
        "w_project": weights(CHANNELS, EXPANDED, 1, 1), "b_project": weights(CHANNELS, scale=0.2)}
    samples = [{"x": rng.normal(0, 1, (1, CHANNELS, SIZE, SIZE)).astype(np.float32)}
               for _ in range(12)]
    return model_of(nodes, samples[0], constants, opset=17), samples


def test_block_in_float(tmp_path):
    model, samples = block()
    compiled = compile_onnx(model)
    assert kernel_ops(compiled) == ["Conv", "HardSwish", "Conv", "HardSwish",
                                    "GlobalAveragePool", "Conv", "Conv", "HardSigmoid", "Mul",
                                    "Conv", "Add", "Sigmoid", "Mul"]
    host = host_model(compiled, tmp_path)
    for sample in samples[:3]:
        (got,) = host.run(sample["x"])
        (want,) = run_reference(model, [sample["x"]])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    compile_for_cortex_m4(compiled, tmp_path / "m4")


def test_block_in_int8(tmp_path):
    model, samples = block()
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == ["Conv", "HardSwish", "Conv", "HardSwish",
                                    "GlobalAveragePool", "Conv", "Conv", "HardSigmoid", "Mul",
                                    "Conv", "Add", "Sigmoid", "Mul"]
    assert_integer_only(compiled)
    source = compiled.files["m.c"]
    for kernel in compiled.info.kernels:
        if kernel["op"] in ("HardSwish", "HardSigmoid", "Sigmoid"):
            assert f"m_{kernel['fn']}_table[x0[i] + 128]" in source
    excite = next(n for n in compiled.graph.nodes if n.op == "Mul")
    shapes = [compiled.graph.tensor(n).shape for n in excite.inputs]
    assert shapes == [(1, EXPANDED, SIZE, SIZE), (1, EXPANDED, 1, 1)]
    assert_as_written(compiled, samples, tmp_path)
    compile_for_cortex_m4(compiled, tmp_path / "m4")
