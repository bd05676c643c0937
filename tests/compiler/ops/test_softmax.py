"""Softmax and LogSoftmax before opset 13 (input seen as a matrix split at `axis`) and from
opset 13 (one axis): host-compiled C and ariel's numpy reference of the compiled graph, against
onnx.reference (opset 13) or onnxruntime (opset 11, which onnx.reference gets wrong)."""

import numpy as np
import onnx
import pytest

from codegen.compiler.reference import run_graph
from tests.support import (
    compile_onnx,
    random_array,
    run_on_host,
    run_reference,
    single_node_model,
)

SHAPES = [(3, 4, 5), (2, 3, 4, 5)]
# axis None: the attribute is left out (default 1 before opset 13, -1 from 13)
AXES = [None, 0, 1, 2, -1, -2]


def oracle(model: onnx.ModelProto, inputs: list[np.ndarray], runtime: bool = False
           ) -> list[np.ndarray]:
    """onnx.reference implements only opset 13's Softmax (it ignores the coercion to 2-D of
    earlier versions), so earlier opsets are checked against onnxruntime instead; so is a
    LogSoftmax of probabilities that underflow (`runtime`: onnx.reference takes the
    logarithm of the probability, -inf, where onnxruntime and ariel give the finite value)."""
    if model.opset_import[0].version >= 13 and not runtime:
        return run_reference(model, inputs)
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"x": inputs[0]})


def check(model: onnx.ModelProto, inputs: list[np.ndarray], tmp_path, tol: float = 1e-5,
          runtime: bool = False):
    """Generated C (host build) and ariel's numpy reference of the compiled graph, both
    against the oracle."""
    expected = oracle(model, inputs, runtime)
    compiled = run_graph(compile_onnx(model).graph, inputs)
    for results in (run_on_host(model, inputs, tmp_path), compiled):
        for got, want in zip(results, expected, strict=True):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("axis", AXES, ids=str)
def test_softmax_matches_onnx_reference(op, opset, shape, axis, tmp_path):
    x = random_array(np.random.default_rng(1), shape, low=-4.0, high=4.0)
    attrs = {} if axis is None else {"axis": axis}
    model = single_node_model(op, {"x": x}, opset=opset, **attrs)
    check(model, [x], tmp_path)


@pytest.mark.parametrize("opset", [11, 13])
def test_the_two_opsets_differ_where_they_should(opset):
    """At axis 1 of a 3-D input, opset 11 normalises axes 1 and 2 together, opset 13 only
    axis 1: the sums over the normalised elements tell them apart."""
    x = random_array(np.random.default_rng(2), (2, 3, 4))
    model = single_node_model("Softmax", {"x": x}, opset=opset, axis=1)
    y = run_graph(compile_onnx(model).graph, [x])[0]
    sums = y.sum(axis=(1, 2)) if opset == 11 else y.sum(axis=1)
    np.testing.assert_allclose(sums, np.ones_like(sums), rtol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_large_inputs_do_not_overflow(op, tmp_path):
    # The largest value anywhere in its row, the second place included.
    x = np.array([[1000.0, 1001.0, 1002.0, 999.0], [-1000.0, 0.0, 88.0, 89.0],
                  [0.0, 1000.0, -5.0, 3.0], [1000.0, 0.0, -5.0, 3.0]], np.float32)
    model = single_node_model(op, {"x": x}, opset=13)
    check(model, [x], tmp_path, runtime=True)


def test_log_softmax_stays_finite_where_the_probability_underflows(tmp_path):
    """exp(-200) is 0 in float32; its logarithm is still -200."""
    x = np.array([[0.0, -200.0, -50.0]], np.float32)
    model = single_node_model("LogSoftmax", {"x": x}, opset=13)
    check(model, [x], tmp_path, runtime=True)
    y = run_graph(compile_onnx(model).graph, [x])[0]
    assert np.isfinite(y).all() and y[0, 1] < -199


def test_kernel_is_single_precision():
    x = random_array(np.random.default_rng(3), (1, 10))
    text = compile_onnx(single_node_model("Softmax", {"x": x})).files["m.c"]
    body = text[text.index("/* Softmax"):text.index("void m_run")]
    assert "expf(" in body and "double" not in body and "exp(" not in body.replace("expf(", "")
