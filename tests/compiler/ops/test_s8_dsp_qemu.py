"""The int8 Conv, ConvTranspose, Gemm and MatMul kernels on a real DSP core: one-node models
built for mps2-an386 (a Cortex-M4, so __ARM_FEATURE_DSP and the SMLAD path), run in QEMU and
compared with ariel's integer reference bit for bit; for one case of each kernel family, the
same firmware rebuilt with ARIEL_NO_DSP, which forces the plain C path on the same core, gives
the same bytes. The host tests cover the plain path (the host has no DSP) and the DSP path on C
twins of the instructions, case by case; these check the instructions themselves. Last, the
plain path on a Cortex-M0+ (Armv6-M, no DSP): built with its flags, and run in QEMU."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codegen.compiler.reference import run_graph
from codegen.resources import data_dir
from codegen.run.emulate.qemu import run_qemu
from codegen.run.simulate import read_outputs, write_inputs
from codegen.target.boards import get_board
from codegen.target.firmware import write_project
from codegen.target.toolchain import run_make
from tests.compiler.ops.test_binary_s8 import DSP_CASES as ADD_CASES
from tests.compiler.ops.test_binary_s8 import dsp_case
from tests.compiler.ops.test_conv_s8 import CASES as CONV_CASES
from tests.compiler.ops.test_conv_s8 import compile_conv, conv_model, quantize_input
from tests.compiler.ops.test_conv_transpose_s8 import CASES as CONV_TRANSPOSE_CASES
from tests.compiler.ops.test_conv_transpose_s8 import float_model
from tests.compiler.ops.test_gemm_listed_s8 import compiled_case
from tests.compiler.ops.test_gemm_pairs_s8 import CASES, case_inputs, case_model
from tests.compiler.ops.test_gemm_s8 import GEMM_CASES, HIGH, LOW, MATMUL_CASES, product_model
from tests.compiler.ops.test_pool_s8 import (
    AVERAGE_WORD_CASES,
    MAX_WORD_CASES,
    average_words_model,
    extreme_inputs,
    qdq_one_node,
    samples_for,
)
from tests.support import compile_onnx_int8

pytestmark = pytest.mark.qemu
BOARD = "mps2-an386"
SAMPLES = 3

CONV = ["3x3_pad1", "stride2_asym_pads", "strides_2x1", "dilation", "depthwise",
        "depthwise_multiplier", "grouped", "pointwise_1x1", "same_upper", "conv1d",
        "batch2_no_bias", "wide_16_channels", "odd_pixels_and_filters", "depthwise_stride2",
        "large_field_plain_only", "staged_6ch_odd", "pairs_1ch_stride2_asym",
        "pairs_3ch_stride2_same", "pairs_2ch_5x5_odd", "pairs_3ch_shift_per_channel",
        "pairs_2ch_seven_filters", "pointwise_stride2_tails",
        "pointwise_pad_k12", "pointwise_nine_pixels_threes", "pointwise_pad_fours_and_three",
        "pointwise_steps_apart_threes", "pointwise_steps_apart_pairs"]
PRODUCTS = {f"Gemm {case}": ("Gemm", GEMM_CASES[case]) for case in
            ["transB_bias", "one_row_64_inputs", "one_long_row", "k_tail_odd_n",
             "run_time_B_bias", "transA_transB"]}
PRODUCTS.update({f"MatMul {case}": ("MatMul", MATMUL_CASES[case]) for case in
                 ["batched_A_constant_2d_B", "2d_constant_B"]})
# The cases whose plain path (ARIEL_NO_DSP) is rebuilt and run on this core too: one per
# kernel family. Every case's plain path runs on the host, and some on a Cortex-M0+ below.
PLAIN_ON_M4 = {"3x3_pad1", "depthwise", "pointwise_1x1", "pairs_1ch_stride2_asym",
               "k3_s2_p1_op1", "Gemm transB_bias", "MatMul 2d_constant_B", "wrapping_sums",
               "tail_of_three"}


def firmware(compiled, folder: Path, plain: bool = False, board: str = BOARD) -> Path:
    """`compiled` as a firmware project in `folder`, built (with ARIEL_NO_DSP if `plain`)."""
    folder.mkdir()
    write_project(folder, compiled.files, compiled.info, get_board(board), "tests",
                  compiled.plan.timeline())
    if plain:
        subprocess.run(["make", "-s", "-C", str(folder), "CC=arm-none-eabi-gcc -DARIEL_NO_DSP"],
                       check=True, capture_output=True)
    else:
        run_make(folder)
    return folder / "build" / "firmware.elf"


def run_firmware(compiled, elf: Path, inputs: list[list[np.ndarray]], workdir: Path,
                 board: str = BOARD) -> np.ndarray:
    workdir.mkdir()
    batches = [np.stack([sample[k] for sample in inputs]) for k in range(len(inputs[0]))]
    write_inputs(workdir, batches)
    run_qemu(get_board(board), elf, workdir, timeout=120)
    return read_outputs(workdir, compiled.info, len(inputs))[0]


def uses(elf: Path, mnemonic: str) -> bool:
    text = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True,
                          text=True, check=True).stdout
    return f"\t{mnemonic}\t" in text


def check_on_cortex_m4(compiled, inputs: list[list[np.ndarray]], tmp_path: Path,
                       dsp_expected: bool = True, plain_too: bool = True) -> None:
    """The firmware (DSP path) equals the reference exactly and widens int8 pairs with
    SXTB16/SXTAB16 where `dsp_expected`; if `plain_too`, so does the firmware with
    ARIEL_NO_DSP (plain path), without those instructions (GCC never emits them for plain C;
    it may turn a plain 16-bit multiply-add into SMLABB)."""
    want = np.stack([run_graph(compiled.graph, sample)[0] for sample in inputs])
    dsp_elf = firmware(compiled, tmp_path / "dsp")
    np.testing.assert_array_equal(run_firmware(compiled, dsp_elf, inputs, tmp_path / "a"), want)
    assert (uses(dsp_elf, "sxtb16") or uses(dsp_elf, "sxtab16")) == dsp_expected
    if plain_too:
        plain_elf = firmware(compiled, tmp_path / "plain", plain=True)
        np.testing.assert_array_equal(run_firmware(compiled, plain_elf, inputs, tmp_path / "b"),
                                      want)
        assert not uses(plain_elf, "sxtb16") and not uses(plain_elf, "sxtab16")


@pytest.mark.parametrize("case", CONV)
def test_conv_s8_dsp_path_in_qemu(case, tmp_path):
    rng = np.random.default_rng(40)
    model, shape = conv_model(rng, CONV_CASES[case])
    compiled = compile_conv(model, shape, rng)
    inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
              for _ in range(SAMPLES)]
    inputs.append([rng.choice(np.array([-128, 127], np.int8), shape)])
    check_on_cortex_m4(compiled, inputs, tmp_path, case != "large_field_plain_only",
                       case in PLAIN_ON_M4)


TRANSPOSE = ["k3_s2_p1_op1", "depthwise_8"]
ONE_ROW = ["steps_and_two_pairs", "step_and_odd_filter_k_tail", "wrapping_sums",
           "step_one_pair_and_odd_filter", "one_pair_k_tail"]


def test_every_plain_case_is_a_case():
    """A renamed case must not drop its family's plain run silently."""
    assert PLAIN_ON_M4 <= {*CONV, *TRANSPOSE, *PRODUCTS, *ONE_ROW, *ADD_CASES}


