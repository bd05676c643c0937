"""int8 Resize: QDQ models (a Resize between QuantizeLinear and DequantizeLinear of one scale,
as ONNX Runtime's quantizer writes it). The host-compiled C equals ariel's integer reference
bit for bit; against ONNX Runtime running the QDQ model as written the outputs are at most
one step apart, and only where the exact interpolated value lies within the kernel's
weight-rounding bound of a tie (ONNX Runtime rounds its float sum half to even, ariel its
integer sum half up). A float model quantized by ONNX Runtime keeps Resize in int8 between
two int8 convolutions."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.resize import fraction_bits, weight_error
from codegen.compiler.reference import run_graph
from tests.compiler.ops.test_conv_s8 import int8_ops, onnxruntime_int8
from tests.compiler.ops.test_gemm import chain
from tests.compiler.ops.test_resize import EMPTY, scales, sizes
from tests.support import compile_onnx_int8, host_model

SCALE, ZERO_POINT = 0.0123, -7
# ONNX Runtime's float32 sum may sit this far (in steps) from the exact one.
FLOAT_NOISE = 1e-3


def qdq_resize(shape: tuple[int, ...], constants: dict[str, np.ndarray], opset: int = 13,
               **attrs) -> onnx.ModelProto:
    """x -> QuantizeLinear -> DequantizeLinear -> Resize -> QuantizeLinear ->
    DequantizeLinear -> y, one scale and zero point throughout."""
    params = [numpy_helper.from_array(np.array(SCALE, np.float32), "s"),
              numpy_helper.from_array(np.array(ZERO_POINT, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("Resize", ["xd", *constants], ["r"], name="resize", **attrs),
             helper.make_node("QuantizeLinear", ["r", "s", "z"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    graph = helper.make_graph(
        nodes, "qdq_resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        params + [numpy_helper.from_array(v, n) for n, v in constants.items() if n])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def check_against_onnxruntime(compiled, model: onnx.ModelProto, inputs: list[np.ndarray],
                              tmp_path, label: str) -> None:
    """C == integer reference exactly; ONNX Runtime within one step, and differing only
    near ties (see the module docstring)."""
    graph = compiled.graph
    node = next(n for n in graph.nodes if n.op == "Resize")
    resize = REGISTRY["Resize"]
    constants = [graph.tensor(n).data if n else None for n in node.inputs[1:]]
    plan = resize.plan_of(node, graph.tensor(node.inputs[0]).shape, constants)
    linear = node.attrs.get("mode", "nearest") != "nearest"
    bound = weight_error(plan, fraction_bits(plan)) if linear else 0.0
    host = host_model(compiled, tmp_path)
    differences, ties = 0, 0
    for x in inputs:
        got = host.run(x)[0]
        np.testing.assert_array_equal(got, run_graph(graph, [x])[0])
        theirs = onnxruntime_int8(model, {graph.inputs[0]: x}, graph.outputs[0])
        exact = resize.reference(node, x.astype(np.float64), *constants)[0]
        distance = np.abs(exact - np.floor(exact) - 0.5)
        near_tie = distance <= bound + FLOAT_NOISE
        differ = got.astype(np.int32) != theirs.astype(np.int32)
        assert np.abs(got.astype(np.int32) - theirs).max() <= 1, label
        assert not np.any(differ & ~near_tie), (label, exact[differ & ~near_tie][:5])
        differences += int(differ.sum())
        ties += int(near_tie.sum())
    total = sum(x.size for x in inputs) * got.size // inputs[0].size
    print(f"\n{label}: {differences} of {total} outputs differ from ONNX Runtime by one step, "
          f"all within {bound:.3f} of a tie ({ties} outputs are)")


CASES = {
    "nearest_asymmetric_floor": ((1, 3, 4, 5), {"roi": EMPTY, "scales": scales(1, 1, 2, 2)},
                                 dict(mode="nearest", nearest_mode="floor",
                                      coordinate_transformation_mode="asymmetric")),
    "nearest_downsample_round_prefer_ceil": ((1, 2, 7, 6), {"roi": EMPTY,
                                                            "scales": scales(1, 1, 0.5, 0.75)},
                                             dict(mode="nearest",
                                                  nearest_mode="round_prefer_ceil")),
    "linear_half_pixel_x2": ((1, 3, 5, 6), {"roi": EMPTY, "scales": scales(1, 1, 2, 2)},
                             dict(mode="linear")),
    "linear_align_corners_sizes": ((1, 2, 4, 5), {"roi": EMPTY, "scales": EMPTY,
                                                  "sizes": sizes(1, 2, 9, 7)},
                                   dict(mode="linear",
                                        coordinate_transformation_mode="align_corners")),
    "linear_pytorch_half_pixel_1d": ((1, 4, 7), {"roi": EMPTY, "scales": scales(1, 1, 2.5)},
                                     dict(mode="linear",
                                          coordinate_transformation_mode="pytorch_half_pixel")),
    "linear_asymmetric_downsample": ((1, 2, 8, 9), {"roi": EMPTY,
                                                    "scales": scales(1, 1, 0.5, 0.7)},
                                     dict(mode="linear",
                                          coordinate_transformation_mode="asymmetric")),
    # Negative weights overshoot: the kernel clamps to int8.
    "cubic_half_pixel": ((1, 2, 4, 4), {"roi": EMPTY, "scales": scales(1, 1, 2, 1.5)},
                         dict(mode="cubic")),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_resize_s8(case, tmp_path):
    shape, constants, attrs = CASES[case]
    model = qdq_resize(shape, constants, **attrs)
    compiled = compile_onnx_int8(model, None, io="int8")
    assert int8_ops(compiled) == ["Resize"]
    assert compiled.graph.tensor(compiled.graph.outputs[0]).dtype == "int8"
    rng = np.random.default_rng(20)
    inputs = [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(4)]
    inputs += [rng.choice(np.array([-128, 127], np.int8), shape),
               np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]
    check_against_onnxruntime(compiled, model, inputs, tmp_path, f"Resize {case}")


def test_nearest_s8_is_a_move(tmp_path):
    """Every int8 output of nearest resizing is one of the input's bytes, unchanged."""
    shape = (1, 2, 3, 4)
    model = qdq_resize(shape, {"roi": EMPTY, "scales": scales(1, 1, 1.7, 2.2)}, mode="nearest")
    compiled = compile_onnx_int8(model, None, io="int8")
    x = np.arange(-12, 12, dtype=np.int8).reshape(shape)
    y = host_model(compiled, tmp_path).run(x)[0]
    assert set(y.reshape(-1).tolist()) <= set(x.reshape(-1).tolist())
    assert "memcpy" not in compiled.files["m.c"] or "consecutive" in compiled.files["m.c"]


