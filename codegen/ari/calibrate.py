"""`ariel calibrate`: choose an adaptive build's thresholds on held-out data.

1. Measure each stage's cost on the emulator: the profiling firmware runs with every
   threshold at +inf (so every stage runs), its instructions are counted exactly and its
   cycles, time and energy estimated per stage (codegen/run/profiling.py).
2. Run every stage on the held-out inputs on the host (the build's own C) for its scores.
3. Choose thresholds from the last stage backwards: for each, the curve of escalation rate,
   agreement with the last stage, accuracy (with labels) and expected energy over every
   candidate threshold; the default is the smallest threshold that agrees with the last
   stage on every held-out input, a target agreement or an energy budget picks another.
4. Write the thresholds into the firmware (model/ari_thresholds.c), rebuild, and record the
   curve in ariel.json, as a table, as JSON and as an HTML plot."""

from __future__ import annotations

import html as escape
import math
from dataclasses import dataclass
from pathlib import Path

from codegen.ari.assemble import render_thresholds
from codegen.ari.host import stage_scores
from codegen.ari.margins import CurvePoint, as_rows, choose, curve, required_samples
from codegen.ari.spec import AriOptions, Stage
from codegen.compiler.quant.calibrate import CalibrationData
from codegen.errors import ArielError
from codegen.run.emulate.counting import profile
from codegen.run.energy import estimate as energy_estimate
from codegen.run.profiling import report_from
from codegen.run.simulate import Build
from codegen.target.outdir import rewrite_build_file, save_metadata
from codegen.target.toolchain import run_make

COST_SAMPLES = 3  # inputs profiled to measure each stage's cost (counts barely vary)


@dataclass
class StageCost:
    label: str
    instructions: float
    cycles: float
    energy_uj: float | None
    time_ms: float


@dataclass
class Calibration:
    thresholds: list[float]
    chosen: CurvePoint
    points: list[CurvePoint]  # the first stage's curve, later thresholds fixed
    costs: list[StageCost]
    samples: int
    rule: str


def options_of(build: Build) -> AriOptions:
    ari = build.metadata["ari"]
    stages = [Stage(Path(s["model"]), s["precision"], s.get("output")) for s in ari["stages"]]
    return AriOptions(stages, ari.get("calibration"), ari["margin"], ari["scores"],
                      ari["decision_threshold"], ari["thresholds"])


def set_thresholds(build: Build, thresholds: list[float] | None, origin: str) -> None:
    """Rewrite model/ari_thresholds.c and rebuild the firmware with it."""
    options = options_of(build)
    options.thresholds = thresholds
    relative = "model/ari_thresholds.c"
    header = (build.folder / relative).read_text().split("*/\n", 1)[0] + "*/\n"
    rewrite_build_file(build.folder, relative, render_thresholds(options, header, origin))
    run_make(build.folder)


def measure_costs(build: Build, data: CalibrationData, timeout: float) -> list[StageCost]:
    """Each stage's instructions, cycles and energy per inference, every stage made to run."""
    set_thresholds(build, None, "every stage runs: measuring each stage's cost")
    sample = {name: batch[:COST_SAMPLES] for name, batch in data.inputs.items()}
    measured = profile(build, list(sample.values()), timeout=timeout, edges=True)
    report = report_from(build, measured)
    options = options_of(build)
    costs = []
    for index, stage in enumerate(options.stages):
        rows = [row for row, kernel in zip(report.layers, build.info.kernels, strict=True)
                if kernel["stage"] == index]
        cycles = sum(row.cycles for row in rows)
        energy = energy_estimate(build.board, round(cycles))
        costs.append(StageCost(stage.label, sum(row.instructions for row in rows), cycles,
                               energy.microjoules, energy.milliseconds))
    return costs


def calibrate(build: Build, data: CalibrationData, target_agreement: float | None = None,
              energy_budget_uj: float | None = None, timeout: float = 600) -> Calibration:
    options = options_of(build)
    needed = required_samples(target_agreement)
    if data.count < needed:
        goal = ("full agreement" if target_agreement is None else
                f"an agreement of {100 * target_agreement:g}%")
        raise ArielError(f"threshold calibration needs at least {needed} held-out inputs to "
                         f"estimate {goal} (one disagreement in {needed}); got {data.count}")
    if energy_budget_uj is not None and len(options.stages) > 2:
        raise ArielError("an energy budget picks the threshold of a two-stage build; for more "
                         "stages give --target-agreement")
    costs = measure_costs(build, data, timeout)
    energies = [c.energy_uj for c in costs]
    energies = None if any(e is None for e in energies) else energies
    if energy_budget_uj is not None and energies is None:
        raise ArielError(f"an energy budget needs energy figures, and {build.board.name}'s "
                         "board file has none; give --target-agreement instead")
    inputs = next(iter(data.inputs.values()))
    scores = stage_scores(build, inputs)
    thresholds: list[float] = []
    for first in reversed(range(len(options.stages) - 1)):
        points = curve(scores[first:], options.margin,
                       None if energies is None else energies[first:], data.labels,
                       options.decision_threshold, thresholds)
        chosen = choose(points, target_agreement, energy_budget_uj if first == 0 else None)
        thresholds.insert(0, chosen.threshold)
    rule = ("the smallest threshold agreeing with the last stage on every held-out input"
            if target_agreement is None and energy_budget_uj is None else
            f"the smallest threshold reaching {100 * target_agreement:g}% agreement"
            if energy_budget_uj is None else
            f"the most agreeing threshold within {energy_budget_uj:g} uJ per inference")
    result = Calibration(thresholds, chosen, points, costs, data.count, rule)
    set_thresholds(build, thresholds, f"chosen by `ariel calibrate` on {data.count} held-out "
                   f"inputs from {data.source}: {rule}")
    _record(build, result)
    return result


