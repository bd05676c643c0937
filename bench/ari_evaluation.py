"""Evaluate the adaptive-resolution dispatcher on real data, end to end:

    .venv/bin/python bench/ari_evaluation.py [--board B ...] [--update-readme]

For each experiment: build the adaptive firmware for the board, calibrate its thresholds on
one split (`ariel calibrate`: stage costs measured in QEMU), then on another split report
the accuracy of the first stage alone, of the last (float) stage alone and of the adaptive
firmware, its agreement with the last stage, its escalation rate, and energy per inference:
the stages' costs measured alone, and the adaptive firmware's own, profiled in QEMU over
every reported input. The firmware's decisions are checked against the Python simulation of
the dispatcher, input by input. --update-readme writes the table into README.md; with
--rows PREFIX only the experiments whose names begin with PREFIX run, and --update-readme
replaces just their rows (table line and note, per board) in the README's table.

The saving is taken on estimated cycles: the energy model gives every cycle the board's one
power figure, so the energy saving is the same ratio, and boards without a power figure
still get one. By default two boards: a Cortex-M4F (single-precision FPU) and a Cortex-M0+
(float in software), where int8 and float costs are far apart."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ee_evaluation as ee  # noqa: E402

from codegen.ari.build import build_ari  # noqa: E402
from codegen.ari.calibrate import calibrate  # noqa: E402
from codegen.ari.host import stage_scores  # noqa: E402
from codegen.ari.margins import answers, simulate  # noqa: E402
from codegen.ari.measure import measure_dispatch  # noqa: E402
from codegen.ari.spec import AriOptions, Stage  # noqa: E402
from codegen.compiler.quant.calibrate import CalibrationData  # noqa: E402
from codegen.datasets import basic_motions, digits_split, gunpoint, mnist  # noqa: E402
from codegen.errors import DoesNotFitError  # noqa: E402
from codegen.run.simulate import open_build  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402

MODELS = ROOT / "examples" / "models"
BEGIN, END = "<!-- ari-evaluation:begin -->", "<!-- ari-evaluation:end -->"


@dataclass
class Fold:
    """Thresholds calibrated on one set of held-out inputs, reported on another."""

    calibrate_x: np.ndarray
    calibrate_y: np.ndarray
    report_x: np.ndarray
    report_y: np.ndarray


@dataclass
class Experiment:
    name: str
    stages: list[Stage]
    quantize_on: np.ndarray  # inputs the int8 stages are calibrated on
    folds: list[Fold]
    split_note: str


def two_folds(x: np.ndarray, y: np.ndarray) -> list[Fold]:
    """Even inputs calibrate and odd ones report, then the other way round: every input is
    reported once, by thresholds that never saw it."""
    even, odd = slice(0, None, 2), slice(1, None, 2)
    return [Fold(x[even], y[even], x[odd], y[odd]), Fold(x[odd], y[odd], x[even], y[even])]


def experiments() -> list[Experiment]:
    _, _, x_test, y_test = digits_split()
    x_train_digits = digits_split()[0]
    x_bm, y_bm, x_bm_test, y_bm_test = basic_motions()
    little, big = MODELS / "basic_motions_little.onnx", MODELS / "basic_motions_big.onnx"
    half = len(x_test) // 2
    digits_fold = Fold(x_test[:half], y_test[:half], x_test[half:], y_test[half:])
    # The networks fit their 40 training recordings perfectly, so margins there say nothing
    # about unseen ones: thresholds are calibrated on held-out test recordings, two folds.
    bm_note = ("quantized on the 40 training recordings; thresholds calibrated on 20 test "
               "recordings and reported on the other 20, then the other way round")
    x_gp, _, x_gp_test, y_gp_test = gunpoint()
    gp_note = ("quantized on the 50 training series; thresholds calibrated on 75 test series "
               "and reported on the other 75, then the other way round")
    x_mnist, _, x_mnist_test, y_mnist_test = mnist()
    mnist_note = ("quantized on 200 training images; thresholds calibrated on 500 of the 1,000 "
                  "held-out images and reported on the other 500, then the other way round")
    return [
        Experiment("digits CNN, ARI (int8 -> float)",
                   [Stage(MODELS / "digits_cnn.onnx", "int8"),
                    Stage(MODELS / "digits_cnn.onnx", "float")],
                   x_train_digits, [digits_fold],
                   f"quantized on the {len(x_train_digits)} training digits, thresholds on "
                   f"{half} held-out digits, reported on the other {len(x_test) - half}"),
        Experiment("BasicMotions, ARI on the big network (int8 -> float)",
                   [Stage(big, "int8"), Stage(big, "float")],
                   x_bm, two_folds(x_bm_test, y_bm_test), bm_note),
        Experiment("BasicMotions, big-little cascade (little int8 -> big int8 -> big float)",
                   [Stage(little, "int8"), Stage(big, "int8"), Stage(big, "float")],
                   x_bm, two_folds(x_bm_test, y_bm_test), bm_note),
        Experiment("GunPoint CNN, ARI (int8 -> float)",
                   [Stage(MODELS / "gunpoint_cnn.onnx", "int8"),
                    Stage(MODELS / "gunpoint_cnn.onnx", "float")],
                   x_gp, two_folds(x_gp_test, y_gp_test), gp_note),
        Experiment("MNIST CNN, ARI (int8 -> float)",
                   [Stage(MODELS / "mnist_cnn.onnx", "int8"),
                    Stage(MODELS / "mnist_cnn.onnx", "float")],
                   x_mnist[:200], two_folds(x_mnist_test, y_mnist_test), mnist_note),
    ]


def run(experiment: Experiment, board: str, folder: Path) -> dict:
    np.save(folder / "quantize.npy", experiment.quantize_on.astype(np.float32))
    options = AriOptions(experiment.stages, calibration=str(folder / "quantize.npy"))
    build_ari(options, get_board(board), folder / "out")
    build = open_build(folder / "out")
    shape, name = build.info.inputs[0].shape, build.info.inputs[0].name
    results = [evaluate_fold(build, fold, shape, name) for fold in experiment.folds]
    y = np.concatenate([fold.report_y for fold in experiment.folds])
    first, last, answer, stage, energy = (np.concatenate([r[key] for r in results])
                                          for key in ("first", "last", "answer", "stage",
                                                      "energy"))
    costs = results[0]["calibration"].costs
    float_only = costs[-1].energy_uj
    adaptive = float(energy.mean()) if float_only is not None else None
    adaptive_cycles = float(np.concatenate([r["cycles"] for r in results]).mean())
    return {
        "experiment": experiment.name,
        "board": board,
        "split": experiment.split_note,
        "inputs": len(y),
        "thresholds": [r["calibration"].thresholds for r in results],
        "first_stage_accuracy": float((first == y).mean()),
        "float_accuracy": float((last == y).mean()),
        "adaptive_accuracy": float((answer == y).mean()),
        "first_stage_agreement": float((first == last).mean()),
        "adaptive_agreement": float((answer == last).mean()),
        "calibration_agreement": min(r["calibration"].chosen.agreement for r in results),
        "escalation": float((stage > 0).mean()),
        "answered": np.bincount(stage, minlength=len(experiment.stages)).tolist(),
        "first_stage_cycles": costs[0].cycles,
        "float_only_cycles": costs[-1].cycles,
        "adaptive_cycles": adaptive_cycles,
        "first_stage_uj": costs[0].energy_uj,
        "float_only_uj": float_only,
        "adaptive_uj": adaptive,
        "saving": 1 - adaptive_cycles / costs[-1].cycles,
        "stage_costs": [asdict(c) for c in costs],
        "decisions_match_firmware": all(r["match"] for r in results),
    }


def evaluate_fold(build, fold: Fold, shape: list[int], name: str) -> dict:
    """Calibrate on the fold's held-out inputs; run and measure on its report inputs."""
    calibration = calibrate(build, CalibrationData(
        {name: fold.calibrate_x.reshape(len(fold.calibrate_x), *shape)}, fold.calibrate_y,
        "held-out split"))
    x = fold.report_x.reshape(len(fold.report_x), *shape).astype(np.float32)
    scores = stage_scores(build, x)
    dispatch = simulate(scores, calibration.thresholds, "top2")
    measured = measure_dispatch(build, x, dispatch.stage)
    energy = measured.energy_uj if measured.energy_uj is not None else np.zeros(len(x))
    return {"calibration": calibration, "first": answers(scores[0], "top2"),
            "last": answers(scores[-1], "top2"), "answer": dispatch.answer,
            "stage": dispatch.stage, "energy": energy, "cycles": measured.cycles,
            "match": bool(np.array_equal(measured.stage, dispatch.stage))}


