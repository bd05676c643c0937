"""ConvTranspose in float: the host-compiled C (phases lowered as Conv kernels, or the direct
kernel for filters computed at run time) and ariel's numpy reference (the scatter
definition) against onnx.reference, and against onnxruntime where groups are involved
(onnx.reference's grouped ConvTranspose slices the filters along the wrong axis and adds
the bias of channel 0 to every group), output_shape cropping and auto_pad SAME_* beyond the
filters' reach; fused activations, half-precision weights, the
Cortex-M4 build, MACs and the one-line errors."""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper

from codegen.compiler.compile import compile_graph
from codegen.compiler.frontend import ModelSource, fix_input_shapes, to_graph
from codegen.compiler.ops import REGISTRY
from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_gemm import chain
from tests.support import (
    assert_matches_reference,
    compile_for_cortex_m4,
    compile_onnx,
    host_model,
    random_array,
    run_on_host,
    run_reference,
    single_node_model,
)

CASES = {
    # The U-Net upsampling layer: every output pixel has exactly one tap.
    "k2_s2": dict(x=(1, 8, 4, 5), w=(8, 4, 2, 2), strides=[2, 2]),
    # PyTorch's usual doubling: kernel 3, stride 2, padding 1, output_padding 1.
    "k3_s2_p1_op1": dict(x=(1, 3, 4, 5), w=(3, 6, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1],
                         output_padding=[1, 1]),
    "k4_s2_p1": dict(x=(1, 4, 3, 3), w=(4, 5, 4, 4), strides=[2, 2], pads=[1, 1, 1, 1]),
    "stride1_full_convolution": dict(x=(1, 2, 4, 4), w=(2, 3, 3, 3)),
    "stride3_dilation2_asymmetric": dict(x=(1, 2, 5, 4), w=(2, 3, 3, 2), strides=[3, 2],
                                         pads=[0, 1, 2, 0], dilations=[2, 1]),
    # Stride and dilation share a factor: half the output rows and columns no tap reaches.
    "dilation2_stride2_bias_only_phases": dict(x=(2, 2, 3, 3), w=(2, 2, 2, 2), strides=[2, 2],
                                               dilations=[2, 2]),
    "kernel1_stride3_bias_only_phases": dict(x=(1, 1, 3, 3), w=(1, 2, 1, 1), strides=[3, 3]),
    # Pads beyond the kernel's reach crop the output: negative pads in the phases.
    "large_pads_crop": dict(x=(1, 2, 6, 6), w=(2, 3, 3, 3), pads=[3, 2, 4, 3]),
    "same_upper": dict(x=(1, 2, 3, 3), w=(2, 2, 3, 3), strides=[2, 2], auto_pad="SAME_UPPER"),
    "same_lower": dict(x=(1, 2, 3, 4), w=(2, 2, 4, 3), strides=[2, 2], auto_pad="SAME_LOWER"),
    "valid": dict(x=(1, 2, 3, 3), w=(2, 2, 3, 3), strides=[2, 1], auto_pad="VALID"),
    "output_shape": dict(x=(1, 2, 3, 3), w=(2, 2, 3, 3), strides=[3, 2], output_shape=[10, 8]),
    # One row past the natural length: it holds only the bias.
    "output_shape_past_reach": dict(x=(1, 1, 3, 3), w=(1, 2, 3, 3), strides=[2, 2],
                                    output_shape=[8, 7]),
    "conv1d": dict(x=(1, 3, 6), w=(3, 2, 4), strides=[3], pads=[1, 2]),
    "conv1d_output_padding": dict(x=(1, 2, 5), w=(2, 3, 3), strides=[2], pads=[1, 1],
                                  output_padding=[1]),
    "batch2_no_bias": dict(x=(2, 3, 3, 2), w=(3, 2, 2, 3), strides=[2, 1], bias=False),
}
# onnx.reference gets groups wrong, fails on an output_shape that crops, and gives
# SAME_* beyond the filters' reach the length input * stride (ONNX's shape inference and
# ONNX Runtime: the natural length): these run against onnxruntime.
ONNXRUNTIME = {
    "output_shape_crops": dict(x=(1, 1, 3, 3), w=(1, 2, 3, 3), strides=[2, 2],
                               output_shape=[5, 6]),
    "same_upper_beyond_reach": dict(x=(1, 2, 3, 3), w=(2, 2, 2, 2), strides=[3, 3],
                                    auto_pad="SAME_UPPER"),
    "depthwise_4_channels": dict(x=(1, 4, 3, 4), w=(4, 1, 3, 3), strides=[2, 2], group=4,
                                 pads=[1, 1, 1, 1], output_padding=[1, 1]),
    "depthwise_3_channels": dict(x=(1, 3, 4, 3), w=(3, 1, 2, 2), strides=[2, 2], group=3),
    "depthwise_multiplier_2": dict(x=(1, 4, 3, 3), w=(4, 2, 3, 3), strides=[2, 2], group=4),
    "two_groups": dict(x=(1, 4, 3, 3), w=(4, 3, 3, 3), strides=[2, 2], group=2),
    "two_groups_1d": dict(x=(1, 4, 5), w=(4, 2, 3), strides=[2], group=2, pads=[0, 1]),
}


