"""Unary operators of float32 and integer tensors (activations.py, unary_math.py, cast.py):
ariel's numpy reference against onnx.reference for each operator and attribute set, and the
generated C, built for the host, against onnx.reference on values that include the edges
(zeros of both signs, ties, infinities, NaN, values where a naive formula overflows). The
C is also built for the Cortex-M4 with every warning an error. Each model holds many
operators side by side, so one C build checks them all."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from codegen.compiler.ir import Node
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.cast import convert
from codegen.errors import UnsupportedError
from tests.support import (
    compile_for_cortex_m4,
    compile_onnx,
    host_model,
    run_reference,
    single_node_model,
)

OPSET = 24
EDGES = [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, 2.5, -2.5, 3.0, -3.0, 1e-7, -1e-7, 20.0, -20.0,
         95.0, -95.0, np.inf, -np.inf, np.nan]


def edge_input(shape=(2, 4, 16), low=-6.0, high=6.0, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.uniform(low, high, int(np.prod(shape))).astype(np.float32)
    values[:len(EDGES)] = EDGES
    return values.reshape(shape)


# (op, attributes) of float32 unary operators; each row is a node of the float model.
FLOAT_UNARY = [
    ("HardSigmoid", {}), ("HardSigmoid", {"alpha": 0.5, "beta": -0.25}),
    ("HardSwish", {}), ("Gelu", {}), ("Gelu", {"approximate": "tanh"}),
    ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.3}), ("Relu", {}),
    ("Softplus", {}), ("Softsign", {}), ("Elu", {}), ("Elu", {"alpha": 0.3}),
    ("Selu", {}), ("Selu", {"alpha": 1.5, "gamma": 0.5}), ("Celu", {}),
    ("Celu", {"alpha": 2.5}), ("Mish", {}), ("ThresholdedRelu", {}),
    ("ThresholdedRelu", {"alpha": -0.5}), ("Swish", {}), ("Swish", {"alpha": -1.5}),
    ("Exp", {}), ("Log", {}), ("Sqrt", {}), ("Erf", {}), ("Reciprocal", {}), ("Neg", {}),
    ("Abs", {}), ("Sign", {}), ("Floor", {}), ("Ceil", {}), ("Round", {}), ("Sin", {}),
    ("Cos", {}), ("Tan", {}), ("Asin", {}), ("Acos", {}), ("Atan", {}), ("Sinh", {}),
    ("Cosh", {}), ("Asinh", {}), ("Acosh", {}), ("Atanh", {}), ("IsNaN", {}), ("IsInf", {}),
    ("IsInf", {"detect_negative": 0}), ("IsInf", {"detect_positive": 0}),
    ("IsInf", {"detect_negative": 0, "detect_positive": 0}),
]


def model_of(nodes: list[onnx.NodeProto], inputs: dict[str, np.ndarray],
             constants: dict[str, np.ndarray] | None = None, opset: int = OPSET
             ) -> onnx.ModelProto:
    """A model of `nodes` reading `inputs` (graph inputs) and `constants` (initializers),
    whose outputs are the nodes' outputs named y0, y1, ..."""
    values = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype),
                                            v.shape) for n, v in inputs.items()]
    outputs = sorted((o for n in nodes for o in n.output if o.startswith("y")),
                     key=lambda o: int(o[1:]))
    graph = helper.make_graph(nodes, "rows", values,
                              [helper.make_empty_tensor_value_info(o) for o in outputs],
                              [onnx.numpy_helper.from_array(v, n)
                               for n, v in (constants or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def side_by_side(rows, inputs: dict[str, np.ndarray], opset: int = OPSET) -> onnx.ModelProto:
    """A model applying each (op, attributes, number of inputs) row to the first inputs,
    outputs y0, y1, ..."""
    nodes = [helper.make_node(op, list(inputs)[:arity], [f"y{k}"], name=f"n{k}", **attrs)
             for k, (op, attrs, arity) in enumerate(rows)]
    return model_of(nodes, inputs, opset=opset)


def node_of(op: str, attrs: dict, *inputs: np.ndarray, opset: int = OPSET):
    """A one-node model of `op` on `inputs`, and the ariel Node standing for it."""
    model = side_by_side([(op, attrs, len(inputs))],
                         {f"x{k}": v for k, v in enumerate(inputs)}, opset)
    return model, Node("n0", op, [f"x{k}" for k in range(len(inputs))], ["y0"], dict(attrs))


def assert_same_values(got: np.ndarray, want: np.ndarray, label: str, rtol=2e-6, atol=1e-6):
    assert got.dtype == want.dtype, (label, got.dtype, want.dtype)
    assert got.shape == want.shape, (label, got.shape, want.shape)
    if got.dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=label)
    else:
        np.testing.assert_array_equal(got, want, err_msg=label)


@pytest.mark.parametrize("op,attrs", FLOAT_UNARY,
                         ids=[f"{op}{attrs or ''}" for op, attrs in FLOAT_UNARY])
def test_numpy_reference_matches_onnx_reference(op, attrs):
    x = edge_input()
    model, node = node_of(op, attrs, x)
    with np.errstate(all="ignore"):
        (want,) = run_reference(model, [x])
        (got,) = REGISTRY[op].reference(node, x)
    assert_same_values(got, want, op)


def test_float_kernels_match_onnx_reference(tmp_path):
    """All the float unary kernels in one model: host C against onnx.reference, within a
    few units in the last place (libm's float functions against numpy's), and the same C
    warning-free for the Cortex-M4."""
    x = edge_input()
    model = side_by_side([(op, attrs, 1) for op, attrs in FLOAT_UNARY], {"x": x})
    compiled = compile_onnx(model)
    got = host_model(compiled, tmp_path).run(x)
    with np.errstate(all="ignore"):
        want = run_reference(model, [x])
    for (op, attrs), g, w in zip(FLOAT_UNARY, got, want, strict=True):
        assert_same_values(g, w, f"{op} {attrs}", rtol=1e-5, atol=1e-6)
    compile_for_cortex_m4(compiled, tmp_path / "m4")


def test_softplus_and_mish_do_not_overflow(tmp_path):
    """ONNX's formula log(exp(x) + 1) is infinite in float32 from x = 89; the function is x
    there, which the kernels (and numpy's logaddexp) give."""
    x = np.array([[80.0, 89.0, 100.0, 1e30, -100.0, -1e30]], np.float32)
    model = side_by_side([("Softplus", {}, 1), ("Mish", {}, 1)], {"x": x})
    softplus, mish = host_model(compile_onnx(model), tmp_path).run(x)
    np.testing.assert_allclose(softplus, np.where(x > 0, x, 0), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(mish, np.where(x > 0, x, -0.0), rtol=1e-6, atol=1e-30)
    assert np.isfinite(softplus).all() and np.isfinite(mish).all()


def test_round_is_half_to_even(tmp_path):
    x = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999998, 8388609.0]], np.float32)
    (got,) = host_model(compile_onnx(side_by_side([("Round", {}, 1)], {"x": x})),
                        tmp_path).run(x)
    np.testing.assert_array_equal(got, [[0, 2, 2, -0.0, -2, -2, 2, 8388609.0]])


