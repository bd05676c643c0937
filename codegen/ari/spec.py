"""What an adaptive build is made of: its stages, how margins are measured, and checks that
the stages can share one input and answer in the same terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from codegen.errors import ArielError

PRECISIONS = ("int8", "float")
MARGINS = ("top2", "binary")  # top-1 minus top-2 score; distance to a decision threshold
SCORES = ("model", "logits", "probabilities")


@dataclass(frozen=True)
class Stage:
    """A model, the precision it runs at, and the graph output whose scores answer (None:
    the model's first output). Consecutive stages of one model and precision are one
    compiled model run segment by segment (codegen/ari/segments.py)."""

    model: Path
    precision: str
    output: str | None = None

    @property
    def label(self) -> str:
        suffix = "" if self.output is None else f":{self.output}"
        return f"{self.model.stem}:{self.precision}{suffix}"


@dataclass(frozen=True)
class StageCosts:
    """What each stage adds to an inference, estimated for one board before the build (by
    `ariel optimize`, from the emulator): `ariel simulate`'s summary uses them when no
    `ariel calibrate` measured the build itself."""

    board: str  # the board they were estimated for; a build for another one drops them
    cycles: tuple[float, ...]
    energy_uj: tuple[float, ...] | None  # None: the board has no power figure
    source: str  # where they come from, for the summary's note


@dataclass
class StageFile:
    """A stages file's contents (`--stages FILE.toml`)."""

    stages: list[Stage]
    thresholds: list[float] | None
    costs: StageCosts | None = None


@dataclass
class AriOptions:
    stages: list[Stage]
    calibration: str | None = None  # quantization data for the int8 stages
    margin: str = "top2"
    scores: str = "model"  # which scores the margin is taken on
    decision_threshold: float = 0.0  # for binary margins: the score that separates classes
    thresholds: list[float] | None = None  # per stage but the last; None: set by calibrate
    float_weights: str = "fp32"
    input_shapes: dict = field(default_factory=dict)
    costs: StageCosts | None = None  # per stage, estimated before the build


def parse_stage(text: str) -> Stage:
    """MODEL.onnx:PRECISION or MODEL.onnx:PRECISION:OUTPUT, as given to --stage. The
    precision is the last `:int8` or `:float` field, so a model path may hold colons; an
    output name holding `:int8:` or `:float:` needs a --stages file."""
    for precision in PRECISIONS:
        if text.endswith(f":{precision}") and len(text) > len(precision) + 1:
            return Stage(Path(text[:-len(precision) - 1]), precision)
    fields = [(text.rfind(f":{p}:"), p) for p in PRECISIONS]
    at, precision = max(fields)
    output = text[at + len(precision) + 2:]
    if at <= 0 or not output:
        raise ArielError(f"--stage '{text}' is not of the form MODEL.onnx:int8 or "
                         "MODEL.onnx:float, optionally followed by :OUTPUT (the graph output "
                         "that answers, e.g. MODEL.onnx:int8:ariel_exit1)")
    return Stage(Path(text[:at]), precision, output)


def load_stage_file(path: Path) -> StageFile:
    """The stages of a config file (`--stages FILE.toml`), cheapest first, and their
    thresholds and estimated costs if it gives them:

        measured_on = "nucleo-l4r5zi"  # the board the stages' costs are for (with costs)

        [[stage]]
        model = "little.onnx"   # relative to the file
        precision = "int8"
        threshold = 2.5         # every stage but the last, or none of them
        output = "ariel_exit1"  # optional: the graph output that answers (default: the
                                # model's first)
        cycles = 27912.5        # optional, every stage or none: what the stage adds to an
        energy_uj = 18.14       # inference (energy only with the board's power figure)

        [[stage]]
        model = "big.onnx"
        precision = "float"
    """
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ArielError(f"--stages {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ArielError(f"--stages {path}: not valid TOML ({exc})") from None
    entries = data.get("stage")
    if not isinstance(entries, list) or not entries:
        raise ArielError(f"--stages {path}: no [[stage]] tables (each with model and "
                         "precision, cheapest first)")
    stages, thresholds = [], []
    for index, entry in enumerate(entries):
        unknown = set(entry) - {"model", "precision", "threshold", "output", *COST_KEYS}
        output = entry.get("output")
        if (unknown or "model" not in entry or entry.get("precision") not in PRECISIONS
                or not (output is None or isinstance(output, str) and output)):
            raise ArielError(f"--stages {path}: stage {index} needs model = \"FILE.onnx\" and "
                             f"precision = \"int8\" or \"float\" (and may give a threshold "
                             "and an output, the name of the graph output that answers)"
                             + (f"; unknown keys: {', '.join(sorted(unknown))}" if unknown
                                else ""))
        stages.append(Stage(Path(path).parent / entry["model"], entry["precision"], output))
        if "threshold" in entry:
            thresholds.append((index, entry["threshold"]))
    costs = _stage_costs(path, data, entries)
    if not thresholds:
        return StageFile(stages, None, costs)
    if [i for i, _ in thresholds] != list(range(len(stages) - 1)):
        raise ArielError(f"--stages {path}: give a threshold for every stage but the last "
                         f"(stages 0 to {len(stages) - 2}), or for none")
    try:
        return StageFile(stages, [float(value) for _, value in thresholds], costs)
    except (TypeError, ValueError):
        raise ArielError(f"--stages {path}: thresholds must be numbers") from None


COST_KEYS = ("cycles", "energy_uj")


def _stage_costs(path: Path, data: dict, entries: list[dict]) -> StageCosts | None:
    """The stages' estimated costs: cycles for every stage or none, energy likewise, and the
    board they were estimated for."""
    given = {key: [entry.get(key) for entry in entries] for key in COST_KEYS}
    if all(value is None for values in given.values() for value in values):
        return None
    board = data.get("measured_on")

    def numbers(key: str) -> tuple[float, ...] | None:
        values = given[key]
        if all(value is None for value in values):
            return None
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
                   for v in values):
            raise ArielError(f"--stages {path}: give {key} for every stage or for none, as "
                             f"numbers >= 0 (what the stage adds to an inference)")
        return tuple(float(value) for value in values)

    cycles = numbers("cycles")
    if cycles is None or not isinstance(board, str) or not board:
        raise ArielError(f"--stages {path}: stage costs need cycles for every stage and, "
                         "before the first [[stage]], measured_on = \"BOARD\" (the board "
                         "they were estimated for)")
    return StageCosts(board, cycles, numbers("energy_uj"), f"the stages file {Path(path).name}")


def ari_stages(model: Path) -> list[Stage]:
    """ARI on one model: its int8 version first, then the float one."""
    return [Stage(model, "int8"), Stage(model, "float")]


def parse_thresholds(text: str | None, stages: int) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != stages - 1:
        raise ArielError(f"--threshold needs {stages - 1} comma-separated number(s), one per "
                         f"stage but the last; got '{text}'")
    return values


def check_thresholds(thresholds: list[float], margin: str, scores: str) -> None:
    """Thresholds must lie in the range margins can take."""
    for index, value in enumerate(thresholds):
        if not value >= 0:
            raise ArielError(f"threshold {value} of stage {index} is outside the margin range: "
                             "margins are never negative, so give a value >= 0")
        if margin == "top2" and scores == "probabilities" and value > 1:
            raise ArielError(f"threshold {value} of stage {index} is outside the margin range "
                             "[0, 1] of probabilities (top-1 minus top-2 probability)")
