"""Small firmwares for the counting tests: one C file of the test's own, built with ariel's
start-up, semihosting and (unless the test brings its own hooks) profiling sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

from codegen.resources import data_dir
from codegen.target.boards import Board
from codegen.target.firmware import linker_script

CFLAGS = ["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
          "-fdata-sections", "-DARIEL_PROFILE"]


def build_firmware(folder: Path, board: Board, main_c: str, hooks: bool = True,
                   cflags: tuple[str, ...] = ()) -> Path:
    """Compile `main_c` with the firmware sources into folder/firmware.elf for `board`
    (`cflags`: more compiler options)."""
    folder.mkdir(parents=True, exist_ok=True)
    firmware = data_dir("firmware")
    (folder / "main.c").write_text(main_c)
    (folder / "linker.ld").write_text(
        linker_script(board, board.stack_bytes))
    sources = [folder / "main.c", firmware / "startup.c", firmware / "semihost.c",
               firmware / "console_numbers.c"]
    if hooks:
        sources.append(firmware / "profile.c")
    elf = folder / "firmware.elf"
    result = subprocess.run(
        ["arm-none-eabi-gcc", *board.arch_flags, *CFLAGS, *cflags, f"-I{firmware}",
         "-nostartfiles",
         "--specs=nano.specs", "-T", str(folder / "linker.ld"), "-Wl,--gc-sections",
         *map(str, sources), "-lm", "-o", str(elf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return elf
