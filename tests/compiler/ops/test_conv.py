"""Conv against onnx.reference through host-compiled generated C, and ariel's numpy
reference against onnx.reference."""

import numpy as np
import pytest

from codegen.compiler.reference import run_graph
from tests.support import (
    assert_matches_reference,
    compile_onnx,
    random_array,
    run_reference,
    single_node_model,
)

CASES = {
    "3x3_pad1": dict(x=(1, 3, 8, 8), w=(4, 3, 3, 3), pads=[1, 1, 1, 1]),
    "stride2_asym_pads": dict(x=(1, 2, 9, 7), w=(3, 2, 3, 3), strides=[2, 2], pads=[0, 1, 2, 0]),
    "dilation": dict(x=(1, 2, 10, 10), w=(2, 2, 3, 3), dilations=[2, 2], pads=[2, 2, 2, 2]),
    "depthwise": dict(x=(1, 4, 6, 6), w=(4, 1, 3, 3), group=4, pads=[1, 1, 1, 1]),
    # The four-channel depthwise kernel takes 4 and 12 channels; 2 and 6 (even, not a
    # multiple of four) must take the general path.
    "depthwise_2": dict(x=(1, 2, 5, 5), w=(2, 1, 3, 3), group=2, pads=[1, 1, 1, 1]),
    "depthwise_6": dict(x=(1, 6, 5, 5), w=(6, 1, 3, 3), group=6, pads=[1, 1, 1, 1]),
    "depthwise_12": dict(x=(1, 12, 5, 5), w=(12, 1, 3, 3), group=12, pads=[1, 1, 1, 1]),
    "depthwise_multiplier": dict(x=(1, 2, 5, 5), w=(6, 1, 3, 3), group=2),
    "grouped": dict(x=(1, 4, 5, 5), w=(6, 2, 1, 1), group=2),
    "same_upper": dict(x=(1, 1, 7, 7), w=(2, 1, 4, 4), auto_pad="SAME_UPPER", strides=[2, 2]),
    "same_lower": dict(x=(1, 1, 7, 6), w=(2, 1, 4, 3), auto_pad="SAME_LOWER"),
    "valid": dict(x=(1, 3, 7, 7), w=(2, 3, 3, 2), auto_pad="VALID", strides=[1, 2]),
    "batch2_no_bias": dict(x=(2, 2, 4, 4), w=(3, 2, 2, 2), bias=False),
    "conv1d": dict(x=(1, 3, 12), w=(4, 3, 5), pads=[2, 1], strides=[2]),
    "pointwise": dict(x=(1, 8, 3, 3), w=(5, 8, 1, 1)),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_conv_matches_onnx_reference(case, tmp_path):
    spec = dict(CASES[case])
    rng = np.random.default_rng(1)
    x = random_array(rng, spec.pop("x"))
    w_shape = spec.pop("w")
    w = random_array(rng, w_shape)
    constants = {"w": w}
    if spec.pop("bias", True):
        constants["b"] = random_array(rng, (w_shape[0],))
    model = single_node_model("Conv", {"x": x}, constants, **spec)
    assert_matches_reference(model, [x], tmp_path)
    compiled = compile_onnx(model)
    np.testing.assert_allclose(run_graph(compiled.graph, [x])[0],
                               run_reference(model, [x])[0], rtol=1e-5, atol=1e-5)


def test_relu_is_not_fused_into_a_conv_whose_output_another_node_reads(tmp_path):
    """Conv -> c; y = Add(c, Relu(c)): the Add needs c unclamped, so the Relu stays a node
    of its own."""
    import onnx
    from onnx import helper

    rng = np.random.default_rng(21)
    x = random_array(rng, (1, 2, 5, 5))
    model = single_node_model("Conv", {"x": x}, {"w": random_array(rng, (3, 2, 3, 3))},
                              pads=[1, 1, 1, 1])
    model.graph.node[0].output[0] = "c"
    model.graph.node.extend([helper.make_node("Relu", ["c"], ["r"]),
                             helper.make_node("Add", ["c", "r"], ["y0"])])
    onnx.checker.check_model(model)
    compiled = compile_onnx(model)
    assert "Relu" in [n.op for n in compiled.graph.nodes]
    assert all(n.clamp is None for n in compiled.graph.nodes if n.op == "Conv")
    assert_matches_reference(model, [x], tmp_path)


def test_conv_followed_by_relu_is_fused_and_still_correct(tmp_path):
    import onnx
    from onnx import helper

    rng = np.random.default_rng(2)
    x = random_array(rng, (1, 2, 5, 5))
    model = single_node_model("Conv", {"x": x}, {"w": random_array(rng, (3, 2, 3, 3))},
                              pads=[1, 1, 1, 1])
    model.graph.node[0].output[0] = "c"
    model.graph.node.append(helper.make_node("Relu", ["c"], ["y0"]))
    onnx.checker.check_model(model)
    compiled = compile_onnx(model)
    assert [n.op for n in compiled.graph.nodes if n.op == "Relu"] == []
    assert any(n.clamp == (0.0, np.inf) for n in compiled.graph.nodes)
    assert_matches_reference(model, [x], tmp_path)
