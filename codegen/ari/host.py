"""Each model of an adaptive build compiled for the host from the build folder's own C, so
the dispatcher can be simulated on many inputs quickly with the firmware's arithmetic."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from codegen.compiler.emit import ModelInfo
from codegen.errors import ArielError
from codegen.run.hostrun import HostModel, build_host_library
from codegen.run.simulate import Build


def stage_infos(build: Build) -> list[ModelInfo]:
    """The compiled model each stage runs (stages of one group share one)."""
    return [ModelInfo.from_dict(stage["model_info"]) for stage in _stages(build)]


def _stages(build: Build) -> list[dict]:
    ari = build.metadata.get("ari")
    if ari is None:
        raise ArielError(f"'{build.folder}' is not an adaptive build; make one with "
                         "`ariel build MODEL.onnx --precision ari --calib DATA -o FOLDER`")
    return ari["stages"]


def stage_scores(build: Build, inputs: np.ndarray) -> list[np.ndarray]:
    """Every stage's scores on every input (inputs shaped (N, *input shape)). Each compiled
    model runs once per input, whole; a stage reads its own output of it."""
    outputs: dict[str, list[list[np.ndarray]]] = {}
    model_dir = build.folder / "model"
    with tempfile.TemporaryDirectory(prefix="ariel-ari-host-") as workdir:
        for info in stage_infos(build):
            if info.prefix in outputs:
                continue
            files = {path.name: path.read_text()
                     for path in sorted(model_dir.glob(f"{info.prefix}*"))}
            host = HostModel(build_host_library(files, Path(workdir) / info.prefix,
                                                info.prefix), info)
            outputs[info.prefix] = [host.run(sample) for sample in inputs]
    return [np.stack([run[stage.get("output_index", 0)] for run in outputs[stage["prefix"]]])
            for stage in _stages(build)]
