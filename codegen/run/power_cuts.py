"""Run a build's firmware in the unicorn machine (codegen/run/emulate/machine.py, which says why
unicorn): without power cuts, or with the power cut at exact instruction counts, the RAM
lost and filled with garbage at every power-up, the non-volatile memory kept as it stood at
the cut (a write in flight torn between two word stores: every NVM write is a sequence of
word stores, firmware/ariel_nvm.c), restarted from reset until the firmware exits. The
outputs are then compared with an uninterrupted run's, bit for bit.

A firmware that cannot finish is found, not waited for: when a power cycle leaves what
survives a cut (the NVM and the host's files) as it found it and the next on-period is no
longer, every later one ends the same way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from codegen.errors import ArielError, FirmwareError
from codegen.run.emulate.machine import HostFiles, Machine, Stop
from codegen.run.emulate.qemu import last_line
from codegen.run.simulate import Build, read_outputs_bytes
from codegen.target.boards import Region
from codegen.target.elf import function_at, function_range
from codegen.target.stack_usage import check_stack_use

INPUT_FILE, OUTPUT_FILE = "input.bin", "output.bin"
NVM_WRITE = "ariel_nvm_write"  # the routine every NVM store goes through (firmware/ariel_nvm.c)
MAX_POWER_CYCLES = 100_000
# Once the power stays on, a firmware that has not exited after this many times the
# uninterrupted run's instructions is taken to hang.
HANG_FACTOR = 20


def input_bytes(inputs: list[np.ndarray]) -> bytes:
    """input.bin as the harness reads it: per inference, each model input's bytes in turn."""
    return b"".join(np.ascontiguousarray(batch[n]).tobytes()
                    for n in range(len(inputs[0])) for batch in inputs)


def nvm_region(build: Build) -> Region | None:
    """The board's non-volatile region as the firmware is linked, if it has one."""
    nvm = getattr(build.board, "nvm", None)
    return None if nvm is None else Region(nvm.origin, nvm.size)


@dataclass
class Emulation:
    """A build loaded in the machine, with its host files; `seed` makes the RAM garbage of
    every power-up repeatable."""

    build: Build
    inputs: list[np.ndarray]
    nvm: Region | None = None
    seed: int = 0
    files: HostFiles = field(init=False)
    machine: Machine = field(init=False)

    def __post_init__(self) -> None:
        self.files = HostFiles({INPUT_FILE: bytearray(input_bytes(self.inputs))})
        self.machine = Machine(self.build.board, self.build.elf, self.files, self.nvm)

    def power_up(self, cycle: int) -> None:
        self.files.power_cut()
        self.machine.power_up(np.random.default_rng([self.seed, cycle]))

    def outputs(self) -> list[np.ndarray]:
        raw = bytes(self.files.files.get(OUTPUT_FILE, b""))
        return read_outputs_bytes(raw, self.build.info, len(self.inputs[0]))

    def check_exit(self, stop: Stop) -> None:
        """FirmwareError unless the firmware exited 0 with its stack intact."""
        console = self.files.last_console
        if stop.status != 0:
            raise FirmwareError(f"the firmware stopped with status {stop.status} in the "
                                f"power-cut emulator: {last_line(console) or 'no message'}")
        check_stack_use(console, self.build.elf)

    def surviving_state(self) -> str:
        """What survives a power cut, as a digest: the NVM's bytes and the host's files."""
        digest = hashlib.sha256()
        if self.nvm is not None:
            digest.update(self.machine.read(self.nvm.origin, self.nvm.size))
        for name in sorted(self.files.files):
            digest.update(name.encode() + b"\0" + bytes(self.files.files[name]) + b"\0")
        return digest.hexdigest()

    def snapshot(self) -> tuple:
        nvm = self.machine.read(self.nvm.origin, self.nvm.size) if self.nvm else b""
        return nvm, self.files.snapshot()

    def restore(self, snapshot: tuple) -> None:
        nvm, files = snapshot
        if self.nvm is not None:
            self.machine.write(self.nvm.origin, nvm)
        self.files.restore(files)


@dataclass
class Uninterrupted:
    outputs: list[np.ndarray]
    instructions: int
    console: str


def run_uninterrupted(build: Build, inputs: list[np.ndarray], nvm: Region | None = None,
                      seed: int = 0) -> Uninterrupted:
    """Run the firmware once from power-up (RAM full of garbage) to its exit, counting every
    instruction."""
    emulation = Emulation(build, inputs, nvm, seed)
    emulation.power_up(0)
    stop = emulation.machine.run(counting=True)
    emulation.check_exit(stop)
    return Uninterrupted(emulation.outputs(), stop.executed, emulation.files.last_console)


# ----------------------------------------------------------------------------- schedules


class CutSchedule(Protocol):
    description: str
    repeats: bool  # every on-period from the first on is as long as the first

    def on_period(self, cycle: int) -> int | None:
        """Instructions the firmware runs in power cycle `cycle` before the cut; None: the
        power stays on."""


@dataclass
class CutsAt:
    """Cuts after given numbers of instructions counted from the first power-up, across
    power cycles (`positions`, increasing); then the power stays on."""

    positions: list[int]
    description: str = ""
    repeats: bool = False

    def __post_init__(self) -> None:
        if any(b <= a for a, b in zip([0, *self.positions], self.positions, strict=False)):
            raise ArielError("cut positions must be positive and increasing; got "
                             + ",".join(str(p) for p in self.positions))
        self.description = self.description or (
            f"{len(self.positions)} cut(s) at instruction(s) "
            + ", ".join(f"{p:,}" for p in self.positions[:8])
            + (" ..." if len(self.positions) > 8 else ""))

    def on_period(self, cycle: int) -> int | None:
        if cycle >= len(self.positions):
            return None
        return self.positions[cycle] - (self.positions[cycle - 1] if cycle else 0)