def test_onnxruntime_quantizer_keeps_resize_int8_between_convolutions(tmp_path):
    """Conv -> Resize (bilinear) -> Conv quantized by ONNX Runtime: three int8 kernels, the
    Resize on one shared scale, NHWC throughout; the Resize fed ONNX Runtime's own int8
    input agrees with it near ties only, and the model's C equals its reference."""
    rng = np.random.default_rng(21)
    shape = (1, 3, 6, 6)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["a", "", "s"], ["r"], mode="linear"),
             helper.make_node("Conv", ["r", "w2", "b2"], ["y"], pads=[1, 1, 1, 1])]
    constants = {"w1": rng.uniform(-1, 1, (8, 3, 3, 3)).astype(np.float32),
                 "b1": rng.uniform(-0.5, 0.5, 8).astype(np.float32),
                 "s": scales(1, 1, 2, 2),
                 "w2": rng.uniform(-1, 1, (4, 8, 3, 3)).astype(np.float32),
                 "b2": rng.uniform(-0.5, 0.5, 4).astype(np.float32)}
    model = chain(nodes, {"x": np.zeros(shape, np.float32)}, constants, ["y"], opset=13)
    calibration = rng.uniform(-1, 1, (32, *shape)).astype(np.float32)
    compiled = compile_onnx_int8(model, {"x": calibration}, io="int8")
    graph = compiled.graph
    assert int8_ops(compiled) == ["Conv", "Resize", "Conv"]
    resize = next(n for n in graph.nodes if n.op == "Resize")
    x_tensor, y_tensor = graph.tensor(resize.inputs[0]), graph.tensor(resize.outputs[0])
    assert x_tensor.quant.scale == y_tensor.quant.scale
    assert y_tensor.memory_order == (0, 2, 3, 1)
    host = host_model(compiled, tmp_path)
    quant = graph.tensor(graph.inputs[0]).quant
    for sample in calibration[:3]:
        x = np.clip(np.rint(sample / quant.scale) + quant.zero_point, -128, 127)
        x = x.astype(np.int8)
        np.testing.assert_array_equal(host.run(x)[0], run_graph(graph, [x])[0])
        # The Resize alone, on ONNX Runtime's own int8 input.
        feed = onnxruntime_int8(compiled.quantized_model, {graph.inputs[0]: x},
                                resize.inputs[0])
        theirs = onnxruntime_int8(compiled.quantized_model,
                                  {graph.inputs[0]: x, resize.inputs[0]: feed}, resize.outputs[0])
        ours = REGISTRY["Resize"].reference_s8(resize, graph, feed, None,
                                               graph.tensor(resize.inputs[2]).data)[0]
        assert np.abs(ours.astype(np.int32) - theirs).max() <= 1