def markdown(rows: list[dict]) -> str:
    lines = ["Cycles are estimated from exact instruction counts, energy from them and the "
             "board's power figure (see Profiling); the saving is the same ratio of either. "
             "Produced by `bench/ari_evaluation.py --update-readme`.", "",
             "| experiment | board | inputs | accuracy: first stage / float / adaptive | "
             "agreement with float: first stage / adaptive | escalated | answered per stage | "
             "kcycles per inference: first stage / float / adaptive | energy (uJ): first "
             "stage / float / adaptive | saving vs float | firmware = simulation |",
             "|---|---|---:|---|---|---:|---|---|---|---:|---|"]
    for r in rows:
        if "does_not_fit" in r:
            lines.append(f"| {r['experiment']} | {r['board']} | - | does not fit the board "
                         f"(see below) | | | | | | | |")
            continue
        cycles = " / ".join(_figure(r[key], 1e3) for key in (
            "first_stage_cycles", "float_only_cycles", "adaptive_cycles"))
        energy = (" / ".join(_figure(r[key]) for key in (
            "first_stage_uj", "float_only_uj", "adaptive_uj"))
                  if r["adaptive_uj"] is not None else "- (no power figure)")
        saving = "-" if r["saving"] is None else f"{100 * r['saving']:.1f}%"
        lines.append(
            f"| {r['experiment']} | {r['board']} | {r['inputs']} | "
            f"{100 * r['first_stage_accuracy']:.1f}% / "
            f"{100 * r['float_accuracy']:.1f}% / {100 * r['adaptive_accuracy']:.1f}% | "
            f"{100 * r['first_stage_agreement']:.1f}% / {100 * r['adaptive_agreement']:.1f}% "
            f"(calibration split {100 * r['calibration_agreement']:.0f}%) | "
            f"{100 * r['escalation']:.1f}% | {'/'.join(map(str, r['answered']))} | "
            f"{cycles} | {energy} | {saving} | "
            f"{'yes, every input' if r['decisions_match_firmware'] else 'NO'} |")
    lines.append("")
    lines += [f"- {r['experiment']} on {r['board']}: " + (
              f"not built: {r['does_not_fit']}" if "does_not_fit" in r else
              f"{r['split']}; " + (f"stages {' -> '.join(r['stages'])}; " if "stages" in r
                                   else "") + "thresholds per fold " + "; ".join(
                  ", ".join(f"{t:.4g}" for t in fold) for fold in r["thresholds"])
              + "".join(f"; left out: {note}" for note in r.get("left_out", []))
              + (f"; the stages file's estimate {r['estimated_cycles'] / 1e3:,.1f} kcycles "
                 f"({100 * (r['estimated_cycles'] / r['adaptive_cycles'] - 1):+.1f}% of the "
                 "firmware's)" if "estimated_cycles" in r else "")
              + (f"; search {r['search_seconds']:g} s, {r['emulator_runs']} emulator runs"
                 if "search_seconds" in r else ""))
              for r in rows]
    return "\n".join(lines)


