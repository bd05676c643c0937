"""`ariel optimize`: from a trained model to the cheapest stage list that keeps its answers.

1. Early exits: the model as `ariel augment` made it (an EE.exits.json beside it), or
   augmented here on the training data. Smaller networks trained for the same task
   (`--little`) may come first in a list, as a big-little cascade's little network does.
2. Each precision's run: the early-exit model compiled with all its outputs and built for
   the board (a precision that does not fit is left out, and said so), profiled once in the
   emulator for every kernel's cycles (codegen/ari/exit_costs.py), and run on the held-out
   inputs on the host from its own C for every output's answer and margin.
3. The search (codegen/ari/search.py) over the stage lists the runs allow, thresholds chosen
   on half of the held-out inputs (the calibration split), reported on the other half.
4. The chosen list compiled into one adaptive build for the board to check that it fits,
   then the stages file, the front (table, JSON, plot) and the search's own cost written."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from codegen.ari.augment.heads import HeadShape
from codegen.ari.augment.pipeline import AugmentRequest, augment, write_augmented
from codegen.ari.augment.sidecar import read_sidecar, sidecar_path
from codegen.ari.build import build_ari
from codegen.ari.exit_costs import ENERGY_REFERENCE_CYCLES, output_costs
from codegen.ari.margins import answers, margins, required_samples
from codegen.ari.search import Candidate, SearchResult, Split, chains, search
from codegen.ari.spec import PRECISIONS, AriOptions, Stage
from codegen.build import build
from codegen.compiler.compile import Options, model_inputs
from codegen.compiler.frontend import fix_input_shapes
from codegen.compiler.onnxrun import run_model
from codegen.compiler.quant.calibrate import CalibrationData, load_calibration
from codegen.errors import ArielError, DoesNotFitError
from codegen.run.emulate.counting import profile
from codegen.run.energy import estimate as energy_estimate
from codegen.run.hostrun import HostModel, build_host_library
from codegen.run.profiling import report_from
from codegen.run.simulate import open_build
from codegen.target.boards import Board

COST_SAMPLES = 3  # inputs profiled per run (instruction counts barely vary with the input)


@dataclass
class OptimizeRequest:
    model: Path
    data: str  # training data: the heads' training and the int8 quantization
    heldout: str  # thresholds on one half, figures reported on the other
    board: Board
    output: Path
    target: float = 0.995
    exits: str = "auto"
    max_stages: int = 5
    timeout: float = 900.0
    input_shapes: dict = field(default_factory=dict)
    precisions: tuple[str, ...] = PRECISIONS  # the runs stage lists may take stages from
    hidden: tuple[int, ...] = (0, 64)  # head sizes tried: units of a ReLU layer (0: none)
    augmented: tuple[Path, ...] = ()  # MODEL with exits already added, one file per head size
    little: tuple[Path, ...] = ()  # smaller networks for the same task, cheapest first


@dataclass
class RunData:
    """One early-exit model at one precision: what each output costs and answers."""

    model: Path
    precision: str
    candidates: list[Candidate]
    answers: dict[str, np.ndarray]
    margins: dict[str, np.ndarray]
    classes: int = 0  # the width of its final output's scores


@dataclass
class Optimized:
    model: Path  # the early-exit model the stages end in
    sidecar: dict
    result: SearchResult
    runs: list[RunData]
    left_out: list[str]  # precisions that do not fit the board, with the reason
    wall_seconds: float
    emulator_runs: int
    calibration_count: int
    report_count: int
    little: list[Path] = field(default_factory=list)  # copies beside the early-exit models

    def stages(self) -> list[Stage]:
        """The chosen list as the dispatcher's stages, each naming its model's file."""
        models = [self.model, *self.little]
        return [stage_of(key, models) for key in self.result.chosen.stages]


def augmented_models(request: OptimizeRequest, folder: Path,
                     progress: Callable[[str], None]) -> list[tuple[Path, dict]]:
    """The early-exit models in `folder`: MODEL copied when it already has exits, else one
    made by `ariel augment`'s pipeline per head size."""
    given = request.augmented or ((request.model,) if sidecar_path(request.model).is_file()
                                  else ())
    if given:
        models = []
        for path in given:
            existing = read_sidecar(sidecar_path(path))
            target = folder / path.name
            progress(f"{path} has {len(existing['exits'])} exit(s) "
                     f"({sidecar_path(path).name}): not augmenting it again")
            shutil.copyfile(path, target)
            shutil.copyfile(sidecar_path(path), sidecar_path(target))
            models.append((target, existing))
        return models
    models = []
    for hidden in request.hidden:
        target = folder / f"{request.model.stem}_ee{f'_h{hidden}' if hidden else ''}.onnx"
        progress(f"augmenting {request.model.name} with heads of "
                 + (f"{hidden} hidden units" if hidden else "one layer") + f": {target.name}")
        made = augment(AugmentRequest(request.model, request.data, target, request.heldout,
                                      request.exits, HeadShape(pool="auto", hidden=hidden),
                                      input_shapes=dict(request.input_shapes)), progress)
        write_augmented(made, target)
        models.append((target, made.sidecar))
    return models


