"""Each stage of an adaptive build compiled for the host from the build folder's own C, so
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
    ari = build.metadata.get("ari")
    if ari is None:
        raise ArielError(f"'{build.folder}' is not an adaptive build; make one with "
                         "`ariel build MODEL.onnx --precision ari --calib DATA -o FOLDER`")
    return [ModelInfo.from_dict(stage["model_info"]) for stage in ari["stages"]]


def stage_scores(build: Build, inputs: np.ndarray) -> list[np.ndarray]:
    """Every stage's scores on every input (inputs shaped (N, *input shape))."""
    results = []
    model_dir = build.folder / "model"
    with tempfile.TemporaryDirectory(prefix="ariel-ari-host-") as workdir:
        for info in stage_infos(build):
            files = {path.name: path.read_text()
                     for path in sorted(model_dir.glob(f"{info.prefix}*"))}
            host = HostModel(build_host_library(files, Path(workdir) / info.prefix,
                                                info.prefix), info)
            results.append(np.stack([host.run(sample)[0] for sample in inputs]))
    return results
