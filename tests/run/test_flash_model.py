"""The flash model: the plugin simulates a board's flash caches on every fetch and load from
flash, and the cycle model charges each miss. Hand-written loops whose misses follow from
the caches' geometry (least recently used replacement) are counted exactly; the charges
follow the stated rules; the profile shows both estimates."""

from pathlib import Path

import pytest

from codegen.errors import ArielError
from codegen.run.emulate.counting import (
    FlashCounts,
    count_instructions,
    parse_counts,
    split_inferences,
)
from codegen.run.emulate.cycles import Memory, assumptions, estimate, flash_stalls, load_core
from codegen.target.boards import CacheGeometry, FlashCaches, get_board
from tests.run.support import build_firmware

L4 = get_board("nucleo-l4r5zi")  # ART: 8-byte entries, 128 instruction and 32 data entries
F7 = get_board("disco-f746ng")  # L1: 32-byte lines, 4 KiB each, 2-way / 4-way

# One layer: a hook call, `passes` passes over `words` words of the table from word `start`,
# a hook call. Each layer reads a part of the table of its own, so that no layer finds
# another's lines cached. The part's address is in a register before the hook is called,
# so the segment's only data loads are the table's.
LAYER = r"""
#define LAYER(layer, passes, words, start)                                            \
    __asm__ volatile("movs r0, #" #layer "\n\t"                                        \
                     "bl ariel_profile_begin\n\t"                                      \
                     "mov r12, %[p]\n"                                                 \
                     "2:\n\t"                                                          \
                     "mov r3, %[t]\n\t"                                                \
                     "mov r1, %[w]\n"                                                  \
                     "1:\n\t"                                                          \
                     "ldr r2, [r3], #4\n\t"                                            \
                     "subs r1, r1, #1\n\t"                                             \
                     "bne 1b\n\t"                                                      \
                     "subs r12, r12, #1\n\t"                                           \
                     "bne 2b\n\t"                                                      \
                     "movs r0, #" #layer "\n\t"                                        \
                     "bl ariel_profile_end\n\t"                                        \
                     : : [t] "r"(table + start), [p] "r"(passes), [w] "r"(words)       \
                     : "r0", "r1", "r2", "r3", "r12", "lr", "cc", "memory")
"""
# name: (passes, words, first word); every part starts on a 64-byte boundary
DATA_LAYERS = {"stream 4 KiB once": (1, 1024, 0), "64 B four times": (4, 16, 1024),
               "512 B twice": (2, 128, 1040), "4 KiB twice": (2, 1024, 1168)}
CODE_LAYER = len(DATA_LAYERS)  # 1,024 NOPs (2 KiB of code) run twice


def firmware() -> str:
    calls = "\n".join(f"    LAYER({k}, {p}u, {w}u, {start}u);"
                      for k, (p, w, start) in enumerate(DATA_LAYERS.values()))
    nops = (rf'    __asm__ volatile("movs r0, #{CODE_LAYER}\n\tbl ariel_profile_begin\n\t'
            r'movs r1, #2\n1:\n\t.rept 1024\n\tnop\n\t.endr\n\tsubs r1, r1, #1\n\tbne 1b\n\t'
            rf'movs r0, #{CODE_LAYER}\n\tbl ariel_profile_end\n\t" : : : "r0", "r1", "lr", '
            r'"cc");')
    return f"""#include <stdint.h>
#include "ariel_runtime.h"
{LAYER}
static const uint32_t table[2304] __attribute__((aligned(64))) = {{1, 2, 3}};

int main(void)
{{
{calls}
{nops}
    return 0;
}}
"""


def run(board, folder: Path):
    """The run's counts and each layer's segment, counted with `board`'s flash model."""
    elf = build_firmware(folder, board, firmware())
    counts = count_instructions(board, elf, folder, flash=True)
    assert counts.has_flash and counts.has_edges
    split = split_inferences(counts, [{"index": k} for k in range(CODE_LAYER + 1)], 1)
    return counts, [layer.segment for layer in split.inferences[0].layers]


@pytest.fixture(scope="module")
def l4(tmp_path_factory):
    return run(L4, tmp_path_factory.mktemp("l4"))


@pytest.fixture(scope="module")
def f7(tmp_path_factory):
    return run(F7, tmp_path_factory.mktemp("f7"))


@pytest.mark.qemu
def test_data_loads_through_the_art_data_cache(l4):
    """32 entries of 8 bytes: a stream misses once per 8 bytes; a table of 8 entries stays;
    one of 64 entries, passed over in order, evicts every entry before its reuse."""
    _, segments = l4
    found = {name: (s.flash.loads, s.flash.load_misses, s.flash.load_lines)
             for name, s in zip(DATA_LAYERS, segments, strict=False)}
    assert found == {"stream 4 KiB once": (1024, 512, 512), "64 B four times": (64, 8, 8),
                     "512 B twice": (256, 128, 64), "4 KiB twice": (2048, 1024, 512)}


