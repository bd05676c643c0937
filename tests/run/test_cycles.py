"""The cycle model (codegen/run/emulate/cycles.py and its tables): hand-written loops whose cycles
follow from the table are estimated exactly; every instruction of real firmware gets a
class; the tables are consistent and cite their sources."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

import capstone
import numpy as np
import pytest

from codegen.build import build
from codegen.compiler.compile import Options
from codegen.errors import ArielError
from codegen.resources import data_dir
from codegen.run.emulate.counting import Block, count_instructions, profile, split_inferences
from codegen.run.emulate.cycles import (
    UNKNOWN,
    Memory,
    assumptions,
    block_cost,
    core_files,
    decode_block,
    estimate,
    load_core,
    total,
)
from codegen.run.simulate import open_build
from codegen.target.boards import all_boards, get_board
from tests.run.support import build_firmware

M4 = load_core("cortex-m4")


def cycles(core, mnemonic: str) -> int:
    """The table's figure for one instruction name (without N and P)."""
    return core.by_key[mnemonic].cycles


def refill(core, mnemonic: str) -> int:
    return core.by_key[mnemonic].refill


# ----------------------------------------------------------------------------- the tables


def test_every_table_loads_and_cites_its_sources():
    names = {path.stem for path in core_files()}
    assert {"cortex-m4", "cortex-m7", "cortex-m33", "cortex-m0plus"} <= names
    for name in names:
        core = load_core(name)
        assert core.notes and "Arm" in core.path.read_text().split("core =")[0]
        assert core.classes and core.by_key
    # Every board's core has a table.
    for board in all_boards():
        load_core(board.core)


def test_every_table_row_names_a_capstone_instruction():
    known = {name[len("ARM_INS_"):].lower() for name in dir(capstone.arm_const)
             if name.startswith("ARM_INS_")}
    for path in core_files():
        for key in load_core(path.stem).by_key:
            name = key.split("+")[0].removesuffix(".f64")
            assert name in known, f"{path.name}: '{key}' is not a capstone instruction name"


def test_cortex_m4_figures_are_the_trm_figures():
    """Arm DDI 0439B Table 3-1 and Table 7-1, as the table file cites them."""
    expected = {"add": 1, "mul": 1, "mla": 1, "smull": 1, "smlal": 1, "smlad": 1,
                "smulbb": 1, "ldr": 2, "str": 2, "ldrd": 3,
                "vadd": 1, "vsub": 1, "vmul": 1, "vmla": 3, "vmls": 3, "vfma": 3, "vdiv": 14,
                "vsqrt": 14, "vldr": 2, "vstr": 2, "vldr.f64": 3, "vmov+core": 2, "vmrs": 1,
                "vcvt": 1, "it": 1, "cbz": 1}
    assert {name: cycles(M4, name) for name in expected} == expected
    for name in ("ldm", "stm", "push", "pop", "vldmia", "vstmia", "vpush", "vpop"):
        assert M4.by_key[name].per_register and cycles(M4, name) == 1  # 1 + N
    assert {name: refill(M4, name) for name in ("b", "bl", "cbz", "bx", "blx", "pop+pc",
                                               "ldr+pc", "tbb")} == {
        "b": 1, "bl": 1, "cbz": 1, "bx": 2, "blx": 2, "pop+pc": 3, "ldr+pc": 3, "tbb": 3}
    assert M4.max_refill == 3  # the TRM's P ranges from 1 to 3
    # SDIV/UDIV: 2 to 12 cycles; the estimate takes a typical 4, the bound the TRM's 12.
    assert [(M4.by_key[n].cycles, M4.by_key[n].worst) for n in ("sdiv", "udiv")] == [(4, 12)] * 2
    assert M4.store_immediate == 1  # TRM 3.3.2: "STR Rx,[Ry,#imm] is always one cycle"