def optimize(request: OptimizeRequest, folder: Path,
             progress: Callable[[str], None] = lambda message: None) -> Optimized:
    """Everything but writing the report: the early-exit model (and its sidecar) lands in
    `folder`, the caller's staging folder."""
    start = time.monotonic()
    if not 0 < request.target <= 1:
        raise ArielError(f"--target-agreement {request.target:g} is not a share of inputs in "
                         "(0, 1] (0.995 is 99.5%)")
    held = _heldout(request, onnx.load(str(request.model)))
    calibration_part, report_part = np.arange(0, held.count, 2), np.arange(1, held.count, 2)
    needed = required_samples(request.target)
    if len(calibration_part) < needed:
        raise ArielError(f"--heldout {held.source} has {held.count} inputs; half of them "
                         f"calibrate the thresholds, and {100 * request.target:g}% agreement "
                         f"needs at least {needed} there (one disagreement in {needed}): give "
                         f"at least {2 * needed} held-out inputs or a lower target")
    check_littles(request, held)
    models = augmented_models(request, folder, progress)
    littles = little_models(request, [path for path, _ in models], folder)
    little_paths = [path for path, _ in littles]
    inputs = next(iter(held.inputs.values()))
    runs, left_out, emulator_runs, reference = [], [], 0, None
    with tempfile.TemporaryDirectory(prefix="ariel-optimize-") as workdir:
        for number, (model_path, sidecar) in enumerate([*littles, *models]):
            model = onnx.load(str(model_path))
            final = sidecar.get("final_output") or model.graph.output[0].name
            exits = [e["output"] for e in sidecar["exits"]]
            if reference is None and model_path not in little_paths:
                reference = _reference(model, held, final)
            for precision in request.precisions:
                try:
                    run = measure_run(model_path, precision, exits, final, request, inputs,
                                      Path(workdir) / f"{number}-{precision}", progress)
                except DoesNotFitError as exc:
                    left_out.append(f"{model_path.name} in {precision}: {exc}")
                    progress(f"leaving {model_path.name} in {precision} out: it does not fit "
                             f"{request.board.name}")
                    continue
                emulator_runs += 1
                runs.append(run)
    if all(run.model in little_paths for run in runs):
        raise DoesNotFitError(f"the early-exit model fits {request.board.name} at no "
                              "precision: " + "; ".join(left_out))
    _check_classes(runs, little_paths)
    opening = [run.candidates for path in little_paths for run in runs if run.model == path]
    configurations = []
    for model_path, _ in models:
        own = [run for run in runs if run.model == model_path]
        configurations += chains([*opening, *(run.candidates for run in own)],
                                 request.max_stages, {f"{model_path.name}:{run.precision}"
                                                      for run in own})

    def split(part: np.ndarray) -> Split:
        every = [(k, run) for run in runs for k in run.answers]
        return Split({k: run.answers[k][part] for k, run in every},
                     {k: run.margins[k][part] for k, run in every}, reference[part],
                     None if held.labels is None else held.labels[part])

    progress(f"searching {len(configurations)} stage lists for {100 * request.target:g}% "
             f"agreement on {len(calibration_part)} calibration inputs")
    result = search(configurations, split(calibration_part), request.target,
                    heldout=split(report_part))
    model_path, sidecar = next((path, sidecar) for path, sidecar in models
                               if result.chosen.stages[-1].startswith(f"{path.name}:"))
    optimized = Optimized(model_path, sidecar, result, runs, left_out,
                          time.monotonic() - start, emulator_runs, len(calibration_part),
                          len(report_part), little_paths)
    check_fits(result, optimized.stages(), request, progress)
    optimized.wall_seconds = time.monotonic() - start
    return optimized


