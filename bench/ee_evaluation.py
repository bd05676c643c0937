"""Early exits on real data, for `bench/ari_evaluation.py` (its README table holds the rows):

- "early exits alone": the float model with the exits `ariel augment` added, the stage list
  and thresholds `ariel optimize` chooses among float stages only;
- "optimized": what `ariel optimize` chooses among int8 and float stages, with the data
  set's little network (if it has one) offered as a first stage (`--little`).

Heads are trained on the training data; thresholds are chosen on the even held-out inputs
(100% agreement with the float model there) and everything is reported on the odd ones: the
chosen stages are built for the board, profiled in QEMU input by input (measured energy),
and the firmware's stage on each input is compared with the Python simulation of the
dispatcher on the build's own C. The float-only cost is the float model's kernels measured
by the same profiler."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from codegen.ari.augment.heads import HeadShape
from codegen.ari.augment.pipeline import AugmentRequest, augment, write_augmented
from codegen.ari.build import build_ari
from codegen.ari.host import stage_scores
from codegen.ari.margins import answers, simulate
from codegen.ari.measure import measure_dispatch
from codegen.ari.optimize import OptimizeRequest, optimize, stage_of
from codegen.ari.spec import AriOptions
from codegen.compiler.onnxrun import run_model
from codegen.datasets import basic_motions, digits_split, gunpoint, mnist
from codegen.run.simulate import open_build
from codegen.target.boards import get_board

MODES = {"early exits alone (float)": ("float",),
         "optimized: early exits, int8 and float": ("int8", "float")}


@dataclass
class DataSet:
    name: str
    model: Path
    train: tuple[np.ndarray, np.ndarray]
    heldout: tuple[np.ndarray, np.ndarray]
    note: str
    little: Path | None = None  # a smaller network for the same task, offered when optimized


def data_sets(models: Path) -> list[DataSet]:
    x_train, y_train, x_test, y_test = digits_split()
    x_mnist, y_mnist, x_mnist_test, y_mnist_test = mnist()
    x_bm, y_bm, x_bm_test, y_bm_test = basic_motions()
    x_gp, y_gp, x_gp_test, y_gp_test = gunpoint()
    return [
        DataSet("digits CNN", models / "digits_cnn.onnx", (x_train, y_train),
                (x_test, y_test),
                f"heads trained and int8 quantized on the {len(x_train)} training digits; "
                f"thresholds on the {len(x_test) - len(x_test) // 2} even held-out digits, "
                f"reported on the {len(x_test) // 2} odd ones"),
        DataSet("BasicMotions, big network", models / "basic_motions_big.onnx", (x_bm, y_bm),
                (x_bm_test, y_bm_test),
                "heads trained and int8 quantized on the 40 training recordings; thresholds "
                "on the 20 even test recordings, reported on the 20 odd ones (one fold)",
                models / "basic_motions_little.onnx"),
        DataSet("GunPoint CNN", models / "gunpoint_cnn.onnx", (x_gp, y_gp),
                (x_gp_test, y_gp_test),
                "heads trained and int8 quantized on the 50 training series; thresholds on "
                "the 75 even test series, reported on the 75 odd ones"),
        DataSet("MNIST CNN", models / "mnist_cnn.onnx", (x_mnist, y_mnist),
                (x_mnist_test, y_mnist_test),
                f"heads trained and int8 quantized on {len(x_mnist):,} training images; "
                f"thresholds on the 500 even held-out images, reported on the 500 odd ones"),
    ]


HEAD_SIZES = (0, 64)  # as `ariel optimize` tries them by default


def augmented(data: DataSet, folder: Path) -> tuple[Path, ...]:
    """The data set's model with exits, once per head size (EE files and sidecars in
    `folder`)."""
    np.savez(folder / "train.npz", x=data.train[0], y=data.train[1])
    np.savez(folder / "held.npz", x=data.heldout[0], y=data.heldout[1])
    models = []
    for hidden in HEAD_SIZES:
        target = folder / f"{data.model.stem}_ee{f'_h{hidden}' if hidden else ''}.onnx"
        made = augment(AugmentRequest(data.model, str(folder / "train.npz"), target,
                                      str(folder / "held.npz"), "auto",
                                      HeadShape(pool="auto", hidden=hidden)),
                       lambda message: None)
        write_augmented(made, target)
        models.append(target)
    return tuple(models)


def offers_little(data: DataSet, mode: str) -> bool:
    """Whether the row lets `ariel optimize` open a list with the data set's little network
    (the optimized rows; the early-exit rows are the big network's exits alone)."""
    return data.little is not None and "int8" in MODES[mode]


def experiment_name(data: DataSet, mode: str) -> str:
    return f"{data.name}{' and the little one' if offers_little(data, mode) else ''}, {mode}"


def run(data: DataSet, models: tuple[Path, ...], mode: str, board: str, folder: Path
        ) -> dict:
    """One row: optimize, build the choice, measure it on the odd held-out inputs."""
    little = (data.little,) if offers_little(data, mode) else ()
    request = OptimizeRequest(data.model, str(folder / "train.npz"),
                              str(folder / "held.npz"), get_board(board), folder / "unused",
                              target=1.0, precisions=MODES[mode], augmented=models,
                              little=little)
    with tempfile.TemporaryDirectory(prefix="ariel-ee-eval-") as work:
        optimized = optimize(request, Path(work))
    chosen = optimized.result.chosen
    model = folder / optimized.model.name
    stages = [stage_of(key, [model, *little]) for key in chosen.stages]
    build_ari(AriOptions(stages, calibration=str(folder / "train.npz"),
                         thresholds=list(chosen.thresholds)), get_board(board),
              folder / f"build-{len(MODES[mode])}-{board}")
    build = open_build(folder / f"build-{len(MODES[mode])}-{board}")
    shape = build.info.inputs[0].shape
    x, y = data.heldout[0][1::2], data.heldout[1][1::2]
    x = x.reshape(len(x), *shape).astype(np.float32)
    scores = stage_scores(build, x)
    dispatch = simulate(scores, list(chosen.thresholds), "top2")
    measured = measure_dispatch(build, x, dispatch.stage)
    reference = _float_answers(model, x)
    float_run = next((r for r in optimized.runs if r.precision == "float"
                      and r.model.name == model.name), None)
    float_cost = None if float_run is None else float_run.candidates[-1].prefix
    cycles = float(measured.cycles.mean())
    # What `ariel simulate` says of a build from optimize's stages file: its per-stage
    # estimates added up over the stages each input ran.
    estimated = float(np.cumsum([c.cycles for c in chosen.costs])[dispatch.stage].mean())
    first = next(c for r in optimized.runs for c in r.candidates if c.key == chosen.stages[0])
    first_cost = first.prefix + first.head  # the first stage runs on every input
    first_answers = answers(scores[0], "top2")
    return {
        "experiment": experiment_name(data, mode),
        "board": board,
        "split": data.note,
        "inputs": len(y),
        "stages": list(chosen.stages),
        "thresholds": [list(chosen.thresholds)],
        "answered": np.bincount(dispatch.stage, minlength=len(stages)).tolist(),
        "first_stage_accuracy": float((first_answers == y).mean()),
        "float_accuracy": float((reference == y).mean()),
        "adaptive_accuracy": float((dispatch.answer == y).mean()),
        "first_stage_agreement": float((first_answers == reference).mean()),
        "adaptive_agreement": float((dispatch.answer == reference).mean()),
        "calibration_agreement": chosen.calibration.agreement,
        "escalation": float((dispatch.stage > 0).mean()),
        "first_stage_cycles": first_cost.cycles,
        "float_only_cycles": None if float_cost is None else float_cost.cycles,
        "adaptive_cycles": cycles,
        "estimated_cycles": estimated,
        "first_stage_uj": first_cost.energy_uj,
        "float_only_uj": None if float_cost is None else float_cost.energy_uj,
        "adaptive_uj": None if measured.energy_uj is None else
        float(measured.energy_uj.mean()),
        "saving": None if float_cost is None else 1 - cycles / float_cost.cycles,
        "left_out": optimized.left_out,
        "search_seconds": round(optimized.wall_seconds, 1),
        "emulator_runs": optimized.emulator_runs,
        "decisions_match_firmware": bool(np.array_equal(measured.stage, dispatch.stage)),
    }


def _float_answers(model: Path, x: np.ndarray) -> np.ndarray:
    """The float model's answers (its first output, onnxruntime)."""
    proto = onnx.load(str(model))
    name = proto.graph.input[0].name
    final = proto.graph.output[0].name
    runs = run_model(proto, [{name: sample} for sample in x], [final],
                     "for the float model's answers")
    return answers(np.stack([r[0] for r in runs]).reshape(len(x), -1), "top2")
