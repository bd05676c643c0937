"""One row of A times constant int8 filters packed two to a halfword (output_pairs.py,
ariel_dot_pairs_s8): the stream decodes to the filters; what the packing refuses; and
hand-built QLinearMatMul models over the shapes the kernel splits differently (steps of six
outputs, one or two pairs left over, an odd last filter, k not a multiple of four), zero
points folded or not, and sums that wrap around 32 bits, whose host-built C (plain and on
the DSP twins) equals the integer reference exactly. tests/compiler/ops/test_s8_dsp_qemu.py
runs some of them on the real instructions."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.ops.output_pairs import PAIRS_PER_STEP, pack_output_pairs
from tests.compiler.ops.test_conv_s8 import check_int8, int8_ops
from tests.support import compile_onnx_int8


def decode(packed: np.ndarray, count: int, k: int) -> np.ndarray:
    """The filters [count, k] back from a stream, read as the DSP kernel reads it: halfword
    h and its low byte give w_a = low byte, w_b = (h - w_a) / 256."""
    k4 = -(-k // 4) * 4
    words, pairs = k4 // 2, count // 2
    rows = np.zeros((count, k4), np.int64)
    stream = packed.astype(np.int64)
    offset = 0
    for start in range(0, pairs, PAIRS_PER_STEP):
        step = min(PAIRS_PER_STEP, pairs - start)
        block = stream[offset:offset + 4 * step * words].reshape(words, step, 4)
        offset += block.size
        for p in range(step):
            for j in range(words):
                for h in range(2):
                    low, above = block[j, p, 2 * h], block[j, p, 2 * h + 1]
                    half = 256 * above + (low & 0xFF)  # the int16 the bytes form
                    column = 4 * (j // 2) + j % 2 + 2 * h
                    rows[2 * (start + p), column] = low
                    rows[2 * (start + p) + 1, column] = (half - low) // 256
    if count % 2:
        rows[-1] = stream[offset:offset + k4]
        offset += k4
    assert offset == packed.size
    return rows[:, :k]


@pytest.mark.parametrize("count", [2, 5, 6, 7, 13, 16])
@pytest.mark.parametrize("k", [3, 8, 10])
def test_stream_decodes_to_the_filters(count, k):
    rng = np.random.default_rng(count * 100 + k)
    rows = rng.integers(-128, 128, (count, k))
    low, high = rows[0:count - 1:2], rows[1::2]  # views: -128 above a negative w_a refused
    high[(low < 0) & (high == -128)] = -127
    pairs = pack_output_pairs(rows, 128)
    assert pairs is not None and pairs.packed.dtype == np.int8
    assert (pairs.steps, pairs.tail, pairs.single) == (count // 6, count // 2 % 3,
                                                       bool(count % 2))
    np.testing.assert_array_equal(decode(pairs.packed, count, k), rows)


def test_what_the_packing_refuses():
    # -128 above a negative w_a would be stored as -129; above a positive one it fits.
    assert pack_output_pairs(np.array([[-1, 5], [-128, 0]]), 128) is None
    assert pack_output_pairs(np.array([[1, 5], [-128, 0]]), 128) is not None
    assert pack_output_pairs(np.array([[1, 2, 3]]), 128) is None  # one filter: no pair
    # 256 * 128 * sum |w_b| must stay below 2^31: 65,535 is the largest sum allowed.
    heavy = np.full((2, 517), 127)
    heavy[1, -1] = 3
    assert pack_output_pairs(heavy, 128) is not None
    heavy[1, -1] = 4
    assert pack_output_pairs(heavy, 128) is None


def qlinear_row_model(b: np.ndarray, a_zero_point: int, y_scale: float) -> onnx.ModelProto:
    """QLinearMatMul of an int8 row [1, K] by the constant int8 B [K, N], per column."""
    k, n = b.shape
    constants = {"a_scale": np.array(0.02, np.float32),
                 "a_zero_point": np.array(a_zero_point, np.int8), "b": b.astype(np.int8),
                 "b_scale": np.linspace(0.002, 0.01, n).astype(np.float32),
                 "b_zero_point": np.zeros(n, np.int8),
                 "y_scale": np.array(y_scale, np.float32), "y_zero_point": np.array(-3, np.int8)}
    node = helper.make_node("QLinearMatMul", ["a", *constants], ["y"])
    graph = helper.make_graph(
        [node], "row", [helper.make_tensor_value_info("a", TensorProto.INT8, (1, k))],
        [helper.make_tensor_value_info("y", TensorProto.INT8, (1, n))],
        [numpy_helper.from_array(v, key) for key, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def heavy_filters() -> np.ndarray:
    """B [517, 2]: both filters all 127 but the last weight of the second (sum 65,535, the
    most the check allows): with every input at -128, 256 x . w_b + x . w_a is below -2^31,
    so the SMLAD sum wraps."""
    b = np.full((517, 2), 127)
    b[-1, 1] = 3
    return b


# name: (B [K, N] or its shape for random weights, A's zero point, output scale)
CASES = {
    "one_pair": ((16, 2), 9, 0.4),
    "step_and_odd_filter_k_tail": ((10, 7), -20, 0.3),
    "two_pairs_and_odd_filter": ((12, 5), 0, 0.3),
    "steps_and_two_pairs": ((40, 16), 100, 0.8),
    "k_below_four": ((3, 6), 5, 0.1),
    # The asm tails (ariel_dot_pairs_s8): one pair after steps, k padded, an odd last filter.
    "step_one_pair_and_odd_filter": ((13, 9), -128, 0.3),
    "one_pair_k_tail": ((6, 2), 127, 0.2),
    "wrapping_sums": (heavy_filters(), 0, 40.0),
}


def case_model(case: str) -> tuple[onnx.ModelProto, int]:
    rng = np.random.default_rng(sum(map(ord, case)))
    b, zero_point, y_scale = CASES[case]
    if isinstance(b, tuple):
        b = rng.integers(-127, 128, b)
    return qlinear_row_model(b, zero_point, y_scale), b.shape[0]


def case_inputs(case: str, k: int) -> list[list[np.ndarray]]:
    """Random rows, and the two extremes (every input -128, every input 127)."""
    rng = np.random.default_rng(7)
    rows = [rng.integers(-128, 128, (1, k)) for _ in range(3)]
    rows += [np.full((1, k), -128), np.full((1, k), 127)]
    return [[row.astype(np.int8)] for row in rows]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_one_row_pairs_are_bit_exact(case, tmp_path):
    model, k = case_model(case)
    compiled = compile_onnx_int8(model, None, io="int8")
    assert int8_ops(compiled) == ["MatMul"]
    assert [kernel["kernel"] for kernel in compiled.info.kernels] == ["matmul_pairs_s8"]
    check_int8(compiled, case_inputs(case, k), tmp_path, f"pairs {case}", model=model)


def test_a_w_b_of_minus_128_above_a_negative_w_a_takes_the_packed_kernel(tmp_path):
    rng = np.random.default_rng(8)
    b = rng.integers(-127, 128, (8, 4))
    b[2, 0], b[2, 1] = -5, -128
    model = qlinear_row_model(b, 3, 0.3)
    compiled = compile_onnx_int8(model, None, io="int8")
    assert [kernel["kernel"] for kernel in compiled.info.kernels] == ["matmul_packed_s8"]
    check_int8(compiled, case_inputs("fallback", 8), tmp_path, "pairs refused", model=model)
