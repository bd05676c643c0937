"""float Conv: filters copied to RAM a block at a time and the four-by-four step in
assembly. Where the memory plan leaves room at the convolution's step (OpDef.room), the
kernel copies its packed filters there, four at a time or more, in equal blocks; on a
single-precision FPU, four pixels by four filters run in ariel_dot_4x4_f32's assembly loop
(two channels per VLDM, a tap's last two and last odd channel after the loop), or, for a
filter three wide at stride 1 along the row, in ariel_row3_4x4_f32's (four neighbouring
pixels of a row read six input columns per filter row; rows outside the input skipped, the
pixels left in a row and the lone filters in C, in the same order). A 1x1
convolution of stride 2 in front of the one under test frees its large input, which leaves
the room; its size sets the blocks. The cases cover one block and several, filter counts
that are not a multiple of four (the last block's lone filters), pixel counts that leave two
or one pixel over, channel counts that leave two, one or three channels of a tap, strides
and pads; a convolution alone (no room) copies its filters to the stack instead, on a core
with a single-precision FPU. The host C equals onnx.reference within the float tolerance;
the firmware in QEMU on a Cortex-M4F equals the host C bit for bit (both add each output's
products one by one in the same order) and uses the assembly."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.compiler.ops.test_s8_dsp_qemu import firmware, run_firmware
from tests.support import (
    HostModel,
    build_host_library,
    compile_onnx,
    random_array,
    run_reference,
    single_node_model,
)

# pooled: the convolution's input (N, C, H, W), which the first convolution makes from a
# tensor four times its size (that tensor's bytes are the room); blocks: how many blocks
# of filters the kernel copies (0: the plan has no room, the filters stay in flash).
CASES = {
    "3x3_pad1_leftover_filters_one_block": dict(pooled=(1, 8, 6, 6), w=(6, 8, 3, 3),
                                                pads=[1, 1, 1, 1], blocks=1),
    "stride2_asym_pads_several_blocks": dict(pooled=(1, 8, 10, 10), w=(66, 8, 3, 3),
                                             strides=[2, 2], pads=[0, 1, 1, 0], blocks=2),
    "seven_channels_odd_pixels_several_blocks": dict(pooled=(1, 7, 7, 7), w=(30, 7, 3, 3),
                                                     pads=[1, 1, 1, 1], blocks=2),
    "three_channels_two_pixels_over": dict(pooled=(1, 3, 5, 6), w=(8, 3, 3, 3),
                                           pads=[1, 1, 1, 1], blocks=1),
    "1x1_six_channels": dict(pooled=(1, 6, 5, 5), w=(13, 6, 1, 1), blocks=1),
    "strides_2x1_five_channels": dict(pooled=(1, 5, 9, 7), w=(7, 5, 3, 2), strides=[2, 1],
                                      pads=[1, 0, 1, 1], blocks=1),
    # Three wide at stride 1 along the row: ariel_row3_4x4_f32 (the cases above with such a
    # filter take it too: two or three pixels over, odd channel counts, lone filters).
    "row3_stride2x1_dilated_rows_three_over": dict(pooled=(1, 4, 9, 9), w=(5, 4, 3, 3),
                                                   strides=[2, 1], dilations=[2, 1], blocks=1),
    "row3_filter_rows_outside_one_over": dict(pooled=(1, 6, 4, 5), w=(8, 6, 3, 3),
                                              pads=[2, 1, 2, 1], blocks=1),
}


def shrink_then_conv(rng: np.random.Generator, spec: dict):
    """A 1x1 Conv of stride 2, then the Conv under test (with a fused Relu)."""
    n, c, h, w = spec["pooled"]
    shape = (n, c, 2 * h, 2 * w)
    attrs = {key: spec[key] for key in ("pads", "strides", "dilations") if key in spec}
    nodes = [helper.make_node("Conv", ["x", "shrink"], ["pooled"], name="shrink",
                              strides=[2, 2]),
             helper.make_node("Conv", ["pooled", "w", "b"], ["c"], name="conv", **attrs),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "blocks", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, shape)], [helper.make_empty_tensor_value_info("y")],
        [numpy_helper.from_array(random_array(rng, (c, c, 1, 1)), "shrink"),
         numpy_helper.from_array(random_array(rng, spec["w"]), "w"),
         numpy_helper.from_array(random_array(rng, spec["w"][:1], low=-0.5, high=0.5), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model, shape


def copied_blocks(compiled, w_shape: tuple[int, ...]) -> int:
    """The blocks the kernel comment of Conv 'conv' states it copies (0: none), checking
    that the room the plan granted holds a block."""
    body = compiled.files["m.c"][compiled.files["m.c"].index("Conv 'conv'"):]
    found = re.search(r"Filters (\d+) at a time from flash", body)
    if not found:
        return 0
    block = int(found.group(1))
    plan = compiled.plan
    step = next(i for i, node in enumerate(compiled.graph.nodes) if node.name == "conv")
    assert plan.buffers[plan.scratch[step]].size >= 4 * block * int(np.prod(w_shape[1:]))
    return -(-w_shape[0] // block)


def host_outputs(compiled, inputs, folder):
    library = build_host_library(compiled.files, folder)
    model = HostModel(library, compiled.info)
    return np.stack([model.run(x)[0] for x in inputs])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every case compiled once, with its inputs and the host C's outputs."""
    rng = np.random.default_rng(60)
    cases = {}
    for case, spec in CASES.items():
        model, shape = shrink_then_conv(rng, spec)
        compiled = compile_onnx(model)
        inputs = [random_array(rng, shape) for _ in range(2)]
        folder = tmp_path_factory.mktemp(case)
        cases[case] = (model, compiled, inputs, host_outputs(compiled, inputs, folder / "host"))
    return cases


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_filter_blocks_match_onnx_reference(case, built):
    model, compiled, inputs, host = built[case]
    spec = CASES[case]
    assert copied_blocks(compiled, spec["w"]) == spec["blocks"]
    for x, got in zip(inputs, host, strict=True):
        np.testing.assert_allclose(got, run_reference(model, [x])[0], rtol=1e-5, atol=1e-5)


