"""Compile generated model C for the host with gcc and run it: the fast path tests use to
compare kernels with their references, and how `--io uart` builds and adaptive calibration
compute outputs on the host.

The C runs in a child process (codegen/run/host_worker.py), never in ariel's own: C that traps
or faults (x86 raises SIGFPE on an integer division by zero) ends that process, and ariel
says in one line which kernel was running. One worker serves every model of this process,
so a run costs a round trip on a pipe, not a process start; the arena lives in a file both
map, so inputs and outputs do not cross the pipe."""

from __future__ import annotations

import atexit
import functools
import itertools
import json
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from codegen.compiler.emit import ModelInfo
from codegen.compiler.onnxrun import describe_exit
from codegen.errors import ArielError, ToolError
from codegen.resources import data_dir

# -ffp-contract=off: a * b + c stays two roundings, as on the target (whose Makefile says
# the same), instead of a fused multiply-add on hosts that have one. ARIEL_PROFILE turns on
# the layer markers, which firmware/host_progress.c turns into the progress cell.
HOST_CFLAGS = ["-std=c11", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
               "-Wdouble-promotion", "-Wshadow", "-fPIC", "-shared", "-DARIEL_PROFILE"]
HOST_SOURCES = ["host_progress.c"]  # from firmware/
PROGRESS_BYTES = 4  # one uint32_t after the arena: the running layer plus one, 0 between
ALIGNMENT = 16  # the arena starts on a 16-byte boundary, as the firmware's does


def build_host_library(files: dict[str, str], workdir: Path, name: str = "model") -> Path:
    """Write `files` into `workdir` and compile their .c files into a shared library."""
    workdir.mkdir(parents=True, exist_ok=True)
    for filename, text in files.items():
        (workdir / filename).write_text(text)
    sources = sorted(str(workdir / f) for f in files if f.endswith(".c"))
    library = workdir / f"lib{name}.so"
    _gcc([*HOST_CFLAGS, f"-I{data_dir('firmware')}", f"-I{workdir}", *sources,
          *_host_objects(), "-o", str(library), "-lm"])
    return library


@functools.cache
def _host_objects() -> tuple[str, ...]:
    """HOST_SOURCES compiled once per process: every host build links the same objects, and
    a test session makes thousands of builds."""
    folder = Path(tempfile.mkdtemp(prefix="ariel-host-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    flags = [flag for flag in HOST_CFLAGS if flag != "-shared"]
    objects = []
    for source in HOST_SOURCES:
        target = folder / f"{Path(source).stem}.o"
        _gcc([*flags, "-c", f"-I{data_dir('firmware')}", str(data_dir("firmware") / source),
              "-o", str(target)])
        objects.append(str(target))
    return tuple(objects)


def _gcc(arguments: list[str]) -> None:
    # -pipe: cc1's assembly reaches the assembler through a pipe, not a temporary file. The
    # libraries are byte for byte the same, and gcc takes about 7% less CPU (60 ONNX node
    # cases built both ways), which thousands of builds in a test session add up.
    result = subprocess.run(["gcc", "-pipe", *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolError("host compile failed", result.stderr)


class HostModel:
    """A generated model built for the host. run() takes and returns arrays in the model's
    own layout; the C runs in the worker process."""

    _ids = itertools.count()

    def __init__(self, library: Path, info: ModelInfo):
        self.info = info
        self._progress = -(-info.arena_size // ALIGNMENT) * ALIGNMENT
        arena_file = library.with_name(f"{library.stem}.arena")
        size = self._progress + PROGRESS_BYTES
        with open(arena_file, "w+b") as handle:
            handle.truncate(size)
            self._memory = mmap.mmap(handle.fileno(), size)  # page-aligned, zero-filled
        self.arena = np.frombuffer(self._memory, np.uint8, info.arena_size)
        self._cell = np.frombuffer(self._memory, np.uint32, 1, self._progress)
        self._request = json.dumps({
            "model": f"{os.getpid()}-{next(self._ids)}", "library": str(library.resolve()),
            "symbol": f"{info.prefix}_run", "arena": str(arena_file.resolve()), "size": size,
            "progress": self._progress}) + "\n"

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        for spec, value in zip(self.info.inputs, inputs, strict=True):
            data = np.ascontiguousarray(value, dtype=spec.dtype).reshape(-1).view(np.uint8)
            if data.size != spec.nbytes:
                raise ArielError(f"input '{spec.name}' needs {spec.nbytes} bytes, got "
                                 f"{data.size}")
            self.arena[spec.offset:spec.offset + spec.nbytes] = data
        self._cell[0] = 0
        death = _worker().run(self._request)
        if death is not None:
            raise ArielError(self._death(*death))
        return [self.arena[o.offset:o.offset + o.nbytes].view(o.dtype).reshape(o.shape).copy()
                for o in self.info.outputs]

    def _death(self, status: int, said: str) -> str:
        """One line on how the worker died running this model: the signal and the kernel."""
        layer = int(self._cell[0]) - 1
        kernel = next((k for k in self.info.kernels if k["index"] == layer), None)
        where = (f"in kernel {kernel['fn']} ({kernel['op']} '{kernel['name']}')"
                 if kernel is not None else "outside every kernel")
        said = f" ({said})" if said else ""
        return (f"the generated C of model {self.info.prefix}, run on the host, "
                f"{describe_exit(status)} {where}{said}: a bug in ariel's C for it; please "
                "report it")


class _Worker:
    """The child process running generated C (codegen/run/host_worker.py)."""

    def __init__(self):
        # Run as a script: it needs only the standard library, so it starts fast and is this
        # ariel's worker whatever else sys.path holds.
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("host_worker.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, request: str) -> tuple[int, str] | None:
        """Run one request; None when it finished, else the worker's exit status and the
        last line it wrote on stderr (it has died, and the next run starts a new one)."""
        try:
            self.process.stdin.write(request)
            self.process.stdin.flush()
            answer = self.process.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if answer == "done\n":
            return None
        self.process.kill()
        status = self.process.wait()
        said = self.process.stderr.read().strip().splitlines()
        return status, said[-1] if said else ""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


_current: dict[int, _Worker] = {}  # by process id: a forked child starts its own


def _worker() -> _Worker:
    worker = _current.get(os.getpid())
    if worker is None or not worker.alive:
        worker = _current[os.getpid()] = _Worker()
    return worker
