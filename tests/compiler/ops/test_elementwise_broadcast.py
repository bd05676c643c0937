"""Elementwise operators of several inputs broadcast as numpy does (variadic.py, compare.py,
where.py, prelu.py, pow.py), float32, integers and bool: the generated C, built for the
host, against onnx.reference (and ariel's numpy reference against it too), over shapes that
broadcast every way (size-1 axes, lower ranks, scalars, constants read in place), and after
a channels-last Conv, whose output order the kernels keep. Each model holds several nodes so
that one C build checks them all; the C also builds warning-free for the Cortex-M4."""

import numpy as np
import pytest
from onnx import helper

from codegen.compiler.ops import REGISTRY
from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_elementwise_unary import model_of
from tests.support import (
    compile_for_cortex_m4,
    compile_onnx,
    host_model,
    run_reference,
    single_node_model,
)

node = helper.make_node


def check_model(model, inputs: dict[str, np.ndarray], tmp_path, m4: bool = True,
                rtol: float = 1e-6):
    """Host C and ariel's numpy reference of the compiled graph against onnx.reference."""
    compiled = compile_onnx(model)
    values = list(inputs.values())
    got = host_model(compiled, tmp_path).run(*values)
    with np.errstate(all="ignore"):
        want = run_reference(model, values)
        ours = run_graph(compiled.graph, values)
    for k, (g, o, w) in enumerate(zip(got, ours, want, strict=True)):
        label = f"y{k} ({model.graph.node[k].op_type})"
        assert g.dtype == w.dtype and g.shape == w.shape, (label, g.dtype, w.dtype, g.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-6, err_msg=label)
        np.testing.assert_allclose(o.reshape(w.shape), w, rtol=rtol, atol=1e-6, err_msg=label)
    if m4:
        compile_for_cortex_m4(compiled, tmp_path / "m4")
    return compiled


def with_nan(rng, shape, low=-3.0, high=3.0) -> np.ndarray:
    x = rng.uniform(low, high, shape).astype(np.float32)
    x.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
    return x


def test_variadic_float(tmp_path):
    """Max, Min, Sum and Mean of one, two and three inputs, every input shape broadcasting
    differently, a constant row and a scalar; NaN propagates through Max and Min as in
    numpy; a Relu after Max is fused as a clamp."""
    rng = np.random.default_rng(0)
    inputs = {"a": with_nan(rng, (2, 3, 4)), "b": rng.uniform(-3, 3, (3, 1)).astype(np.float32),
              "c": rng.uniform(-3, 3, (4,)).astype(np.float32)}
    constants = {"row": rng.uniform(-1, 1, (1, 4)).astype(np.float32),
                 "two": np.array(2.0, np.float32)}
    nodes = [node("Max", ["a"], ["y0"]), node("Max", ["a", "b"], ["y1"]),
             node("Max", ["b", "a", "c"], ["y2"]), node("Min", ["c", "a", "row"], ["y3"]),
             node("Sum", ["a", "b", "c"], ["y4"]), node("Sum", ["two", "b"], ["y5"]),
             node("Mean", ["a", "b", "row"], ["y6"]), node("Mean", ["c"], ["y7"]),
             node("Max", ["b", "c"], ["m"]), node("Relu", ["m"], ["y8"])]
    compiled = check_model(model_of(nodes, inputs, constants, opset=13), inputs, tmp_path)
    maxes = [n for n in compiled.graph.nodes if n.outputs == ["y8"]]
    assert maxes[0].op == "Max" and maxes[0].clamp == (0.0, np.inf)


@pytest.mark.parametrize("dtype", ["int8", "uint64", "int32"])
def test_variadic_integers(dtype, tmp_path):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(1)
    inputs = {"a": rng.integers(info.min, info.max, (3, 5), dtype=dtype, endpoint=True),
              "b": rng.integers(info.min, info.max, (5,), dtype=dtype, endpoint=True),
              "c": np.array([[info.min], [info.max], [0]], dtype)}
    nodes = [node("Max", ["a", "b", "c"], ["y0"]), node("Min", ["a", "b"], ["y1"]),
             node("Min", ["c", "a"], ["y2"])]
    check_model(model_of(nodes, inputs, opset=13), inputs, tmp_path, m4=False)


