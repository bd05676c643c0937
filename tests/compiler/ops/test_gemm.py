"""Gemm against onnx.reference through host-compiled generated C, and ariel's numpy reference
of the compiled graph against onnx.reference; the fusions that produce Gemm (MatMul+Add) or
feed it a clamp (Relu); the real models' shapes; and a build of the C for the Cortex-M4."""


import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from tests.support import (
    assert_matches_reference,
    compile_for_cortex_m4,
    compile_onnx,
    random_array,
    single_node_model,
)

# shape of A, B and C (None: no C), which of them are constants, and the attributes.
CASES = {
    "transB_constant_B_and_bias": dict(a=(2, 6), b=(4, 6), c=(4,), const="bc", transB=1),
    "constant_B_row_bias": dict(a=(3, 5), b=(5, 4), c=(1, 4), const="bc"),
    "constant_B_column_bias": dict(a=(3, 5), b=(5, 4), c=(3, 1), const="bc"),
    "constant_B_matrix_bias": dict(a=(3, 5), b=(5, 4), c=(3, 4), const="bc", beta=0.5),
    "constant_B_no_bias": dict(a=(2, 10), b=(10, 3), c=None, const="b"),
    "constant_scalar_bias": dict(a=(2, 3), b=(3, 4), c=(), const="bc", beta=2.0),
    "constant_single_element_bias": dict(a=(3, 7), b=(7, 3), c=(1,), const="bc"),
    "all_run_time_scalar_bias": dict(a=(2, 3), b=(3, 4), c=(), const=""),
    "all_run_time_matrix_bias": dict(a=(3, 6), b=(6, 4), c=(3, 4), const=""),
    "all_run_time_no_bias": dict(a=(2, 10), b=(10, 3), c=None, const=""),
    "transA_run_time": dict(a=(6, 3), b=(6, 4), c=(1, 4), const="", transA=1),
    "transB_run_time": dict(a=(3, 6), b=(4, 6), c=(1, 4), const="", transB=1),
    "all_attributes_run_time": dict(a=(4, 3), b=(5, 4), c=(1, 5), const="", transA=1,
                                    transB=1, alpha=0.25, beta=0.35),
    "alpha_folded_into_B": dict(a=(3, 5), b=(5, 4), c=(4,), const="bc", alpha=2.5,
                                beta=0.5),
    "alpha_folded_into_A": dict(a=(5, 3), b=(5, 4), c=(1, 4), const="a", transA=1,
                                alpha=0.5),
    "constant_A_run_time_B": dict(a=(3, 5), b=(4, 5), c=(3, 4), const="a", transB=1),
    "beta_zero": dict(a=(2, 7), b=(7, 4), c=(1, 4), const="", beta=0.0),
}


def check(model: onnx.ModelProto, inputs: list[np.ndarray], tmp_path, tol: float = 1e-5):
    """Generated C and ariel's numpy reference of the compiled graph, both against
    onnx.reference. (The other operator tests of this group import these helpers.)"""
    assert_matches_reference(model, inputs, tmp_path, rtol=tol, atol=tol)


def frozen(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """`model` with the named graph inputs made initializers (constants) holding `values`,
    so that any input of a node can be a constant whatever its position."""
    kept = [i for i in model.graph.input if i.name not in values]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model.graph.initializer.extend(numpy_helper.from_array(v, n) for n, v in values.items())
    onnx.checker.check_model(model)
    return model


def chain(nodes: list[onnx.NodeProto], inputs: dict[str, np.ndarray],
          constants: dict[str, np.ndarray], outputs: list[str], opset: int = 17,
          shapes: dict[str, tuple[int, ...]] | None = None) -> onnx.ModelProto:
    """A checked model of `nodes`, its outputs' types inferred by ONNX unless `shapes`
    declares them (float32) for outputs ONNX leaves untyped."""
    shapes = shapes or {}
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for n, v in inputs.items()],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, shapes[n]) if n in shapes
         else helper.make_empty_tensor_value_info(n) for n in outputs],
        [numpy_helper.from_array(v, n) for n, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def gemm_model(rng, spec: dict) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    spec = dict(spec)
    shapes = {"a": spec.pop("a"), "b": spec.pop("b"), "c": spec.pop("c")}
    const = spec.pop("const")
    values = {k: random_array(rng, s) for k, s in shapes.items() if s is not None}
    model = single_node_model("Gemm", values, **spec)
    model = frozen(model, {k: v for k, v in values.items() if k in const})
    return model, [v for k, v in values.items() if k not in const]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_gemm_matches_onnx_reference(case, tmp_path):
    model, inputs = gemm_model(np.random.default_rng(1), CASES[case])
    check(model, inputs, tmp_path)


def test_gemm_followed_by_relu_is_fused(tmp_path):
    rng = np.random.default_rng(2)
    x = random_array(rng, (2, 8))
    model = chain([helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1),
                   helper.make_node("Relu", ["g"], ["y"])],
                  {"x": x}, {"w": random_array(rng, (5, 8)), "b": random_array(rng, (5,))},
                  ["y"])
    graph = compile_onnx(model).graph
    assert [(n.op, n.clamp) for n in graph.nodes] == [("Gemm", (0.0, np.inf))]
    check(model, [x], tmp_path)