def _figure(value: float | None, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value / scale:,.1f}"


def _row(name: str, board: str, measure) -> dict:
    """One row, or one saying that the firmware does not fit the board."""
    try:
        row = measure()
    except DoesNotFitError as exc:
        row = {"experiment": name, "board": board, "does_not_fit": str(exc)}
    print(json.dumps(row, indent=2), flush=True)
    return row


_AUGMENTED: dict[Path, tuple[Path, ...]] = {}  # per data set's folder, its models with exits


def early_exit_rows(board: str, folder: Path, prefix: str = "") -> list[dict]:
    """Early exits alone and the optimized combination on every data set (the exits are
    added once per data set, whatever the board); only the rows whose names begin with
    `prefix`."""
    rows = []
    for data in ee.data_sets(MODELS):
        modes = [m for m in ee.MODES if ee.experiment_name(data, m).startswith(prefix)]
        if not modes:
            continue
        work = folder / data.model.stem
        if work not in _AUGMENTED:
            work.mkdir(parents=True, exist_ok=True)
            _AUGMENTED[work] = ee.augmented(data, work)
        for mode in modes:
            rows.append(_row(ee.experiment_name(data, mode), board,
                             partial(ee.run, data, _AUGMENTED[work], mode, board, work)))
    return rows


def update_readme(text: str) -> None:
    before, _, after = _readme_parts()
    (ROOT / "README.md").write_text(f"{before}{BEGIN}\n{text}\n{END}{after}")