def _record(build: Build, result: Calibration) -> None:
    metadata = dict(build.metadata)
    metadata["ari"] = {**metadata["ari"], "thresholds": result.thresholds,
                       "calibration_result": to_dict(result)}
    save_metadata(build.folder, metadata)
    build.metadata = metadata


def to_dict(result: Calibration) -> dict:
    return {"thresholds": result.thresholds, "rule": result.rule, "samples": result.samples,
            "chosen": as_rows([result.chosen])[0], "curve": as_rows(result.points),
            "stage_costs": [vars(c) for c in result.costs]}


def format_table(result: Calibration, rows: int = 12) -> str:
    lines = ["Stage costs, measured on the emulator (every stage made to run):",
             f"  {'stage':<32}{'instructions':>14}{'est. cycles':>14}{'est. ms':>10}"
             f"{'est. uJ':>10}"]
    for cost in result.costs:
        energy = f"{cost.energy_uj:>10.2f}" if cost.energy_uj is not None else f"{'-':>10}"
        lines.append(f"  {cost.label:<32}{cost.instructions:>14,.0f}{cost.cycles:>14,.0f}"
                     f"{cost.time_ms:>10.3f}{energy}")
    lines += ["", f"Threshold curve of the first stage on {result.samples} calibration inputs "
              f"(chosen: {result.rule})",
              f"  {'threshold':>10}{'escalated':>11}{'agreement':>11}{'accuracy':>10}"
              f"{'exp. uJ':>10}"]
    for point in _sample_rows(result.points, result.chosen, rows):
        mark = "  <- chosen" if point is result.chosen else ""
        accuracy = f"{100 * point.accuracy:>9.2f}%" if point.accuracy is not None else \
            f"{'-':>10}"
        energy = f"{point.energy_uj:>10.2f}" if point.energy_uj is not None else f"{'-':>10}"
        threshold = "inf" if math.isinf(point.threshold) else f"{point.threshold:.4g}"
        lines.append(f"  {threshold:>10}{100 * point.escalation:>10.1f}%"
                     f"{100 * point.agreement:>10.2f}%{accuracy}{energy}{mark}")
    lines.append("thresholds: " + ", ".join(f"{t:.6g}" for t in result.thresholds)
                 + " (written to model/ari_thresholds.c; firmware rebuilt)")
    return "\n".join(lines)


def _sample_rows(points: list[CurvePoint], chosen: CurvePoint, rows: int) -> list[CurvePoint]:
    """About `rows` points spread over the curve, the chosen one always among them."""
    if len(points) <= rows:
        return points
    picks = {round(i * (len(points) - 1) / (rows - 1)) for i in range(rows)}
    picks.add(points.index(chosen))
    return [points[i] for i in sorted(picks)]


def format_html(result: Calibration, title: str) -> str:
    """The curve as a plot: agreement (and accuracy) and expected energy against the
    threshold, the chosen point marked."""
    finite = [p for p in result.points if math.isfinite(p.threshold)]
    width, height, left, bottom = 640, 320, 60, 40
    top_threshold = max((p.threshold for p in finite), default=1.0) or 1.0

    def x(value: float) -> float:
        return left + (width - left - 20) * value / top_threshold

    def y(value: float) -> float:
        return height - bottom - (height - bottom - 20) * value

    def polyline(values: list[tuple[float, float]], colour: str) -> str:
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values)
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'

    energies = [p.energy_uj for p in finite if p.energy_uj is not None]
    most = max(energies, default=1.0) or 1.0
    series = [polyline([(p.threshold, p.agreement) for p in finite], "#4e79a7"),
              polyline([(p.threshold, p.escalation) for p in finite], "#f28e2b")]
    if energies:
        series.append(polyline([(p.threshold, p.energy_uj / most) for p in finite
                                if p.energy_uj is not None], "#59a14f"))
    if any(p.accuracy is not None for p in finite):
        series.append(polyline([(p.threshold, p.accuracy) for p in finite
                                if p.accuracy is not None], "#e15759"))
    chosen = result.chosen
    mark = (f'<line x1="{x(chosen.threshold):.1f}" x2="{x(chosen.threshold):.1f}" y1="20" '
            f'y2="{height - bottom}" stroke="black" stroke-dasharray="4 3"/>'
            f'<text x="{x(chosen.threshold) + 4:.1f}" y="32">chosen {chosen.threshold:.4g}'
            '</text>') if math.isfinite(chosen.threshold) else ""
    axes = (f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" '
            f'y2="{height - bottom}" stroke="#333"/><line x1="{left}" y1="20" x2="{left}" '
            f'y2="{height - bottom}" stroke="#333"/>'
            f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">threshold on the '
            f'first stage\'s margin</text><text x="{left - 6}" y="24" text-anchor="end">1</text>'
            f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">0</text>')
    legend = ("<p><span style='color:#4e79a7'>agreement with the last stage</span>, "
              "<span style='color:#f28e2b'>escalation rate</span>, "
              f"<span style='color:#59a14f'>expected energy (1 = {most:,.1f} uJ)</span>, "
              "<span style='color:#e15759'>accuracy</span></p>")
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">{axes}{"".join(series)}{mark}</svg>')
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ariel calibrate: "
            f"{escape.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "pre{font-size:12px;background:#f6f6f6;padding:1em}</style></head><body>"
            f"<h1>{escape.escape(title)}</h1>{svg}{legend}"
            f"<pre>{escape.escape(format_table(result, rows=40))}</pre></body></html>\n")
