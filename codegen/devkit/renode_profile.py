"""`ariel simulate OUTDIR --emulator renode --profile` for a --io uart build: instructions per
layer counted by Renode (its CPU's executed-instruction counter read at every call of the
profiling hooks, firmware/profile.c), beside QEMU's count of the same generated code.

QEMU cannot run the UART build itself (it is linked at the chip's map, and most chips have no
QEMU machine), so its twin is built: the build's own model sources with the semihosting
harness, linked for the board's emulator, run by ariel's counting plugin on the UART build's
test input. Both counts cut at the same place (just before a hook's first instruction), so
on the same code they agree exactly. The cycle model needs each executed instruction, which
only QEMU records: the Renode rows take each layer's cycles from QEMU's estimate, scaled by
the ratio of the counts, and the board's energy model as the QEMU profile does."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from codegen.devkit.renode_run import run_renode_test
from codegen.devkit.uart import EXPECTED_FILE, parse_console
from codegen.errors import ArielError, FirmwareError
from codegen.run.emulate.counting import (
    Counts,
    Segment,
    Split,
    build_profile_elf,
    split_inferences,
)
from codegen.run.energy import estimate as energy_estimate
from codegen.run.profiling import ProfileReport, run_profile
from codegen.run.simulate import Build
from codegen.target.elf import symbol_address
from codegen.target.firmware import linker_script, write_project

TEST_DATA = "ariel_test_data.c"  # the UART build's test input and outputs, not the model's
CLOSERS = {"B": "begin", "E": "end", "X": "exit"}


@dataclass
class RenodeProfile:
    renode: ProfileReport
    qemu: ProfileReport  # QEMU's profile of the same code on the same input
    # The firmware's own cycle count around each inference in Renode (ariel-cycles: DWT or
    # SysTick at the board's clock, which Renode runs at one instruction per cycle).
    firmware_cycles: list[int]

    @property
    def differences(self) -> list[str]:
        """The layers (and per-inference totals) on which the two counts differ."""
        found = [f"{r.index} {r.name}: Renode {r.instructions:,.0f}, QEMU {q.instructions:,.0f}"
                 for r, q in zip(self.renode.layers, self.qemu.layers, strict=True)
                 if r.instructions != q.instructions]
        if self.renode.between_layers != self.qemu.between_layers:
            found.append(f"between layers: Renode {self.renode.between_layers:,.0f}, QEMU "
                         f"{self.qemu.between_layers:,.0f}")
        return found


def profile_uart_build(build: Build, timeout: float, progress) -> RenodeProfile:
    """Count `build`'s instructions per layer in Renode and in QEMU."""
    expected = json.loads((build.folder / EXPECTED_FILE).read_text())
    runs = int(expected["runs"])
    progress("building the profiling firmware (make profile)")
    build_profile_elf(build.folder)
    progress(f"counting instructions per layer in Renode ({build.folder}/renode/firmware.robot "
             "with PROFILE)")
    run = run_renode_test(build.folder, timeout, profile=True)
    if not run.passed:
        raise FirmwareError(f"{run.reason} (renode-test's results: {run.results})")
    split = split_inferences(counts_from_marks(run.message), build.info.kernels, runs)
    progress("counting the same code in QEMU (the model with the semihosting harness, linked "
             f"for {build.board.emulator})")
    inputs = uart_test_inputs(build, expected, runs)
    with tempfile.TemporaryDirectory(prefix="ariel-twin-") as scratch:
        qemu = run_profile(qemu_twin(build, Path(scratch) / "twin"), inputs, timeout)
    cycles = [r.cycles for r in parse_console(run.console).runs if r.cycles is not None]
    return RenodeProfile(renode_report(qemu, split, build), qemu, cycles)