# Operators of integer and bool tensors, by input type.
INTEGER_UNARY = {
    "int8": ["Neg", "Abs", "Sign", "BitwiseNot", "Relu"],
    "int64": ["Neg", "Abs", "Sign", "BitwiseNot"],
    "uint8": ["Abs", "Sign", "BitwiseNot"],
    "uint32": ["Abs", "Sign", "BitwiseNot"],
    "bool": ["Not"],
}


@pytest.mark.parametrize("dtype", INTEGER_UNARY)
def test_integer_kernels_wrap_as_numpy(dtype, tmp_path):
    """Neg and Abs of the lowest value wrap to it, as numpy's do (-(-128) = -128 in int8),
    computed without signed overflow in C; unsigned Abs is the identity."""
    if dtype == "bool":
        x = np.array([[True, False, True]])
    else:
        info = np.iinfo(dtype)
        x = np.concatenate([[info.min, info.max, 0, 1, info.min + 1],
                            np.random.default_rng(1).integers(info.min, info.max, 27,
                                                              dtype=dtype)]).astype(dtype)
        x = x.reshape(2, 16)
    ops = INTEGER_UNARY[dtype]
    model = side_by_side([(op, {}, 1) for op in ops], {"x": x})
    compiled = compile_onnx(model)
    got = host_model(compiled, tmp_path).run(x)
    want = run_reference(model, [x])
    for op, node, g, w in zip(ops, compiled.graph.nodes, got, want, strict=True):
        assert node.op == op
        assert_same_values(g, w, op)
        np.testing.assert_array_equal(REGISTRY[op].reference(node, x)[0], w)
    compile_for_cortex_m4(compiled, tmp_path / "m4")


@pytest.mark.parametrize("op,dtype", [("Exp", np.int32), ("Neg", np.uint8), ("Not", np.int8),
                                      ("Gelu", np.int8), ("BitwiseNot", np.float32)])
def test_unsupported_type_is_one_clear_line(op, dtype):
    model = single_node_model(op, {"x": np.zeros((2, 3), dtype)}, opset=OPSET)
    with pytest.raises(UnsupportedError, match=rf"node '{op.lower()}_node' \({op}\): data "
                       rf"type {np.dtype(dtype).name} of 'x' is not supported; supported: "):
        compile_onnx(model)


