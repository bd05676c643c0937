"""Run a firmware ELF in QEMU with semihosting, in a folder that holds its input and output
files, with a time limit; faults and hangs become clear errors."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import ArielError, FirmwareError
from codegen.target.boards import Board
from codegen.target.crash import explain, fault_of, lockup_of
from codegen.target.stack_usage import check_stack_use
from codegen.target.toolchain import require_tool

# Exit statuses of the harness and fault handler (firmware/harness.c, firmware/startup.c).
EXIT_BAD_INPUT = 1
EXIT_FAULT = 3


@dataclass
class QemuRun:
    returncode: int
    console: str  # what the firmware printed
    stderr: str


def qemu_command(board: Board, elf: Path, extra: list[str] | None = None) -> list[str]:
    if not board.qemu_machine:
        raise ArielError(f"board {board.name} has no QEMU machine; it cannot be simulated")
    return [require_tool("qemu-system-arm"), "-M", board.qemu_machine, "-nographic",
            "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
            *_machine_args(board), *(extra or [])]


def _machine_args(board: Board) -> tuple[str, ...]:
    """Options the board file gives its QEMU machine (e.g. a larger SRAM for the micro:bit
    machine that runs Cortex-M0+ boards); none for a bare machine description."""
    emulation = getattr(board, "emulation", None)
    return emulation.qemu_args if emulation is not None else ()


def run_qemu(board: Board, elf: Path, workdir: Path, timeout: float,
             extra: list[str] | None = None) -> QemuRun:
    """Run until the firmware exits; raise FirmwareError if it faults or runs too long."""
    command = qemu_command(board, elf.absolute(), extra)
    try:
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        printed = (exc.stdout or b"").decode(errors="replace") if isinstance(
            exc.stdout, bytes) else (exc.stdout or "")
        raise FirmwareError(
            f"the firmware did not finish within {timeout:g} s in QEMU {board.qemu_machine} "
            f"(stopped); it may hang, or need a longer --timeout"
            + (f"; it printed: {last_line(printed)}" if printed.strip() else "")) from None
    run = QemuRun(result.returncode, result.stdout, result.stderr)
    check_exit(board, run, elf)
    return run


def check_exit(board: Board, run: QemuRun, elf: Path | None = None) -> None:
    """Raise FirmwareError unless the firmware exited 0 with its stack intact: a fault or a
    lockup names the function it happened in and whether the stack overflowed (from `elf`),
    another status quotes the last line printed, and a run that used the stack to its end
    fails even though it exited 0 (its outputs were computed over overwritten memory)."""
    where = f"QEMU {board.qemu_machine}"
    fault = fault_of(run.console)
    if run.returncode == EXIT_FAULT and fault is not None:
        raise FirmwareError(f"the firmware faulted in {where}: {fault.what}; "
                            f"{explain(fault, elf, run.console)}")
    if run.returncode == EXIT_FAULT:
        raise FirmwareError(f"the firmware faulted in {where}: {last_line(run.console)}")
    lockup = lockup_of(run.stderr)
    if lockup is not None:
        raise FirmwareError(f"the firmware crashed in {where}: {lockup.what}; "
                            f"{explain(lockup, elf, run.console)}")
    if run.returncode != 0:
        said = last_line(run.console) or last_line(run.stderr) or "no message"
        raise FirmwareError(f"the firmware stopped with status {run.returncode} in "
                            f"{where}: {said}")
    check_stack_use(run.console, elf)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