def test_derived_tables_add_to_the_cortex_m4_table():
    m7, m33 = load_core("cortex-m7"), load_core("cortex-m33")
    for core in (m7, m33):
        assert set(M4.classes) < set(core.classes)
        assert cycles(core, "vdiv") == 14 and cycles(core, "vmaxnm") == 1
    assert set(M4.notes) < set(m33.notes)
    # The Cortex-M7's pipeline is not the M4's: its table says its own assumptions.
    assert not set(M4.notes) & set(m7.notes) and m7.issue_width == 2
    assert cycles(m33, "lda") == 2 and refill(m33, "bxns") == 2


def test_cortex_m7_figures_are_llvms_scheduling_model():
    """The Cortex-M7 table cites LLVM's ARMScheduleM7.td: WriteLd, M7SlowLoad and WriteST
    issue in one cycle, WriteDIV stalls for its latency of 7, M7TableLoad takes two."""
    m7 = load_core("cortex-m7")
    expected = {"ldr": 1, "ldrb": 1, "str": 1, "sdiv": 7, "udiv": 7, "tbb": 2}
    assert {name: cycles(m7, name) for name in expected} == expected


def test_unknown_core_is_a_clear_error():
    with pytest.raises(ArielError, match="no cycle table for core 'cortex-m85'.*cortex-m4"):
        load_core("cortex-m85")


# ----------------------------------------------------------------------------- decoding


def assemble(tmp_path: Path, source: str, cpu: str = "cortex-m4") -> tuple[bytes, ...]:
    """Assemble Thumb code and return its instructions' bytes, split by length."""
    (tmp_path / "code.S").write_text(".syntax unified\n.thumb\n.text\n" + source + "\n")
    flags = ["-mcpu=" + cpu] + (["-mfpu=fpv4-sp-d16"] if cpu == "cortex-m4" else [])
    subprocess.run(["arm-none-eabi-as", *flags, "-o", str(tmp_path / "code.o"),
                    str(tmp_path / "code.S")], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".text",
                    str(tmp_path / "code.o"), str(tmp_path / "code.bin")], check=True)
    code, insns = (tmp_path / "code.bin").read_bytes(), []
    while code:
        size = 4 if int.from_bytes(code[:2], "little") >= 0xE800 else 2
        insns.append(code[:size])
        code = code[size:]
    return tuple(insns)


def test_instructions_get_their_class_and_operands(tmp_path):
    code = assemble(tmp_path, "\n".join([
        "pop {r4, r5, pc}", "ldr pc, [sp], #4", "mov pc, lr", "ldm r0!, {r1, r2, r3}",
        "vldmia r0!, {d0-d1}", "vpush {s16-s19}", "ldr r0, [pc, #8]", "ldr r1, [sp, #4]",
        "ldr.w r2, [r3, r4, lsl #2]", "vmov r0, s1", "vmov s1, s2", "vldr d0, [r1]",
        "itt eq", "addeq r0, r0, #1", "bxeq lr", "smlad r0, r1, r2, r0", "ldrd r0, r1, [r2]",
        "vmrs APSR_nzcv, fpscr", "vmov.f32 s0, #1.0", "tbb [r0, r1]"]))
    insns = decode_block(0x100, code)
    block = block_cost(M4, Block(0, 0x100, code))
    found = [(i.name, c.name, i.registers, i.base) for i, c in zip(insns, block.classes,
                                                                  strict=True)]
    assert found == [
        ("pop", "pop_pc", 3, "stack"), ("ldr", "load_pc", 0, "stack"),
        ("mov", "branch_register", 0, ""), ("ldm", "load_multiple", 3, "other"),
        ("vldmia", "fp_load_multiple", 4, "other"), ("vpush", "fp_store_multiple", 4, "stack"),
        ("ldr", "load", 0, "literal"), ("ldr", "load", 0, "stack"), ("ldr", "load", 0, "other"),
        ("vmov", "fp_transfer", 0, ""), ("vmov", "fp_alu", 0, ""),
        ("vldr", "fp_load_double", 0, "other"), ("it", "it", 0, ""), ("add", "alu", 0, ""),
        ("bx", "branch_register", 0, ""), ("smlad", "dsp_multiply", 0, ""),
        ("ldrd", "load_double", 0, "other"), ("fmstat", "fp_status", 0, ""),
        ("fconsts", "fp_alu", 0, ""), ("tbb", "table_branch", 0, "other")]
    assert [i.conditional for i in insns[12:15]] == [False, True, True]  # IT itself is not
    assert [i.words for i in insns[3:6]] == [3, 4, 4]
    assert insns[11].words == 2 and insns[16].words == 2


