"""Checking arrays a user hands ariel (inputs to simulate, calibration data) against a
model input's shape and dtype, with messages that say what to change."""

from __future__ import annotations

import numpy as np

from codegen.errors import ArielError


def as_batch(array: np.ndarray, name: str, shape: tuple[int, ...], dtype: str,
             what: str = "input") -> np.ndarray:
    """Accept one sample (the model's shape), N samples (N, *shape), or N samples without a
    leading batch dimension of 1 (N, *shape[1:]); return (N, *shape)."""
    shape = tuple(shape)
    if array.dtype != np.dtype(dtype):
        raise ArielError(f"{what} '{name}' must be {dtype}, got {array.dtype} "
                         f"(convert with array.astype(np.{dtype}))")
    if array.shape == shape:
        return array.reshape(1, *shape)
    if array.shape[1:] == shape:
        return array
    if shape and shape[0] == 1 and array.shape[1:] == shape[1:]:
        return array.reshape(len(array), *shape)
    raise ArielError(f"{what} '{name}' has shape {list(array.shape)}; the model takes "
                     f"{list(shape)}, so give {list(shape)} or [N, {', '.join(map(str, shape))}]")


def require_finite(array: np.ndarray, what: str) -> None:
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            first = np.unravel_index(int(np.argmax(bad)), array.shape)
            raise ArielError(f"{what} holds {int(bad.sum())} NaN or infinite values (the first "
                             f"at index {list(map(int, first))})")
