"""Margins, the dispatcher simulated in numpy, and the threshold curve.

The C dispatcher computes the same float32 quantities in the same order, so for stages
whose outputs are bit-exact (int8 stages, and any stage's output read back from the
firmware) the simulation's decisions are the firmware's, input by input."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from codegen.errors import ArielError

MIN_SAMPLES = 20


def margins(scores: np.ndarray, kind: str, decision_threshold: float = 0.0) -> np.ndarray:
    """Per input (rows of `scores`), float32: top-1 minus top-2 score, or the distance of a
    single score to the decision threshold."""
    scores = np.asarray(scores, np.float32).reshape(len(scores), -1)
    if kind == "top2":
        if scores.shape[1] < 2:
            raise ArielError("a top-1 minus top-2 margin needs at least two scores; use "
                             "--margin binary for a single score")
        top = np.sort(scores, axis=1)
        return (top[:, -1] - top[:, -2]).astype(np.float32)
    return np.abs(scores[:, 0] - np.float32(decision_threshold)).astype(np.float32)


def answers(scores: np.ndarray, kind: str, decision_threshold: float = 0.0) -> np.ndarray:
    """The class each input gets: argmax, or for a single score whether it reaches the
    decision threshold."""
    scores = np.asarray(scores, np.float32).reshape(len(scores), -1)
    if kind == "top2":
        return scores.argmax(axis=1)
    return (scores[:, 0] >= np.float32(decision_threshold)).astype(np.int64)


@dataclass
class Dispatch:
    """Which stage answered each input, and its answer."""

    stage: np.ndarray
    answer: np.ndarray
    margin: np.ndarray


def simulate(stage_scores: list[np.ndarray], thresholds: list[float], kind: str,
             decision_threshold: float = 0.0) -> Dispatch:
    """The dispatcher on every input: stage k answers when its margin reaches thresholds[k]
    (margin >= threshold, in float32); the last stage always answers."""
    count = len(stage_scores[0])
    stage = np.full(count, len(stage_scores) - 1)
    pending = np.ones(count, bool)
    for index, threshold in enumerate(thresholds):
        reached = margins(stage_scores[index], kind, decision_threshold) >= np.float32(threshold)
        answered = pending & reached
        stage[answered] = index
        pending &= ~reached
    answer = np.empty(count, np.int64)
    margin = np.empty(count, np.float32)
    for index, scores in enumerate(stage_scores):
        chosen = stage == index
        answer[chosen] = answers(scores, kind, decision_threshold)[chosen]
        margin[chosen] = margins(scores, kind, decision_threshold)[chosen]
    return Dispatch(stage, answer, margin)


@dataclass
class CurvePoint:
    threshold: float
    escalation: float  # fraction of inputs the first stage passes on
    agreement: float  # fraction answered as the last stage answers
    accuracy: float | None  # against labels, when given
    energy_uj: float | None  # expected per inference, from the stages' measured energy


def curve(stage_scores: list[np.ndarray], kind: str, stage_energy_uj: list[float] | None,
          labels: np.ndarray | None = None, decision_threshold: float = 0.0,
          later_thresholds: list[float] | None = None) -> list[CurvePoint]:
    """Every candidate threshold of the first stage (each distinct margin, and 0), with the
    later stages' thresholds fixed."""
    later = list(later_thresholds or [])
    first = margins(stage_scores[0], kind, decision_threshold)
    final = answers(stage_scores[-1], kind, decision_threshold)
    candidates = np.unique(np.concatenate([[0.0], first, [np.inf]]).astype(np.float32))
    points = []
    for threshold in candidates:
        dispatch = simulate(stage_scores, [float(threshold), *later], kind, decision_threshold)
        points.append(CurvePoint(
            float(threshold), float((dispatch.stage > 0).mean()),
            float((dispatch.answer == final).mean()),
            None if labels is None else float((dispatch.answer == labels).mean()),
            expected_energy(dispatch.stage, stage_energy_uj)))
    return points


def expected_energy(stage: np.ndarray, stage_energy_uj: list[float] | None) -> float | None:
    """Mean energy per inference when input i runs stages 0..stage[i]."""
    if stage_energy_uj is None:
        return None
    cumulative = np.cumsum(stage_energy_uj)
    return float(cumulative[stage].mean())


def choose(points: list[CurvePoint], target_agreement: float | None = None,
           energy_budget_uj: float | None = None) -> CurvePoint:
    """The default: the smallest threshold that agrees with the last stage on every
    calibration input. A target agreement picks the smallest threshold reaching it; an
    energy budget the most agreeing point within it."""
    if energy_budget_uj is not None:
        within = [p for p in points if p.energy_uj is not None and p.energy_uj <= energy_budget_uj]
        if not within:
            cheapest = min(p.energy_uj for p in points if p.energy_uj is not None)
            raise ArielError(f"no threshold meets an energy budget of {energy_budget_uj:g} uJ "
                             f"per inference; the cheapest is {cheapest:,.2f} uJ")
        return max(within, key=lambda p: (p.agreement, -p.threshold))
    target = 1.0 if target_agreement is None else target_agreement
    reaching = [p for p in points if p.agreement >= target - 1e-12]
    return min(reaching, key=lambda p: p.threshold)


def required_samples(target_agreement: float | None) -> int:
    """Held-out inputs needed to tell the target agreement from full agreement: at least one
    disagreement's worth, 1 / (1 - target), and never fewer than MIN_SAMPLES."""
    if target_agreement is None or target_agreement >= 1:
        return MIN_SAMPLES
    return max(MIN_SAMPLES, int(np.ceil(1 / (1 - target_agreement))))


def as_rows(points: list[CurvePoint]) -> list[dict]:
    return [asdict(p) for p in points]
