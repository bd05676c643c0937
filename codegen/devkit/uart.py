"""`--io uart`: firmware for the real dev kit, which prints on the board's console UART instead
of talking to a debugger through semihosting. It is linked at the chip's own memory map, sets
the board file's clock tree, carries a test input in flash and the outputs ariel computed for
it on the host, and prints lines that `parse_console` reads back (the format is documented in
firmware/harness_uart.c)."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codegen import __version__
from codegen.compiler.c import environment
from codegen.compiler.emit import ModelInfo
from codegen.errors import ArielError
from codegen.run.hostrun import HostModel, build_host_library
from codegen.target.board_kit import SETTINGS
from codegen.target.boards import Board
from codegen.target.firmware import FirmwareFiles

RUNS = 3  # inferences the firmware runs and checks after reset
EXPECTED_FILE = "expected_output.json"
# Float32 outputs may differ from the host's in the last bits where libm functions (expf in
# Softmax, Sigmoid, Tanh) differ between glibc and newlib: the firmware accepts this much,
# relative to the output's largest magnitude. Everything else must match byte for byte.
FLOAT_TOLERANCE = 1e-4
BYTES_PER_ROW = 16


@dataclass
class UartOptions:
    """A `--io uart` build: `inputs` is the file whose first sample becomes the test input
    (None: zeros)."""

    inputs: Path | None = None


@dataclass
class TestInput:
    """What a UART build runs on: one sample per model input, and where it came from."""

    arrays: list[np.ndarray]
    source: str  # "zeros" or "the first sample of 'x.npy'"


def require_console(board: Board) -> None:
    """A UART build needs the board file's [console] and [clock_tree]."""
    if board.console is None or board.clock_tree is None:
        with_console = ", ".join(b for b in _boards_with_console())
        raise ArielError(f"board {board.name} has no console UART in its board file "
                         f"([console] and [clock_tree]), so it has no --io uart build; boards "
                         f"with one: {with_console}")


def _boards_with_console() -> list[str]:
    from codegen.target.boards import all_boards

    return [b.name for b in all_boards() if b.console is not None]


def load_test_input(info: ModelInfo, path: Path | None) -> TestInput:
    """The first sample of `path` (.npy/.npz, as `ariel simulate --inputs` reads), or zeros."""
    if path is None:
        return TestInput([np.zeros(t.shape, dtype=t.dtype) for t in info.inputs], "zeros")
    from codegen.run.simulate import load_inputs

    batches = load_inputs(path, info)
    return TestInput([b[0] for b in batches], f"the first sample of '{Path(path).name}'")


def host_outputs(files: dict[str, str], info: ModelInfo, sample: TestInput) -> list[np.ndarray]:
    """The model's outputs on the test input, from the same generated C built for the host."""
    with tempfile.TemporaryDirectory(prefix="ariel-uart-") as work:
        library = build_host_library(files, Path(work) / "host")
        return HostModel(library, info).run(*sample.arrays)


def uart_sources(board: Board) -> list[str]:
    """The firmware sources of a UART build for `board`, in link order."""
    console = board.console
    sources = ["firmware/startup.c", "firmware/uart_console.c", "firmware/console_numbers.c",
               "firmware/harness_uart.c",
               "firmware/board/cycles.c", f"firmware/board/{console.family}.c"]
    if console.kind in ("stm32-usart", "stm32-lpuart"):
        sources.append("firmware/board/stm32_usart.c")
    if board.core == "cortex-m7":
        sources.append("firmware/board/cortex_m7.c")
    return sources


def uart_firmware(files: dict[str, str], info: ModelInfo, board: Board, sample: TestInput,
                  header: str) -> FirmwareFiles:
    """board_config.h, the test data and expected_output.json for a UART build."""
    require_console(board)
    outputs = host_outputs(files, info, sample)
    tolerances = [_tolerance(o) for o in outputs]
    env = environment()
    data = env.get_template("firmware/ariel_test_data.c.j2").render(
        header=header, source=sample.source,
        inputs=[_table(t, a) for t, a in zip(info.inputs, sample.arrays, strict=True)],
        outputs=[dict(_table(t, a), tolerance=tol)
                 for t, a, tol in zip(info.outputs, outputs, tolerances, strict=True)])
    expected = expected_report(info, sample, outputs, tolerances)
    return FirmwareFiles(
        sources=["model/ariel_test_data.c", *uart_sources(board)],
        files={"firmware/board_config.h": board_config(board),
               "model/ariel_test_data.c": data,
               EXPECTED_FILE: json.dumps(expected, indent=2) + "\n"})


def uart_metadata(board: Board, elf_check: str) -> dict:
    """What ariel.json records about a UART build's console."""
    console = board.console
    return {"io": "uart", "family": console.family, "peripheral": console.peripheral,
            "base": f"0x{console.base:08X}", "baud": console.baud, "tx": console.tx.name,
            "runs": RUNS, "expected": EXPECTED_FILE, "elf_check": elf_check}


def board_config(board: Board) -> str:
    console, tree = board.console, board.clock_tree
    return environment().get_template("firmware/board_config.h.j2").render(
        version=__version__, board=board, console=console, tree=tree,
        clock_source=_clock_source(board), uart_hz=round(tree.bus_hz(console.bus)),
        uart_enable=console.clock_enable or (0, 0),
        gpio_enable=console.gpio_clock_enable or (0, 0),
        settings=sorted(SETTINGS.items()), runs=RUNS)


def _clock_source(board: Board) -> str:
    tree = board.clock_tree
    source = f"{tree.source.upper()} {tree.source_hz / 1e6:g} MHz"
    return f"PLL from {source}" if tree.pll_n > 1 else source


