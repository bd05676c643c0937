"""BatchNormalization in inference mode: standalone (constant statistics folded to a scale and
shift, or statistics fed at run time), on channels-last data, with a fused Relu, and after a
Conv where the fold_batchnorm pass removes it; against onnx.reference through host-compiled
C and through ariel's numpy reference of the compiled graph."""

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from codegen.compiler.ir import channels_last
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_gemm import chain, check
from tests.support import compile_onnx, random_array, single_node_model

STATISTICS = ("scale", "bias", "mean", "var")


def statistics(rng, channels: int, low_var: float = 0.2) -> dict[str, np.ndarray]:
    values = {name: random_array(rng, (channels,)) for name in STATISTICS}
    values["var"] = random_array(rng, (channels,), low=low_var, high=2.0)
    return values


# Variances this small make epsilon's default (1e-5) matter far beyond the tolerance: a
# model that omits the attribute checks the default.
TINY_VAR = 1e-5


@pytest.mark.parametrize("shape", [(2, 3), (2, 4, 7), (2, 3, 4, 5), (1, 1, 3, 3)], ids=str)
@pytest.mark.parametrize("epsilon", [None, 1e-2])
def test_standalone_batchnorm_with_constant_statistics(shape, epsilon, tmp_path):
    rng = np.random.default_rng(1)
    x = random_array(rng, shape)
    attrs = {} if epsilon is None else {"epsilon": epsilon}
    model = single_node_model("BatchNormalization", {"x": x},
                              statistics(rng, shape[1], TINY_VAR), **attrs)
    compiled = compile_onnx(model)
    assert [n.op for n in compiled.graph.nodes] == ["BatchNormalization"]
    check(model, [x], tmp_path)


@pytest.mark.parametrize("epsilon", [None, 1e-2])
def test_statistics_fed_at_run_time_as_onnx_test_cases_do(epsilon, tmp_path):
    rng = np.random.default_rng(2)
    x = random_array(rng, (2, 3, 4, 5))
    stats = statistics(rng, 3, TINY_VAR)
    attrs = {} if epsilon is None else {"epsilon": epsilon}
    model = single_node_model("BatchNormalization", {"x": x, **stats}, **attrs)
    check(model, [x, *stats.values()], tmp_path)


def test_channels_last_input_keeps_its_order(tmp_path):
    """A Conv with a fused Relu cannot take the BatchNormalization, which then runs on the
    Conv's channels-last output, reading its per-channel values through strides."""
    rng = np.random.default_rng(3)
    x = random_array(rng, (1, 2, 6, 6))
    model = chain([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                   helper.make_node("Relu", ["c"], ["r"]),
                   helper.make_node("BatchNormalization", ["r", *STATISTICS], ["y"])],
                  {"x": x}, {"w": random_array(rng, (3, 2, 3, 3)), **statistics(rng, 3)},
                  ["y"], opset=15)
    graph = compile_onnx(model).graph
    bn = next(n for n in graph.nodes if n.op == "BatchNormalization")
    assert graph.tensor(bn.outputs[0]).order == channels_last(4)
    check(model, [x], tmp_path)


def test_relu_after_batchnorm_is_fused(tmp_path):
    rng = np.random.default_rng(4)
    x = random_array(rng, (1, 4, 3, 3))
    model = chain([helper.make_node("BatchNormalization", ["x", *STATISTICS], ["b"]),
                   helper.make_node("Relu", ["b"], ["y"])], {"x": x}, statistics(rng, 4),
                  ["y"], opset=15)
    graph = compile_onnx(model).graph
    assert [(n.op, n.clamp) for n in graph.nodes] == [("BatchNormalization", (0.0, np.inf))]
    check(model, [x], tmp_path)


@pytest.mark.parametrize("epsilon", [None, 1e-3])
def test_conv_then_batchnorm_is_folded(epsilon, tmp_path):
    rng = np.random.default_rng(5)
    x = random_array(rng, (1, 3, 7, 7))
    attrs = {} if epsilon is None else {"epsilon": epsilon}
    model = chain([helper.make_node("Conv", ["x", "w", "cb"], ["c"], pads=[1, 1, 1, 1]),
                   helper.make_node("BatchNormalization", ["c", *STATISTICS], ["y"],
                                    **attrs)],
                  {"x": x}, {"w": random_array(rng, (4, 3, 3, 3)),
                             "cb": random_array(rng, (4,)), **statistics(rng, 4, TINY_VAR)},
                  ["y"], opset=15)
    graph = compile_onnx(model).graph
    assert not any(n.op == "BatchNormalization" for n in graph.nodes)
    check(model, [x], tmp_path)


@pytest.mark.parametrize("opset, attrs, outputs", [
    (15, {"training_mode": 1}, ["y", "running_mean", "running_var"]),
    (9, {}, ["y", "mean_out", "var_out", "saved_mean", "saved_var"]),
], ids=["training_mode", "statistics_as_outputs"])
def test_training_mode_is_rejected(opset, attrs, outputs):
    rng = np.random.default_rng(6)
    x = random_array(rng, (2, 3, 4))
    shapes = {name: (3,) for name in outputs} | {"y": x.shape}
    model = chain([helper.make_node("BatchNormalization", ["x", *STATISTICS], outputs,
                                    **attrs)], {"x": x}, statistics(rng, 3), outputs, opset,
                  shapes)
    with pytest.raises(UnsupportedError, match="training mode"):
        compile_onnx(model)


@pytest.mark.parametrize("after_conv", [False, True], ids=["standalone", "after_conv"])
def test_a_scale_that_overflows_float32_once_folded_runs_in_the_model_s_order(after_conv,
                                                                            tmp_path):
    """scale = 3e38 over a standard deviation below 1: folded to one factor per channel it is
    infinite in float32 (so is every output but exact zeros), computed in the model's order
    it is finite where |x - mean| is small enough, as here (found by the fuzzer:
    file-odd-values:11001217)."""
    rng = np.random.default_rng(3)
    x = random_array(rng, (1, 2, 3, 3), low=-0.25, high=0.25)
    values = {"scale": np.array([3e38, 1.0], np.float32), "bias": np.zeros(2, np.float32),
              "mean": np.zeros(2, np.float32), "var": np.array([0.25, 1.0], np.float32)}
    if after_conv:
        model = chain([helper.make_node("Conv", ["x", "w"], ["c"]),
                       helper.make_node("BatchNormalization", ["c", *STATISTICS], ["y"])],
                      {"x": x}, {"w": np.ones((2, 2, 1, 1), np.float32), **values},
                      ["y"], opset=15)
    else:
        model = single_node_model("BatchNormalization", {"x": x}, values)
    compiled = compile_onnx(model)
    assert "BatchNormalization" in [n.op for n in compiled.graph.nodes]
    y = ReferenceEvaluator(model).run(None, {"x": x})[0]
    assert np.isfinite(y).all()
    check(model, [x], tmp_path)
