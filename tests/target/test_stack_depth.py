"""The stack need read from the code (codegen/target/stack_depth.py) against what a run
measures, and what a crash report says (codegen/target/crash.py), on small firmwares of the
tests' own: a chain of calls with local arrays of known sizes, one reached only through a
table of function pointers; recursion and a variable-length array, which the code cannot
bound."""

import re
import shutil

import pytest

from codegen.errors import FirmwareError
from codegen.run.emulate.qemu import run_qemu
from codegen.target.boards import get_board
from codegen.target.crash import Crash, explain, fault_of, lockup_of
from codegen.target.elf import function_at, symbol_address
from codegen.target.stack_depth import analyse_stack, read_stack_usage, su_files_for
from codegen.target.stack_usage import check_stack_use, stack_use
from tests.run.support import build_firmware

# `deep` is reached only through the table `steps`, so its 2,000 bytes count only if the
# analysis follows the call through a register.
CHAIN = r"""
#include <stdint.h>
#include "stack_usage.h"

#define FILL(buffer, seed) \
    for (uint32_t i = 0; i < sizeof buffer; ++i) { buffer[i] = (uint8_t)(i + seed); }

__attribute__((noinline)) static uint32_t leaf(uint32_t seed)
{
    volatile uint8_t buffer[300];
    FILL(buffer, seed)
    return buffer[seed % 300u];
}

__attribute__((noinline)) static uint32_t middle(uint32_t seed)
{
    volatile uint8_t buffer[1000];
    FILL(buffer, seed)
    return buffer[seed % 1000u] + leaf(seed);
}

__attribute__((noinline)) static uint32_t deep(uint32_t seed)
{
    volatile uint8_t buffer[2000];
    FILL(buffer, seed)
    return buffer[seed % 2000u];
}

__attribute__((noinline)) static uint32_t shallow(uint32_t seed)
{
    return seed + 1u;
}

static uint32_t (*const steps[2])(uint32_t) = {shallow, deep};

int main(void)
{
    volatile uint32_t pick = 1u;
    volatile uint32_t result = middle(7u) + steps[pick](3u);
    (void)result;
    ariel_report_stack();
    return 0;
}
"""

UNBOUNDED = r"""
#include <stdint.h>

__attribute__((noinline)) static uint32_t walk(uint32_t n)
{
    volatile uint8_t buffer[64];
    buffer[0] = (uint8_t)n;
    return n ? walk(n - 1u) + buffer[0] : 0u;
}

__attribute__((noinline)) static uint32_t sized(uint32_t n)
{
    volatile uint8_t buffer[n + 1u];
    buffer[n] = (uint8_t)n;
    return buffer[n];
}

int main(void)
{
    volatile uint32_t n = 5u;
    return (int)(walk(n) + sized(n));
}
"""

NAMES = ("main", "middle", "leaf", "deep", "shallow")


def _build(tmp_path, source: str):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (run `make setup`)")
    board = get_board("mps2-an386")
    elf = build_firmware(tmp_path / "fw", board, source, hooks=False,
                         cflags=("-fstack-usage",))
    return board, elf


@pytest.fixture
def chain(tmp_path):
    return _build(tmp_path, CHAIN)


def test_frames_are_gcc_s_and_the_prologue_reader_agrees(chain):
    _, elf = chain
    with_gcc = analyse_stack(elf, su_files_for(elf), kernels=NAMES)
    from_code = analyse_stack(elf, kernels=NAMES)
    # gcc may clone a function (leaf.constprop.0), which its .su file calls leaf.constprop.
    gcc = {name.split(".")[0]: size
           for (_, name), (size, _) in read_stack_usage(su_files_for(elf)).items()}
    frames = {f.name.split(".")[0]: f.frame for f in with_gcc.kernels}
    assert frames == {name: gcc[name] for name in NAMES}
    assert frames == {f.name.split(".")[0]: f.frame for f in from_code.kernels}
    assert {f.frame_from for f in with_gcc.kernels} == {"gcc"}
    assert {f.frame_from for f in from_code.kernels} == {"prologue"}
    assert frames["deep"] >= 2000 and frames["middle"] >= 1000 and frames["leaf"] >= 300
    assert from_code.deepest == with_gcc.deepest


