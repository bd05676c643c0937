"""The cores' own pipelines: hand-written sequences whose cycles follow from the published
rules, run in QEMU and estimated. The Cortex-M7's dual issue, latencies and branch
prediction (Arm's LLVM scheduling model, ARMScheduleM7.td, as cortex-m7.toml cites it); the
Cortex-M0+'s multiplier option; the Cortex-M33's Armv8-M instructions on QEMU's own
Cortex-M33 machine."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from codegen.run.emulate.counting import count_instructions, split_inferences
from codegen.run.emulate.cycles import estimate, load_core
from codegen.target.boards import get_board
from tests.run.support import build_firmware

pytestmark = pytest.mark.qemu

M7 = load_core("cortex-m7")
REPEAT = 8

# One layer: a hook call, the body REPEAT times in a straight line, a hook call. The layer's
# segment is the begin hook's `bx lr` (1 cycle and, not predicted, the 4-cycle
# mispredict penalty) and one block: the bodies, `movs r0, #k` and `bl` (predicted: no
# refill; it pairs with `movs` when `movs` does not pair with the body's last instruction).
STRAIGHT = r"""
#define LAYER(layer, body)                                                             \
    __asm__ volatile("movs r0, #" #layer "\n\t"                                         \
                     "bl ariel_profile_begin\n\t"                                       \
                     ".rept 8\n\t" body ".endr\n\t"                                     \
                     "movs r0, #" #layer "\n\t"                                         \
                     "bl ariel_profile_end\n\t"                                         \
                     : : [buffer] "r"(scratch)                                          \
                     : "r0", "r1", "r2", "r3", "r12", "lr", "cc", "memory")
"""
HOOK = 1 + 4  # the begin hook's bx lr: issue, then the mispredict penalty

# name: (body, cycles of the block after the hook), each derived from the rules in comments.
M7_LAYERS = {
    # Two ALU pipes: the independent adds of each body pair; movs r0 and bl pair.
    "independent adds": ("add r2, r2, #1; add r3, r3, #1", REPEAT + 1),
    # Each add reads the r2 the one before wrote: none pairs, until the last with movs r0;
    # bl then issues alone.
    "dependent adds": ("add r2, r2, #1; add r2, r2, #1", 2 * REPEAT - 1 + 1 + 1),
    # Two load pipes: two word loads pair.
    "two loads": ("ldr r2, [%[buffer]]; ldr r3, [%[buffer], #4]", REPEAT + 1),
    # One store pipe: stores never pair with each other; the last pairs with movs r0.
    "two stores": ("str r2, [%[buffer], #8]; str r3, [%[buffer], #12]",
                   2 * REPEAT - 1 + 1 + 1),
    # A byte load's result reaches the next cycle one late (latency 2): each add waits 1
    # and cannot pair with its load; the add then pairs with the next body's load (it
    # reads nothing the add writes), the last add with movs r0.
    "byte load then use": ("ldrb r2, [%[buffer]]; add r3, r2, #1", 1 + REPEAT * 2 + 1),
    # An address is read a cycle early: a load whose base the add just before computed
    # waits 1; the load pairs with the next add.
    "address from an add": ("add r2, %[buffer], #4; ldr r3, [r2]", 1 + REPEAT * 2 + 1),
    # One MAC pipe: multiply-accumulates never pair; the accumulator is read a cycle late,
    # so a chain through it does not wait.
    "mac chain": ("smlad r2, r3, r12, r2; smlad r2, r3, r12, r2", 2 * REPEAT - 1 + 1 + 1),
    # A MAC's result used as an operand (not the accumulator) waits 1 (latency 2); the next
    # MAC reads the add's r3, so nothing pairs but the last add with movs r0.
    "mac result used": ("smlad r2, r3, r12, r2; add r3, r2, #1", REPEAT * (1 + 2) + 1),
    # SXTB16 (a DSP SIMD operation) may issue only first of a pair: first, it pairs.
    "simd first": ("sxtb16 r2, r3; add r12, r12, #1", REPEAT + 1),
    # Second, it cannot: each pairs with the next body's add instead, the last with movs.
    "simd second": ("add r12, r12, #1; sxtb16 r2, r3", 1 + (REPEAT - 1) + 1 + 1),
    # A divide issues alone and stalls for its latency, 7.
    "divide": ("udiv r2, r3, r12", 7 * REPEAT + 1),
}


def m7_firmware() -> str:
    calls = []
    for k, (body, _) in enumerate(M7_LAYERS.values()):
        text = "".join(part.strip() + r"\n\t" for part in body.split(";"))
        calls.append(f'    LAYER({k}, "{text}");')
    k = len(M7_LAYERS)
    loop = (rf'    __asm__ volatile("movs r0, #{k}\n\tbl ariel_profile_begin\n\tmov r1, #50\n"'
            r'"1:\n\tsubs r1, r1, #1\n\tadd r2, r2, #1\n\tbne 1b\n\t"'
            rf'"movs r0, #{k}\n\tbl ariel_profile_end\n\t" : : : "r0", "r1", "r2", "lr", '
            r'"cc");')
    return f"""#include <stdint.h>
