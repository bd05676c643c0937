"""`ariel simulate` for a `--io uart` build: the firmware carries its own test input and
prints on its console UART, so it runs where that UART exists: QEMU for the STM32F4 Discovery
(netduinoplus2 has its USART2), Renode for the boards that have a Renode platform. The
console lines are checked against the outputs computed at build time."""

from __future__ import annotations

import json
from collections.abc import Callable

from codegen.devkit.renode import require_platform
from codegen.devkit.renode_run import run_renode_test
from codegen.devkit.uart import EXPECTED_FILE, compare_with_expected, parse_console
from codegen.errors import ArielError, FirmwareError
from codegen.run.emulate.serial import run_serial, serial_command
from codegen.target.crash import explain, fault_of
from codegen.target.stack_usage import check_stack_use


def require_uart_build(build) -> None:
    """Renode runs UART builds only: their console is a UART it models."""
    if "console" not in build.metadata:
        raise ArielError(f"'{build.folder}' talks through semihosting, which Renode does not "
                         "run here; rebuild with --io uart for Renode, or simulate it in QEMU "
                         "(--emulator qemu, the default)")


def simulate_uart(build, emulator: str, timeout: float,
                  progress: Callable[[str], None]) -> list[str]:
    """Run the UART build `build` (codegen.run.simulate.Build) in `emulator`; the lines to print.
    Raises FirmwareError when it fails or its outputs are not the expected ones."""
    board = build.board
    require_uart_build(build)
    if emulator == "renode":
        require_platform(board)
        progress(f"running {build.folder}/renode/firmware.robot with renode-test")
        run = run_renode_test(build.folder, timeout)
        if not run.passed:
            # A fault fails the test at its line: name where it happened.
            fault = fault_of(run.reason)
            where = f"; {explain(fault, build.elf)}" if fault is not None else ""
            raise FirmwareError(f"{run.reason}{where} (renode-test's results: {run.results})")
        text, machine = run.console, "Renode"
    else:
        serial_command(board, build.elf)  # says where to run it when QEMU has not the UART
        progress(f"running the UART build on QEMU {board.qemu_machine}, console "
                 f"{board.console.peripheral} on -serial {board.console.qemu_serial}")
        text, machine = run_serial(board, build.elf, timeout), f"QEMU {board.qemu_machine}"
    return console_report(build, text, machine)


def console_report(build, text: str, machine: str) -> list[str]:
    """The lines to print for a UART build's console `text` from `machine`, once checked
    against expected_output.json (FirmwareError when they disagree, the firmware faulted or
    its stack overflowed)."""
    fault = fault_of(text)
    if fault is not None:
        raise FirmwareError(f"the UART build faulted in {machine}: {fault.what}; "
                            f"{explain(fault, build.elf, text)}")
    check_stack_use(text, build.elf)
    console = parse_console(text)
    expected = json.loads((build.folder / EXPECTED_FILE).read_text())
    problems = compare_with_expected(console, expected)
    if problems:
        raise FirmwareError("the UART build's console disagrees with expected_output.json: "
                            + "; ".join(problems))
    notes = [f"{machine}: {len(console.runs)} runs, every output as computed on the host at "
             "build time"]
    if console.clock_problem:
        notes.append(f"clock: {console.clock_problem}: {machine} does not model this chip's "
                     "clock controller, so the firmware ran at its reset clock")
    if not console.counter.startswith(("dwt", "systick")) or "not counting" in console.counter:
        notes.append(f"cycles: {console.counter}; measure them on the board")
    return [line for line in text.splitlines() if line.strip()] + notes