def test_unknown_instructions_cost_the_stated_fallback(tmp_path):
    """An instruction no row covers (an M4 DSP instruction under the M0+ table, or bytes
    capstone cannot decode) is counted as "unknown" and costs the table's fallback."""
    m0 = load_core("cortex-m0plus")
    code = assemble(tmp_path, "smlad r0, r1, r2, r0\nadds r0, r0, #1")
    cost = block_cost(m0, Block(0, 0x200, code))
    assert cost.instructions == {UNKNOWN: 1, "alu": 1}
    assert cost.cycles == {UNKNOWN: 1, "alu": 1}
    garbage = (bytes.fromhex("ffffffff"), bytes.fromhex("0130"))  # undefined, adds r0, #1
    cost = block_cost(M4, Block(0, 0x300, garbage))
    assert cost.instructions == {UNKNOWN: 1, "alu": 1}
    assert cost.insns[0].name == "" and cost.insns[1].address == 0x304


def test_a_read_ahead_halfword_does_not_shift_the_next_instruction():
    """At the end of a page the plugin can record 4 bytes for a 16-bit instruction (QEMU's
    look-ahead read): lengths come from the instruction itself."""
    insns = (bytes.fromhex("0346"), bytes.fromhex("1446c0e7"), bytes.fromhex("c0e7"))
    decoded = decode_block(0xFFA, insns)
    assert [(i.address, i.size, i.name) for i in decoded] == [
        (0xFFA, 2, "mov"), (0xFFC, 2, "mov"), (0xFFE, 2, "b")]
    assert block_cost(M4, Block(0, 0xFFA, insns)).fallthrough == 0x1000


# ----------------------------------------------------------------------------- firmware

# One layer: hook call, counted loop, hook call, in one asm statement. The loop starts with
# subs (16-bit, so a taken bne refills in P = 1 whatever its alignment) and the bodies leave
# the flags alone. The layer's segment is: the begin hook's bx lr (1 + P, P = 2), mov r1,
# n iterations of (subs, body, bne), movs r0, bl (1 + P, P = 1).
LAYER_MACRO = r"""
#define LAYER(layer, count, body)                                                    \
    __asm__ volatile("movs r0, #" #layer "\n\t"                                       \
                     "bl ariel_profile_begin\n\t"                                     \
                     "mov r1, %[n]\n"                                                 \
                     "1:\n\t"                                                         \
                     "subs r1, r1, #1\n\t"                                            \
                     body                                                             \
                     "bne 1b\n\t"                                                     \
                     "movs r0, #" #layer "\n\t"                                       \
                     "bl ariel_profile_end\n\t"                                       \
                     :                                                                \
                     : [n] "r"(count), [buffer] "r"(scratch)                          \
                     : "r0", "r1", "r2", "r3", "r12", "lr", "s0", "s1", "s2", "s3",   \
                       "s4", "cc", "memory")
"""