def case_model(spec: dict, seed: int = 1) -> tuple[onnx.ModelProto, np.ndarray]:
    spec = dict(spec)
    rng = np.random.default_rng(seed)
    x = random_array(rng, spec.pop("x"))
    w_shape = spec.pop("w")
    constants = {"w": random_array(rng, w_shape)}
    if spec.pop("bias", True):
        constants["b"] = random_array(rng, (w_shape[1] * spec.get("group", 1),))
    return single_node_model("ConvTranspose", {"x": x}, constants, **spec), x


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_conv_transpose_matches_onnx_reference(case, tmp_path):
    model, x = case_model(CASES[case])
    assert_matches_reference(model, [x], tmp_path, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_graph(compile_onnx(model).graph, [x])[0],
                               run_reference(model, [x])[0], rtol=1e-5, atol=1e-6)


def onnxruntime_output(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


@pytest.mark.parametrize("case", ONNXRUNTIME, ids=list(ONNXRUNTIME))
def test_conv_transpose_matches_onnxruntime(case, tmp_path):
    model, x = case_model(ONNXRUNTIME[case])
    want = onnxruntime_output(model, {"x": x})
    np.testing.assert_allclose(run_on_host(model, [x], tmp_path)[0], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_graph(compile_onnx(model).graph, [x])[0], want, rtol=1e-5,
                               atol=1e-6)


def test_phases_are_conv_kernels_writing_strided_pixels():
    """kernel 3, stride 2, pad 1: four phases with 2x2, 2x1, 1x2 and 1x1 taps, each a Conv
    kernel of its own called from the ConvTranspose kernel."""
    model, _ = case_model(CASES["k3_s2_p1_op1"])
    text = compile_onnx(model).files["m.c"]
    for phase in range(4):
        assert f"ARIEL_KERNEL void n01_conv_transpose_p{phase}(" in text
        assert f"    n01_conv_transpose_p{phase}(x0, y0);" in text
    assert "taps ky 2, 0 x kx 2, 0" in text and "taps ky 1 x kx 1" in text


def test_filters_computed_at_run_time(tmp_path):
    """W as a graph input (as ONNX's own test cases give it): the direct kernel."""
    rng = np.random.default_rng(2)
    x, w = random_array(rng, (1, 2, 3, 4)), random_array(rng, (2, 3, 3, 2))
    model = single_node_model("ConvTranspose", {"x": x, "w": w}, {"b": random_array(rng, (3,))},
                              strides=[2, 3], pads=[1, 0, 0, 1], output_padding=[1, 2])
    compiled = compile_onnx(model)
    assert "every tap of every output pixel checked" in compiled.files["m.c"]
    assert_matches_reference(model, [x, w], tmp_path, rtol=1e-5, atol=1e-5)


def test_relu_after_conv_transpose_is_fused(tmp_path):
    rng = np.random.default_rng(3)
    x = random_array(rng, (1, 3, 4, 4))
    model = chain([helper.make_node("ConvTranspose", ["x", "w", "b"], ["c"], strides=[2, 2]),
                   helper.make_node("Relu", ["c"], ["y"])],
                  {"x": x}, {"w": random_array(rng, (3, 4, 2, 2)),
                             "b": random_array(rng, (4,))}, ["y"], opset=17)
    compiled = compile_onnx(model)
    assert [n.op for n in compiled.graph.nodes if n.op == "Relu"] == []
    assert_matches_reference(model, [x], tmp_path, rtol=1e-5, atol=1e-5)


def test_half_precision_weights_cover_every_phase(tmp_path):
    """--float-weights fp16 stores each phase's filters as _Float16; the output matches
    onnxruntime on the same filters rounded through float16."""
    model, x = case_model(CASES["k4_s2_p1"])
    graph_model = onnx.ModelProto.FromString(model.SerializeToString())
    fix_input_shapes(graph_model, {})
    compiled = compile_graph(to_graph(graph_model, "m"),
                             ModelSource("m.onnx", "0" * 64, []), "tests", half_weights=True)
    weights = compiled.files["m_weights.c"]
    for phase in range(4):
        assert f"const _Float16 m_n01_conv_transpose_p{phase}_w[" in weights
    rounded = onnx.ModelProto.FromString(model.SerializeToString())
    w = onnx.numpy_helper.to_array(rounded.graph.initializer[0])
    rounded.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(
        w.astype(np.float16).astype(np.float32), rounded.graph.initializer[0].name))
    got = host_model(compiled, tmp_path).run(x)[0]
    np.testing.assert_allclose(got, onnxruntime_output(rounded, {"x": x}), rtol=1e-5,
                               atol=1e-5)


