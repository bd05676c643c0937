"""`ariel simulate --profile`: count a build's instructions per layer in QEMU and turn them
into a ProfileReport (cycles, time and energy estimated from the board's core and data)."""

from __future__ import annotations

import numpy as np

from codegen.emulate.counting import Profile, profile
from codegen.profile_report import LayerRow, ProfileReport
from codegen.simulate import Build


def run_profile(build: Build, inputs: list[np.ndarray], timeout: float) -> ProfileReport:
    measured = profile(build, inputs, timeout=timeout)
    return report_from(build, measured)


def report_from(build: Build, measured: Profile) -> ProfileReport:
    info = build.info
    inferences = measured.inferences
    rows = []
    for position, kernel in enumerate(info.kernels):
        counts = [inference.layers[position].instructions for inference in inferences]
        rows.append(LayerRow(kernel["index"], kernel["name"], kernel["op"], kernel["macs"],
                             float(np.mean(counts))))
    board = build.board
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
    )