def check_littles(request: OptimizeRequest, held: CalibrationData) -> None:
    """Every `--little` network takes the model's input (before any work is done)."""
    shape = next(iter(held.inputs.values())).shape[1:]
    for path in request.little:
        if not path.is_file():
            raise ArielError(f"--little {path}: no such file")
        inputs = model_inputs(onnx.load(str(path)))
        if len(inputs) != 1 or tuple(inputs[0][1]) != tuple(shape):
            found = ", ".join(f"{name} {list(dims)}" for name, dims, _ in inputs)
            raise ArielError(f"--little {path}: its input ({found}) is not the model's one "
                             f"input of shape {list(shape)}; a stage list feeds every stage "
                             "the same input")


def little_models(request: OptimizeRequest, models: list[Path], folder: Path
                  ) -> list[tuple[Path, dict]]:
    """Each `--little` network copied into `folder` (the stages file names it there), with
    its exits file when it has one: its exits are candidate stages too."""
    names = {path.name for path in models}
    littles = []
    for path in request.little:
        if path.name in names:
            raise ArielError(f"--little {path}: its file name is already a stage's model's "
                             f"({path.name}); stages name models by file name, so rename it")
        names.add(path.name)
        sidecar = read_sidecar(sidecar_path(path)) if sidecar_path(path).is_file() else \
            {"exits": []}
        shutil.copyfile(path, folder / path.name)
        if sidecar["exits"]:
            shutil.copyfile(sidecar_path(path), sidecar_path(folder / path.name))
        littles.append((folder / path.name, sidecar))
    return littles


def _check_classes(runs: list[RunData], littles: list[Path]) -> None:
    """A little network answers in the model's classes, or its answers mean nothing."""
    want = next(run.classes for run in runs if run.model not in littles)
    for run in runs:
        if run.model in littles and run.classes != want:
            raise ArielError(f"--little {run.model.name}: it scores {run.classes} classes "
                             f"where the model scores {want}; give a network trained for "
                             "the same classes")


def _heldout(request: OptimizeRequest, model: onnx.ModelProto) -> CalibrationData:
    shaped = onnx.ModelProto.FromString(model.SerializeToString())
    fix_input_shapes(shaped, dict(request.input_shapes))
    inputs = model_inputs(shaped)
    if len(inputs) != 1:
        raise ArielError(f"the model has {len(inputs)} inputs; adaptive builds take models "
                         "with one input")
    return load_calibration(request.heldout, inputs)


def _reference(model: onnx.ModelProto, held: CalibrationData, final: str) -> np.ndarray:
    """The float model's answer to each held-out input, from onnxruntime."""
    feeds = [{name: batch[i] for name, batch in held.inputs.items()}
             for i in range(held.count)]
    scores = np.stack([r[0] for r in run_model(model, feeds, [final],
                                               "for the float model's answers")])
    return answers(scores.reshape(held.count, -1), "top2")


def stage_key(model: Path, precision: str, output: str | None) -> str:
    return f"{model.name}:{precision}" + ("" if output is None else f":{output}")


