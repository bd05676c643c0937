"""Compile generated model C for the host with gcc and call it through ctypes: the fast
path tests use to compare kernels with their references."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np

from codegen.compiler.emit import ModelInfo
from codegen.errors import ArielError
from codegen.resources import data_dir

# -ffp-contract=off: a * b + c stays two roundings, as on the target (whose Makefile says
# the same), instead of a fused multiply-add on hosts that have one.
HOST_CFLAGS = ["-std=c11", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
               "-Wdouble-promotion", "-Wshadow", "-fPIC", "-shared"]


def build_host_library(files: dict[str, str], workdir: Path, name: str = "model") -> Path:
    """Write `files` into `workdir` and compile their .c files into a shared library."""
    workdir.mkdir(parents=True, exist_ok=True)
    for filename, text in files.items():
        (workdir / filename).write_text(text)
    sources = sorted(str(workdir / f) for f in files if f.endswith(".c"))
    library = workdir / f"lib{name}.so"
    command = ["gcc", *HOST_CFLAGS, f"-I{data_dir('firmware')}", f"-I{workdir}", *sources,
               "-o", str(library), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ArielError(f"host compile failed:\n{result.stderr.strip()}")
    return library


class HostModel:
    """A generated model loaded into this process. run() takes and returns arrays in the
    model's own layout."""

    def __init__(self, library: Path, info: ModelInfo):
        self.info = info
        self._lib = ctypes.CDLL(str(library))
        self._run = getattr(self._lib, f"{info.prefix}_run")
        self._run.argtypes = [ctypes.c_void_p]
        self._run.restype = None
        # Over-allocate so the arena can start on a 16-byte boundary, as the firmware's does.
        self._storage = np.zeros(info.arena_size + 16, dtype=np.uint8)
        start = (-self._storage.ctypes.data) % 16
        self.arena = self._storage[start:start + info.arena_size]

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        for spec, value in zip(self.info.inputs, inputs, strict=True):
            data = np.ascontiguousarray(value, dtype=spec.dtype).reshape(-1).view(np.uint8)
            if data.size != spec.nbytes:
                raise ArielError(f"input '{spec.name}' needs {spec.nbytes} bytes, got "
                                 f"{data.size}")
            self.arena[spec.offset:spec.offset + spec.nbytes] = data
        self._run(self.arena.ctypes.data)
        return [self.arena[o.offset:o.offset + o.nbytes].view(o.dtype).reshape(o.shape).copy()
                for o in self.info.outputs]
