"""The stack high-water mark: the console line is read back, and a firmware that puts a
larger array on its stack reports a correspondingly larger figure."""

import subprocess

import pytest

from codegen.resources import data_dir
from codegen.run.emulate.qemu import run_qemu
from codegen.target.boards import get_board
from codegen.target.firmware import linker_script
from codegen.target.stack_usage import StackUse, stack_high_water, stack_use


def test_reads_the_last_high_water_line():
    console = ("ariel: stack high-water 96 bytes of 8192\n"
               "ariel: stack high-water 1736 bytes of 8192\nariel: 3 inferences done\n")
    assert stack_use(console) == StackUse(1736, 8192)
    assert stack_high_water(console) == 1736
    assert not stack_use(console).full


def test_no_line_means_no_figure():
    assert stack_high_water("ariel: cannot open input.bin\n") is None


def test_a_full_stack_is_flagged():
    assert stack_use("ariel: stack high-water 8192 bytes of 8192\n").full


# A main() of its own: a call that fills a local array of ARRAY bytes, then the report.
FIRMWARE = r"""
#include <stdint.h>
#include "stack_usage.h"

__attribute__((noinline)) static uint32_t fill(uint32_t seed)
{
    volatile uint8_t buffer[ARRAY];
    for (uint32_t i = 0; i < ARRAY; ++i) {
        buffer[i] = (uint8_t)(i + seed);
    }
    return buffer[seed % ARRAY];
}

int main(void)
{
    volatile uint32_t result = fill(7u);
    (void)result;
    ariel_report_stack();
    return 0;
}
"""


def _high_water(tmp_path, board, array_bytes: int) -> StackUse:
    folder = tmp_path / f"stack{array_bytes}"
    folder.mkdir()
    firmware = data_dir("firmware")
    (folder / "main.c").write_text(FIRMWARE)
    (folder / "linker.ld").write_text(
        linker_script(board, board.stack_bytes))
    elf = folder / "firmware.elf"
    result = subprocess.run(
        ["arm-none-eabi-gcc", *board.arch_flags, "-std=c11", "-O2", "-Wall", "-Wextra",
         "-Werror", f"-DARRAY={array_bytes}u", f"-I{firmware}", "-nostartfiles",
         "--specs=nano.specs", "-T", str(folder / "linker.ld"), "-Wl,--gc-sections",
         str(folder / "main.c"), str(firmware / "startup.c"), str(firmware / "semihost.c"),
         str(firmware / "console_numbers.c"),
         "-o", str(elf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    run = run_qemu(board, elf, folder, timeout=60)
    use = stack_use(run.console)
    assert use is not None, run.console
    return use


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["mps2-an386", "nucleo-l4r5zi", "disco-f746ng"])
def test_a_larger_local_array_raises_the_high_water_by_its_size(tmp_path, name):
    board = get_board(name)
    small, large = _high_water(tmp_path, board, 256), _high_water(tmp_path, board, 4352)
    assert small.size == large.size == board.stack_bytes
    assert 256 <= small.used < 1024
    # The frame grows by the array's 4,096 extra bytes; alignment may add a word or two.
    assert 4096 <= large.used - small.used <= 4096 + 16