@pytest.mark.qemu
def test_data_loads_through_the_cortex_m7_l1_cache(f7):
    """4 KiB in 32-byte lines, 4-way: a 4 KiB table misses once per line on its first
    pass and fits for the second."""
    _, segments = f7
    found = {name: s.flash.load_misses for name, s in zip(DATA_LAYERS, segments, strict=False)}
    assert found == {"stream 4 KiB once": 128, "64 B four times": 2, "512 B twice": 16,
                     "4 KiB twice": 128}


@pytest.mark.qemu
def test_instruction_fetches_miss_when_the_code_outgrows_the_cache(l4, f7):
    """2 KiB of NOPs run twice: 256 entries of 8 bytes against the ART's 128 miss on both
    passes (least recently used), each after the one before (a prefetch candidate); the
    Cortex-M7's 4 KiB holds them for the second pass."""
    art = l4[1][CODE_LAYER].flash
    assert 512 <= art.misses <= 512 + 8 and art.sequential >= 510
    l1 = f7[1][CODE_LAYER].flash
    assert 64 <= l1.misses <= 64 + 4


@pytest.mark.qemu
def test_misses_are_charged_the_wait_states(l4):
    counts, segments = l4
    memory = Memory(5, True, L4.flash_caches)
    stream = estimate(counts, segments[0], "cortex-m4", memory)
    assert stream.simulated and stream.flash_stalls["data"] == 512 * 5
    assert stream.cycles == stream.ram_cycles + stream.flash_cycles
    assert stream.flash_cycles == sum(stream.flash_stalls.values())
    code = estimate(counts, segments[CODE_LAYER], "cortex-m4", memory)
    fc = code.flash
    per_line = code.core_cycles / fc.lines
    expected = (fc.misses - fc.sequential) * 5 + fc.sequential * max(0.0, 6 - per_line)
    assert code.flash_stalls["instruction"] == round(expected)
    # Without the caches' description the run's flash counts are not used: the old bounds.
    bounded = estimate(counts, segments[0], "cortex-m4", Memory(5, True))
    assert not bounded.simulated and bounded.cycles_upper > bounded.cycles


def test_prefetch_hides_a_sequential_miss_that_takes_no_longer_than_the_core():
    caches = FlashCaches(CacheGeometry(8, 128, 128), CacheGeometry(8, 32, 32), True)
    counts = FlashCounts(lines=100, misses=40, sequential=30, loads=10, load_misses=4,
                         load_lines=4)
    # 6 cycles per line: a read of 5 + 1 cycles hides behind the core entirely.
    assert flash_stalls(counts, Memory(5, True, caches), 600) == \
        {"instruction": 10 * 5, "data": 4 * 5}
    # 2 cycles per line: each sequential miss waits the other 4.
    assert flash_stalls(counts, Memory(5, True, caches), 200) == \
        {"instruction": 10 * 5 + 30 * 4, "data": 20}
    no_prefetch = FlashCaches(caches.instruction, caches.data, False)
    assert flash_stalls(counts, Memory(5, True, no_prefetch), 200)["instruction"] == 40 * 5


def test_assumptions_describe_the_simulated_caches():
    lines = assumptions(load_core("cortex-m4"), Memory(5, True, L4.flash_caches))
    text = " ".join(lines)
    assert "32 entries of 8 B" in text and "128 entries of 8 B" in text
    assert "prefetch" in text and "waits 5 cycles" in text
    g0 = get_board("nucleo-g071rb")
    text = " ".join(assumptions(load_core("cortex-m0plus"), Memory(2, True, g0.flash_caches)))
    assert "none (every read goes to the flash)" in text


def test_flash_records_are_read_and_checked():
    text = ("ariel-count 1 blocks=1 edges=1 flash=1\nS 0 X 5 0\nC 0 1\nF - 0 1\n"
            "M 3 1 0 2 1 1\nB 0 100 1 00bf\nT 5 1 1\n")
    counts = parse_counts(text.replace("B 0 100 1 00bf", "B 0 100 5 00bf:00bf:00bf:00bf:00bf"))
    assert counts.has_flash
    assert counts.segments[0].flash == FlashCounts(3, 1, 0, 2, 1, 1)
    with pytest.raises(ArielError, match="malformed at line 5"):
        parse_counts(text.replace("M 3 1 0 2 1 1", "M 3 1 0"))


def test_a_board_without_flash_caches_cannot_be_simulated(tmp_path):
    with pytest.raises(ArielError, match="describes no flash caches"):
        count_instructions(get_board("mps2-an386"), tmp_path / "none.elf", tmp_path,
                           flash=True)