# What each assembly step's loop loads, as objdump shows it: the taps path two channels of
# a pixel, the row path the weights of two taps.
LOOP_LOADS = {"ariel_dot_4x4_f32(": "{s16-s17}", "ariel_row3_4x4_f32(": "{s22-s29}"}


@pytest.mark.qemu
@pytest.mark.parametrize("case", ["stride2_asym_pads_several_blocks",
                                  "seven_channels_odd_pixels_several_blocks",
                                  "three_channels_two_pixels_over", "1x1_six_channels",
                                  "row3_stride2x1_dilated_rows_three_over",
                                  "row3_filter_rows_outside_one_over"])
def test_assembly_equals_host_c_on_a_cortex_m4f(case, built, tmp_path):
    _, compiled, inputs, host = built[case]
    kernel = compiled.files["m.c"][compiled.files["m.c"].index("Conv 'conv'"):]
    step = next(call for call in LOOP_LOADS if call in kernel)
    elf = firmware(compiled, tmp_path / "fw")
    text = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True,
                          text=True, check=True).stdout
    assert "vldmia\t" in text and LOOP_LOADS[step] in text  # the assembly loop is in
    got = run_firmware(compiled, elf, [[x] for x in inputs], tmp_path / "run")
    np.testing.assert_array_equal(got, host)


# A convolution alone: the arena holds its input and output and has no room, so on a core
# with a single-precision FPU the filters go to the stack, as many as the stack budget
# leaves beside the tap pointers and the row of zeros (elsewhere, the host included, they
# are read where they lie, block by block). Nine channels under a 3x3 filter: the
# assembly's channel count equals its tap count (GCC gave both one register before they
# were marked early-clobber).
STACK_CASES = {
    "nine_channels_one_block": (dict(x=(1, 9, 6, 7), w=(10, 9, 3, 3), pads=[1, 0, 1, 1]), 1),
    "five_blocks": (dict(x=(1, 16, 5, 6), w=(40, 16, 3, 3), pads=[1, 1, 1, 1]), 5),
}


@pytest.mark.qemu
@pytest.mark.parametrize("case", STACK_CASES, ids=list(STACK_CASES))
def test_filters_on_the_stack_on_a_cortex_m4f(case, tmp_path):
    rng = np.random.default_rng(61)
    spec, blocks = STACK_CASES[case]
    x = random_array(rng, spec["x"])
    model = single_node_model("Conv", {"x": x}, {"w": random_array(rng, spec["w"]),
                                                 "b": random_array(rng, spec["w"][:1])},
                              pads=spec["pads"])
    compiled = compile_onnx(model, "m")
    assert not compiled.plan.room
    found = re.search(r"Filters (\d+) at a time from flash into the stack",
                      compiled.files["m.c"])
    assert found and -(-spec["w"][0] // int(found.group(1))) == blocks
    inputs = [x, random_array(rng, x.shape)]
    host = host_outputs(compiled, inputs, tmp_path / "host")
    for v, got in zip(inputs, host, strict=True):
        np.testing.assert_allclose(got, run_reference(model, [v])[0], rtol=1e-5, atol=1e-5)
    got = run_firmware(compiled, firmware(compiled, tmp_path / "fw"), [[v] for v in inputs],
                       tmp_path / "run")
    np.testing.assert_array_equal(got, host)


# The row path on the other cores: the Cortex-M7's FPU (FPv5, single precision) runs the
# same assembly, the Cortex-M0+ (no FPU) the C; both equal the host C bit for bit.
@pytest.mark.qemu
@pytest.mark.parametrize("board", ["disco-f746ng", "nucleo-g071rb"])
def test_row_path_on_a_cortex_m7_and_m0plus(board, tmp_path):
    rng = np.random.default_rng(62)
    x = random_array(rng, (1, 7, 6, 9))
    model = single_node_model("Conv", {"x": x}, {"w": random_array(rng, (10, 7, 3, 3)),
                                                 "b": random_array(rng, (10,))},
                              pads=[1, 1, 0, 1])
    compiled = compile_onnx(model, "m")
    assert "ariel_row3_4x4_f32(" in compiled.files["m.c"]
    inputs = [x, random_array(rng, x.shape)]
    host = host_outputs(compiled, inputs, tmp_path / "host")
    for v, got in zip(inputs, host, strict=True):
        np.testing.assert_allclose(got, run_reference(model, [v])[0], rtol=1e-5, atol=1e-5)
    elf = firmware(compiled, tmp_path / "fw", board=board)
    got = run_firmware(compiled, elf, [[v] for v in inputs], tmp_path / "run", board=board)
    np.testing.assert_array_equal(got, host)