#include "ariel_runtime.h"
{STRAIGHT}
static volatile uint32_t scratch[8] = {{0, 0, 0, 0, 0, 0, 0, 0}};

int main(void)
{{
{chr(10).join(calls)}
{loop}
    return 0;
}}
"""


def m7_estimates(folder: Path) -> dict:
    """The Cortex-M7 estimate of each M7_LAYERS layer and of the loop, by name."""
    board = get_board("mps2-an500")
    elf = build_firmware(folder, board, m7_firmware())
    counts = count_instructions(board, elf, folder, edges=True)
    names = [*M7_LAYERS, "loop"]
    split = split_inferences(counts, [{"index": k} for k in range(len(names))], 1)
    return {name: estimate(counts, layer.segment, M7)
            for name, layer in zip(names, split.inferences[0].layers, strict=True)}


@pytest.fixture(scope="module")
def m7_layers(tmp_path_factory):
    return m7_estimates(tmp_path_factory.mktemp("m7"))


@pytest.mark.parametrize("name", list(M7_LAYERS))
def test_cortex_m7_pairs_follow_the_published_rules(m7_layers, name):
    result = m7_layers[name]
    assert result.unknown == 0
    assert result.core_cycles == HOOK + M7_LAYERS[name][1]


def test_cortex_m7_events(m7_layers):
    assert m7_layers["independent adds"].events["dual-issued pairs"] == REPEAT + 1
    assert "dual-issued pairs" not in m7_layers["divide"].events or \
        m7_layers["divide"].events["dual-issued pairs"] == 1  # movs r0 and bl
    assert m7_layers["byte load then use"].events["result stalls"] == REPEAT
    assert "result stalls" not in m7_layers["mac chain"].events


def test_cortex_m7_predicts_a_loop_branch(m7_layers):
    """mov r1, #50; 1: subs; add; bne 1b. The block after the hook (mov, subs, add, bne)
    runs once: mov alone (subs reads r1), subs and add pair, bne alone: 3. The loop's own
    block (subs, add, bne) runs 49 times, 2 cycles each; bne is taken 49 times with no
    refill and falls through once: one misprediction, 4 cycles. movs r0 and bl pair: 1."""
    result = m7_layers["loop"]
    assert result.events["mispredicted branches"] == 1
    assert result.events["taken branches"] == 49 + 2  # bne, the hooks' bx lr and bl
    assert result.core_cycles == HOOK + 3 + 49 * 2 + 4 + 1


# ----------------------------------------------------------------------------- Cortex-M0+


def test_cortex_m0plus_multiplier_is_the_boards_choice(tmp_path):
    """MULS costs 1 cycle with the fast multiplier and 32 with the small one (Arm DDI 0484C
    section 3.3); the board file's core_options say which."""
    fast = load_core("cortex-m0plus")
    small = load_core("cortex-m0plus", (("multiplier", "small"),))
    assert (fast.by_key["mul"].cycles, small.by_key["mul"].cycles) == (1, 32)
    assert get_board("nucleo-g071rb").core_options == {"multiplier": "fast"}
    m0 = SimpleNamespace(name="microbit", qemu_machine="microbit")
    (tmp_path / "m.S").write_text(M0_MULTIPLY)
    (tmp_path / "m.ld").write_text(
        "MEMORY { FLASH (rx) : ORIGIN = 0, LENGTH = 256K }\n"
        "SECTIONS { .text : { KEEP(*(.vectors)) *(.text*) } > FLASH }\n")
    elf = tmp_path / "m.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-nostdlib", "-T",
                    str(tmp_path / "m.ld"), str(tmp_path / "m.S"), "-o", str(elf)],
                   check=True)
    counts = count_instructions(m0, elf, tmp_path, edges=True)
    layer = split_inferences(counts, [{"index": 0}], 1).inferences[0].layers[0].segment
    cheap, dear = (estimate(counts, layer, core) for core in (fast, small))
    assert cheap.by_class["multiply"].instructions == 10
    assert dear.core_cycles - cheap.core_cycles == 10 * (32 - 1)