def test_comparisons_and_logic(tmp_path):
    """The five comparisons on floats (NaN compares false, but for NaN != which ONNX lacks)
    and on integers, Equal on bool, And/Or/Xor/Not on bool, broadcast both ways."""
    rng = np.random.default_rng(2)
    a = rng.integers(-2, 3, (2, 3, 4)).astype(np.float32)
    a.reshape(-1)[:2] = [np.nan, -0.0]
    inputs = {"a": a, "b": rng.integers(-2, 3, (3, 1)).astype(np.float32),
              "i": rng.integers(-5, 5, (3, 4)).astype(np.int32),
              "j": rng.integers(-5, 5, (4,)).astype(np.int32),
              "p": rng.random((2, 1, 4)) > 0.5, "q": rng.random((3, 4)) > 0.5}
    constants = {"zero": np.array(0.0, np.float32), "mask": rng.random((1, 4)) > 0.5}
    nodes = [node("Equal", ["a", "b"], ["y0"]), node("Less", ["a", "b"], ["y1"]),
             node("Greater", ["b", "a"], ["y2"]), node("LessOrEqual", ["a", "zero"], ["y3"]),
             node("GreaterOrEqual", ["a", "b"], ["y4"]), node("Equal", ["i", "j"], ["y5"]),
             node("Less", ["j", "i"], ["y6"]), node("Equal", ["p", "q"], ["y7"]),
             node("And", ["p", "q"], ["y8"]), node("Or", ["q", "mask"], ["y9"]),
             node("Xor", ["p", "mask"], ["y10"]), node("Not", ["p"], ["y11"]),
             node("BitwiseAnd", ["i", "j"], ["y12"]), node("BitwiseXor", ["j", "i"], ["y13"])]
    check_model(model_of(nodes, inputs, constants, opset=18), inputs, tmp_path)


def test_where(tmp_path):
    """Where broadcast three ways (condition, x and y each of another shape), with a scalar
    constant branch, a constant condition, int64 and bool branches."""
    rng = np.random.default_rng(3)
    inputs = {"c": rng.random((3, 1)) > 0.5, "x": rng.normal(size=(2, 3, 4)).astype(np.float32),
              "y": rng.normal(size=(4,)).astype(np.float32),
              "i": rng.integers(-9, 9, (3, 4)), "p": rng.random((2, 3, 4)) > 0.5}
    constants = {"fill": np.array(-1e4, np.float32), "k": rng.random((2, 1, 4)) > 0.5,
                 "big": np.array([2**40, -2**40, 7, 0], np.int64)}
    nodes = [node("Where", ["c", "x", "y"], ["y0"]), node("Where", ["c", "fill", "x"], ["y1"]),
             node("Where", ["k", "y", "x"], ["y2"]), node("Where", ["c", "i", "big"], ["y3"]),
             node("Where", ["p", "c", "k"], ["y4"])]
    check_model(model_of(nodes, inputs, constants, opset=16), inputs, tmp_path)


