"""Which head each exit gets: the one asked for, or with `--pool auto` the cheapest of a few
poolings (a global mean, 2x2 and 4x4 grids on images, 2 and 4 segments of a 1-D signal) whose
accuracy on a validation part of the training data is within AUTO_TOLERANCE of the best.
The held-out data plays no part in the choice, so its figures stay an honest estimate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from codegen.ari.augment.candidates import ExitPoint
from codegen.ari.augment.data import held_out_mask
from codegen.ari.augment.features import Pooling
from codegen.ari.augment.heads import Head, HeadShape, pool_window, train_head

AUTO_CELLS = (2, 4)
# A costlier head must beat the cheapest one this close to the best by more than this.
AUTO_TOLERANCE = 0.005
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
    scores = []
    for shape in options:
        pooling = pooling_of(point, shape)
        values = features[pooling]
        head = train_head(shape, pooling.window, values[~held], targets[~held], classes, seed)
        scores.append(float(np.mean(head.logits(values[held]).argmax(axis=1)
                                    == targets[held])))
    best = max(scores)
    chosen = next(shape for shape, score in zip(options, scores, strict=True)
                  if score >= best - AUTO_TOLERANCE)
    progress(f"'{point.label}': validation accuracy " + ", ".join(
        f"{shape.label} {score:.1%}" for shape, score in zip(options, scores, strict=True))
        + f" on {int(held.sum())} training inputs: {chosen.label}")
    return chosen
