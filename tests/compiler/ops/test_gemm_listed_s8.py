"""One row of A (a ReLU's output, often at its zero point) times constant int8 filters, with
the row's nonzero column words listed (zero_words.py, ariel_list_words_s8,
ariel_dot_3pairs_listed_s8): how inputs are paired and ordered from the calibration rows;
then QLinearMatMul models compiled with calibration rows whose host-built C (plain, and the
DSP path on the C twins) and firmware on a Cortex-M4 in QEMU (the assembly, and the plain
path on the same core) equal the integer reference exactly, on rows that list few words,
rows that list none, and rows of no zero (which take the dense loop)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.compile import Options, compile_int8
from codegen.compiler.frontend import ModelSource
from codegen.compiler.ops.zero_words import plan_zero_words
from codegen.compiler.quant.calibrate import CalibrationData
from codegen.compiler.quant.report import quantization_report, quantize_inputs
from tests.compiler.ops.test_conv_s8 import check_int8
from tests.compiler.ops.test_gemm_pairs_s8 import qlinear_row_model
from tests.support import compile_onnx_int8


def test_inputs_zero_together_share_a_word():
    rng = np.random.default_rng(0)
    zeros = rng.random((40, 48)) < 0.5
    zeros[:, 7] = zeros[:, 2]  # 2 and 7 are zero together, 4 and 9 likewise
    zeros[:, 9] = zeros[:, 4]
    zero = plan_zero_words(zeros, 240)
    assert zero is not None
    pairs = {tuple(sorted(map(int, pair))) for pair in zero.sources}
    assert {(2, 7), (4, 9)} <= pairs
    assert sorted(zero.sources.reshape(-1)) == list(range(48))  # each input once


def test_words_most_often_zero_come_last_and_padding_reads_no_weight():
    rng = np.random.default_rng(1)
    zeros = rng.random((20, 38)) < 0.3
    zeros[:, 10:30] = True  # always zero: their ten words are left out every time
    zero = plan_zero_words(zeros, 120)
    assert zero is not None and zero.words == 20  # k padded to 40
    always = set(range(10, 30)) | {int(np.argmax(zeros.mean(axis=0)))}
    assert {int(i) for i in zero.sources[-11:].reshape(-1)} <= always
    rows = rng.integers(-127, 128, (3, 38))
    filters = zero.filters(rows)
    assert filters.shape == (3, 40) and zero.padding.sum() == 2
    assert (filters[:, zero.padding] == 0).all()
    # Every weight is kept once, at the position the pairing gives its input.
    np.testing.assert_array_equal(filters[:, ~zero.padding], rows[:, zero.order[~zero.padding]])
    assert sorted(zero.order[~zero.padding]) == list(range(38))
    assert 0 < zero.limit < zero.words


def test_no_list_where_it_would_not_pay():
    assert plan_zero_words(np.zeros((16, 64), bool), 64) is None  # no zero seen
    assert plan_zero_words(np.ones((16, 64), bool), 4) is None  # no step of six outputs
    assert plan_zero_words(np.ones((16, 64), bool), 64) is not None


def test_flash_wait_states_make_a_list_pay_sooner():
    """Weights read at the flash's wait states cost both loops per word read, so a list pays
    on a flash-bound board where, with no wait states, the dense loop is cheaper."""
    rng = np.random.default_rng(2)
    differ = 0
    for outputs in (30, 60, 120, 240):
        zeros = rng.random((32, 64)) < 0.6
        free, flash = plan_zero_words(zeros, outputs, 0), plan_zero_words(zeros, outputs, 5)
        assert free is None or flash is not None
        differ += free is None and flash is not None
        if free is not None:
            assert free.limit <= flash.limit  # reading fewer weights pays for longer lists
    assert differ


# name: (K, N, A's zero point, share of inputs at their zero point in the calibration rows);
# K N at least zero_words.MIN_WEIGHT_BYTES, below which no statistics are gathered.
CASES = {
    "steps_and_a_pair": (128, 62, -128, 0.6),
    "k_padded_odd_filter": (97, 51, -128, 0.6),
    "two_pairs_left_zero_point_5": (64, 100, 5, 0.7),
    "zero_point_0": (40, 120, 0, 0.6),
}


def case_rows(case: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` int8 rows [1, K] at A's zero point where an input's own rate says, in groups
    of inputs that tend to be zero together."""
    k, _, zero_point, share = CASES[case]
    rates = np.clip(rng.normal(share, 0.25, k), 0.0, 1.0)
    groups = rng.integers(0, max(k // 3, 1), k)
    rows = rng.integers(-128, 128, (count, k))
    for row in rows:
        draw = rng.random(groups.max() + 1)[groups]
        row[draw < rates] = zero_point
    return rows.reshape(count, 1, k).astype(np.int8)


def compiled_case(case: str):
    k, n, zero_point, _ = CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    model = qlinear_row_model(rng.integers(-127, 128, (k, n)), zero_point, 0.5)
    compiled = compile_onnx_int8(model, {"a": case_rows(case, 32, rng)}, io="int8")
    assert "ariel_dot_3pairs_listed_s8" in compiled.files["m.c"]
    return model, compiled


def case_inputs(case: str) -> list[list[np.ndarray]]:
    """Rows like the calibration's (short lists), rows of 1 to 17 inputs off the zero point
    (lists of every length modulo the loop's eight entries a pass), every input at the zero
    point (an empty list), no input at it (the dense loop), and the extremes."""
    k, _, zero_point, _ = CASES[case]
    rng = np.random.default_rng(11)
    rows = list(case_rows(case, 3, rng))
    for count in range(1, 18):
        row = np.full((1, k), zero_point)
        row[0, rng.choice(k, count, replace=False)] = np.where(zero_point < 0, 100, -100)
        rows.append(row)
    rows.append(np.full((1, k), zero_point))
    busy = rng.integers(-128, 128, (1, k))
    busy[busy == zero_point] = zero_point + (1 if zero_point < 127 else -1)
    rows += [busy, np.full((1, k), -128), np.full((1, k), 127)]
    return [[np.asarray(row, np.int8)] for row in rows]


@pytest.mark.parametrize("case", CASES)
def test_listed_rows_are_bit_exact(case, tmp_path):
    model, compiled = compiled_case(case)
    assert [kernel["kernel"] for kernel in compiled.info.kernels] == ["matmul_pairs_s8"]
    check_int8(compiled, case_inputs(case), tmp_path, f"listed {case}", model=model)


@pytest.mark.qemu
@pytest.mark.parametrize("case", ["steps_and_a_pair", "k_padded_odd_filter"])
def test_listed_rows_on_a_cortex_m4_in_qemu(case, tmp_path):
    from tests.compiler.ops.test_s8_dsp_qemu import check_on_cortex_m4

    _, compiled = compiled_case(case)
    check_on_cortex_m4(compiled, case_inputs(case), tmp_path,
                       plain_too=case == "k_padded_odd_filter")


def test_fixed_timing_builds_the_dense_loop_and_notes_say_why():
    k, n, zero_point, _ = CASES["steps_and_a_pair"]
    rng = np.random.default_rng(5)
    model = qlinear_row_model(rng.integers(-127, 128, (k, n)), zero_point, 0.5)
    data = CalibrationData({"a": case_rows("steps_and_a_pair", 32, rng)}, None, "tests")
    notes = {}
    for fixed in (False, True):
        source = ModelSource("m.onnx", "0" * 64, [])
        compiled = compile_int8(model, "m", source, Options(precision="int8", io="int8",
                                                            fixed_timing=fixed), "tests", data)
        listed = "ariel_dot_3pairs_listed_s8" in compiled.files["m.c"]
        assert listed != fixed
        assert bool(compiled.info.kernels[0]["input_dependent"]) == listed
        notes[fixed] = [note for note in source.notes if "depends on the input" in note]
    assert len(notes[False]) == 1 and "--fixed-timing" in notes[False][0]
    assert notes[True] == []


def relu_mlp(rng: np.random.Generator) -> onnx.ModelProto:
    """A float MLP, 64 -> 128 -> 96 -> 10 with ReLUs: its hidden rows half zeros."""
    sizes = [64, 128, 96, 10]
    nodes, constants, name = [], [], "x"
    for index, (k, n) in enumerate(zip(sizes, sizes[1:], strict=False)):
        w = rng.normal(0, 1 / np.sqrt(k), (k, n)).astype(np.float32)
        b = rng.normal(-0.1, 0.3, n).astype(np.float32)
        constants += [numpy_helper.from_array(w, f"w{index}"),
                      numpy_helper.from_array(b, f"b{index}")]
        nodes.append(helper.make_node("Gemm", [name, f"w{index}", f"b{index}"], [f"g{index}"]))
        name = f"g{index}"
        if index < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [name], [f"r{index}"]))
            name = f"r{index}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, (1, 64))], [helper.make_tensor_value_info(
            name, TensorProto.FLOAT, (1, 10))], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_a_dense_producer_writes_the_order_its_consumer_lists(tmp_path):
    """The first layer's outputs are stored in the order the second pairs them (no gather),
    the model's outputs stay bit-exact, and the quantization report, which compares the
    stored tensor with ONNX Runtime's, finds the same errors as a build that keeps the
    model's order."""
    rng = np.random.default_rng(8)
    model = relu_mlp(rng)
    samples = {"x": rng.normal(0, 1, (40, 1, 64)).astype(np.float32)}
    data = CalibrationData(samples, None, "tests")
    reports = {}
    for fixed in (False, True):
        compiled = compile_int8(model, "m", ModelSource("m.onnx", "0" * 64, []),
                                Options(precision="int8", io="int8", fixed_timing=fixed),
                                "tests", data)
        ordered = [t for t in compiled.graph.tensors.values() if t.channel_order is not None]
        assert len(ordered) == (0 if fixed else 1)
        if not fixed:
            assert "ariel_list_nonzero" in compiled.files["m.c"]
            assert "ariel_list_words_s8(" not in compiled.files["m.c"]
            rows = [[quantize_row(compiled, sample)] for sample in samples["x"][:6]]
            rows.append([np.full((1, 64), 127, np.int8)])
            check_int8(compiled, rows, tmp_path, "ordered producer")
        report = quantization_report(compiled.graph, model, compiled.quantized_model, samples)
        reports[fixed] = [(row.name, row.worst_error, row.ort_max_lsb) for row in report.layers]
    assert reports[False] == reports[True]


def quantize_row(compiled, x: np.ndarray) -> np.ndarray:
    graph = compiled.graph
    return quantize_inputs(graph, [x.reshape(graph.tensor(graph.inputs[0]).shape)])[0]