N = 50
# name: asm body (each instruction followed by \n\t)
LAYERS = {
    "alu": "add r2, r2, #1; add r3, r3, #1; add r12, r12, #1",
    "loads back to back": "ldr r2, [%[buffer]]; ldr r3, [%[buffer], #4]",
    "loads apart": "ldr r2, [%[buffer]]; add r12, r12, #1; ldr r3, [%[buffer], #4]",
    "load then dependent load": "ldr r2, [%[buffer], #8]; ldr r3, [r2]",
    "address from an add": "add r2, %[buffer], #4; ldr r3, [r2]",
    "load then store": "ldr r2, [%[buffer]]; str r2, [%[buffer], #12]",
    "store then load": "str r2, [%[buffer], #12]; ldr r3, [%[buffer]]",
    "memory kinds": "ldr r2, [sp]; ldr r3, [pc, #0]; ldr r12, [%[buffer]]",
    "not-taken branch": "beq 2f; add r2, r2, #1; 2:",
    "taken branch": "b 2f; nop; 2:",
    "smlad": "smlad r2, r3, r12, r2; smlad r3, r2, r12, r3",
    "vadd": "vadd.f32 s0, s1, s2; vadd.f32 s3, s1, s2",
    "vdiv": "vdiv.f32 s0, s1, s2",
    "vldr vmla vstr": "vldr s1, [%[buffer]]; vmla.f32 s0, s1, s2; vstr s0, [%[buffer], #16]",
    "ldm": "ldm %[buffer], {r2, r3, r12}",
    "push pop": "push {r2, r3}; pop {r2, r3}",
    "vldm": "vldmia %[buffer], {s1-s4}",
    "udiv": "udiv r2, r3, r12",
}
OVERHEAD = 7  # bx lr 3, mov r1 1, movs r0 1, bl 2


def expected_body() -> dict[str, int]:
    """Cycles of one iteration's body, from the table's figures and rules."""
    c = {name: cycles(M4, name) for name in ("add", "ldr", "str", "smlad", "vadd", "vdiv",
                                              "vldr", "vmla", "vstr", "udiv", "b", "nop")}
    pipelined = c["ldr"] - 1  # TRM 3.3.2: one cycle removed
    stall = M4.address_stall.cycles
    return {
        "alu": 3 * c["add"],
        "loads back to back": c["ldr"] + pipelined,
        "loads apart": c["ldr"] + c["add"] + c["ldr"],
        "load then dependent load": c["ldr"] + c["ldr"],  # r2 is the address: no pipelining
        "address from an add": c["add"] + c["ldr"] + stall,
        "load then store": c["ldr"] + M4.store_immediate,  # STR [Rn, #imm]: always one cycle
        "store then load": M4.store_immediate + c["ldr"],  # nothing pipelines after a store
        "memory kinds": c["ldr"] + 2 * pipelined,
        "taken branch": c["b"] + refill(M4, "b"),
        "smlad": 2 * c["smlad"],
        "vadd": 2 * c["vadd"],
        "vdiv": c["vdiv"],
        "vldr vmla vstr": c["vldr"] + c["vmla"] + c["vstr"],
        "ldm": 1 + 3,  # 1 + N
        "push pop": (1 + 2) + (1 + 2),
        "vldm": 1 + 4,
        "udiv": c["udiv"],
    }


def loop(body: int) -> int:
    """subs, body, bne for N iterations: bne taken N - 1 times (1 + P), not taken once."""
    return N * (cycles(M4, "subs") + body) + (N - 1) * (1 + refill(M4, "b")) + 1


def firmware_source() -> str:
    calls = []
    for k, body in enumerate(LAYERS.values()):
        text = "".join(part.strip() + r"\n\t" for part in body.split(";"))
        calls.append(f'    LAYER({k}, {N}u, "{text}");')
    return f"""#include <stdint.h>
#include "ariel_runtime.h"
{LAYER_MACRO}
static volatile uint32_t scratch[8];

int main(void)
{{
    scratch[2] = (uint32_t)&scratch[0];
{chr(10).join(calls)}
    return 0;
}}
"""


def m4_layers(folder: Path) -> dict:
    """Each layer's segment, the run's counts and the layer's estimate, by name, on
    mps2-an386 (Cortex-M4)."""
    board = get_board("mps2-an386")
    elf = build_firmware(folder, board, firmware_source())
    counts = count_instructions(board, elf, folder, edges=True)
    split = split_inferences(counts, [{"index": k} for k in range(len(LAYERS))], 1)
    return {name: (layer.segment, counts, estimate(counts, layer.segment, "cortex-m4"))
            for name, layer in zip(LAYERS, split.inferences[0].layers, strict=True)}


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    return m4_layers(tmp_path_factory.mktemp("cycles"))


