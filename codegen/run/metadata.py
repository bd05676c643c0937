"""A build folder's ariel.json read back and checked for what the commands that open a build
(simulate, calibrate, flash) take from it, so that a damaged or hand-edited file is one clear
line instead of a failure deep inside a command."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from codegen.compiler.emit import ModelInfo, TensorInfo
from codegen.errors import ArielError

REBUILD = "build the model again with `ariel build` into a new folder (or remove this one)"


def read_metadata(marker: Path) -> dict:
    try:
        metadata = json.loads(Path(marker).read_bytes())
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
        raise ArielError(f"'{marker}' cannot be read ({_first_line(exc)}); {REBUILD}") from None
    problem = metadata_problem(metadata)
    if problem is not None:
        raise ArielError(f"'{marker}' is damaged: {problem}; {REBUILD}")
    return metadata


def metadata_problem(metadata) -> str | None:
    """What is wrong with a build's metadata, or None."""
    if not isinstance(metadata, dict):
        return "it is not a JSON object"
    for key, check, expected in _REQUIRED:
        if key not in metadata:
            return f"it has no '{key}'"
        if not check(metadata[key]):
            return f"its '{key}' is not {expected}"
    for key, check, expected in _OPTIONAL:
        if key in metadata and not check(metadata[key]):
            return f"its '{key}' is not {expected}"
    return None


def _is_text(value) -> bool:
    return isinstance(value, str) and value != ""


def _is_inner_path(value) -> bool:
    """A relative path that stays inside the build folder."""
    return _is_text(value) and not PurePosixPath(value).is_absolute() and \
        ".." not in PurePosixPath(value).parts


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        not math.isnan(value)


def _is_tensor(value) -> bool:
    if not isinstance(value, dict):
        return False
    try:
        tensor = TensorInfo(**value)
        np.dtype(tensor.dtype)
    except (TypeError, ValueError):
        return False
    return (_is_text(tensor.name) and isinstance(tensor.shape, list)
            and all(_is_count(d) for d in tensor.shape)
            and _is_count(tensor.offset) and _is_count(tensor.nbytes))


def _is_model_info(value) -> bool:
    if not isinstance(value, dict) or not all(
            isinstance(value.get(k), list) and value[k] and all(_is_tensor(t) for t in value[k])
            for k in ("inputs", "outputs")):
        return False
    try:
        info = ModelInfo.from_dict(value)
    except (TypeError, ValueError):
        return False
    return (_is_text(info.prefix) and _is_count(info.arena_size) and
            _is_count(info.weights_bytes) and isinstance(info.kernels, list)
            and all(isinstance(k, dict) for k in info.kernels))


def _is_model(value) -> bool:
    return (isinstance(value, dict) and _is_inner_path(value.get("file"))
            and isinstance(value.get("source"), str))


def _is_stage(value) -> bool:
    return (isinstance(value, dict) and _is_text(value.get("model"))
            and value.get("precision") in ("int8", "float")
            and _is_model_info(value.get("model_info")))


def _is_ari(value) -> bool:
    if not isinstance(value, dict):
        return False
    stages, thresholds = value.get("stages"), value.get("thresholds")
    return (isinstance(stages, list) and len(stages) >= 2 and all(map(_is_stage, stages))
            and _is_text(value.get("margin")) and _is_text(value.get("scores"))
            and _is_number(value.get("decision_threshold"))
            and (thresholds is None or isinstance(thresholds, list)
                 and len(thresholds) == len(stages) - 1 and all(map(_is_number, thresholds))))


_Check = tuple[str, Callable[[object], bool], str]
_REQUIRED: list[_Check] = [
    ("board", _is_text, "a board name"),
    ("elf", _is_inner_path, "a path inside the build folder"),
    ("precision", _is_text, "a precision"),
    ("model", _is_model, "a model file inside the build folder"),
    ("model_info", _is_model_info, "a description of the model's inputs and outputs"),
]
_OPTIONAL: list[_Check] = [
    ("memory_map", lambda v: isinstance(v, dict), "a memory map"),
    ("board_file", _is_inner_path, "a board file inside the build folder"),
    ("console", lambda v: isinstance(v, dict), "a console description"),
    ("ari", _is_ari, "a description of the adaptive build's stages"),
]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
