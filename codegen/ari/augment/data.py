"""Training and held-out data for the heads: read as `--calib` reads it (.npy, .npz with x
and y, or a built-in set), labels checked against the model's classes, and a held-out part
carved from the training data (stratified, seeded) when none is given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.compiler.quant.calibrate import CalibrationData, load_calibration
from codegen.errors import ArielError

# The share of the training data held out when no --heldout is given, and its seed.
CARVED_SHARE = 0.2
CARVE_SEED = 0


@dataclass
class Split:
    inputs: dict[str, np.ndarray]  # model input name -> (N, *shape)
    labels: np.ndarray | None      # int64 (N,) in 0..classes-1
    source: str

    @property
    def count(self) -> int:
        return len(next(iter(self.inputs.values())))

    def take(self, indices: np.ndarray, source: str) -> Split:
        return Split({name: batch[indices] for name, batch in self.inputs.items()},
                     None if self.labels is None else self.labels[indices], source)


def load_split(spec: str, model_inputs: list[tuple[str, tuple[int, ...], str]],
               classes: int, what: str) -> Split:
    """The data of `spec` for the model's inputs; `what` names it in errors (training data
    (--data), held-out data (--heldout))."""
    data: CalibrationData = load_calibration(spec, model_inputs, what)
    labels = None if data.labels is None else checked_labels(data.labels, classes,
                                                             f"{what} {data.source}")
    return Split(data.inputs, labels, f"{data.source}")


def checked_labels(labels: np.ndarray, classes: int, where: str) -> np.ndarray:
    """Labels as int64 class indices, or one line saying why they do not fit the model."""
    if labels.ndim != 1:
        raise ArielError(f"{where}: labels y have shape {list(labels.shape)}; give one class "
                         "index per input, shape [N]")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ArielError(f"{where}: labels y are not whole numbers; give class indices "
                             f"0..{classes - 1}")
    elif labels.dtype.kind not in "iub":
        raise ArielError(f"{where}: labels y are {labels.dtype}, not class indices "
                         f"0..{classes - 1}")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0]
        raise ArielError(f"{where}: label {bad:g} is outside the model's {classes} classes "
                         f"(0..{classes - 1})")
    return labels.astype(np.int64)


def carve(train: Split) -> tuple[Split, Split]:
    """Split off CARVED_SHARE of `train` as held-out data, the same share of each label (of
    each input, without labels), the same inputs on every run."""
    held_mask = held_out_mask(train.labels, train.count)
    if held_mask.all() or not held_mask.any():
        raise ArielError(f"{train.source}: {train.count} training inputs are too few to hold "
                         "some out; give more, or held-out data with --heldout")
    source = f"{int(held_mask.sum())} inputs carved from {train.source}"
    return (train.take(np.flatnonzero(~held_mask), train.source),
            train.take(np.flatnonzero(held_mask), source))


def held_out_mask(labels: np.ndarray | None, count: int, share: float = CARVED_SHARE,
                  seed: int = CARVE_SEED) -> np.ndarray:
    """True for the `share` of `count` inputs to hold out: that share of each label (at
    least one of a label with two or more inputs, never all of them), chosen by `seed`."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(count)] if labels is None else \
        [np.flatnonzero(labels == label) for label in np.unique(labels)]
    held = []
    for group in groups:
        take = int(round(len(group) * share))
        if len(group) >= 2:
            take = min(max(take, 1), len(group) - 1)
        held.extend(rng.permutation(group)[:take])
    mask = np.zeros(count, bool)
    mask[held] = True
    return mask