def measure_run(model_path: Path, precision: str, exits: list[str], final: str,
                request: OptimizeRequest, inputs: np.ndarray, workdir: Path,
                progress: Callable[[str], None]) -> RunData:
    """Build the early-exit model at `precision` for the board, profile it in the emulator,
    and run it on the held-out inputs on the host."""
    progress(f"building {model_path.name} ({precision}, all outputs) for "
             f"{request.board.name}")
    built = build(model_path, request.board, workdir / "build", Options(
        precision=precision, calibration=request.data if precision == "int8" else None,
        input_shapes=dict(request.input_shapes), name="ee"))
    folder = open_build(workdir / "build")
    progress(f"profiling {model_path.name} ({precision}) in the emulator")
    measured = profile(folder, [inputs[:COST_SAMPLES]], timeout=request.timeout, edges=True)
    cycles = [row.cycles for row in report_from(folder, measured).layers]
    energy = energy_estimate(request.board, ENERGY_REFERENCE_CYCLES).microjoules
    per_cycle = None if energy is None else energy / ENERGY_REFERENCE_CYCLES
    compiled = built.compiled
    costs = output_costs(compiled.graph, compiled.info.kernels, cycles, final, per_cycle)
    first = compiled.info.outputs[0].name
    candidates = []
    for depth, output in enumerate([*exits, final]):
        key = stage_key(model_path, precision, None if output == first else output)
        candidates.append(Candidate(key, f"{model_path.name}:{precision}", depth,
                                    costs[output].prefix, costs[output].head,
                                    final=output == final))
    progress(f"running {model_path.name} ({precision}) on {len(inputs)} held-out inputs "
             "(host, the build's C)")
    scores = host_scores(compiled, workdir / "host", inputs)
    names = [o.name for o in compiled.info.outputs]
    by_key = {c.key: scores[names.index(o)] for c, o in zip(candidates, [*exits, final],
                                                            strict=True)}
    return RunData(model_path, precision, candidates,
                   {k: answers(v, "top2") for k, v in by_key.items()},
                   {k: margins(v, "top2") for k, v in by_key.items()},
                   scores[names.index(final)].shape[1])


def host_scores(compiled, workdir: Path, inputs: np.ndarray) -> list[np.ndarray]:
    """Every output of the compiled model on every input, (N, classes) each."""
    info = compiled.info
    files = {name: text for name, text in compiled.files.items()
             if name.startswith(info.prefix)}
    host = HostModel(build_host_library(files, workdir, info.prefix), info)
    runs = [host.run(sample) for sample in inputs]
    return [np.stack([r[i] for r in runs]).reshape(len(inputs), -1)
            for i in range(len(info.outputs))]


def check_fits(result: SearchResult, stages: list[Stage], request: OptimizeRequest,
               progress: Callable[[str], None]) -> None:
    """Compile and link the chosen list for the board; a list that does not fit is an error."""
    progress("building the chosen stages for " + request.board.name + " to check they fit")
    options = AriOptions(stages, calibration=request.data,
                         thresholds=list(result.chosen.thresholds),
                         input_shapes=dict(request.input_shapes))
    with tempfile.TemporaryDirectory(prefix="ariel-optimize-fit-") as workdir:
        try:
            build_ari(options, request.board, Path(workdir) / "build")
        except DoesNotFitError as exc:
            raise ArielError(f"the chosen stages ({', '.join(result.chosen.stages)}) do not "
                             f"fit {request.board.name}: {exc}") from None


def stage_of(key: str, models: list[Path]) -> Stage:
    """The dispatcher's stage a candidate's key (MODEL:PRECISION[:OUTPUT]) names, MODEL the
    file name of one of `models` (the longest that fits, should one name begin another)."""
    model = max((m for m in models if key.startswith(f"{m.name}:")),
                key=lambda m: len(m.name))
    rest = key[len(model.name) + 1:]
    precision, _, output = rest.partition(":")
    return Stage(model, precision, output or None)
