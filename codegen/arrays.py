"""Arrays a user hands ariel (inputs to simulate, calibration data): read from .npy/.npz
files that may be damaged or hostile, and checked against a model input's shape and dtype,
with messages that say what to change."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codegen.errors import ArielError


def load_arrays(path: Path, what: str) -> np.ndarray | dict[str, np.ndarray]:
    """The array of a .npy file, or the arrays of an .npz by name; `what` names the file in
    errors. Every member is read here, so a damaged file fails now with one line: a member
    that is not an .npy array, a bad checksum, an array of Python objects (never unpickled:
    a pickle can run code)."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises many types for files it cannot read
        raise ArielError(f"cannot read {what} '{path}' as .npy/.npz: {_reason(exc)}") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        arrays = {}
        for member in loaded.zip.namelist():
            if not member.endswith(".npy"):
                raise ArielError(f"{what} '{path}' holds '{member}', which is not an .npy "
                                 "array; save the file with numpy.savez")
            name = member[:-len(".npy")]
            try:
                array = loaded[name]
            except Exception as exc:  # a bad checksum, a truncated member, an object array
                raise ArielError(f"cannot read array '{name}' of {what} '{path}': "
                                 f"{_reason(exc)}") from None
            if not isinstance(array, np.ndarray):  # numpy hands back non-.npy bytes as bytes
                raise ArielError(f"{what} '{path}' holds '{member}', which is not an .npy "
                                 "array; save the file with numpy.savez")
            arrays[name] = array
    return arrays


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "allow_pickle" in text:
        return ("it holds Python objects, which ariel does not load (unpickling can run code); "
                "save numeric arrays")
    return text


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
