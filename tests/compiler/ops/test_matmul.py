"""MatMul with numpy semantics (2-D, batched with broadcasting, 1-D operands), constant or
run-time operands, against onnx.reference through host-compiled C and through ariel's
numpy reference of the compiled graph."""

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.base import Names
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_gemm import chain, check, frozen
from tests.support import compile_onnx, random_array, single_node_model

# shapes of A and B, and which of them are constants
CASES = {
    "2d": dict(a=(3, 4), b=(4, 3), const=""),
    "3d": dict(a=(2, 3, 4), b=(2, 4, 3), const=""),
    "4d": dict(a=(1, 2, 3, 4), b=(1, 2, 4, 3), const=""),
    "broadcast_batch": dict(a=(3, 1, 3, 4), b=(1, 2, 4, 2), const=""),
    "batched_by_2d": dict(a=(2, 3, 5, 4), b=(4, 6), const=""),
    "2d_by_batched": dict(a=(5, 4), b=(3, 4, 2), const=""),
    "1d_by_3d": dict(a=(4,), b=(2, 4, 1), const=""),
    "4d_by_1d": dict(a=(1, 2, 4, 3), b=(3,), const=""),
    "1d_by_1d": dict(a=(3,), b=(3,), const=""),
    "1d_by_2d": dict(a=(5,), b=(5, 3), const=""),
    "2d_by_1d": dict(a=(3, 5), b=(5,), const=""),
    "constant_B": dict(a=(3, 7), b=(7, 5), const="b"),
    "constant_batched_B": dict(a=(2, 3, 4), b=(2, 4, 5), const="b"),
    "constant_broadcast_B": dict(a=(3, 2, 4), b=(1, 4, 5), const="b"),
    "constant_1d_B": dict(a=(2, 3, 4), b=(4,), const="b"),
    "constant_A": dict(a=(3, 4), b=(4, 2), const="a"),
    "constant_batched_A": dict(a=(2, 1, 3, 4), b=(3, 4, 2), const="a"),
    "constant_1d_A": dict(a=(4,), b=(2, 4, 3), const="a"),
}


def matmul_model(rng, spec: dict) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    values = {"a": random_array(rng, spec["a"]), "b": random_array(rng, spec["b"])}
    model = single_node_model("MatMul", values)
    model = frozen(model, {k: v for k, v in values.items() if k in spec["const"]})
    return model, [v for k, v in values.items() if k not in spec["const"]]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_matmul_matches_onnx_reference(case, tmp_path):
    model, inputs = matmul_model(np.random.default_rng(1), CASES[case])
    check(model, inputs, tmp_path)


def test_constant_B_is_stored_with_k_contiguous():
    model, _ = matmul_model(np.random.default_rng(2), dict(a=(3, 7), b=(7, 5), const="b"))
    b = numpy_helper.to_array(model.graph.initializer[0])
    compiled = compile_onnx(model)
    node = compiled.graph.nodes[0]
    kernel = REGISTRY["MatMul"].lower(node, compiled.graph, Names("m", "f"))
    # [N][K] (k contiguous), packed four outputs at a time: [N/4][K][4], then the rest.
    packed = np.concatenate([b.T[:4].T.reshape(-1), b.T[4:].reshape(-1)])
    np.testing.assert_array_equal(kernel.weights["b"], packed)
    assert "ariel_dot_f32(acc, 2, 4, row, 1, 0, w, 7);" in compiled.files["m.c"]
    assert compiled.info.kernels[0]["macs"] == 3 * 5 * 7


@pytest.mark.parametrize("shape_a, shape_b, macs", [
    ((2, 3, 4), (2, 4, 5), 2 * 3 * 5 * 4),
    ((4,), (2, 4, 3), 2 * 3 * 4),
    ((3,), (3,), 3),
])
def test_macs(shape_a, shape_b, macs):
    model, _ = matmul_model(np.random.default_rng(3), dict(a=shape_a, b=shape_b, const=""))
    assert compile_onnx(model).info.kernels[0]["macs"] == macs


def test_transposed_operand_is_read_in_place(tmp_path):
    """A Transpose in front of MatMul is a view; the kernel reads its input through
    strides, so no copy is inserted."""
    rng = np.random.default_rng(4)
    x = random_array(rng, (2, 5, 3))
    model = chain([helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
                   helper.make_node("MatMul", ["t", "w"], ["y"])],
                  {"x": x}, {"w": random_array(rng, (5, 4))}, ["y"])
    assert [n.op for n in compile_onnx(model).graph.nodes] == ["Transpose", "MatMul"]
    check(model, [x], tmp_path)


def test_matmul_followed_by_relu_is_fused(tmp_path):
    rng = np.random.default_rng(5)
    a, b = random_array(rng, (2, 3, 4)), random_array(rng, (2, 4, 5))
    model = chain([helper.make_node("MatMul", ["a", "b"], ["p"]),
                   helper.make_node("Relu", ["p"], ["y"])], {"a": a, "b": b}, {}, ["y"])
    compiled = compile_onnx(model)
    assert [(n.op, n.clamp) for n in compiled.graph.nodes] == [("MatMul", (0.0, np.inf))]
    check(model, [a, b], tmp_path)


def test_integer_matmul_is_rejected_clearly():
    a = np.ones((2, 3), np.int32)
    model = single_node_model("MatMul", {"a": a, "b": np.ones((3, 2), np.int32)})
    with pytest.raises(UnsupportedError, match="data type int32 .* supported: float32"):
        compile_onnx(model)