@pytest.mark.parametrize("case", TRANSPOSE)
def test_conv_transpose_s8_dsp_path_in_qemu(case, tmp_path):
    """A ConvTranspose's phases are Conv kernels: their DSP path on the real instructions."""
    rng = np.random.default_rng(43)
    model, shape = float_model(rng, CONV_TRANSPOSE_CASES[case])
    compiled = compile_conv(model, shape, rng)
    inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
              for _ in range(SAMPLES)]
    check_on_cortex_m4(compiled, inputs, tmp_path, plain_too=case in PLAIN_ON_M4)


@pytest.mark.parametrize("label", PRODUCTS)
def test_products_s8_dsp_path_in_qemu(label, tmp_path):
    rng = np.random.default_rng(41)
    op, spec = PRODUCTS[label]
    model = product_model(rng, op, **spec)
    shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
              for i in model.graph.input}
    calibration = {name: rng.uniform(LOW, HIGH, (16, *shape)).astype(np.float32)
                   for name, shape in shapes.items()}
    compiled = compile_onnx_int8(model, calibration, io="int8")
    inputs = [[quantize_input(compiled, rng.uniform(LOW, HIGH, shape).astype(np.float32), k)
               for k, shape in enumerate(shapes.values())] for _ in range(SAMPLES)]
    packed = spec.get("b_constant", True) and not spec.get("transA")
    check_on_cortex_m4(compiled, inputs, tmp_path, packed, label in PLAIN_ON_M4)


@pytest.mark.parametrize("case", ONE_ROW)
def test_one_row_pairs_dsp_path_in_qemu(case, tmp_path):
    """Filters packed two to a halfword (ariel_dot_3pairs_s8's assembly and the one- and
    two-pair assembly of ariel_dot_pairs_s8 after it), sums that wrap around 32 bits
    included."""
    model, k = case_model(case)
    compiled = compile_onnx_int8(model, None, io="int8")
    check_on_cortex_m4(compiled, case_inputs(case, k), tmp_path,
                       plain_too=case in PLAIN_ON_M4)


@pytest.mark.parametrize("case", ADD_CASES)
def test_add_s8_dsp_path_in_qemu(case, tmp_path):
    """The int8 Add in 32-bit steps on the real PKHBT, SMLAD and SSAT: four elements at a time
    (SXTB16 on words of each input) with a tail, or element by element where an input is
    broadcast."""
    compiled, inputs = dsp_case(case)
    check_on_cortex_m4(compiled, inputs, tmp_path, case == "tail_of_three",
                       case in PLAIN_ON_M4)


