"""Run a UART build in QEMU on a machine that has its console UART (the STM32F4 Discovery's
USART2 on netduinoplus2): the UART's -serial goes to a pipe, and the run ends at the
firmware's closing line (it never exits: on a board it sleeps until reset)."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from pathlib import Path

from codegen.errors import ArielError, FirmwareError
from codegen.target.boards import Board
from codegen.target.crash import explain, lockup_of
from codegen.target.toolchain import require_tool

DONE = ("ariel: done", "ariel: stopped with status", "ariel: fault at")


def serial_command(board: Board, elf: Path) -> list[str]:
    """QEMU with every serial port before the console's discarded and the console on stdout;
    no semihosting (a UART build never uses it)."""
    console = board.console
    if (console is None or console.qemu_serial is None or not board.qemu_machine
            or not board.emulation.own_map):
        raise ArielError(
            f"no QEMU machine has {board.name}'s console UART"
            + (f" ({console.peripheral})" if console else "")
            + ": its --io uart build runs in Renode (`ariel simulate OUTDIR --emulator "
            "renode`) or on the board (`ariel flash OUTDIR`); the build checked its ELF "
            "statically")
    ports = ["-serial", "null"] * console.qemu_serial + ["-serial", "stdio"]
    return [require_tool("qemu-system-arm"), "-M", board.qemu_machine, "-nographic",
            "-monitor", "none", *ports, "-kernel", str(Path(elf).absolute()),
            *board.emulation.qemu_args]


def run_serial(board: Board, elf: Path, timeout: float) -> str:
    """The console text up to and including the closing line."""
    # QEMU says little on stderr (a lockup's register dump at most), read once it exits.
    process = subprocess.Popen(serial_command(board, elf), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    text = b""
    deadline = time.monotonic() + timeout
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while not _finished(text):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FirmwareError(
                        f"the UART build did not print its closing line within {timeout:g} s "
                        f"in QEMU {board.qemu_machine}" + _last(text))
                if not selector.select(left):
                    continue
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    process.wait()
                    raise FirmwareError(f"QEMU {board.qemu_machine} stopped before the "
                                        "firmware's closing line" + _last(text)
                                        + _lockup(process.stderr.read().decode(
                                            errors="replace"), elf))
                text += chunk
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    return text.decode(errors="replace").replace("\r\n", "\n")


def _finished(text: bytes) -> bool:
    lines = text.decode(errors="replace").splitlines()
    complete = lines if text.endswith(b"\n") else lines[:-1]
    return any(line.strip().startswith(DONE) for line in complete)


def _last(text: bytes) -> str:
    lines = [line for line in text.decode(errors="replace").splitlines() if line.strip()]
    return f"; it printed: {lines[-1].strip()}" if lines else "; it printed nothing"


def _lockup(stderr: str, elf: Path) -> str:
    """What QEMU's lockup report says about the crash ("" if it made none)."""
    crash = lockup_of(stderr)
    return "" if crash is None else f"; {crash.what}: {explain(crash, elf)}"