@pytest.mark.qemu
@pytest.mark.parametrize("name", [n for n in LAYERS if n != "not-taken branch"])
def test_hand_written_loops_are_estimated_exactly(layers, name):
    segment, _, result = layers[name]
    assert result.instructions == segment.instructions
    assert result.unknown == 0
    assert result.core_cycles == OVERHEAD + loop(expected_body()[name])
    assert sum(c.cycles for c in result.by_class.values()) == result.core_cycles
    assert result.cycles == result.core_cycles  # no wait states by default


@pytest.mark.qemu
def test_pipelining_and_address_stalls_are_counted(layers):
    events = {name: layers[name][2].events for name in LAYERS}
    assert events["loads back to back"].get("pipelined") == N
    assert events["memory kinds"].get("pipelined") == 2 * N
    for name in ("loads apart", "load then dependent load", "store then load", "alu",
                 "load then store"):
        assert "pipelined" not in events[name]
    assert events["address from an add"].get("address stalls") == N
    assert sum("address stalls" in e for e in events.values()) == 1


@pytest.mark.qemu
def test_taken_and_not_taken_branches(layers):
    # 1: subs; beq 2f; add; 2: bne 1b. beq falls through N - 1 times and is taken once (to
    # bne, at the last iteration); bne is taken N - 1 times and falls through once.
    _, _, result = layers["not-taken branch"]
    c_b, p = cycles(M4, "b"), refill(M4, "b")
    beq = (N - 1) * c_b + (c_b + p)
    bne = (N - 1) * (c_b + p) + c_b
    body = N * cycles(M4, "subs") + beq + (N - 1) * cycles(M4, "add") + bne
    assert result.core_cycles == OVERHEAD + body
    # Taken: bne N - 1, beq 1, and the hooks' bx lr and bl; not taken: beq N - 1, bne 1.
    assert result.events["taken branches"] == N + 2
    assert result.events["not-taken branches"] == N
    taken = layers["taken branch"][2]
    assert taken.events["taken branches"] == 2 * N - 1 + 2
    assert taken.events["not-taken branches"] == 1
    assert "hint" not in taken.by_class  # the nop it jumps over never runs


@pytest.mark.qemu
def test_class_breakdown(layers):
    result = layers["smlad"][2]
    assert result.by_class["dsp_multiply"].instructions == 2 * N
    assert result.by_class["dsp_multiply"].cycles == 2 * N * cycles(M4, "smlad")
    vdiv, vadd = layers["vdiv"][2], layers["vadd"][2]
    assert vdiv.by_class["fp_divide"].cycles == N * 14
    assert vadd.by_class["fp_alu"].cycles == 2 * N
    assert vdiv.core_cycles - vadd.core_cycles == N * (14 - 2)
    ldm = layers["ldm"][2]
    assert ldm.by_class["load_multiple"].cycles == N * (1 + 3)
    assert ldm.load_words == {"other": 3 * N}


