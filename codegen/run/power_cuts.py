"""Run a build's firmware in the unicorn machine (codegen/run/emulate/machine.py, which says why
unicorn): without power cuts, or with the power cut at exact instruction counts, RAM lost
and filled with garbage at every power-up, the non-volatile memory kept as it stood at the
cut (a write in flight torn between two word stores), restarted from reset until the
firmware exits; the outputs are then compared with an uninterrupted run's."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from codegen.errors import FirmwareError
from codegen.run.emulate.machine import HostFiles, Machine, Stop
from codegen.run.emulate.qemu import last_line
from codegen.run.simulate import Build, read_outputs_bytes
from codegen.target.boards import Region
from codegen.target.stack_usage import check_stack_use

INPUT_FILE, OUTPUT_FILE = "input.bin", "output.bin"


def input_bytes(inputs: list[np.ndarray]) -> bytes:
    """input.bin as the harness reads it: per inference, each model input's bytes in turn."""
    return b"".join(np.ascontiguousarray(batch[n]).tobytes()
                    for n in range(len(inputs[0])) for batch in inputs)


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

    def nvm_state(self) -> str:
        """What survives a power cut, as a digest: the NVM's bytes and the host's files."""
        digest = hashlib.sha256()
        if self.nvm is not None:
            digest.update(self.machine.read(self.nvm.origin, self.nvm.size))
        for name in sorted(self.files.files):
            digest.update(name.encode() + b"\0" + bytes(self.files.files[name]) + b"\0")
        return digest.hexdigest()


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


def nvm_region(build: Build) -> Region | None:
    """The board's non-volatile region as the firmware is linked, if it has one."""
    return getattr(build.board, "nvm", None)
