"""`ariel simulate --profile`: count a build's instructions per layer in QEMU, estimate each
layer's cycles with the board core's table, and turn the result into a ProfileReport with
time and energy at the board's clock."""

from __future__ import annotations

import numpy as np

from codegen.report.profile import LayerRow, ProfileReport
from codegen.run.emulate.counting import Profile, profile
from codegen.run.emulate.cycles import Memory, assumptions, estimate
from codegen.run.energy import assumptions as energy_assumptions
from codegen.run.energy import estimate as energy_estimate
from codegen.run.simulate import Build
from codegen.target.boards import Board
from codegen.target.stack_usage import stack_use


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