def test_prelu_and_pow(tmp_path):
    """PRelu with a slope per channel, one slope, and a slope computed at run time; Pow
    with constant exponents 1, 2 and 3 (products), 0.5 and -1.5 (powf), a run-time
    exponent broadcast, and an int64 exponent. (Pow's inputs are finite: powf(-inf, 0.5)
    is +inf by C's rules and NaN by numpy's.)"""
    rng = np.random.default_rng(4)
    inputs = {"x": rng.uniform(-3, 3, (1, 3, 4, 5)).astype(np.float32),
              "s": rng.uniform(-1, 1, (4, 1)).astype(np.float32),
              "e": rng.uniform(-2, 2, (5,)).astype(np.float32),
              "n": rng.integers(-3, 4, (3, 1, 1)).astype(np.int64)}
    constants = {"per_channel": rng.uniform(-0.5, 1, (3, 1, 1)).astype(np.float32),
                 "one": np.array([0.25], np.float32), **{
                     f"p{k}": np.array(v, np.float32)
                     for k, v in enumerate([1.0, 2.0, 3.0, 0.5, -1.5])}}
    nodes = [node("PRelu", ["x", "per_channel"], ["y0"]), node("PRelu", ["x", "one"], ["y1"]),
             node("PRelu", ["x", "s"], ["y2"]),
             *[node("Pow", ["x", f"p{k}"], [f"y{3 + k}"]) for k in range(5)],
             node("Abs", ["x"], ["ax"]), node("Pow", ["ax", "e"], ["y8"]),
             node("Pow", ["x", "n"], ["y9"])]
    compiled = check_model(model_of(nodes, inputs, constants, opset=16), inputs, tmp_path,
                           rtol=2e-6)
    source = compiled.files["m.c"]
    assert source.count("powf(") == 4  # 0.5, -1.5, the run-time and the int64 exponents


def test_after_a_channels_last_conv(tmp_path):
    """A Conv writes NHWC; per-channel constants (PRelu's slope, Max's bound, Where's fill)
    are read through their strides in that order, and no copy runs before the elementwise
    kernels."""
    rng = np.random.default_rng(5)
    inputs = {"x": rng.normal(size=(1, 3, 5, 6)).astype(np.float32)}
    constants = {"w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
                 "slope": rng.uniform(0, 0.5, (4, 1, 1)).astype(np.float32),
                 "bound": rng.normal(size=(4, 1, 1)).astype(np.float32),
                 "zero": np.array(0.0, np.float32)}
    nodes = [node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             node("PRelu", ["c", "slope"], ["pr"]), node("Max", ["pr", "bound"], ["mx"]),
             node("Less", ["c", "zero"], ["neg"]), node("Where", ["neg", "zero", "mx"], ["w2"]),
             node("HardSwish", ["w2"], ["y0"])]
    compiled = check_model(model_of(nodes, inputs, constants, opset=16), inputs, tmp_path,
                           m4=False)
    copied = [n.inputs[0] for n in compiled.graph.nodes if n.op == "ariel.Relayout"]
    assert copied[0] == "x" and len(copied) == 2  # into NHWC for the Conv, out to NCHW


@pytest.mark.parametrize("op,inputs,message", [
    ("Pow", {"x": np.ones((2, 3), np.int32), "e": np.ones((2, 3), np.float32)},
     "data type int32 of 'x' is not supported; supported: float32"),
    ("PRelu", {"x": np.ones((2, 3), np.float32), "s": np.ones((2, 1, 3), np.float32)},
     r"slope of shape \[2, 1, 3\] for an input of shape \[2, 3\] is not supported"),
    ("Where", {"c": np.ones((2, 3), np.int32), "x": np.ones((2, 3), np.float32),
               "y": np.ones((2, 3), np.float32)},
     "condition 'c' of type int32 is not supported; supported: a bool condition"),
    ("And", {"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32)},
     "data type float32 of 'a' is not supported; supported: bool"),
])
def test_refusals_name_the_node_and_what_works(op, inputs, message):
    model = single_node_model(op, inputs, opset=16)
    with pytest.raises(UnsupportedError, match=rf"node '{op.lower()}_node' \({op}\): {message}"):
        compile_onnx(model)


def test_every_new_operator_declares_its_attributes():
    """`ariel ops` reads each operator's attributes and int8 status from its OpDef."""
    assert REGISTRY["Gelu"].attributes == {"approximate"}
    assert REGISTRY["Max"].attributes == frozenset()
    assert REGISTRY["Where"].int8 and REGISTRY["PRelu"].int8 and REGISTRY["HardSwish"].int8
    assert not REGISTRY["Equal"].int8 and not REGISTRY["IsNaN"].int8
