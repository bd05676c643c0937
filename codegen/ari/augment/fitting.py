"""Which head each exit gets: the one asked for, or with `--pool auto` the cheapest of a few
poolings (a global mean, 2x2 and 4x4 grids on images, 2 and 4 segments of a 1-D signal) whose
cross-entropy on a validation part of the training data is within AUTO_TOLERANCE of the best.
Cross-entropy rather than accuracy: an exit is worth what it can answer confidently, and the
loss measures the confidence of right and wrong answers alike (on digits, 2x2 and 4x4 grids
validate within a point of accuracy, while the 4x4 one answers 97% of the held-out digits at
99.5% agreement and the 2x2 one 90%). The held-out data plays no part in the choice, so its
figures stay an honest estimate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from codegen.ari.augment.candidates import ExitPoint
from codegen.ari.augment.data import held_out_mask
from codegen.ari.augment.features import Pooling
from codegen.ari.augment.heads import Head, HeadShape, pool_window, train_head

AUTO_CELLS = (2, 4)
# A costlier head is taken only when the cheaper ones' validation loss exceeds the best by
# more than this share of it (plus a small absolute slack, for losses near zero).
AUTO_TOLERANCE = 0.05
AUTO_SLACK = 0.005
# The validation part of the training data (its own seed, so not the carved held-out part).
VALIDATION_SHARE = 0.2
VALIDATION_SEED = 1


def head_options(point: ExitPoint, asked: HeadShape) -> list[HeadShape]:
    """The head shapes to try at `point`: `asked`, or for pool auto each pooling that gives
    a distinct window, cheapest first. A vector [1, F] is read as it is, and a tensor with
    its features on the last axis ([1, T, D], a sequence model's) is averaged over T."""
    if len(point.shape) == 2:
        return [HeadShape("flat", asked.hidden)]
    if point.channels_last:  # no grid over a sequence's steps: its mean
        return [HeadShape("sequence", asked.hidden)]
    if asked.pool != "auto":
        return [asked]
    options = [HeadShape("global", asked.hidden)]
    windows = {()}
    for cells in AUTO_CELLS:
        shape = HeadShape("grid", asked.hidden, cells)
        window = pool_window(point.shape, shape)
        if window not in windows and any(size // k > 1 for size, k in
                                         zip(point.shape[2:], window, strict=True)):
            windows.add(window)
            options.append(shape)
    return options


def pooling_of(point: ExitPoint, shape: HeadShape) -> Pooling:
    return Pooling(point.tensor, shape.pool, pool_window(point.shape, shape))


def fit_exit(point: ExitPoint, options: list[HeadShape], features: dict[Pooling, np.ndarray],
             targets: np.ndarray, classes: int, seed: int,
             progress: Callable[[str], None]) -> Head:
    """The head of `point` trained on all the training features: of `options`, the one
    validation picks when there are several."""
    shape = options[0]
    if len(options) > 1:
        shape = _validated_choice(point, options, features, targets, classes, seed, progress)
    pooling = pooling_of(point, shape)
    return train_head(shape, pooling.window, features[pooling], targets, classes, seed)


def _validated_choice(point: ExitPoint, options: list[HeadShape],
                      features: dict[Pooling, np.ndarray], targets: np.ndarray, classes: int,
                      seed: int, progress: Callable[[str], None]) -> HeadShape:
    held = held_out_mask(targets, len(targets), VALIDATION_SHARE, VALIDATION_SEED)
    if held.sum() < len(options) * 5:  # too few to tell heads apart: the cheapest
        progress(f"'{point.label}': too few training inputs to compare poolings; "
                 f"{options[0].label}")
        return options[0]
    losses, accuracies = [], []
    for shape in options:
        pooling = pooling_of(point, shape)
        values = features[pooling]
        head = train_head(shape, pooling.window, values[~held], targets[~held], classes, seed)
        logits = head.logits(values[held]).astype(np.float64)
        losses.append(cross_entropy(logits, targets[held]))
        accuracies.append(float(np.mean(logits.argmax(axis=1) == targets[held])))
    best = min(losses)
    chosen = next(shape for shape, loss in zip(options, losses, strict=True)
                  if loss <= best * (1 + AUTO_TOLERANCE) + AUTO_SLACK)
    progress(f"'{point.label}': validation loss (accuracy) " + ", ".join(
        f"{shape.label} {loss:.3f} ({accuracy:.1%})" for shape, loss, accuracy in
        zip(options, losses, accuracies, strict=True))
        + f" on {int(held.sum())} training inputs: {chosen.label}")
    return chosen


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-probability of the targets under the softmax of the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-np.mean(log_probabilities[np.arange(len(targets)), targets]))
