"""LayerNormalization and InstanceNormalization against onnx.reference through host-compiled C
and through ariel's numpy reference of the compiled graph: axes, broadcast parameters, the
optional statistics outputs, parameters at run time, channels-last input; and in int8 as ONNX
Runtime's quantizer makes them, bit-exact to ariel's integer reference and within one step of
ONNX Runtime."""

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_quantize import (
    assert_integer_only,
    calibration,
    check_int8,
    kernel_ops,
    with_qdq,
)
from tests.compiler.ops.test_reduce import after_conv, kernel_of, reads_producer_directly
from tests.support import (
    assert_matches_reference,
    compile_for_cortex_m4,
    compile_onnx,
    compile_onnx_int8,
    random_array,
    run_reference,
    single_node_model,
)

# (x shape, scale shape, bias shape or None, attributes)
LAYER_NORM_CASES = {
    "last_axis": ((2, 5, 16), (16,), (16,), {}),
    "no_bias": ((3, 8), (8,), None, {}),
    "two_axes": ((2, 3, 4, 5), (4, 5), (4, 5), {"axis": 2}),
    "two_axes_broadcast_scale": ((2, 3, 4, 5), (5,), (1, 5), {"axis": -2}),
    "axis_0_everything": ((3, 4), (3, 4), (4,), {"axis": 0}),
    "scalar_like_scale": ((2, 6), (1,), (6,), {}),
    "epsilon": ((4, 10), (10,), (10,), {"epsilon": 0.1}),
    "size_one_rows": ((1, 1, 7), (7,), (7,), {}),
}


