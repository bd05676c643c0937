"""What `ariel optimize` writes: the chosen stages file (for `ariel build --stages`), and the
Pareto front of expected energy against agreement as a table, as JSON and as a plot."""

from __future__ import annotations

import html as escape
import json
from collections.abc import Callable
from dataclasses import asdict

from codegen import __version__
from codegen.ari.optimize import Optimized, OptimizeRequest, optimize
from codegen.ari.search import Outcome, Point
from codegen.compiler.compile import current_command
from codegen.files import write_atomic
from codegen.target.outdir import staged_output, write_manifest

STAGES_FILE = "stages.toml"
FRONT_JSON = "front.json"
FRONT_HTML = "front.html"


def write_optimized(request: OptimizeRequest, force: bool = False,
                    progress: Callable[[str], None] = lambda message: None) -> list[str]:
    """Run the optimizer and write its folder, which appears only if everything worked;
    returns what to print."""
    command = current_command()
    with staged_output(request.output, force) as staging:
        optimized = optimize(request, staging, progress)
        write_atomic(staging / STAGES_FILE, stages_toml(optimized, command,
                                                        request.board.name))
        write_atomic(staging / FRONT_JSON, json.dumps(to_dict(optimized), indent=2,
                                                      allow_nan=False) + "\n")
        write_atomic(staging / FRONT_HTML, format_html(optimized, f"{request.model.name} on "
                                                       f"{request.board.name}"))
        write_manifest(staging, {"ariel_version": __version__, "command": command,
                                 "optimize": {"model": optimized.model.name,
                                              "board": request.board.name,
                                              "stages": STAGES_FILE, "front": FRONT_JSON}})
    folder = request.output
    return [format_table(optimized),
            f"stages: {folder / STAGES_FILE} (build them with `ariel build --stages "
            f"{folder / STAGES_FILE} --calib {request.data} -o FOLDER`); front: "
            f"{folder / FRONT_JSON}, {folder / FRONT_HTML}"]


def stages_toml(optimized: Optimized, command: str, board: str) -> str:
    """The chosen configuration as a stages file beside the models it names, with each
    stage's estimated cost on `board` (for `ariel simulate`'s summary of the build)."""
    point = optimized.result.chosen
    lines = [f"# chosen by `{_comment(command)}`",
             f"# {_describe(point.calibration, optimized.calibration_count, 'calibration')}",
             "# build it with: ariel build --stages THIS_FILE --calib TRAIN -o FOLDER",
             "# cycles and energy_uj: what each stage adds to an inference, estimated on the "
             "board below", "", f"measured_on = {toml_string(board)}", ""]
    for index, stage in enumerate(optimized.stages()):
        lines += ["[[stage]]", f"model = {toml_string(stage.model.name)}",
                  f"precision = {toml_string(stage.precision)}"]
        if stage.output:
            lines.append(f"output = {toml_string(stage.output)}")
        if index < len(point.thresholds):
            lines.append(f"threshold = {point.thresholds[index]!r}")
        cost = point.costs[index]
        lines.append(f"cycles = {float(cost.cycles)!r}")
        if cost.energy_uj is not None:
            lines.append(f"energy_uj = {float(cost.energy_uj)!r}")
        lines.append("")
    return "\n".join(lines)


def toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped, the rest as is
    (JSON's escapes would turn a character beyond the BMP into surrogates, which TOML
    refuses)."""
    escaped = "".join(f"\\u{ord(c):04X}" if ord(c) < 0x20 or ord(c) == 0x7F else
                      "\\" + c if c in '"\\' else c for c in text)
    return f'"{escaped}"'


def _comment(text: str) -> str:
    """Text a TOML comment may hold: control characters (tab aside) become spaces."""
    return "".join(" " if (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F else c
                   for c in text)


def _describe(outcome: Outcome, count: int, split: str) -> str:
    energy = "" if outcome.energy_uj is None else f", {outcome.energy_uj:,.2f} uJ"
    return (f"{100 * outcome.agreement:.2f}% agreement with the float model on {count} "
            f"{split} inputs, {outcome.cycles:,.0f} cycles{energy} per inference expected")


def to_dict(optimized: Optimized) -> dict:
    result = optimized.result
    return {
        "model": optimized.model.name,
        "little": [path.name for path in optimized.little],
        "target_agreement": result.target,
        "objective": result.objective,
        "calibration_inputs": optimized.calibration_count,
        "report_inputs": optimized.report_count,
        "chosen": asdict(result.chosen),
        "front": [asdict(p) for p in result.front],
        "candidates": [{"key": c.key, "final": c.final, "prefix": asdict(c.prefix),
                        "head": asdict(c.head)} for run in optimized.runs
                       for c in run.candidates],
        "left_out": optimized.left_out,
        "search_cost": {"wall_seconds": round(optimized.wall_seconds, 3),
                        "emulator_runs": optimized.emulator_runs,
                        "configurations": result.configurations,
                        "threshold_settings_costed": result.evaluated},
    }


def format_table(optimized: Optimized) -> str:
    result = optimized.result
    lines = [f"Pareto front on {optimized.calibration_count} calibration inputs (figures on "
             f"the other {optimized.report_count} held-out inputs after the slash); chosen: "
             f"the least expected {_unit(result.objective)} at >= "
             f"{100 * result.target:g}% agreement",
             f"  {'agreement':>17}{'accuracy':>17}{'kcycles':>10}{'uJ':>10}  stages "
             "(thresholds)"]
    for point in result.front:
        mark = "  <- chosen" if point is result.chosen else ""
        lines.append(_row(point) + mark)
    chosen = result.chosen
    lines.append(f"chosen: {' -> '.join(chosen.stages)}; answered per stage on the "
                 f"calibration split {chosen.calibration.answered}"
                 + ("" if chosen.heldout is None else
                    f", held out {chosen.heldout.answered}"))
    for note in optimized.left_out:
        lines.append(f"left out: {note}")
    lines.append(f"search cost: {optimized.wall_seconds:.1f} s of wall time, "
                 f"{optimized.emulator_runs} emulator run(s), {result.configurations} stage "
                 f"lists, {result.evaluated:,} threshold settings costed")
    return "\n".join(lines)


def _unit(objective: str) -> str:
    return "energy" if objective == "energy_uj" else "cycles (the board has no power figure)"


def _row(point: Point) -> str:
    held = point.heldout

    def pair(calibration: float | None, heldout: float | None) -> str:
        if calibration is None:
            return f"{'-':>17}"
        other = "-" if heldout is None else f"{100 * heldout:.1f}%"
        return f"{f'{100 * calibration:.1f}% / {other}':>17}"

    energy = point.calibration.energy_uj
    stages = " -> ".join(f"{key} ({t:.4g})" for key, t in zip(point.stages, point.thresholds,
                                                              strict=False))
    stages += f" -> {point.stages[-1]}" if len(point.stages) > len(point.thresholds) else ""
    return (f"  {pair(point.calibration.agreement, held and held.agreement)}"
            f"{pair(point.calibration.accuracy, held and held.accuracy)}"
            f"{point.calibration.cycles / 1e3:>10,.1f}"
            f"{'-' if energy is None else f'{energy:,.2f}':>10}  {stages}")


def format_html(optimized: Optimized, title: str) -> str:
    """The front as a plot, expected energy (or cycles) against agreement, chosen marked."""
    result = optimized.result
    energy = result.objective == "energy_uj"

    def cost(point: Point) -> float:
        return point.calibration.energy_uj if energy else point.calibration.cycles

    width, height, left, bottom = 640, 320, 70, 40
    agreements = [p.calibration.agreement for p in result.front]
    low = min(agreements)
    span = (1.0 - low) or 0.01
    top = max(cost(p) for p in result.front) or 1.0

    def x(agreement: float) -> float:
        return left + (width - left - 20) * (agreement - (1.0 - span)) / span

    def y(value: float) -> float:
        return height - bottom - (height - bottom - 20) * value / top

    dots = "".join(
        f'<circle cx="{x(p.calibration.agreement):.1f}" cy="{y(cost(p)):.1f}" r="4" '
        f'fill="{"#e15759" if p is result.chosen else "#4e79a7"}"><title>'
        f"{escape.escape(' -> '.join(p.stages))}</title></circle>" for p in result.front)
    unit = "uJ" if energy else "cycles"
    axes = (f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" '
            f'y2="{height - bottom}" stroke="#333"/><line x1="{left}" y1="20" x2="{left}" '
            f'y2="{height - bottom}" stroke="#333"/>'
            f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">agreement with the '
            f'float model (calibration split), {100 * (1 - span):.1f}% to 100%</text>'
            f'<text x="{left - 6}" y="24" text-anchor="end">{top:,.4g}</text>'
            f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">0</text>'
            f'<text x="{left + 6}" y="14">expected {unit} per inference</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">{axes}{dots}</svg>')
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ariel optimize: "
            f"{escape.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "pre{font-size:12px;background:#f6f6f6;padding:1em}</style></head><body>"
            f"<h1>{escape.escape(title)}</h1>{svg}<p><span style='color:#e15759'>chosen"
            "</span>, <span style='color:#4e79a7'>the rest of the front</span></p>"
            f"<pre>{escape.escape(format_table(optimized))}</pre></body></html>\n")