def _tolerance(output: np.ndarray) -> float:
    if output.dtype != np.float32:
        return 0.0
    largest = float(np.abs(output).max()) if output.size else 0.0
    return FLOAT_TOLERANCE * max(largest, 1e-3)


def _table(spec, array: np.ndarray) -> dict:
    raw = np.ascontiguousarray(array, dtype=spec.dtype).tobytes()
    rows = [", ".join(f"0x{b:02x}" for b in raw[i:i + BYTES_PER_ROW])
            for i in range(0, len(raw), BYTES_PER_ROW)]
    return {"name": spec.name, "dtype": spec.dtype, "shape": list(spec.shape),
            "nbytes": len(raw), "rows": rows}


def expected_report(info: ModelInfo, sample: TestInput, outputs: list[np.ndarray],
                    tolerances: list[float]) -> dict:
    """expected_output.json: the input, the outputs computed on the host and the console
    lines a correct run prints for them."""
    lines = []
    for run in range(1, RUNS + 1):
        lines += [f"ariel-output {run} {i} {o.tobytes().hex()}" for i, o in enumerate(outputs)]
        lines.append(f"ariel-check {run} pass")
    return {
        "format": "console lines of firmware/harness_uart.c",
        "input": sample.source,
        "runs": RUNS,
        "inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape),
                    "hex": np.ascontiguousarray(a, dtype=t.dtype).tobytes().hex()}
                   for t, a in zip(info.inputs, sample.arrays, strict=True)],
        "outputs": [{"index": i, "name": t.name, "dtype": t.dtype, "shape": list(t.shape),
                     "hex": o.tobytes().hex(), "values": o.reshape(-1).tolist(),
                     "tolerance": tol}
                    for i, (t, o, tol) in enumerate(zip(info.outputs, outputs, tolerances,
                                                        strict=True))],
        "lines": lines,
    }


@dataclass
class UartRun:
    run: int
    cycles: int | None = None
    outputs: dict[int, bytes] = field(default_factory=dict)
    check: str = ""  # "pass", or "fail output I byte B"


@dataclass
class UartConsole:
    """What a UART build printed, read back from its console lines."""

    text: str
    core_hz: int | None = None
    clock_source: str = ""
    clock_problem: str = ""
    counter: str = ""
    runs: list[UartRun] = field(default_factory=list)
    done: str = ""  # the last line's tail, e.g. "3 runs, all outputs as expected"

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(r.check == "pass" for r in self.runs) and bool(self.done)


_RUN_LINE = re.compile(r"(ariel-cycles|ariel-output|ariel-check) (\d+) ?(.*)")


def parse_console(text: str) -> UartConsole:
    console = UartConsole(text)
    runs: dict[int, UartRun] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("ariel: core clock "):
            match = re.match(r"ariel: core clock (\d+) Hz from (.*)", line)
            if match:
                console.core_hz, console.clock_source = int(match.group(1)), match.group(2)
        elif line.startswith("ariel: clock set-up stopped: "):
            console.clock_problem = line.removeprefix("ariel: clock set-up stopped: ")
        elif line.startswith("ariel: cycle counter "):
            console.counter = line.removeprefix("ariel: cycle counter ")
        elif line.startswith("ariel: done, "):
            console.done = line.removeprefix("ariel: done, ")
        else:
            match = _RUN_LINE.fullmatch(line)
            if match:
                _add(runs.setdefault(int(match.group(2)), UartRun(int(match.group(2)))),
                     match.group(1), match.group(3))
    console.runs = [runs[k] for k in sorted(runs)]
    return console


def _add(run: UartRun, tag: str, rest: str) -> None:
    if tag == "ariel-cycles":
        run.cycles = int(rest)
    elif tag == "ariel-output":
        index, _, data = rest.partition(" ")
        run.outputs[int(index)] = bytes.fromhex(data)
    else:
        run.check = rest


def compare_with_expected(console: UartConsole, expected: dict) -> list[str]:
    """Problems with a run against expected_output.json (empty when it is right): every run
    printed, checked itself and passed, and every output within tolerance of the host's."""
    problems = []
    if len(console.runs) != expected["runs"]:
        problems.append(f"{len(console.runs)} runs printed, {expected['runs']} expected")
    for run in console.runs:
        if run.check != "pass":
            problems.append(f"run {run.run}: the firmware's own check says '{run.check}'")
        for out in expected["outputs"]:
            got = run.outputs.get(out["index"])
            want = bytes.fromhex(out["hex"])
            if got is None:
                problems.append(f"run {run.run}: output {out['index']} not printed")
            elif not _close(got, want, out["dtype"], out["tolerance"]):
                problems.append(f"run {run.run}: output {out['index']} ({out['name']}) "
                                "differs from the host's")
    if not console.done:
        problems.append("no closing 'ariel: done' line")
    return problems


def _close(got: bytes, want: bytes, dtype: str, tolerance: float) -> bool:
    if len(got) != len(want):
        return False
    if dtype != "float32":
        return got == want
    a, b = np.frombuffer(got, np.float32), np.frombuffer(want, np.float32)
    return bool(np.all(np.abs(a - b) <= np.float32(tolerance)))


def uart_target(board: Board, uart: UartOptions | None, files: dict[str, str],
                info: ModelInfo, header: str, progress: Callable[[str], None]
                ) -> tuple[Board, FirmwareFiles | None]:
    """The board a build is linked for (the chip's own map for a UART build) and, for a
    UART build, its firmware files."""
    if uart is None:
        return board, None
    progress(f"UART build: linked at {board.name}'s own memory map, console on "
             f"{board.console.peripheral}")
    firmware = uart_firmware(files, info, board, load_test_input(info, uart.inputs), header)
    return board.on_chip(), firmware
