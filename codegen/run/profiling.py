"""`ariel simulate --profile`: count a build's instructions per layer in QEMU, estimate each
layer's cycles with the board core's table, and turn the result into a ProfileReport with
time and energy at the board's clock."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from codegen.run.emulate.counting import Profile, profile
from codegen.run.emulate.cycles import Memory, assumptions, estimate
from codegen.run.energy import assumptions as energy_assumptions
from codegen.run.energy import estimate as energy_estimate
from codegen.run.simulate import Build
from codegen.target.boards import Board
from codegen.target.stack_usage import stack_use


@dataclass
class LayerRow:
    index: int  # the kernel's index in the generated run function
    name: str
    op: str
    macs: int
    instructions: float  # mean over the inferences profiled (exact per inference)
    cycles: float | None = None
    time_us: float | None = None
    energy_uj: float | None = None

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None

    @property
    def cycles_per_mac(self) -> float | None:
        return self.cycles / self.macs if self.macs and self.cycles is not None else None


@dataclass
class ProfileReport:
    model: str
    precision: str
    board: str
    core: str
    clock_hz: int
    inferences: int
    layers: list[LayerRow]
    between_layers: float  # the run function's own instructions (calls, hook overhead)
    per_inference_instructions: list[int]  # exact, one per inference
    arena_bytes: int
    stack_bytes: int | None = None  # high-water mark of the stack
    stack_reserved: int | None = None
    total_cycles: float | None = None
    time_ms: float | None = None
    energy_uj: float | None = None
    assumptions: list[str] = field(default_factory=list)

    @property
    def total_instructions(self) -> float:
        return sum(self.per_inference_instructions) / max(len(self.per_inference_instructions), 1)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["total_instructions"] = self.total_instructions
        data["total_macs"] = self.total_macs
        for row, layer in zip(data["layers"], self.layers, strict=True):
            row["instructions_per_mac"] = layer.instructions_per_mac
            row["cycles_per_mac"] = layer.cycles_per_mac
        return data


def run_profile(build: Build, inputs: list[np.ndarray], timeout: float) -> ProfileReport:
    measured = profile(build, inputs, timeout=timeout, edges=True)
    return report_from(build, measured)


def board_memory(board: Board) -> Memory:
    """The flash timing the cycle model charges, from the board file (a figure the board
    file could not source counts as no wait states, which the assumptions say)."""
    return Memory(board.wait_states or 0, board.wait_states_hidden)


def report_from(build: Build, measured: Profile) -> ProfileReport:
    info, board = build.info, build.board
    memory = board_memory(board)
    inferences = measured.inferences
    rows, upper = [], 0.0
    for position, kernel in enumerate(info.kernels):
        layers = [inference.layers[position] for inference in inferences]
        estimates = [estimate(measured.counts, layer.segment, board.core, memory)
                     for layer in layers]
        cycles = float(np.mean([e.cycles for e in estimates]))
        upper += float(np.mean([e.cycles_upper for e in estimates]))
        energy = energy_estimate(board, round(cycles))
        rows.append(LayerRow(kernel["index"], kernel["name"], kernel["op"], kernel["macs"],
                             float(np.mean([layer.instructions for layer in layers])),
                             cycles, energy.seconds * 1e6, energy.microjoules))
    total_cycles = sum(row.cycles for row in rows)
    energy = energy_estimate(board, round(total_cycles))
    stack = stack_use(measured.counts.console)
    notes = [*assumptions(board.core, memory), *energy_assumptions(board)]
    if upper > total_cycles:
        notes.append(f"if every weight load waited on flash instead: {upper:,.0f} cycles, "
                     f"{upper / board.clock_hz * 1e3:.3f} ms (an upper bound)")
    notes.append("cycles, time and energy cover the model's kernels, not the harness's "
                 "input and output")
    return ProfileReport(
        model=build.metadata["model"]["source"],
        precision=build.metadata["precision"],
        board=board.name,
        core=board.core,
        clock_hz=board.clock_hz,
        inferences=len(inferences),
        layers=rows,
        between_layers=float(np.mean([i.between_layers for i in inferences])),
        per_inference_instructions=[i.total for i in inferences],
        arena_bytes=info.arena_size,
        stack_bytes=stack.used if stack else None,
        stack_reserved=stack.size if stack else None,
        total_cycles=total_cycles,
        time_ms=energy.milliseconds,
        energy_uj=energy.microjoules,
        assumptions=notes,
    )
