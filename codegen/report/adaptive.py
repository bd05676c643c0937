"""What `ariel simulate` says about an adaptive build's run: how many inputs each stage (or
exit) answered, how many escalated past the first, and what an inference cost on average and
at worst, from the per-stage costs `ariel calibrate` measured on the emulator (or, for a
build made from `ariel optimize`'s stages file, those it estimated for the same board).

An input answered at stage k ran stages 0..k, so its cost is the sum of their costs: each
stage's recorded cost is what it adds (a whole model, or the increment of a segment of one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from codegen.errors import ArielError


@dataclass
class StageRow:
    label: str
    answered: int
    share: float
    cycles: float | None  # to answer here: this stage and every one before it
    energy_uj: float | None


@dataclass
class CostFigures:
    mean: float
    worst: float


@dataclass
class AdaptiveSummary:
    inferences: int
    stages: list[StageRow]
    escalated: int  # inputs the first stage passed on
    escalation: float
    thresholds: list[float] | None
    cycles: CostFigures | None  # per inference, None without recorded stage costs
    time_ms: CostFigures | None
    energy_uj: CostFigures | None  # None also when the board has no power figure
    costs_note: str

    def to_dict(self) -> dict:
        return asdict(self)


def stage_labels(ari: dict) -> list[str]:
    """Each stage as MODEL:PRECISION, with the output it answers from when it names one."""
    labels = []
    for stage in ari["stages"]:
        model = stage["model"].replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".onnx")
        output = f":{stage['output']}" if stage.get("output") else ""
        labels.append(f"{model}:{stage['precision']}{output}")
    return labels


CALIBRATED = ("stage costs measured by `ariel calibrate` in the emulator (kernels of each "
              "stage; the dispatcher's margin test is not counted)")
NO_COSTS = ("no stage costs in this build: its thresholds were given, not calibrated; "
            "`ariel calibrate` measures them")


def recorded_costs(ari: dict) -> tuple[list[dict], str] | None:
    """The stage costs ariel.json keeps and where they come from: those `ariel calibrate`
    measured on this build, else those its stages file brought (`ariel optimize`'s
    estimates for the same board), else None."""
    measured = (ari.get("calibration_result") or {}).get("stage_costs")
    if measured is not None:
        return measured, CALIBRATED
    given = ari.get("stage_costs")
    if given is not None:
        return given["costs"], (f"stage costs from {given['source']}, estimated for "
                                f"{given['board']} before the build, as `ariel optimize` "
                                "writes them; `ariel calibrate` measures this build's own")
    return None


def summarize(ari: dict, answered_by: np.ndarray, clock_hz: int) -> AdaptiveSummary:
    """The run's summary from the build's `ari` metadata and the stage each input was
    answered by (the firmware's `stage` output)."""
    labels = stage_labels(ari)
    stage = np.asarray(answered_by).reshape(-1).astype(np.int64)
    if stage.size and (stage.min() < 0 or stage.max() >= len(labels)):
        raise ArielError(f"the firmware reported stage {int(stage.max())} of a build with "
                         f"{len(labels)} stages; rebuild the folder (`make -C FOLDER`)")
    count = len(stage)
    answered = np.bincount(stage, minlength=len(labels))
    recorded = recorded_costs(ari)
    costs, note = (None, NO_COSTS) if recorded is None else recorded
    if costs is not None and len(costs) != len(labels):
        raise ArielError(f"ariel.json records costs for {len(costs)} stages but the build "
                         f"has {len(labels)}; run `ariel calibrate` on it again")
    to_answer = None if costs is None else np.cumsum([c["cycles"] for c in costs])
    energies = None if costs is None or any(c["energy_uj"] is None for c in costs) else \
        np.cumsum([c["energy_uj"] for c in costs])
    rows = [StageRow(label, int(n), float(n / count) if count else 0.0,
                     None if to_answer is None else float(to_answer[k]),
                     None if energies is None else float(energies[k]))
            for k, (label, n) in enumerate(zip(labels, answered, strict=True))]
    escalated = int((stage > 0).sum())
    cycles = _figures(to_answer, stage)
    time_ms = None if cycles is None else CostFigures(
        milliseconds(cycles.mean, clock_hz), milliseconds(cycles.worst, clock_hz))
    return AdaptiveSummary(count, rows, escalated, escalated / count if count else 0.0,
                           ari.get("thresholds"), cycles, time_ms,
                           _figures(energies, stage), note)


def milliseconds(cycles: float, clock_hz: int) -> float:
    return cycles / clock_hz * 1e3


def _figures(cumulative: np.ndarray | None, stage: np.ndarray) -> CostFigures | None:
    if cumulative is None or not stage.size:
        return None
    per_input = cumulative[stage]
    return CostFigures(float(per_input.mean()), float(per_input.max()))


def format_summary(summary: AdaptiveSummary) -> str:
    thresholds = ("" if summary.thresholds is None else
                  " (thresholds " + ", ".join(f"{t:.6g}" for t in summary.thresholds) + ")")
    lines = [f"Adaptive dispatch on {summary.inferences} input(s){thresholds}",
             f"  {'#':>3}  {'stage':<40}{'answered':>10}{'share':>8}"
             f"{'cycles to answer':>18}{'uJ to answer':>14}"]
    for index, row in enumerate(summary.stages):
        cycles = f"{row.cycles:>18,.0f}" if row.cycles is not None else f"{'-':>18}"
        energy = f"{row.energy_uj:>14.2f}" if row.energy_uj is not None else f"{'-':>14}"
        lines.append(f"  {index:>3}  {row.label:<40}{row.answered:>10,}"
                     f"{100 * row.share:>7.1f}%{cycles}{energy}")
    lines.append(f"escalated past the first stage: {summary.escalated:,} of "
                 f"{summary.inferences:,} ({100 * summary.escalation:.1f}%)")
    if summary.cycles is not None and summary.time_ms is not None:
        lines.append(f"per inference: mean {summary.cycles.mean:,.0f} cycles "
                     f"({summary.time_ms.mean:.3f} ms), worst {summary.cycles.worst:,.0f} "
                     f"({summary.time_ms.worst:.3f} ms)")
    if summary.energy_uj is not None:
        lines.append(f"energy per inference: mean {summary.energy_uj.mean:,.2f} uJ, worst "
                     f"{summary.energy_uj.worst:,.2f} uJ")
    elif summary.cycles is not None:
        lines.append("energy: - (the board file has no power figure)")
    lines.append(f"({summary.costs_note})")
    return "\n".join(lines)