def test_gemm_followed_by_clip_is_fused(tmp_path):
    rng = np.random.default_rng(3)
    x = random_array(rng, (3, 4), low=-4, high=4)
    # Clip's bounds as attributes (opset 10): the C of Gemm is required at that opset.
    model = chain([helper.make_node("Gemm", ["x", "w", "c"], ["g"]),
                   helper.make_node("Clip", ["g"], ["y"], min=-0.5, max=0.75)],
                  {"x": x}, {"w": random_array(rng, (4, 6)), "c": random_array(rng, (6,))},
                  ["y"], opset=10)
    graph = compile_onnx(model).graph
    assert [(n.op, n.clamp) for n in graph.nodes] == [("Gemm", (-0.5, 0.75))]
    check(model, [x], tmp_path)


@pytest.mark.parametrize("bias_shape", [(6,), (1, 6), (3, 6)], ids=str)
def test_matmul_add_becomes_one_gemm(bias_shape, tmp_path):
    rng = np.random.default_rng(4)
    x = random_array(rng, (3, 5))
    model = chain([helper.make_node("MatMul", ["x", "w"], ["p"]),
                   helper.make_node("Add", ["p", "b"], ["y"])],
                  {"x": x}, {"w": random_array(rng, (5, 6)),
                             "b": random_array(rng, bias_shape)}, ["y"])
    assert [n.op for n in compile_onnx(model).graph.nodes] == ["Gemm"]
    check(model, [x], tmp_path)


def test_reshape_then_gemm_transB_as_in_the_real_models(tmp_path):
    rng = np.random.default_rng(5)
    x = random_array(rng, (1, 16, 2, 2))
    model = chain([helper.make_node("Reshape", ["x", "shape"], ["flat"]),
                   helper.make_node("Gemm", ["flat", "w", "b"], ["y"], transB=1)],
                  {"x": x}, {"shape": np.array([1, 64], np.int64),
                             "w": random_array(rng, (10, 64)),
                             "b": random_array(rng, (10,))}, ["y"])
    compiled = compile_onnx(model)
    gemm = next(n for n in compiled.graph.nodes if n.op == "Gemm")
    # B packed eight outputs at a time, k contiguous for each: one row by eight outputs.
    assert "ariel_dot_f32(acc, 1, 8, row, 1, 0, w, 64);" in compiled.files["m.c"]
    assert compiled.info.kernels[0]["macs"] == 10 * 64
    assert gemm.inputs[0] != "x"
    check(model, [x], tmp_path)


def autoencoder(rng, sizes: list[int]) -> onnx.ModelProto:
    """An MLP autoencoder made only of Gemm (transB, as PyTorch exports Linear) and Relu,
    with no Relu after the last layer."""
    nodes, constants, source = [], {}, "x"
    for layer, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        w, b = f"w{layer}", f"b{layer}"
        constants[w] = random_array(rng, (fan_out, fan_in)) / np.float32(np.sqrt(fan_in))
        constants[b] = random_array(rng, (fan_out,), low=-0.1, high=0.1)
        last = layer == len(sizes) - 2
        out = "y" if last else f"h{layer}"
        nodes.append(helper.make_node("Gemm", [source, w, b], [out if last else f"g{layer}"],
                                      transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [f"g{layer}"], [out]))
        source = out
    x = np.zeros((1, sizes[0]), np.float32)
    return chain(nodes, {"x": x}, constants, ["y"])


def test_mlp_autoencoder_of_gemm_and_relu(tmp_path):
    sizes = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    rng = np.random.default_rng(6)
    model = autoencoder(rng, sizes)
    compiled = compile_onnx(model)
    assert [n.op for n in compiled.graph.nodes] == ["Gemm"] * 10
    assert [n.clamp for n in compiled.graph.nodes] == [(0.0, np.inf)] * 9 + [None]
    assert sum(k["macs"] for k in compiled.info.kernels) == sum(
        a * b for a, b in zip(sizes, sizes[1:], strict=False))
    x = random_array(rng, (1, 640))
    check(model, [x], tmp_path, tol=1e-4)


def test_alpha_is_not_folded_where_scaling_would_underflow():
    rng = np.random.default_rng(7)
    x = random_array(rng, (2, 3))
    model = single_node_model("Gemm", {"x": x}, {"w": random_array(rng, (3, 4))},
                              alpha=1e-38)
    text = compile_onnx(model).files["m.c"]
    assert "applied to each sum" in text and "acc * 9.99999935e-39f" in text


def test_generated_c_compiles_for_cortex_m4(tmp_path):
    """A chain of every operator of this group, built with the firmware's flags."""
    rng = np.random.default_rng(8)
    x = random_array(rng, (1, 3, 4, 4))
    stats = {name: random_array(rng, (3,), low=0.5, high=1.5)
             for name in ("scale", "shift", "mean", "var")}
    model = chain([
        helper.make_node("BatchNormalization", ["x", "scale", "shift", "mean", "var"], ["bn"]),
        helper.make_node("Concat", ["bn", "extra"], ["cat"], axis=1),
        helper.make_node("Reshape", ["cat", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["g"], transB=1),
        helper.make_node("Relu", ["g"], ["h"]),
        helper.make_node("MatMul", ["h", "v"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"]),
    ], {"x": x}, {**stats, "extra": random_array(rng, (1, 1, 4, 4)),
                  "shape": np.array([1, 64], np.int64), "w": random_array(rng, (10, 64)),
                  "b": random_array(rng, (10,)), "v": random_array(rng, (10, 6))}, ["y"])
    compiled = compile_onnx(model)
    assert [n.op for n in compiled.graph.nodes] == [
        "BatchNormalization", "Concat", "Reshape", "Gemm", "MatMul", "Softmax"]
    compile_for_cortex_m4(compiled, tmp_path / "target")
    check(model, [x], tmp_path / "host")