def _readme_parts() -> tuple[str, str, str]:
    content = (ROOT / "README.md").read_text()
    if BEGIN not in content or END not in content:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} section to update")
    before, rest = content.split(BEGIN, 1)
    table, after = rest.split(END, 1)
    return before, table.strip("\n"), after


def replace_rows(rows: list[dict], prefix: str, boards: list[str]) -> None:
    """Replace, in the README's table, the rows of `boards` whose experiments begin with
    `prefix` (table lines and notes) by `rows`, where they stood."""
    before, table, after = _readme_parts()
    fresh = markdown(rows).split("\n")
    fresh_lines = [line for line in fresh if line.startswith("| ")][1:]  # past the header
    fresh_notes = [line for line in fresh if line.startswith("- ")]
    lines = table.split("\n")
    for board in boards:
        lines = _splice(lines, fresh_lines, f"| {prefix}", f" | {board} | ")
        lines = _splice(lines, fresh_notes, f"- {prefix}", f" on {board}: ")
    (ROOT / "README.md").write_text(f"{before}{BEGIN}\n" + "\n".join(lines)
                                    + f"\n{END}{after}")


def _splice(lines: list[str], fresh: list[str], start: str, board: str) -> list[str]:
    """`lines` with those beginning `start` and holding `board` replaced, one for one in
    order, by the `fresh` ones holding `board` (the script makes rows in the table's order)."""
    stale = [i for i, line in enumerate(lines) if line.startswith(start) and board in line]
    new = [line for line in fresh if board in line]
    if len(stale) != len(new):
        raise SystemExit(f"README.md's table has {len(stale)} line(s) beginning '{start}' for "
                         f"'{board.strip(' |:')}', the run made {len(new)}: run without "
                         "--rows to write the whole table")
    lines = list(lines)
    for at, line in zip(stale, new, strict=True):
        lines[at] = line
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", dest="boards", action="append",
                        help="a board to evaluate on (repeatable; default: nucleo-l4r5zi and "
                             "nucleo-g071rb)")
    parser.add_argument("--only", choices=["ari", "exits"],
                        help="only the ARI and cascade rows, or only the early-exit rows "
                             "(then without --update-readme)")
    parser.add_argument("--rows", default="", metavar="PREFIX",
                        help="only the experiments whose names begin with PREFIX; with "
                             "--update-readme, only their rows are replaced")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    if args.only and args.update_readme:
        parser.error("--update-readme writes the whole table: run without --only")
    boards = args.boards or ["nucleo-l4r5zi", "nucleo-g071rb"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ariel-ee-eval-") as exits_folder:
        for board in boards:
            if args.only != "exits":
                for experiment in experiments():
                    if not experiment.name.startswith(args.rows):
                        continue
                    with tempfile.TemporaryDirectory(prefix="ariel-ari-eval-") as folder:
                        rows.append(_row(experiment.name, board,
                                         partial(run, experiment, board, Path(folder))))
            if args.only != "ari":
                rows += early_exit_rows(board, Path(exits_folder), args.rows)
    table = markdown(rows)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.update_readme and args.rows:
        replace_rows(rows, args.rows, boards)
    elif args.update_readme:
        update_readme(table)
    if not all(r.get("decisions_match_firmware", True) for r in rows):
        raise SystemExit("the firmware's decisions differ from the simulation")


if __name__ == "__main__":
    main()
