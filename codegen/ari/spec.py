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
    model: Path
    precision: str

    @property
    def label(self) -> str:
        return f"{self.model.stem}:{self.precision}"


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
    """MODEL.onnx:PRECISION, as given to --stage."""
    path, sep, precision = text.rpartition(":")
    if not sep or precision not in PRECISIONS:
        raise ArielError(f"--stage '{text}' is not of the form MODEL.onnx:int8 or "
                         "MODEL.onnx:float")
    return Stage(Path(path), precision)


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