def check(model: onnx.ModelProto, inputs: list[np.ndarray], tmp_path) -> None:
    assert_matches_reference(model, inputs, tmp_path, rtol=1e-5, atol=1e-5)
    got = run_graph(compile_onnx(model).graph, inputs)
    for g, w in zip(got, run_reference(model, inputs), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", LAYER_NORM_CASES, ids=list(LAYER_NORM_CASES))
def test_layer_normalization_matches_onnx_reference(case, tmp_path):
    shape, scale, bias, attrs = LAYER_NORM_CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    x = random_array(rng, shape, low=-3.0, high=2.0)
    constants = {"scale": random_array(rng, scale)}
    if bias is not None:
        constants["bias"] = random_array(rng, bias)
    check(single_node_model("LayerNormalization", {"x": x}, constants, **attrs), [x], tmp_path)


@pytest.mark.parametrize("outputs", [2, 3])
def test_layer_normalization_writes_its_statistics(outputs, tmp_path):
    rng = np.random.default_rng(1)
    x = random_array(rng, (2, 3, 6))
    model = single_node_model("LayerNormalization", {"x": x},
                              {"scale": random_array(rng, (3, 6)),
                               "bias": random_array(rng, (6,))},
                              n_outputs=outputs, axis=1)
    check(model, [x], tmp_path)


def test_layer_normalization_with_parameters_at_run_time(tmp_path):
    rng = np.random.default_rng(2)
    x, scale, bias = (random_array(rng, s) for s in ((4, 3, 5), (3, 5), (5,)))
    model = single_node_model("LayerNormalization", {"x": x, "scale": scale, "bias": bias},
                              axis=1)
    check(model, [x, scale, bias], tmp_path)


def test_constant_row_is_scaled_by_epsilon_alone(tmp_path):
    """A row of equal values has variance 0: y is the bias (0 * 1/sqrt(epsilon) * scale)."""
    x = np.full((2, 4), 3.5, np.float32)
    model = single_node_model("LayerNormalization", {"x": x},
                              {"scale": np.ones(4, np.float32),
                               "bias": np.arange(4, dtype=np.float32)})
    check(model, [x], tmp_path)


def test_layer_normalization_refuses_another_stash_type():
    x = np.zeros((2, 4), np.float32)
    model = single_node_model("LayerNormalization", {"x": x}, {"scale": np.ones(4, np.float32)},
                              stash_type=0)
    with pytest.raises(UnsupportedError, match="stash_type 0 is not supported"):
        compile_onnx(model)


INSTANCE_NORM_SHAPES = [(1, 3, 10), (2, 4, 5, 6), (1, 2, 3, 4, 2)]


@pytest.mark.parametrize("shape", INSTANCE_NORM_SHAPES, ids=str)
def test_instance_normalization_matches_onnx_reference(shape, tmp_path):
    rng = np.random.default_rng(len(shape))
    x = random_array(rng, shape, low=-2.0, high=3.0)
    model = single_node_model("InstanceNormalization", {"x": x},
                              {"scale": random_array(rng, shape[1:2]),
                               "bias": random_array(rng, shape[1:2])}, epsilon=1e-3)
    check(model, [x], tmp_path)


def test_instance_normalization_reads_channels_last_without_a_copy(tmp_path):
    rng = np.random.default_rng(3)
    x = random_array(rng, (1, 3, 6, 5))
    model = after_conv("InstanceNormalization", x, rng, channels=6,
                       constants={"scale": random_array(rng, (6,)),
                                  "bias": random_array(rng, (6,))})
    compiled = compile_onnx(model)
    assert reads_producer_directly(compiled, "InstanceNormalization", "Conv")
    assert "channels-last" in kernel_of(compiled, "InstanceNormalization")
    check(model, [x], tmp_path)


def test_layer_normalization_after_a_transpose_reads_it_in_place(tmp_path):
    """Statistics over the channels of an NCHW tensor seen as NHWC: the view is read
    through strides..."""
    rng = np.random.default_rng(4)
    x = random_array(rng, (1, 6, 3, 4))
    model = single_node_model("Transpose", {"x": x}, perm=[0, 2, 3, 1])
    model.graph.node[0].output[0] = "t"
    model.graph.node.append(helper.make_node("LayerNormalization", ["t", "scale", "bias"],
                                             ["y0"]))
    model.graph.initializer.extend([
        onnx.numpy_helper.from_array(random_array(rng, (6,)), "scale"),
        onnx.numpy_helper.from_array(random_array(rng, (6,)), "bias")])
    del model.graph.value_info[:]
    model.graph.output[0].type.tensor_type.ClearField("shape")
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    compiled = compile_onnx(model)
    assert reads_producer_directly(compiled, "LayerNormalization", "Transpose")
    # ... and writes its output row-major, as the MatMuls after a LayerNorm read fastest.
    node = next(n for n in compiled.graph.nodes if n.op == "LayerNormalization")
    assert not compiled.graph.tensor(node.inputs[0]).is_row_major
    assert compiled.graph.tensor(node.outputs[0]).is_row_major
    check(model, [x], tmp_path)


# int8, quantized by ONNX Runtime: (op, x shape, parameter shape, bias?, attributes)
INT8_CASES = {
    "layer_norm_rows_of_32": ("LayerNormalization", (1, 10, 32), (32,), True, {}),
    "layer_norm_no_bias": ("LayerNormalization", (2, 5, 16), (16,), False, {}),
    # (ONNX Runtime 1.32's quantizer fails on a bias of two axes: no bias here.)
    "layer_norm_two_axes": ("LayerNormalization", (2, 3, 4, 5), (4, 5), False, {"axis": 2}),
    "layer_norm_rows_of_512": ("LayerNormalization", (1, 3, 512), (512,), True,
                               {"epsilon": 1e-3}),
    "instance_norm": ("InstanceNormalization", (1, 4, 6, 6), (4,), True, {}),
    "instance_norm_1d": ("InstanceNormalization", (2, 3, 20), (3,), True, {"epsilon": 0.1}),
}


def int8_samples(rng, shape, count: int = 8) -> list[dict[str, np.ndarray]]:
    """Offset, unevenly spread values, and a group of equal values (variance 0) in the
    first sample: its output is the bias alone."""
    samples = [{"x": (rng.normal(0.3, 1.5, shape) * rng.uniform(0.2, 1.0)).astype(np.float32)}
               for _ in range(count)]
    samples[0]["x"].reshape(-1)[:shape[-1]] = 0.75
    return samples


@pytest.mark.parametrize("case", INT8_CASES, ids=list(INT8_CASES))
def test_int8_normalization_quantized_by_onnxruntime(case, tmp_path, record_property):
    """The QDQ form ONNX Runtime's quantizer gives (int8 x, int8 scale with one scale, int32
    bias): an integer kernel, bit-exact to ariel's integer reference and within one step of
    ONNX Runtime, which computes in float."""
    op, shape, parameter, with_bias, attrs = INT8_CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    constants = {"scale": (1 + 0.3 * rng.standard_normal(parameter)).astype(np.float32)}
    if with_bias:
        constants["bias"] = (0.2 * rng.standard_normal(parameter)).astype(np.float32)
    samples = int8_samples(rng, shape)
    model = single_node_model(op, {"x": samples[0]["x"]}, constants, **attrs)
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == [op]
    assert_integer_only(compiled)
    kernel = kernel_of(compiled, op)
    assert "ariel_isqrt_u64" in kernel
    # ONNX Runtime quantizes a scale of two axes per channel: an output stage per value.
    assert ("_mult[" in kernel) == (len(parameter) > 1)
    agreement = check_int8(compiled, samples, tmp_path, min_identical=0.97)
    record_property("agreement", agreement.summary)


def test_int8_normalization_refuses_a_scale_with_a_zero_point():
    """A hand-made QDQ LayerNormalization whose int8 scale is asymmetric."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (2, 8)).astype(np.float32)
    model = single_node_model("LayerNormalization", {"x": x},
                              {"scale": np.ones(8, np.float32)})
    model = with_qdq(model, {"x": (0.01, 0), "scale": (0.01, 3), "y0": (0.02, 0)})
    with pytest.raises(UnsupportedError, match="parameter .* with a zero point is not "
                                               "supported; supported: symmetric"):
        compile_onnx_int8(model, io="int8")


def test_int8_normalization_compiles_for_cortex_m4(tmp_path):
    """The int8 kernel with the firmware's flags (-Werror, -Wdouble-promotion: any float in
    it would show), its 64-bit square root and division included."""
    rng = np.random.default_rng(6)
    samples = int8_samples(rng, (1, 6, 24))
    model = single_node_model("LayerNormalization", {"x": samples[0]["x"]},
                              {"scale": np.ones(24, np.float32),
                               "bias": np.full(24, 0.1, np.float32)})
    compile_for_cortex_m4(compile_onnx_int8(model, calibration(samples), io="int8"),
                          tmp_path / "m4")