def test_generated_c_compiles_for_cortex_m4(tmp_path):
    """Every phase shape of this family built with the firmware's flags (-Werror)."""
    for case in ("k3_s2_p1_op1", "dilation2_stride2_bias_only_phases", "conv1d"):
        compiled = compile_onnx(case_model(CASES[case])[0])
        compile_for_cortex_m4(compiled, tmp_path / case)
    compiled = compile_onnx(case_model(ONNXRUNTIME["depthwise_4_channels"])[0])
    compile_for_cortex_m4(compiled, tmp_path / "depthwise")


def test_macs_count_the_products_that_land():
    """k2 s2: every input pixel meets each of the 4 taps once. Cropping pads drop the
    products that fall outside the output: the count is the scatter definition's."""
    op = REGISTRY["ConvTranspose"]
    for case, expected in (("k2_s2", 4 * 5 * 8 * 4 * 4), ("large_pads_crop", None)):
        graph = compile_onnx(case_model(CASES[case])[0]).graph
        node = next(n for n in graph.nodes if n.op == "ConvTranspose")
        x, w = graph.input_tensors(node)[:2]
        landing = op.scatter(node, np.ones(x.shape), np.ones(w.shape)).sum()
        assert op.macs(node, graph) == landing == (expected or landing)


ERRORS = {
    "3d": (dict(x=(1, 1, 2, 2, 2), w=(1, 1, 2, 2, 2), bias=False),
           "3-D transposed convolution"),
    "output_shape_unreached": (dict(x=(1, 1, 3, 3), w=(1, 2, 3, 3), strides=[2, 2],
                                    output_shape=[9, 7], bias=False),
                               "output_shape [9, 7] for a [3, 3] input"),
    "kernel_shape_mismatch": (dict(x=(1, 1, 3, 3), w=(1, 1, 3, 3), kernel_shape=[2, 2],
                                   bias=False),
                              "kernel_shape [2, 2] with weights [1, 1, 3, 3]"),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_unsupported_conv_transpose_is_one_line(case):
    spec, message = ERRORS[case]
    model, _ = case_model(spec)
    with pytest.raises(UnsupportedError) as error:
        compile_onnx(model)
    text = str(error.value)
    assert text.startswith("node 'convtranspose_node' (ConvTranspose): ") and message in text
    assert "supported: " in text and "\n" not in text

