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


def load_stage_file(path: Path) -> tuple[list[Stage], list[float] | None]:
    """The stages of a config file (`--stages FILE.toml`), cheapest first, and their
    thresholds if it gives them:

        [[stage]]
        model = "little.onnx"   # relative to the file
        precision = "int8"
        threshold = 2.5         # every stage but the last, or none of them
        output = "ariel_exit1"  # optional: the graph output that answers (default: the
                                # model's first)

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
        unknown = set(entry) - {"model", "precision", "threshold", "output"}
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
    if not thresholds:
        return stages, None
    if [i for i, _ in thresholds] != list(range(len(stages) - 1)):
        raise ArielError(f"--stages {path}: give a threshold for every stage but the last "
                         f"(stages 0 to {len(stages) - 2}), or for none")
    try:
        return stages, [float(value) for _, value in thresholds]
    except (TypeError, ValueError):
        raise ArielError(f"--stages {path}: thresholds must be numbers") from None


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