@pytest.mark.qemu
def test_loads_are_sorted_for_the_flash_bound(layers):
    result = layers["memory kinds"][2]
    assert result.loads == 3 * N
    assert result.load_words == {"stack": N, "literal": N, "other": N}
    slow = estimate(*reversed(layers["memory kinds"][:2]), "cortex-m4",
                    Memory(wait_states=5, fetches_hidden=True))
    assert slow.core_cycles == result.core_cycles
    assert slow.cycles == result.core_cycles + 5 * N  # the literal loads certainly wait
    assert slow.cycles_upper == slow.cycles + 5 * N  # and the others may
    fetching = estimate(*reversed(layers["memory kinds"][:2]), "cortex-m4",
                        Memory(wait_states=5, fetches_hidden=False))
    assert fetching.fetches == -(-result.code_bytes // 4) + result.events["taken branches"]
    assert fetching.cycles == slow.cycles + 5 * fetching.fetches


@pytest.mark.qemu
def test_assumptions_say_what_the_estimate_takes(layers):
    plain = assumptions("cortex-m4")
    assert any("no wait states" in line for line in plain)
    assert any("SDIV/UDIV cost 4" in line for line in plain)
    slow = assumptions("cortex-m4", Memory(wait_states=5, fetches_hidden=False))
    assert any("waits 5 cycles" in line for line in slow)
    assert any("cycles_upper" in line for line in slow)
    hidden = assumptions("cortex-m4", Memory(wait_states=5))
    assert any("accelerator or cache" in line for line in hidden)
    assert any("dual issue" in line for line in assumptions("cortex-m7"))


@pytest.mark.qemu
def test_estimates_add_up(layers):
    parts = [layers[name][2] for name in ("alu", "vdiv")]
    both = total(parts)
    assert both.core_cycles == sum(p.core_cycles for p in parts)
    assert both.instructions == sum(p.instructions for p in parts)
    assert both.by_class["fp_divide"].cycles == N * 14


@pytest.mark.qemu
def test_estimating_needs_edges(layers):
    segment, counts, _ = layers["alu"]
    counts.has_edges = False
    try:
        with pytest.raises(ArielError, match="edges=True"):
            estimate(counts, segment, "cortex-m4")
    finally:
        counts.has_edges = True


@pytest.mark.qemu
def test_alignment_of_a_32_bit_loop_head_adds_a_refill_cycle(tmp_path):
    """TRM: P depends on the alignment and width of the target. A loop whose first
    instruction is 32-bit and 2 mod 4 costs one more per taken branch than an aligned one."""
    loops = {"aligned": ".balign 4\n1:\n\t", "unaligned": ".balign 4\n\tnop\n1:\n\t"}
    layer = r"""
    __asm__ volatile("movs r0, #%d\n\tbl ariel_profile_begin\n\tmov r1, %%[n]\n\t%s"
                     "smlad r2, r3, r12, r2\n\tsubs r1, r1, #1\n\tbne 1b\n\t"
                     "movs r0, #%d\n\tbl ariel_profile_end\n\t"
                     : : [n] "r"(%du) : "r0", "r1", "r2", "r3", "r12", "lr", "cc");"""
    calls = "".join(layer % (k, head.replace("\n", r"\n").replace("\t", r"\t"), k, N)
                    for k, head in enumerate(loops.values()))
    source = f'#include "ariel_runtime.h"\nint main(void)\n{{{calls}\n    return 0;\n}}\n'
    board = get_board("mps2-an386")
    elf = build_firmware(tmp_path / "fw", board, source)
    counts = count_instructions(board, elf, tmp_path, edges=True)
    split = split_inferences(counts, [{"index": 0}, {"index": 1}], 1)
    refills = [estimate(counts, layer.segment, M4).events["refill cycles"]
               for layer in split.inferences[0].layers]
    hooks = refill(M4, "bx") + refill(M4, "bl")
    assert refills == [hooks + (N - 1) * 1, hooks + (N - 1) * 2]


# ----------------------------------------------------------------------------- Cortex-M0+

# QEMU has no Cortex-M0+ machine, but its micro:bit is a Cortex-M0, whose instruction set
# (Armv6-M) is the M0+'s: the counts are exact, the cycles the M0+ table's.
M0_LAYERS = [
    ["adds r2, #1", "adds r3, #1", "adds r2, #1"],
    ["ldr r2, [r4]", "ldr r3, [r4, #4]"],
    ["mov r5, r4", "ldm r5!, {r2, r3}"],
    ["bl leaf"],  # leaf: push {r4, lr}; muls r2, r3; pop {r4, pc}
]
M0_FIRMWARE = """
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
leaf:
    push {r4, lr}
    muls r2, r3
    pop {r4, pc}
    .thumb_func
reset:
    ldr r4, =0x20000100
%s
    movs r0, #0x18
    ldr r1, =0x20026
    bkpt 0xab
"""


def m0_layer(k: int, body: list[str]) -> str:
    """Hook call, a loop of 50 (body, subs, bne), hook call; the body may set flags."""
    return "\n".join([f"    movs r0, #{k}", "    bl ariel_profile_begin", "    movs r1, #50",
                      "1:", *(f"    {line}" for line in body), "    subs r1, r1, #1",
                      "    bne 1b", f"    movs r0, #{k}", "    bl ariel_profile_end"])


# Hooks: bx lr 2, movs r1 1, movs r0 1, bl 3; loop: body, subs 1, bne 2 taken / 1 not.
M0_LOOP = 50 * 1 + 49 * 2 + 1
M0_BODIES = [3, 2 + 2, 1 + (1 + 2), 3 + (1 + 2) + 1 + (1 + 2 + 1)]  # bl, push, muls, pop pc


def m0_layers(tmp_path: Path) -> tuple:
    """The run's counts and each M0_LAYERS layer's estimate with the Cortex-M0+ table."""
    elf = tmp_path / "m0.elf"
    layers = "\n".join(m0_layer(k, body) for k, body in enumerate(M0_LAYERS))
    (tmp_path / "m0.S").write_text(M0_FIRMWARE % layers)
    (tmp_path / "m0.ld").write_text(
        "MEMORY { FLASH (rx) : ORIGIN = 0, LENGTH = 256K }\n"
        "SECTIONS { .text : { KEEP(*(.vectors)) *(.text*) } > FLASH }\n")
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-nostdlib", "-T",
                    str(tmp_path / "m0.ld"), str(tmp_path / "m0.S"), "-o", str(elf)],
                   check=True)
    # No board file describes the micro:bit: running needs only its QEMU machine.
    board = SimpleNamespace(name="microbit", qemu_machine="microbit")
    counts = count_instructions(board, elf, tmp_path, edges=True)
    split = split_inferences(counts, [{"index": k} for k in range(len(M0_LAYERS))], 1)
    m0 = load_core("cortex-m0plus")
    return counts, [estimate(counts, layer.segment, m0) for layer in split.inferences[0].layers]