def test_gelu_approximation_outside_onnx_is_refused():
    model = single_node_model("Gelu", {"x": np.zeros((2, 3), np.float32)}, opset=OPSET)
    model.graph.node[0].attribute.append(helper.make_attribute("approximate", "erf"))
    with pytest.raises(UnsupportedError, match="approximate 'erf' is not supported; "
                       "supported: approximate none, tanh"):
        compile_onnx(model)


# -- Cast and CastLike ---------------------------------------------------------------------

HELD = ["float32", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
        "bool"]


def cast_rows(targets):
    return [("Cast", {"to": helper.np_dtype_to_tensor_dtype(np.dtype(t))}, 1) for t in targets]


def test_cast_from_float_saturates_out_of_range_and_nan(tmp_path):
    """float32 to every held type: truncation toward zero in range (as onnx.reference),
    the type's limits beyond it and 0 for NaN (ONNX leaves those unspecified; C would
    leave them undefined)."""
    x = np.array([[0.0, -0.0, 0.7, -0.7, 1.5, -1.5, 126.9, 127.5, 128.0, -128.9, -129.0, 255.9,
                   256.0, 32767.5, -32769.0, 65536.0, 2.0**31, -2.0**31 - 4096, 2.0**32,
                   2.0**63, -2.0**63, -2.0**64, 2.0**64, 1e30, -1e30, np.inf, -np.inf, np.nan,
                   3.0, -3.0, 100.0, -100.0]], np.float32)
    model = side_by_side(cast_rows(HELD), {"x": x})
    compiled = compile_onnx(model)
    got = host_model(compiled, tmp_path).run(x)
    with np.errstate(all="ignore"):
        want = run_reference(model, [x])
    for target, g, w in zip(HELD, got, want, strict=True):
        np.testing.assert_array_equal(g, convert(x, target), err_msg=target)
        if target == "bool" or target == "float32":
            np.testing.assert_array_equal(g, w, err_msg=target)
            continue
        info = np.iinfo(target)
        fits = np.isfinite(x) & (x > info.min - 1) & (x < float(info.max) + 1)
        np.testing.assert_array_equal(g[fits], w[fits], err_msg=target)
        assert (g[x >= float(info.max) + 1] == info.max).all()
        assert (g[x <= info.min] == info.min).all()
        assert (g[np.isnan(x)] == 0).all()
    compile_for_cortex_m4(compiled, tmp_path / "m4")


@pytest.mark.parametrize("source", ["int64", "uint8", "int8", "bool"])
def test_cast_from_integers_and_bool(source, tmp_path):
    """Integers and bool to every held type: wrapping as numpy does, to bool by nonzero."""
    if source == "bool":
        x = np.array([[True, False, True, True]])
    else:
        info = np.iinfo(source)
        x = np.array([[info.min, info.max, 0, 1, -1 if info.min else 2, 300, 70000, 2**40
                       ]]).astype(np.int64).astype(source)
    model = side_by_side(cast_rows(HELD), {"x": x})
    got = host_model(compile_onnx(model), tmp_path).run(x)
    want = run_reference(model, [x])
    for target, g, w in zip(HELD, got, want, strict=True):
        assert_same_values(g, w, f"{source} -> {target}")


def test_cast_to_a_type_ariel_does_not_hold():
    model = single_node_model("Cast", {"x": np.zeros((2, 3), np.float32)}, opset=OPSET,
                              to=TensorProto.DOUBLE)
    with pytest.raises(UnsupportedError, match=r"\(Cast\): cast to float64 is not supported; "
                       "supported: cast to float32, int8"):
        compile_onnx(model)


def test_castlike_to_a_run_time_tensors_type(tmp_path):
    """CastLike reads only its second input's type: of a run-time tensor, the kernel leaves
    it unread (and compiles warning-free); of a constant to a run-time tensor's type (as
    ONNX's function bodies write their constants), it folds at compile time."""
    x = np.array([[1.7, -2.5, 300.0]], np.float32)
    like = np.array([[0, 0, 0]], np.int16)
    nodes = [helper.make_node("CastLike", ["x", "like"], ["y0"]),
             helper.make_node("CastLike", ["half", "x"], ["h"]),
             helper.make_node("Mul", ["x", "h"], ["y1"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape),
                     helper.make_tensor_value_info("like", TensorProto.INT16, like.shape)],
        [helper.make_empty_tensor_value_info("y0"), helper.make_empty_tensor_value_info("y1")],
        [onnx.numpy_helper.from_array(np.array(0.5, np.float64), "half")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    compiled = compile_onnx(model)
    assert [n.op for n in compiled.graph.nodes] == ["CastLike", "Mul"]
    got = host_model(compiled, tmp_path).run(x, like)
    for g, w in zip(got, run_reference(model, [x, like]), strict=True):
        assert_same_values(g, w, "CastLike")
    compile_for_cortex_m4(compiled, tmp_path / "m4")