M0_MULTIPLY = """
    .syntax unified
    .cpu cortex-m0plus
    .thumb
    .section .vectors, "a"
    .word 0x20001000
    .word reset + 1
    .text
    .global ariel_profile_begin, ariel_profile_end
    .thumb_func
ariel_profile_begin:
    bx lr
    .thumb_func
ariel_profile_end:
    bx lr
    .thumb_func
reset:
    movs r0, #0
    bl ariel_profile_begin
    .rept 10
    muls r2, r3
    .endr
    movs r0, #0
    bl ariel_profile_end
    movs r0, #0x18
    ldr r1, =0x20026
    bkpt 0xab
"""


# ----------------------------------------------------------------------------- Cortex-M33

# QEMU's mps2-an505 is a Cortex-M33 that starts in the secure state with its vector table
# at 0x10000000 (SSRAM1's secure alias) and SSRAM2 at 0x38000000.
M33_FIRMWARE = """
    .syntax unified
    .cpu cortex-m33
    .thumb
    .section .vectors, "a"
    .word 0x38001000
    .word reset + 1
    .text
    .global ariel_profile_begin, ariel_profile_end
    .thumb_func
ariel_profile_begin:
    bx lr
    .thumb_func
ariel_profile_end:
    bx lr
    .thumb_func
reset:
    ldr r4, =0x38000100
    movs r0, #0
    bl ariel_profile_begin
    .rept 10
    lda r2, [r4]
    stl r2, [r4]
    tt r3, r4
    .endr
    movs r0, #0
    bl ariel_profile_end
    movs r0, #0x18
    ldr r1, =0x20026
    bkpt 0xab
"""


# bx lr (1 + P 2), the body (LDA as LDR 2, STL as STR 2, TT 1), movs r0 (1), bl (1 + P 1).
M33_EXPECTED = 3 + 10 * (2 + 2 + 1) + 1 + 2


def m33_estimate(tmp_path: Path):
    """The Cortex-M33 estimate of M33_FIRMWARE's layer, run on QEMU's mps2-an505."""
    (tmp_path / "m.S").write_text(M33_FIRMWARE)
    (tmp_path / "m.ld").write_text(
        "MEMORY { CODE (rx) : ORIGIN = 0x10000000, LENGTH = 256K }\n"
        "SECTIONS { .text : { KEEP(*(.vectors)) *(.text*) } > CODE }\n")
    elf = tmp_path / "m.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-nostdlib", "-T",
                    str(tmp_path / "m.ld"), str(tmp_path / "m.S"), "-o", str(elf)],
                   check=True)
    counts = count_instructions(SimpleNamespace(name="an505", qemu_machine="mps2-an505"),
                                elf, tmp_path, edges=True)
    layer = split_inferences(counts, [{"index": 0}], 1).inferences[0].layers[0].segment
    return estimate(counts, layer, load_core("cortex-m33"))


def test_cortex_m33_table_on_qemus_cortex_m33(tmp_path):
    """Armv8-M instructions the Cortex-M4 lacks get the M33 table's classes: LDA as LDR
    (2), STL as STR (2), TT as a data-processing instruction (1)."""
    result = m33_estimate(tmp_path)
    assert result.unknown == 0 and result.instructions == 1 + 30 + 2
    assert {name: result.by_class[name].instructions
            for name in ("load_acquire", "store_release", "security")} == \
        {"load_acquire": 10, "store_release": 10, "security": 10}
    assert result.core_cycles == M33_EXPECTED
