"""Output columns of an int8 dense layer (constant B) whose result is the same for every input
are not computed (constant_channels.py, gemm.py): hand-built QDQ Gemm and MatMul models with
dead columns (weight scales a million times below the others', their bias near int32's limit
as converters leave them) and columns that saturate whatever the input; one row (the pairs
kernel) and several (the packed kernel), batch axes, odd counts of computed columns. The host
C, plain and with the DSP path on ariel_runtime.h's C twins, equals ariel's integer reference
(which runs the model's own weights) bit for bit and ONNX Runtime within one unit; one shape
runs on a Cortex-M4 in QEMU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.compiler.ops.test_constant_channels import samples
from tests.compiler.ops.test_conv_s8 import check_int8
from tests.compiler.ops.test_s8_dsp_qemu import check_on_cortex_m4
from tests.support import compile_onnx_int8

# name: op, A's shape, output columns, the dead columns (tiny scales), the columns that
# saturate low and high whatever the input (Gemm's bias; MatMul has none), the kernel.
CASES = {
    "one_row_odd_count": ("Gemm", (1, 40), 12, [1, 2, 5, 7, 9], [3], [10], "matmul_pairs_s8"),
    "rows_odd_count": ("Gemm", (5, 64), 15, [0, 4, 5, 6, 9, 12], [2], [13],
                       "matmul_packed_s8"),
    "batched_rows": ("MatMul", (2, 3, 48), 10, [1, 3, 4, 8], [], [], "matmul_packed_s8"),
}


def dense_model(rng: np.random.Generator, op: str, a_shape: tuple, columns: int,
                dead: list[int], low: list[int], high: list[int]) -> onnx.ModelProto:
    """A QDQ dense layer of an int8 input by int8 weights over the full range, one scale per
    column: Gemm (B [N, K], transB, with an int32 bias) or MatMul (B [K, N], no bias). `dead`
    columns get weight scales of 1e-9 (and Gemm's a bias near +-2e9), `low`/`high` ones a
    bias that saturates them."""
    k = a_shape[-1]
    w = rng.integers(-127, 128, (columns, k)).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.01, columns).astype(np.float32)
    w_scale[dead] = 1e-9
    x_scale = np.float32(0.03)
    constants = {"x_scale": np.array(x_scale), "x_zero_point": np.array(-5, np.int8),
                 "w": w if op == "Gemm" else np.ascontiguousarray(w.T), "w_scale": w_scale,
                 "w_zero_point": np.zeros(columns, np.int8),
                 "y_scale": np.array(0.05, np.float32), "y_zero_point": np.array(-20, np.int8)}
    nodes = [helper.make_node("DequantizeLinear", ["x", "x_scale", "x_zero_point"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero_point"], ["wd"],
                              axis=0 if op == "Gemm" else 1)]
    if op == "Gemm":
        bias = rng.integers(-3000, 3000, columns).astype(np.int32)
        bias[dead] = rng.choice([-2_000_000_000, 2_000_000_000], len(dead))
        bias[low], bias[high] = -1_500_000_000, 1_500_000_000
        constants.update(b=bias, b_scale=(x_scale * w_scale).astype(np.float32),
                         b_zero_point=np.zeros(columns, np.int32))
        nodes += [helper.make_node("DequantizeLinear", ["b", "b_scale", "b_zero_point"], ["bd"],
                                   axis=0),
                  helper.make_node("Gemm", ["xd", "wd", "bd"], ["g"], transB=1)]
    else:
        nodes.append(helper.make_node("MatMul", ["xd", "wd"], ["g"]))
    nodes.append(helper.make_node("QuantizeLinear", ["g", "y_scale", "y_zero_point"], ["y"]))
    graph = helper.make_graph(
        nodes, "constant_columns", [helper.make_tensor_value_info("x", TensorProto.INT8, a_shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT8, (*a_shape[:-1], columns))],
        [numpy_helper.from_array(v, key) for key, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def case_model(case: str) -> tuple[onnx.ModelProto, np.random.Generator]:
    rng = np.random.default_rng(sum(map(ord, case)))
    op, a_shape, columns, dead, low, high, _ = CASES[case]
    return dense_model(rng, op, a_shape, columns, dead, low, high), rng


@pytest.mark.parametrize("case", CASES)
def test_constant_columns_are_not_computed(case, tmp_path):
    op, a_shape, columns, dead, low, high, kernel = CASES[case]
    model, rng = case_model(case)
    compiled = compile_onnx_int8(model, None, io="int8")
    assert [k["kernel"] for k in compiled.info.kernels] == [kernel]
    source = compiled.files["m.c"]
    words = " ".join(source.replace("\n *", " ").split())
    constant = sorted(dead + low + high)
    # (an odd count left to compute takes the last constant column back: two at a time)
    skipped = constant[:-1] if (columns - len(constant)) % 2 else constant
    listed = ", ".join(map(str, skipped))
    assert (f"{len(skipped)} of {columns} output columns ({listed}) give one output" in words
            and "so they are not computed" in words)
    assert "spread_to" in source
    # (the build's notes tell the user, with the count of MACs left out)
    macs = int(np.prod(a_shape)) * columns
    assert [note for note in compiled.source.notes if "MACs not computed" in note] == [
        f"{op} '{op}_{3 if op == 'Gemm' else 2}': {macs // columns * len(skipped):,} of its "
        f"{macs:,} MACs not computed: output channels that are one value whatever the input "
        "(listed in its kernel's comment), their filters not stored"]
    outputs = check_int8(compiled, samples(rng, a_shape), tmp_path, f"constant columns {case}",
                         model=model)
    # (the skipped columns really are one value each, over every input tried, and the
    # computed ones are not)
    for column in range(columns):
        values = np.unique(outputs[..., column]).size
        assert (values == 1) == (column in constant), column


def test_constant_columns_on_a_cortex_m4_in_qemu(tmp_path):
    model, rng = case_model("rows_odd_count")
    compiled = compile_onnx_int8(model, None, io="int8")
    assert "spread_to" in compiled.files["m.c"]
    check_on_cortex_m4(compiled, samples(rng, CASES["rows_odd_count"][1])[:2], tmp_path)