def counts_from_marks(message: str) -> Counts:
    """The segments between hook calls from the marks the Robot test reports: `B n` or `E n`
    at each call of ariel_profile_begin or _end (n: instructions executed before the hook's
    first instruction), `X n` when the test ended."""
    fields = message.split()
    if len(fields) % 2 or not fields or fields[-2] != "X":
        raise ArielError(f"the Renode profile run reported no counts ({message[:80]!r})")
    segments, previous = [], 0
    try:
        for index, (tag, value) in enumerate(zip(fields[::2], fields[1::2], strict=True)):
            count = int(value, 0)
            segments.append(Segment(index, CLOSERS[tag], count - previous))
            previous = count
    except (KeyError, ValueError):
        raise ArielError(f"the Renode profile run's counts are malformed ({message[:80]!r})"
                         ) from None
    return Counts(segments, previous, {}, has_blocks=False, has_edges=False)


def uart_test_inputs(build: Build, expected: dict, runs: int) -> list[np.ndarray]:
    """The UART build's test input (expected_output.json), once per run, per model input."""
    arrays = []
    for spec, given in zip(build.info.inputs, expected["inputs"], strict=True):
        sample = np.frombuffer(bytes.fromhex(given["hex"]), dtype=spec.dtype)
        arrays.append(np.stack([sample.reshape(spec.shape)] * runs))
    return arrays


def qemu_twin(build: Build, folder: Path) -> Build:
    """The build's generated model sources with the semihosting harness, linked for the
    board's emulator with the UART build's stack, in `folder`: code QEMU runs and counts."""
    board = build.board  # the board file's own link map: its emulator's memory
    model = build.folder / "model"
    folder.mkdir()
    files = {path.name: path.read_text() for path in sorted(model.iterdir())
             if path.suffix in (".c", ".h") and path.name not in ("ariel_model.h", TEST_DATA)}
    write_project(folder, files, build.info, board, build.metadata.get("command", ""),
                  "the QEMU twin of a --io uart build")
    top, bottom = (symbol_address(build.elf, name) for name in ("_estack", "_sstack"))
    if top is not None and bottom is not None:
        (folder / "firmware" / "linker.ld").write_text(linker_script(board, top - bottom))
    metadata = {key: value for key, value in build.metadata.items() if key != "console"}
    return Build(folder, metadata | {"memory_map": board.memory_map_dict()})


def renode_report(qemu: ProfileReport, split: Split, build: Build) -> ProfileReport:
    """The profile with Renode's instruction counts: each layer's cycle figures scaled from
    QEMU's profile of the same code by the ratio of the counts (1 when they agree), time and
    energy at the board's."""
    board = build.board
    rows = []
    for position, twin in enumerate(qemu.layers):
        instructions = float(np.mean([i.layers[position].instructions
                                      for i in split.inferences]))
        ratio = instructions / twin.instructions if twin.instructions else 0.0
        cycles = (twin.cycles or 0.0) * ratio
        energy = energy_estimate(board, round(cycles))
        rows.append(replace(
            twin, instructions=instructions, cycles=cycles, time_us=energy.seconds * 1e6,
            energy_uj=energy.microjoules,
            ram_cycles=None if twin.ram_cycles is None else twin.ram_cycles * ratio,
            data_stall_cycles=(None if twin.data_stall_cycles is None
                               else twin.data_stall_cycles * ratio)))
    total = sum(row.cycles for row in rows)
    energy = energy_estimate(board, round(total))
    note = ("Renode counts instructions, not the instruction stream the cycle model reads: "
            "each layer's cycles are QEMU's estimate for the same code, scaled by the ratio of "
            "the two counts")
    return replace(
        qemu, layers=rows, inferences=len(split.inferences),
        between_layers=float(np.mean([i.between_layers for i in split.inferences])),
        per_inference_instructions=[i.total for i in split.inferences],
        stack_bytes=None, stack_reserved=None, total_cycles=total,
        total_ram_cycles=sum(row.ram_cycles or 0.0 for row in rows),
        time_ms=energy.milliseconds, energy_uj=energy.microjoules,
        assumptions=[note, *qemu.assumptions])
