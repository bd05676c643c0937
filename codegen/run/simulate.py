"""`ariel simulate`: run a built firmware on inputs in an emulator and collect its outputs."""

from __future__ import annotations

import shlex
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen.arrays import as_batch, load_arrays
from codegen.compiler.emit import ModelInfo
from codegen.errors import ArielError
from codegen.run.emulate.qemu import run_qemu
from codegen.run.metadata import read_metadata
from codegen.target.boards import board_of_build
from codegen.target.elf import check_firmware_file
from codegen.target.outdir import MARKER

DEFAULT_TIMEOUT = 300.0


@dataclass
class Build:
    """A build folder as `ariel build` left it."""

    folder: Path
    metadata: dict
    board_file: Path | None = None  # the user's board file, where the build keeps none

    @property
    def info(self) -> ModelInfo:
        return ModelInfo.from_dict(self.metadata["model_info"])

    @property
    def elf(self) -> Path:
        return self.folder / self.metadata["elf"]

    @property
    def board(self):
        return board_of_build(self.folder, self.metadata, self.board_file)


def open_build(folder: Path, board_file: Path | None = None) -> Build:
    """The build in `folder`; `board_file`: the file of the user's board it was built for
    (by default the copy the build keeps)."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        raise ArielError(f"'{folder}' is not an ariel build folder (no {MARKER}); create one "
                         "with `ariel build MODEL.onnx --board BOARD -o FOLDER`")
    build = Build(Path(folder), read_metadata(marker), board_file)
    rebuild = f"rebuild with `make -C {shlex.quote(str(folder))}` or `ariel build`"
    if not build.elf.is_file():
        raise ArielError(f"'{build.elf}' is missing; {rebuild}")
    check_firmware_file(build.elf, rebuild)
    return build


def load_inputs(path: Path, info: ModelInfo) -> list[np.ndarray]:
    """Read X.npy (one input model) or X.npz (keyed by input name) as a list, per model
    input, of arrays shaped (N, *input shape)."""
    path = Path(path)
    if not path.is_file():
        raise ArielError(f"inputs file '{path}' not found")
    loaded = load_arrays(path, "inputs file")
    if isinstance(loaded, np.ndarray):
        if len(info.inputs) != 1:
            names = ", ".join(t.name for t in info.inputs)
            raise ArielError(f"the model has {len(info.inputs)} inputs ({names}); give them "
                             "as an .npz file with one array per input name")
        arrays = {info.inputs[0].name: loaded}
    else:
        arrays = loaded
    batches = []
    for spec in info.inputs:
        if spec.name not in arrays:
            raise ArielError(f"'{path}' has no array for input '{spec.name}'")
        batches.append(as_batch(arrays[spec.name], spec.name, spec.shape, spec.dtype))
    counts = {len(b) for b in batches}
    if len(counts) != 1:
        raise ArielError(f"the inputs in '{path}' hold different numbers of samples: {counts}")
    if counts == {0}:
        raise ArielError(f"'{path}' holds no inputs")
    return batches


@dataclass
class Simulation:
    outputs: list[np.ndarray]  # per model output, shaped (N, *output shape)
    count: int
    seconds: float
    console: str


def simulate(build: Build, inputs: list[np.ndarray], timeout: float = DEFAULT_TIMEOUT
             ) -> Simulation:
    count = len(inputs[0])
    with tempfile.TemporaryDirectory(prefix="ariel-sim-") as workdir:
        work = Path(workdir)
        write_inputs(work, inputs)
        start = time.monotonic()
        run = run_qemu(build.board, build.elf, work, timeout)
        seconds = time.monotonic() - start
        outputs = read_outputs(work, build.info, count)
    return Simulation(outputs, count, seconds, run.console)


def write_inputs(folder: Path, inputs: list[np.ndarray]) -> None:
    """input.bin for the harness: per inference, each model input's bytes in turn."""
    with open(folder / "input.bin", "wb") as handle:
        for n in range(len(inputs[0])):
            for batch in inputs:
                handle.write(np.ascontiguousarray(batch[n]).tobytes())


def read_outputs(folder: Path, info: ModelInfo, count: int) -> list[np.ndarray]:
    """The harness's output.bin, per model output shaped (count, *output shape)."""
    path = folder / "output.bin"
    return read_outputs_bytes(path.read_bytes() if path.exists() else b"", info, count)


def read_outputs_bytes(raw: bytes, info: ModelInfo, count: int) -> list[np.ndarray]:
    """output.bin's bytes, per model output shaped (count, *output shape)."""
    record = sum(o.nbytes for o in info.outputs)
    if len(raw) != record * count:
        raise ArielError(f"the firmware wrote {len(raw)} bytes of outputs, expected "
                         f"{record * count} ({count} x {record})")
    per_output: list[list[np.ndarray]] = [[] for _ in info.outputs]
    offset = 0
    for _ in range(count):
        for index, spec in enumerate(info.outputs):
            chunk = raw[offset:offset + spec.nbytes]
            per_output[index].append(np.frombuffer(chunk, dtype=spec.dtype).reshape(spec.shape))
            offset += spec.nbytes
    return [np.stack(arrays) for arrays in per_output]
