"""int8 Conv with its filters in RAM: where the memory plan leaves room at the convolution's
step (OpDef.room), the DSP path copies the filters there, widened to int16 pairs, a block
of filters at a time, and multiplies them without SXTB16. A 1x1 convolution of stride 2 in
front of the one under test frees its large input before that one runs, which leaves the
room; the input's size sets how many filters fit, so the cases cover one block and several, odd
filter counts (the last block's lone filter), odd pixel counts, strides, pads, a channel
count that is not a multiple of four (receptive fields padded, an odd number of groups of
four) and a zero point that is not 0; and the paired-taps kernel of 1-3 input channels, which
takes all its filters at once. The host C (plain, and the DSP path on C twins)
equals ariel's integer reference bit for bit, and so does the firmware in QEMU on a
Cortex-M4, where the DSP path's loop is assembly; the arena is the same with and without
the room granted. Where the plan has no room (a convolution alone), the filters go to the
stack instead, in blocks of what the stack budget leaves beside the receptive fields."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.ops.conv import Conv, filters_in_ram
from tests.compiler.ops.test_conv_s8 import (
    check_int8,
    compile_conv,
    conv_model,
    quantize_input,
)
from tests.compiler.ops.test_s8_dsp_qemu import check_on_cortex_m4

# pooled: the convolution's input (N, C, H, W), which the first convolution makes from a
# tensor four times its size (that tensor's bytes are the room); blocks: 1 (all filters at once) or
# "several".
CASES = {
    "3x3_pad1_odd_filters_one_block": dict(pooled=(1, 8, 6, 6), w=(5, 8, 3, 3),
                                           pads=[1, 1, 1, 1], blocks=1),
    "1x1_odd_pixels_one_block": dict(pooled=(1, 16, 5, 5), w=(6, 16, 1, 1), blocks=1),
    "stride2_asym_pads_several_blocks": dict(pooled=(1, 8, 12, 12), w=(72, 8, 3, 3),
                                             strides=[2, 2], pads=[0, 1, 1, 0],
                                             blocks="several"),
    "odd_filters_several_blocks": dict(pooled=(1, 8, 12, 12), w=(73, 8, 3, 3),
                                       strides=[2, 2], pads=[1, 1, 1, 1], blocks="several"),
    "seven_channels_odd_groups": dict(pooled=(1, 7, 10, 10), w=(8, 7, 2, 2),
                                      pads=[1, 1, 0, 0], blocks=1),
    "strides_2x1_odd_pixels": dict(pooled=(1, 4, 9, 7), w=(7, 4, 3, 2), strides=[2, 1],
                                   pads=[1, 0, 1, 1], blocks=1),
    # Four pixels' fields of 576 values (4,608 bytes, over two pixels' budget) beside
    # filters in the arena.
    "wide_fields_four_pixels": dict(pooled=(1, 64, 4, 4), w=(6, 64, 3, 3), pads=[1, 1, 1, 1],
                                    blocks=1),
}


def pool_then_conv(rng: np.random.Generator, spec: dict):
    """A 1x1 Conv of stride 2, then the Conv under test: a float model for ONNX Runtime to
    quantize."""
    n, c, h, w = spec["pooled"]
    shape = (n, c, 2 * h, 2 * w)
    weights = rng.uniform(-1, 1, spec["w"]).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, spec["w"][:1]).astype(np.float32)
    attrs = {key: spec[key] for key in ("pads", "strides") if key in spec}
    shrink = rng.uniform(-1, 1, (c, c, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "shrink"], ["pooled"], name="shrink",
                              strides=[2, 2]),
             helper.make_node("Conv", ["pooled", "w", "b"], ["y"], name="conv", **attrs)]
    graph = helper.make_graph(nodes, "room", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, shape)], [helper.make_empty_tensor_value_info("y")],
        [numpy_helper.from_array(shrink, "shrink"), numpy_helper.from_array(weights, "w"),
         numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model, shape


def copied_block(compiled, where: str, node: str = "conv") -> int:
    """The filters per block the kernel comment of Conv `node` states, checking that they
    go `where` it says."""
    text = compiled.files["m.c"]
    text = " ".join(text[text.index(f"Conv '{node}'"):].split()).replace("* ", "")
    found = re.search(r"copied to RAM (\d+) filters at a time .*?into \d+ bytes (of [a-z ]+)",
                      text)
    assert found and found.group(2).startswith(where), found
    return int(found.group(1))


def conv_node(compiled):
    return next(node for node in compiled.graph.nodes if node.name == "conv")


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_filters_in_ram_are_bit_exact(case, tmp_path):
    rng = np.random.default_rng(50)
    spec = CASES[case]
    model, shape = pool_then_conv(rng, spec)
    compiled = compile_conv(model, shape, rng)
    node = conv_node(compiled)
    oc = spec["w"][0]
    assert node.room > 0, "the plan left no room: the case does not test the path"
    block = copied_block(compiled, "of room the arena has")
    assert block <= 2 * node.room and -(-oc // block) == -(-oc // min(oc, 2 * node.room))
    assert (block >= oc) == (spec["blocks"] == 1), (block, oc)
    assert compiled.graph.tensor(compiled.graph.inputs[0]).quant.zero_point != 0
    inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
              for _ in range(3)]
    check_int8(compiled, inputs, tmp_path, f"Conv in RAM {case}")


@pytest.mark.qemu
@pytest.mark.parametrize("case", ["3x3_pad1_odd_filters_one_block",
                                  "odd_filters_several_blocks", "seven_channels_odd_groups",
                                  "strides_2x1_odd_pixels", "wide_fields_four_pixels"])
def test_filters_in_ram_on_a_cortex_m4(case, tmp_path):
    rng = np.random.default_rng(51)
    model, shape = pool_then_conv(rng, CASES[case])
    compiled = compile_conv(model, shape, rng)
    assert conv_node(compiled).room > 0
    inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
              for _ in range(3)]
    inputs.append([rng.choice(np.array([-128, 127], np.int8), shape)])
    check_on_cortex_m4(compiled, inputs, tmp_path)


@pytest.mark.parametrize("filters", [8, 7])
def test_paired_taps_filters_in_ram(filters, tmp_path):
    """A convolution on three channels (the paired-taps kernel, conv_pairs.py) widens all its
    filters at once into the room the plan grants it (test_conv_s8.py's cases have both
    that and the stack)."""
    rng = np.random.default_rng(52)
    spec = dict(pooled=(1, 3, 10, 10), w=(filters, 3, 3, 3), pads=[1, 1, 1, 1])
    model, shape = pool_then_conv(rng, spec)
    compiled = compile_conv(model, shape, rng)
    assert conv_node(compiled).room == -(-filters // 2)
    text = compiled.files["m.c"]
    assert "int32_t *filters = (int32_t *)scratch;" in text
    inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
              for _ in range(3)]
    check_int8(compiled, inputs, tmp_path, f"paired taps, filters in RAM ({filters})")


# One convolution alone: the arena holds its input and output and has no room, so the
# filters go to the stack, as many as the stack budget leaves beside the receptive fields.
STACK_CASES = {
    "one_block_odd_filters": (dict(x=(1, 16, 6, 6), w=(9, 16, 3, 3), pads=[1, 1, 1, 1]), 1),
    "two_blocks_stride2": (dict(x=(1, 16, 7, 7), w=(20, 16, 3, 3), strides=[2, 2],
                                pads=[1, 1, 1, 1]), 2),
    "three_blocks_odd_filters": (dict(x=(1, 16, 4, 5), w=(45, 16, 3, 3), pads=[1, 0, 1, 1]),
                                 3),
}


@pytest.mark.parametrize("case", STACK_CASES, ids=list(STACK_CASES))
def test_filters_on_the_stack_are_bit_exact(case, tmp_path):
    rng = np.random.default_rng(54)
    spec, blocks = STACK_CASES[case]
    model, shape = conv_model(rng, spec)
    compiled = compile_conv(model, shape, rng)
    assert not compiled.plan.room
    block = copied_block(compiled, "of stack", "conv_node")
    assert -(-spec["w"][0] // block) == blocks
    inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
              for _ in range(3)]
    check_int8(compiled, inputs, tmp_path, f"Conv on the stack {case}")


@pytest.mark.qemu
@pytest.mark.parametrize("case", ["one_block_odd_filters", "three_blocks_odd_filters"])
def test_filters_on_the_stack_on_a_cortex_m4(case, tmp_path):
    rng = np.random.default_rng(55)
    spec, blocks = STACK_CASES[case]
    model, shape = conv_model(rng, spec)
    compiled = compile_conv(model, shape, rng)
    assert -(-spec["w"][0] // copied_block(compiled, "of stack", "conv_node")) == blocks
    inputs = [[quantize_input(compiled, rng.uniform(-0.4, 1.2, shape).astype(np.float32))]
              for _ in range(3)]
    inputs.append([rng.choice(np.array([-128, 127], np.int8), shape)])
    check_on_cortex_m4(compiled, inputs, tmp_path)


def test_room_never_grows_the_arena(monkeypatch):
    """The plan grants the room inside the arena it has: the arena and its lower bound are
    those of the plan without it, and the room overlaps no buffer alive at its step."""
    rng = np.random.default_rng(52)
    model, shape = pool_then_conv(rng, CASES["odd_filters_several_blocks"])
    compiled = compile_conv(model, shape, np.random.default_rng(53))
    plan = compiled.plan
    node = conv_node(compiled)
    assert 0 < node.room < filters_in_ram(node, compiled.graph)[1]
    for step, key in plan.scratch.items():
        buf = plan.buffers[key]
        assert compiled.graph.nodes[step].room == plan.room[step]
        unit = filters_in_ram(compiled.graph.nodes[step], compiled.graph)[0]
        assert buf.size >= plan.room[step] * unit
        assert buf.offset + buf.size <= plan.arena_size
        for other in plan.buffers.values():
            if other is not buf and other.first <= step <= other.last:
                assert buf.offset + buf.size <= other.offset or \
                    other.offset + other.size <= buf.offset, (buf, other)
    monkeypatch.setattr(Conv, "room", lambda self, node, graph: None)
    without = compile_conv(model, shape, np.random.default_rng(53)).plan
    assert not without.room
    assert (without.arena_size, without.lower_bound) == (plan.arena_size, plan.lower_bound)
