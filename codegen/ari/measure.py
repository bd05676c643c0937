"""The adaptive firmware measured as it runs: its real dispatcher on each input, counted in
QEMU instruction by instruction, each inference's cycles estimated with the board core's
table, and its energy from the board's figures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.run.emulate.counting import profile
from codegen.run.emulate.cycles import estimate
from codegen.run.energy import estimate as energy_estimate
from codegen.run.profiling import board_core, board_memory, kernels_run
from codegen.run.simulate import Build


@dataclass
class DispatchMeasurement:
    stage: np.ndarray  # which stage answered each input (read back from the firmware)
    instructions: np.ndarray  # per inference, exact
    cycles: np.ndarray  # per inference, estimated
    energy_uj: np.ndarray | None  # per inference, estimated; None without power figures


def measure_dispatch(build: Build, inputs: np.ndarray, stages: np.ndarray,
                     timeout: float = 900) -> DispatchMeasurement:
    """Profile the firmware on `inputs`; `stages` (the simulation's decisions) says which
    kernels each inference runs, and the firmware's own outputs must agree with it."""
    sequences = kernels_run(build.info.kernels, stages)
    measured = profile(build, [inputs], timeout=timeout, edges=True, per_inference=sequences)
    answered = measured.outputs[1].reshape(-1)
    memory = board_memory(build.board)
    cycles = np.zeros(len(inputs))
    instructions = np.zeros(len(inputs))
    for segment in measured.counts.segments:
        if segment.inference is not None:
            cycles[segment.inference] += estimate(measured.counts, segment,
                                                  board_core(build.board), memory).cycles
            instructions[segment.inference] += segment.instructions
    energies = [energy_estimate(build.board, round(c)).microjoules for c in cycles]
    energy = None if any(e is None for e in energies) else np.array(energies)
    return DispatchMeasurement(answered, instructions, cycles, energy)