@pytest.mark.qemu
def test_cortex_m0plus_table_on_a_cortex_m0(tmp_path):
    counts, found = m0_layers(tmp_path)
    m0 = load_core("cortex-m0plus")
    assert all(e.unknown == 0 for e in found)
    assert [e.core_cycles for e in found] == [7 + M0_LOOP + 50 * b for b in M0_BODIES]
    # Every instruction the run executed (start-up and exit included) has an M0+ class.
    assert total(estimate(counts, s, m0) for s in counts.segments).unknown == 0


# ----------------------------------------------------------------------------- real models

MODEL = data_dir("examples") / "models" / "kws_dscnn.onnx"


@pytest.fixture(scope="module", params=["float", "int8"])
def kws(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"kws-{request.param}")
    features = np.random.default_rng(3).uniform(-123, 26, size=(17, 1, 1, 49, 10))
    options = Options()
    if request.param == "int8":
        np.save(folder / "calibration.npy", features[:16].astype(np.float32))
        options = Options(precision="int8", calibration=str(folder / "calibration.npy"))
    build(MODEL, get_board("mps2-an386"), folder / "build", options)
    return profile(open_build(folder / "build"), [features[16:].astype(np.float32)],
                   edges=True)


@pytest.mark.qemu
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m7", "cortex-m33"])
def test_every_instruction_of_a_real_model_has_a_class(kws, core):
    counts = kws.counts
    for segment in counts.segments:
        result = estimate(counts, segment, core)
        if result.unknown:
            costs = [block_cost(load_core(core), counts.blocks[b]) for b in segment.executions]
            missing = {i.text for cost in costs
                       for i, c in zip(cost.insns, cost.classes, strict=True) if c is None}
            pytest.fail(f"instructions with no class in the {core} table: {missing}")
        assert result.instructions == segment.instructions
    layers = total(estimate(counts, layer.segment, core)
                   for layer in kws.inferences[0].layers)
    # At least one cycle per instruction issued, two on a dual-issue core.
    assert 1.0 / load_core(core).issue_width < layers.cpi < 3.0
