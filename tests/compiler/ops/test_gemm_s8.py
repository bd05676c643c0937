"""int8 Gemm and MatMul: float one-node models quantized by ONNX Runtime (QDQ) and a
hand-built QLinearMatMul. Generated C (host build) equals ariel's integer reference exactly
and ONNX Runtime within one unit; what the int8 kernels refuse; and a build of the int8 C
for the Cortex-M4 with the firmware's flags."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.ir import Graph, Node, QuantParams, Tensor
from codegen.compiler.ops import REGISTRY
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_conv_s8 import (
    CALIBRATION_SAMPLES,
    check_int8,
    int8_ops,
    qlinear_conv_model,
    quantize_input,
)
from tests.compiler.ops.test_gemm import chain
from tests.support import compile_for_cortex_m4, compile_onnx_int8, single_node_model

LOW, HIGH = -0.3, 1.0  # calibration and test inputs: asymmetric, so zero points are not 0


def product_model(rng, op: str, a: tuple, b: tuple, c: tuple | None = None,
                  b_constant: bool = True, **attrs) -> onnx.ModelProto:
    """Gemm or MatMul of input `a` by a constant (or run-time) `b`, plus a constant `c`."""
    inputs = {"a": np.zeros(a, np.float32)}
    constants = {}
    if b_constant:
        constants["b"] = rng.uniform(-1, 1, b).astype(np.float32)
    else:
        inputs["b"] = np.zeros(b, np.float32)
    if c is not None:
        constants["c"] = rng.uniform(-0.5, 0.5, c).astype(np.float32)
    return single_node_model(op, inputs, constants, opset=13, **attrs)


def run_case(model: onnx.ModelProto, rng, tmp_path, label: str):
    """Quantize on random calibration samples, compile with int8 I/O, and check a few inputs
    against run_graph (exactly) and ONNX Runtime (within one unit)."""
    shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
              for i in model.graph.input}
    calibration = {name: rng.uniform(LOW, HIGH, (CALIBRATION_SAMPLES, *shape)).astype(
        np.float32) for name, shape in shapes.items()}
    compiled = compile_onnx_int8(model, calibration, io="int8")
    inputs = [[quantize_input(compiled, rng.uniform(LOW, HIGH, shape).astype(np.float32), k)
               for k, shape in enumerate(shapes.values())] for _ in range(4)]
    check_int8(compiled, inputs, tmp_path, label)
    return compiled


GEMM_CASES = {
    "transB_bias": dict(a=(4, 16), b=(5, 16), c=(5,), transB=1),
    "transB_no_bias": dict(a=(4, 16), b=(5, 16), transB=1),
    "B_bias": dict(a=(3, 12), b=(12, 6), c=(6,)),
    "B_no_bias": dict(a=(3, 12), b=(12, 6)),
    "transA_transB": dict(a=(10, 2), b=(7, 10), c=(7,), transA=1, transB=1),
    "one_row_64_inputs": dict(a=(1, 64), b=(10, 64), c=(10,), transB=1),
    # One row whose widened copy (2 x 1,568 bytes) fits the stack budget that two rows'
    # (6,272 bytes) would not: a classifier head after a flattened feature map.
    "one_long_row": dict(a=(1, 1568), b=(10, 1568), c=(10,), transB=1),
    "k_tail_odd_n": dict(a=(3, 10), b=(5, 10), c=(5,), transB=1),
    "run_time_B_bias": dict(a=(3, 8), b=(8, 4), c=(4,), b_constant=False),
    "run_time_transB": dict(a=(3, 8), b=(4, 8), c=(4,), b_constant=False, transB=1),
}


@pytest.mark.parametrize("case", GEMM_CASES, ids=list(GEMM_CASES))
def test_gemm_s8(case, tmp_path):
    rng = np.random.default_rng(20)
    compiled = run_case(product_model(rng, "Gemm", **GEMM_CASES[case]), rng, tmp_path,
                        f"Gemm {case}")
    assert int8_ops(compiled) == ["Gemm"]
    source = compiled.files["m.c"]
    spec = GEMM_CASES[case]
    if spec.get("b_constant", True) and not spec.get("transA"):
        # B packed at compile time whatever transB says, the output stage from a table.
        assert "const int8_t *w = m_n00_gemm_b;" in source
        assert "ariel_requantize_hi(acc[0], m_n00_gemm_rq[2 * n]" in source
    elif spec.get("transA"):
        # A transposed: its k is not contiguous, so the strided kernel reads it.
        assert "ariel_dot_" not in source and "acc += (" in source
    else:
        assert "+ b_offset)" in source


def test_gemm_s8_followed_by_relu(tmp_path):
    rng = np.random.default_rng(21)
    model = chain([helper.make_node("Gemm", ["a", "w", "c"], ["g"], transB=1),
                   helper.make_node("Relu", ["g"], ["y"])],
                  {"a": np.zeros((3, 20), np.float32)},
                  {"w": rng.uniform(-1, 1, (8, 20)).astype(np.float32),
                   "c": rng.uniform(-0.5, 0.5, (8,)).astype(np.float32)}, ["y"], opset=13)
    compiled = run_case(model, rng, tmp_path, "Gemm+Relu")
    assert int8_ops(compiled) == ["Gemm"]
    assert int(compiled.graph.tensor(compiled.graph.outputs[0]).quant.zero_point) == -128


MATMUL_CASES = {
    "2d_constant_B": dict(a=(4, 16), b=(16, 5)),
    "batched_A_constant_2d_B": dict(a=(2, 3, 16), b=(16, 5)),
    "2d_run_time_B": dict(a=(3, 8), b=(8, 4), b_constant=False),
    "batched_run_time_B": dict(a=(2, 3, 8), b=(2, 8, 4), b_constant=False),
    "broadcast_run_time_B": dict(a=(2, 3, 8), b=(8, 4), b_constant=False),
    # attention's shapes: [batch, heads, tokens, head size] by [batch, heads, head size,
    # tokens], and the scores by the values
    "attention_scores": dict(a=(1, 2, 10, 8), b=(1, 2, 8, 10), b_constant=False),
    "attention_values": dict(a=(1, 2, 10, 10), b=(1, 2, 10, 8), b_constant=False),
    "broadcast_heads": dict(a=(2, 1, 5, 8), b=(1, 3, 8, 4), b_constant=False),
}


@pytest.mark.parametrize("case", MATMUL_CASES, ids=list(MATMUL_CASES))
def test_matmul_s8(case, tmp_path):
    rng = np.random.default_rng(22)
    compiled = run_case(product_model(rng, "MatMul", **MATMUL_CASES[case]), rng, tmp_path,
                        f"MatMul {case}")
    assert int8_ops(compiled) == ["MatMul"]
    source = compiled.files["m.c"]
    # B's zero point enters the inner product only when B is an activation (weights are
    # symmetric), and only when it is not 0.
    b_zero_point = 0
    if not MATMUL_CASES[case].get("b_constant", True):
        b_zero_point = int(compiled.graph.tensor(compiled.graph.inputs[1]).quant.zero_point)
        assert b_zero_point != 0
    assert ("+ b_offset)" in source) == (b_zero_point != 0)


def test_int8_attention_reads_its_transposed_keys_in_place(tmp_path):
    """q k^T as PyTorch exports it: k [1, heads, tokens, head size] (here computed by an Add,
    after which ONNX Runtime quantizes the Transpose too) through a Transpose view, both
    operands activations (quantized per tensor, zero points not 0); the int8 kernel reads
    the keys through strides, with no copy."""
    rng = np.random.default_rng(29)
    model = chain([helper.make_node("Add", ["x", "shift"], ["k"]),
                   helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
                   helper.make_node("MatMul", ["q", "kt"], ["scores"])],
                  {"q": np.zeros((1, 2, 12, 8), np.float32),
                   "x": np.zeros((1, 2, 12, 8), np.float32)},
                  {"shift": np.array([0.1], np.float32)}, ["scores"], opset=13)
    compiled = run_case(model, rng, tmp_path, "q k^T")
    assert [n.op for n in compiled.graph.nodes] == ["Add", "Transpose", "MatMul"]
    transposed = compiled.graph.tensor(compiled.graph.nodes[2].inputs[1])
    assert transposed.dtype == "int8" and not transposed.is_row_major


def qlinear_matmul_model(rng, per_column: bool, a_shape=(2, 3, 16), b_shape=(16, 5)
                         ) -> onnx.ModelProto:
    """A hand-built QLinearMatMul: int8 A, constant int8 symmetric B."""
    n = b_shape[-1]
    b_scale = (rng.uniform(0.002, 0.01, n) if per_column else np.array(0.005)).astype(
        np.float32)
    constants = {"a_scale": np.array(0.02, np.float32), "a_zero_point": np.array(9, np.int8),
                 "b": rng.integers(-127, 128, b_shape).astype(np.int8), "b_scale": b_scale,
                 "b_zero_point": np.zeros(b_scale.shape, np.int8),
                 "y_scale": np.array(0.07, np.float32), "y_zero_point": np.array(-3, np.int8)}
    node = helper.make_node("QLinearMatMul", ["a", *constants], ["y"])
    graph = helper.make_graph(
        [node], "qlinear_matmul", [helper.make_tensor_value_info("a", TensorProto.INT8,
                                                                 a_shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT8, (*a_shape[:-1], n))],
        [numpy_helper.from_array(v, k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


QLINEAR_MATMUL_CASES = {
    "per_column": dict(per_column=True),
    "per_tensor": dict(per_column=False),
    "batched_constant_B_per_tensor": dict(per_column=False, b_shape=(2, 16, 5)),
}


@pytest.mark.parametrize("case", QLINEAR_MATMUL_CASES, ids=list(QLINEAR_MATMUL_CASES))
def test_qlinear_matmul(case, tmp_path):
    rng = np.random.default_rng(23)
    spec = QLINEAR_MATMUL_CASES[case]
    model = qlinear_matmul_model(rng, **spec)
    compiled = compile_onnx_int8(model, None, io="int8")
    assert int8_ops(compiled) == ["MatMul"]
    assert ("_rq[2 * n]" in compiled.files["m.c"]) == spec["per_column"]
    inputs = [[rng.integers(-128, 128, (2, 3, 16)).astype(np.int8)] for _ in range(4)]
    check_int8(compiled, inputs, tmp_path, f"QLinearMatMul {case}", model=model)


def test_gemm_s8_refuses_alpha():
    rng = np.random.default_rng(24)
    model = product_model(rng, "Gemm", (2, 8), (8, 3), (3,), alpha=0.5)
    calibration = {"a": rng.uniform(LOW, HIGH, (8, 2, 8)).astype(np.float32)}
    with pytest.raises(UnsupportedError, match="alpha 0.5 in int8 is not supported"):
        compile_onnx_int8(model, calibration, io="int8")


def test_matmul_s8_refuses_weights_quantized_along_k():
    """ONNX Runtime's quantizer gives a 3-D constant B [batch, K, N] one scale per k (its
    axis 1): the scale varies along the summed axis, so no output stage can apply it."""
    rng = np.random.default_rng(28)
    model = product_model(rng, "MatMul", (2, 3, 8), (2, 8, 4))
    calibration = {"a": rng.uniform(LOW, HIGH, (8, 2, 3, 8)).astype(np.float32)}
    with pytest.raises(UnsupportedError, match="quantized along axis 1 with 8 scales .* "
                       r"per output channel \(axis 2\)"):
        compile_onnx_int8(model, calibration, io="int8")


def test_matmul_s8_refuses_per_channel_activations():
    """Two activations multiplied: only one scale and zero point per tensor can be taken
    out of the sum. (The scheme check stops such models earlier; the kernel's own check is
    the last line.)"""
    def tensor(name, shape, scale, axis=None):
        scale = np.asarray(scale, np.float32)
        return Tensor(name, shape, "int8", quant=QuantParams(
            scale, np.zeros(scale.shape, np.int32), axis))

    tensors = {"a": tensor("a", (3, 8), 0.1), "b": tensor("b", (8, 4), [0.1] * 4, 1),
               "y": tensor("y", (3, 4), 0.2)}
    node = Node("product", "MatMul", ["a", "b"], ["y"])
    graph = Graph("g", tensors, [node], ["a", "b"], ["y"], 13)
    with pytest.raises(UnsupportedError, match="per-channel quantization of activation 'b'"):
        REGISTRY["MatMul"].check(node, graph)


def test_gemm_s8_refuses_weights_quantized_along_k():
    """A QDQ Gemm whose weights carry one scale per row of B [K, N] (axis 0, the summed
    axis), which no output stage can undo."""
    rng = np.random.default_rng(25)
    k, n = 6, 4
    constants = {"x_scale": np.array(0.02, np.float32), "x_zero_point": np.array(0, np.int8),
                 "w": rng.integers(-127, 128, (k, n)).astype(np.int8),
                 "w_scale": rng.uniform(0.01, 0.02, k).astype(np.float32),
                 "w_zero_point": np.zeros(k, np.int8),
                 "y_scale": np.array(0.1, np.float32), "y_zero_point": np.array(0, np.int8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero_point"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero_point"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero_point"], ["wd"],
                              axis=0),
             helper.make_node("Gemm", ["xd", "wd"], ["g"]),
             helper.make_node("QuantizeLinear", ["g", "y_scale", "y_zero_point"], ["y"])]
    model = chain(nodes, {"x": np.zeros((2, k), np.float32)}, constants, ["y"], opset=13)
    with pytest.raises(UnsupportedError, match="quantized along axis 0 with 6 scales"):
        compile_onnx_int8(model, None, io="int8")


def cortex_m4_models() -> dict[str, onnx.ModelProto]:
    rng = np.random.default_rng(26)
    return {"qlinear_conv": qlinear_conv_model(rng, True),
            "qlinear_matmul_per_tensor": qlinear_matmul_model(rng, False),
            "gemm": product_model(rng, "Gemm", (1, 32), (10, 32), (10,), transB=1),
            "run_time_matmul": product_model(rng, "MatMul", (2, 3, 8), (2, 8, 4),
                                             b_constant=False)}


def test_int8_kernels_compile_for_cortex_m4(tmp_path):
    """Conv, Gemm and MatMul int8 files built with the firmware's flags (-Werror,
    -Wdouble-promotion: any float or double in an int8 kernel would show)."""
    rng = np.random.default_rng(27)
    for label, model in cortex_m4_models().items():
        calibration = None
        if not any(n.op_type.startswith("QLinear") for n in model.graph.node):
            calibration = {i.name: rng.uniform(LOW, HIGH, (8, *(
                d.dim_value for d in i.type.tensor_type.shape.dim))).astype(np.float32)
                for i in model.graph.input}
        compiled = compile_onnx_int8(model, calibration, io="int8")
        kernels = compiled.files["m.c"].split("*/", 1)[1].split("void m_run")[0]
        assert "float" not in kernels and "double" not in kernels
        compile_for_cortex_m4(compiled, tmp_path / label)