@pytest.mark.qemu
def test_the_deepest_chain_runs_through_the_pointer_table_and_holds_the_run(chain, tmp_path):
    board, elf = chain
    need = analyse_stack(elf, su_files_for(elf), kernels=NAMES)
    assert [f.name for f in need.chain] == ["Reset_Handler", "main", "deep"]
    assert need.assumed and "deep" in need.assumed[0] and "shallow" in need.assumed[0]
    assert need.unbounded == []
    run = run_qemu(board, elf, tmp_path, timeout=60)
    measured = stack_use(run.console).used
    # The run takes the deepest chain, so the code's figure is the measured one, give or
    # take a word; the exception's allowance comes on top.
    assert 0 <= need.deepest - measured <= 8
    assert need.total == need.deepest + need.exception > measured


def test_the_exception_allowance_is_the_hardware_frame_and_the_deepest_handler(chain):
    """An exception stacks 8 words (r0-r3, r12, lr, pc, xPSR) and maybe an alignment word;
    with the FPU's lazy stacking, 18 more (s0-s15, FPSCR, a reserved word): Armv7-M
    Architecture Reference Manual, B1.5.7. The same handler runs on top either way."""
    _, elf = chain
    plain = analyse_stack(elf, su_files_for(elf), fpu=False, kernels=NAMES)
    with_fpu = analyse_stack(elf, su_files_for(elf), fpu=True, kernels=NAMES)
    assert plain.handler == with_fpu.handler != ""
    assert with_fpu.exception - plain.exception == 18 * 4
    assert plain.exception >= 9 * 4


def test_recursion_and_a_variable_length_array_are_reported_unbounded(tmp_path):
    _, elf = _build(tmp_path, UNBOUNDED)
    need = analyse_stack(elf, su_files_for(elf))
    assert "recursion walk > walk" in need.unbounded
    assert "sized: a frame that grows at run time" in need.unbounded


def test_a_full_stack_fails_the_run_naming_the_deepest_kernel(chain):
    _, elf = chain
    assert check_stack_use("ariel: stack high-water 96 bytes of 8192\n", elf).used == 96
    with pytest.raises(FirmwareError, match=r"the stack overflowed: the run used all 8,192 B "
                       r".* needs [\d,]+ B of the 8,192 B reserved"):
        check_stack_use("ariel: stack high-water 8192 bytes of 8192\n", elf)


# What QEMU 7.2 printed for the lockup of a stack run below RAM (R13 the SP, R15 the PC).
LOCKUP = """qemu: fatal: Lockup: can't escalate 3 to HardFault (current priority -1)

R00=00000000 R01=1ffff28c R02=00000018 R03=ff000000
R04=00000000 R05=00000000 R06=20000010 R07=20000810
R08=1ffff338 R09=00000002 R10=20000010 R11=00000000
R12=ffffffff R13=1ffff2a8 R14=00000619 R15=00000000
XPSR=200f0003 --C- A handler
FPSCR: 00000000
"""


def test_crash_reports_are_read():
    crash = lockup_of(LOCKUP)
    assert (crash.pc, crash.lr, crash.sp) == (0, 0x619, 0x1FFFF2A8)
    assert "Lockup: can't escalate 3 to HardFault" in crash.what
    fault = fault_of("ariel: fault at pc=0x000004d2 lr=0x00000619 sp=0x20001f00 "
                     "cfsr=0x00001000 hfsr=0x40000000 bfar=0x00000000\n")
    assert (fault.pc, fault.lr, fault.sp, fault.cfsr) == (0x4D2, 0x619, 0x20001F00, 0x1000)
    assert lockup_of("") is None and fault_of("ariel: 1 inferences done\n") is None


def test_a_crash_is_named_by_its_function_and_the_stack_blamed_where_due(chain):
    _, elf = chain
    deep, bottom = symbol_address(elf, "deep") & ~1, symbol_address(elf, "_sstack")
    assert function_at(elf, deep + 6) == "deep"
    text = explain(Crash("a fault", pc=deep + 6, lr=deep + 2, sp=bottom - 40), elf)
    assert re.match(rf"pc 0x{deep + 6:08X} in deep, lr 0x{deep + 2:08X} in deep, sp ", text)
    assert f"stack overflow likely: the SP 0x{bottom - 40:08X} is below the stack's bottom" in text
    # An SP well inside the stack and a code need well below the stack: nothing to blame.
    assert "stack overflow" not in explain(Crash("a fault", pc=deep, sp=bottom + 4096), elf)
    # The fault status says pushing the frame faulted (BSTKERR).
    assert "stack overflow likely" in explain(
        Crash("a fault", pc=deep, sp=bottom + 4096, cfsr=1 << 12), elf)
