"""Kernels whose instruction count is known by construction (inline assembly, so the
compiler cannot change it) are counted exactly, and counts repeat from run to run."""

import pytest

from codegen.run.emulate.counting import count_instructions, split_inferences
from codegen.target.boards import get_board
from tests.run.support import build_firmware

pytestmark = pytest.mark.qemu

# Each layer is hook call, counted loop, hook call, all in one asm statement. The layer's
# segment starts at the begin hook's only instruction (bx lr) and ends just before the end
# hook's, so it holds: bx lr, mov r1 (the loop count), n iterations of (body + subs + bne),
# then movs r0 and bl for the end hook: n * (body + 2) + 4 instructions.
LAYER_MACRO = r"""
#define LAYER(layer, count, body)                                                    \
    __asm__ volatile("movs r0, #" #layer "\n\t"                                       \
                     "bl " BEGIN "\n\t"                                               \
                     "mov r1, %[n]\n"                                                 \
                     "1:\n\t" body                                                    \
                     "subs r1, r1, #1\n\t"                                            \
                     "bne 1b\n\t"                                                     \
                     "movs r0, #" #layer "\n\t"                                       \
                     "bl ariel_profile_end\n\t"                                       \
                     :                                                                \
                     : [n] "r"(count), [buffer] "r"(scratch)                          \
                     : "r0", "r1", "r2", "r3", "r12", "lr", "s0", "s1", "s2", "cc",   \
                       "memory")
"""

# (iterations, instructions in the loop body besides subs/bne, asm body)
LAYERS = [
    (1000, 0, ""),
    (300, 3, "ldr r2, [%[buffer]]\n\tadds r2, r2, #3\n\tstr r2, [%[buffer]]\n\t"),
    # An IT block: the instruction whose condition fails is still executed (as a no-op).
    (7, 4, "cmp r1, #4\n\tite lo\n\taddlo r2, r2, #1\n\taddhs r2, r2, #2\n\t"),
    (50, 1, "vmla.f32 s0, s1, s2\n\t"),
    # 600 nops, 1,200 bytes: QEMU cuts the body into several blocks (it caps a block's
    # length and ends blocks at page boundaries).
    (3, 600, ".rept 600\n\tnop\n\t.endr\n\t"),
]
INFERENCES = 2


def expected(layer: int) -> int:
    iterations, body, _ = LAYERS[layer]
    return iterations * (body + 2) + 4


def firmware_source(begin: str = "ariel_profile_begin", preamble: str = "") -> str:
    calls = "\n".join(f'    LAYER({k}, {n}u, "{body.encode("unicode_escape").decode()}");'
                      for k, (n, _, body) in enumerate(LAYERS))
    return f"""#include <stdint.h>
#include "ariel_runtime.h"

#define BEGIN "{begin}"
{LAYER_MACRO}
{preamble}
static volatile uint32_t scratch[1];

int main(void)
{{
    for (int inference = 0; inference < {INFERENCES}; ++inference) {{
{calls}
    }}
    return 0;
}}
"""


@pytest.fixture(scope="module")
def board():
    return get_board("mps2-an386")


@pytest.fixture(scope="module")
def elf(tmp_path_factory, board):
    return build_firmware(tmp_path_factory.mktemp("exact"), board, firmware_source())


KERNELS = [{"index": k} for k in range(len(LAYERS))]


def test_known_loops_are_counted_exactly(elf, board, tmp_path):
    counts = count_instructions(board, elf, tmp_path)
    split = split_inferences(counts, KERNELS, INFERENCES)
    for inference in split.inferences:
        assert [layer.instructions for layer in inference.layers] == [
            expected(k) for k in range(len(LAYERS))]
    assert all(s.offset == 0 for s in counts.segments)


def test_counts_repeat_exactly(elf, board, tmp_path):
    first = count_instructions(board, elf, tmp_path, edges=True)
    second = count_instructions(board, elf, tmp_path, edges=True)
    assert first.total == second.total
    assert first.segments == second.segments
    assert first.blocks == second.blocks


def test_blocks_and_edges_account_for_every_instruction(elf, board, tmp_path):
    counts = count_instructions(board, elf, tmp_path, edges=True)
    assert counts.has_blocks and counts.has_edges
    for segment in counts.segments:
        # Block runs times block lengths give the segment's count ...
        assert sum(runs * counts.blocks[b].n_insns
                   for b, runs in segment.executions.items()) == segment.instructions
        # ... and every run of a block was entered by exactly one counted edge.
        entered: dict[int, int] = {}
        for (_, to), n in segment.edges.items():
            entered[to] = entered.get(to, 0) + n
        assert entered == segment.executions
    nops = split_inferences(counts, KERNELS, INFERENCES).inferences[0].layers[-1].segment
    assert len([b for b in nops.executions if counts.blocks[b].n_insns > 1]) >= 3
    first = [e for s in counts.segments for e in s.edges if e[0] is None]
    assert len(first) == 1, "only the very first block has no predecessor"


def test_block_code_is_the_elf_code(elf, board, tmp_path):
    from elftools.elf.elffile import ELFFile

    counts = count_instructions(board, elf, tmp_path, blocks=True)
    with open(elf, "rb") as handle:
        text = ELFFile(handle).get_section_by_name(".text")
        start, data = text["sh_addr"], text.data()
        for block in counts.blocks.values():
            for address, insn in zip(block.addresses, block.insns, strict=True):
                if start <= address < start + len(data):
                    assert data[address - start:address - start + len(insn)] == insn
                assert len(insn) in (2, 4)


# Hooks of the test's own: enter_begin runs two instructions and falls into
# ariel_profile_begin without a branch, so the marker is the third instruction of its block.
FALL_THROUGH_HOOKS = r"""
__asm__(".text\n\t.syntax unified\n\t.thumb\n\t.balign 4\n"
        ".global enter_begin\n.thumb_func\nenter_begin:\n\t"
        "movs r2, #1\n\tadds r2, r2, #1\n"
        ".global ariel_profile_begin\n.thumb_func\nariel_profile_begin:\n\tbx lr\n"
        ".global ariel_profile_end\n.thumb_func\nariel_profile_end:\n\tbx lr\n");
"""


def test_a_marker_inside_a_block_still_splits_exactly(board, tmp_path):
    elf = build_firmware(tmp_path / "fw", board,
                         firmware_source("enter_begin", FALL_THROUGH_HOOKS), hooks=False)
    counts = count_instructions(board, elf, tmp_path, blocks=True)
    split = split_inferences(counts, KERNELS, INFERENCES)
    for inference in split.inferences:
        assert [layer.instructions for layer in inference.layers] == [
            expected(k) for k in range(len(LAYERS))]
    for segment in counts.segments:
        in_blocks = sum(runs * counts.blocks[b].n_insns
                        for b, runs in segment.executions.items())
        if segment.closer == "begin":
            # The block that straddles the boundary stays where it started: its last
            # instruction (the hook's bx lr) is counted in the next segment's total.
            assert segment.offset == 2
            assert in_blocks == segment.instructions + 1
        elif segment.kind == "layer":
            assert in_blocks == segment.instructions - 1