def random_cuts(count: int, span: int, seed: int) -> CutsAt:
    """`count` cuts at distinct instructions drawn uniformly from [1, span)."""
    if count < 1:
        raise ArielError(f"--power-cuts needs at least one cut, got {count}")
    if count >= span:
        raise ArielError(f"{count:,} cuts do not fit in a run of {span:,} instructions")
    rng = np.random.default_rng(seed)
    positions = sorted(int(p) + 1 for p in rng.choice(span - 1, size=count, replace=False))
    return CutsAt(positions, f"{count:,} cut(s) at random instructions (seed {seed}) within "
                             f"the first {span:,}")


@dataclass
class CutEvery:
    """The power cut after every `period` instructions, forever."""

    period: int
    repeats: bool = True

    def __post_init__(self) -> None:
        if self.period < 1:
            raise ArielError(f"--cut-every needs a positive number of instructions, got "
                             f"{self.period}")

    @property
    def description(self) -> str:
        return f"a cut after every {self.period:,} instructions"

    def on_period(self, cycle: int) -> int | None:
        return self.period


# ----------------------------------------------------------------------------- the run


@dataclass
class Cut:
    cycle: int  # the power cycle it ended
    after: int  # instructions that cycle ran
    pc: int  # the next instruction, which did not run
    function: str | None
    in_nvm_write: bool  # inside ariel_nvm_write: that write is torn


@dataclass
class CutRun:
    schedule: str
    uninterrupted: Uninterrupted
    cuts: list[Cut]
    power_cycles: int
    instructions: int  # executed in all power cycles
    nvm_bytes: int  # stored into the NVM in all power cycles
    outputs: list[np.ndarray] | None  # None: the firmware did not finish
    stuck: str | None = None  # why it cannot finish
    has_nvm_write: bool = False
    counted: bool = True  # False: `instructions` leaves out the last power cycle's

    @property
    def completed(self) -> bool:
        return self.outputs is not None

    @property
    def equal(self) -> bool:
        """Outputs equal to the uninterrupted run's, bit for bit."""
        return self.completed and all(
            a.tobytes() == b.tobytes() for a, b in zip(self.outputs, self.uninterrupted.outputs,
                                            strict=True))

    @property
    def torn_writes(self) -> int:
        return sum(cut.in_nvm_write for cut in self.cuts)


def run_with_cuts(build: Build, inputs: list[np.ndarray], schedule: CutSchedule,
                  seed: int = 0, uninterrupted: Uninterrupted | None = None,
                  max_cycles: int = MAX_POWER_CYCLES, native_from: int | None = None
                  ) -> CutRun:
    """Run the firmware with its power cut as `schedule` says until it exits (or cannot).
    `native_from`: from that power cycle on, the schedule's instructions are counted as
    unicorn counts them, without the instructions an IT block skips (ten times faster: for
    many cuts at random places, where the count's unit does not matter), and the last power
    cycle's are not counted (CutRun.counted)."""
    nvm = nvm_region(build)
    reference = uninterrupted or run_uninterrupted(build, inputs, nvm, seed)
    emulation = Emulation(build, inputs, nvm, seed)
    machine = emulation.machine
    writes = function_range(build.elf, NVM_WRITE)
    stored = [0]

    def count_store(index: int | None, address: int, size: int) -> None:
        stored[0] += size

    machine.on_nvm_store = count_store
    run = CutRun(schedule.description, reference, [], 0, 0, 0, None,
                 has_nvm_write=writes is not None)
    # A surviving state -> the longest on-period that left it as it was, and the cycle
    futile: dict[str, tuple[int, int]] = {}
    for cycle in range(max_cycles):
        period = schedule.on_period(cycle)
        state = emulation.surviving_state()
        if schedule.repeats and period is not None and futile.get(state, (0, 0))[0] >= period:
            run.stuck = (f"power cycle {futile[state][1]} left the NVM and the host's files as "
                         f"it found them, and every on-period runs {period:,} instructions: the "
                         "same state repeats, so the firmware never finishes (an "
                         f"uninterrupted run takes {reference.instructions:,})")
            return run
        native = native_from is not None and cycle >= native_from
        snapshot = emulation.snapshot() if native and period is not None else None
        stored_before = stored[0]
        emulation.power_up(cycle)
        run.power_cycles += 1
        limit = period if period is not None else reference.instructions * HANG_FACTOR
        stop = machine.run(limit=limit, native=native)
        if stop.exited and stop.executed is None and period is None:
            run.counted = False  # the last power cycle ran with native counts: not counted
        elif stop.exited and stop.executed is None:
            # It exited before its cut: that power cycle again, counting its instructions.
            emulation.restore(snapshot)
            stored[0] = stored_before
            emulation.power_up(cycle)
            stop = machine.run(limit=reference.instructions * HANG_FACTOR)
        if stop.exited:
            emulation.check_exit(stop)
            run.instructions += stop.executed or 0
            run.nvm_bytes = stored[0]
            run.outputs = emulation.outputs()
            return run
        if period is None:
            raise FirmwareError(f"the firmware did not exit within {limit:,} instructions "
                                "once the power stayed on (it may hang)")
        run.cuts.append(Cut(cycle, period, stop.pc, function_at(build.elf, stop.pc),
                            writes is not None and writes[0] <= stop.pc < writes[1]))
        run.instructions += period
        run.nvm_bytes = stored[0]
        if emulation.surviving_state() == state and period > futile.get(state, (0, 0))[0]:
            futile[state] = (period, cycle)
    run.stuck = f"the firmware did not finish within {max_cycles:,} power cycles"
    return run