def test_plain_path_is_what_a_cortex_m0plus_compiles(tmp_path):
    """Without the DSP extension (Cortex-M0+, Armv6-M) the kernels compile to the plain
    path: the generated C of every kernel shape builds with the M0+ flags."""
    compiler = shutil.which("arm-none-eabi-gcc")
    rng = np.random.default_rng(42)
    flags = ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft", "-std=c11", "-O2",
             "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wshadow", "-c"]
    models = {case: compile_conv(*conv_model(rng, CONV_CASES[case]), rng)
              for case in ["3x3_pad1", "depthwise", "large_field_plain_only"]}
    gemm = product_model(rng, "Gemm", **GEMM_CASES["k_tail_odd_n"])
    models["gemm"] = compile_onnx_int8(gemm, {"a": rng.uniform(LOW, HIGH, (8, 3, 10)).astype(
        np.float32)}, io="int8")
    models["pairs"] = compile_onnx_int8(case_model("step_and_odd_filter_k_tail")[0], None,
                                        io="int8")
    models["listed"] = compiled_case("k_padded_odd_filter")[1]
    for label, compiled in models.items():
        folder = tmp_path / label
        folder.mkdir()
        for name, text in compiled.files.items():
            (folder / name).write_text(text)
        result = subprocess.run([compiler, *flags, f"-I{data_dir('firmware')}", f"-I{folder}",
                                 str(folder / "m.c"), "-o", str(folder / "m.o")],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{label}:\n{result.stderr}"
        assert not uses(folder / "m.o", "sxtb16")


@pytest.mark.parametrize("case", ["3x3_pad1", "depthwise", "pointwise_1x1", "grouped",
                                  "steps_and_two_pairs"])
def test_plain_path_on_a_cortex_m0plus_in_qemu(case, tmp_path):
    """The plain path run on an Armv6-M core (NUCLEO-G071RB's Cortex-M0+, emulated on QEMU's
    micro:bit) equals the reference exactly (a one-row product with its filters packed in
    pairs among the cases)."""
    rng = np.random.default_rng(43)
    if case in CASES:
        model, k = case_model(case)
        compiled = compile_onnx_int8(model, None, io="int8")
        inputs = case_inputs(case, k)
    else:
        model, shape = conv_model(rng, CONV_CASES[case])
        compiled = compile_conv(model, shape, rng)
        inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
                  for _ in range(SAMPLES)]
    want = np.stack([run_graph(compiled.graph, sample)[0] for sample in inputs])
    elf = firmware(compiled, tmp_path / "m0", board="nucleo-g071rb")
    got = run_firmware(compiled, elf, inputs, tmp_path / "run", board="nucleo-g071rb")
    np.testing.assert_array_equal(got, want)
    assert not uses(elf, "sxtb16")


@pytest.mark.parametrize("case", ["2x2_stride2_16_channels", "3x3_stride2_pad1_8_channels"])
def test_max_pool_s8_words_in_qemu(case, tmp_path):
    """MaxPool's four maxima per SSUB8 + SEL on the real instructions, and its plain path
    (ARIEL_NO_DSP) on the same core, equal the reference exactly."""
    shape, attrs = MAX_WORD_CASES[case]
    samples = samples_for(7, shape, count=2)
    compiled = compile_onnx_int8(qdq_one_node("MaxPool", samples, opset=17, same_params=True,
                                              **attrs), io="int8")
    rng = np.random.default_rng(44)
    inputs = [[rng.integers(-128, 128, shape).astype(np.int8)] for _ in range(SAMPLES)]
    want = np.stack([run_graph(compiled.graph, sample)[0] for sample in inputs])
    dsp_elf = firmware(compiled, tmp_path / "dsp")
    plain_elf = firmware(compiled, tmp_path / "plain", plain=True)
    np.testing.assert_array_equal(run_firmware(compiled, dsp_elf, inputs, tmp_path / "a"), want)
    np.testing.assert_array_equal(run_firmware(compiled, plain_elf, inputs, tmp_path / "b"),
                                  want)
    assert uses(dsp_elf, "ssub8") and uses(dsp_elf, "sel")
    assert not uses(plain_elf, "ssub8")


@pytest.mark.parametrize("case", ["7x7_stride7_16_channels", "include_pad_stride2_tail_3"])
def test_average_pool_s8_words_in_qemu(case, tmp_path):
    """AveragePool's four channels per tap by SXTAB16 on the real instructions, and its
    plain path (ARIEL_NO_DSP) on the same core, equal the reference exactly, the window sums
    at both ends of int8 included."""
    compiled = average_words_model(case)
    inputs = [[x] for x in extreme_inputs(AVERAGE_WORD_CASES[case][0], 45)]
    check_on_cortex_m4(compiled, inputs, tmp_path)
