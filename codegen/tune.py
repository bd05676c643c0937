"""`ariel build --tune` (the command runs it before the build): where ariel has a choice of
kernels for a layer, measure the candidates in the emulator on the calibration inputs instead
of trusting the cost model, keep the faster per layer, and cache each measurement by the
layer's signature so that a later build of the same layer on the same board does not run the
emulator again.

One choice so far: whether a dense layer lists the nonzero words of its row
(codegen/compiler/ops/zero_words.py) or reads every word. The model is built twice, every
such layer listed and none listed, both are profiled on up to SAMPLES calibration inputs
(each layer's estimated cycles, with the board's flash model where it has one; instructions
on a core without a cycle model), and each layer takes the faster. A layer's cycles barely
depend on the others' choices (the producers' reordered outputs change no work), so the two
builds settle every layer at once."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from codegen.compiler.compile import Options, compile_model
from codegen.compiler.quant.report import calibration_inputs
from codegen.target.boards import Board

SAMPLES = 4  # calibration inputs profiled per variant
CACHE_ENV = "ARIEL_TUNE_CACHE"  # where the measurements are kept (a JSON file)


@dataclass(frozen=True)
class Measured:
    """A layer's mean cycles (or instructions) per inference, listed and dense."""

    listed: float
    dense: float

    @property
    def lists(self) -> bool:
        return self.listed < self.dense


def cache_path() -> Path:
    """The measurements' file: $ARIEL_TUNE_CACHE, else ariel/tune.json in the user's cache
    folder ($XDG_CACHE_HOME or ~/.cache)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ariel" / "tune.json"


def tune(model: Path, board: Board, options: Options,
         progress: Callable[[str], None] = lambda message: None) -> tuple[Options, list[str]]:
    """`options` with the measured choices (Options.listing_choices), and a note per layer
    tuned saying what was measured and chosen."""
    every = compile_model(model, replace(options, listing_choices="all"))
    signatures = {kernel["name"]: _signature(every, kernel, board, options)
                  for kernel in every.info.kernels if kernel.get("input_dependent")}
    if not signatures:
        return options, ["--tune: no layer here has a choice of kernels to measure"]
    cache = _read(cache_path())
    missing = {name for name, key in signatures.items() if key not in cache}
    if missing:
        progress(f"--tune: measuring {len(missing)} layer(s) listed and dense in the "
                 f"emulator on {board.name}")
        for name, measured in _measure(model, board, options, every.calibration,
                                       every.graph, missing).items():
            cache[signatures[name]] = {"listed": measured.listed, "dense": measured.dense}
        _write(cache_path(), cache)
    choices, notes = {}, []
    for name, key in signatures.items():
        measured = Measured(**cache[key])
        choices[name] = measured.lists
        notes.append(f"--tune: '{name}' {'lists' if measured.lists else 'reads every word'}: "
                     f"{measured.listed:,.0f} listed against {measured.dense:,.0f} dense per "
                     f"inference ({'measured' if name in missing else 'cached'})")
    return replace(options, listing_choices=choices), notes


def _measure(model: Path, board: Board, options: Options, calibration, graph,
             names: set[str]) -> dict[str, Measured]:
    """Each of `names`' cycles per inference in a build listing every layer that can and in
    one listing none, profiled on up to SAMPLES calibration inputs (as `graph` takes them)."""
    from codegen.build import build
    from codegen.run.profiling import run_profile
    from codegen.run.simulate import open_build

    inputs = calibration_inputs(graph, calibration.inputs, SAMPLES)
    figures = {}
    with tempfile.TemporaryDirectory(prefix="ariel-tune-") as folder:
        for label, variant in (("listed", replace(options, listing_choices="all")),
                               ("dense", replace(options, fixed_timing=True))):
            build(model, board, Path(folder) / label, variant)
            built = open_build(Path(folder) / label)
            report = run_profile(built, inputs, timeout=1800)
            names_of = {k["index"]: k["name"] for k in built.info.kernels}
            figures[label] = {names_of[row.index]: row.cycles if row.cycles is not None
                              else row.instructions for row in report.layers}
    return {name: Measured(figures["listed"][name], figures["dense"][name]) for name in names}


def _signature(compiled, kernel: dict, board: Board, options: Options) -> str:
    """What a layer's two measurements depend on: the board (its core, clock model and
    flash), the layer's shape and row statistics, its weights, and where they are stored."""
    node = compiled.graph.nodes[kernel["index"]]
    row = compiled.graph.tensor(node.inputs[0])
    digest = hashlib.sha256()
    for array in (row.zeros, compiled.graph.tensor(node.inputs[1]).data):
        digest.update(np.ascontiguousarray(array).tobytes())
    return json.dumps([board.name, board.core, board.wait_states, options.weights_in_ram,
                       node.op, list(row.shape), kernel["macs"], digest.hexdigest()[:16]])


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # no cache yet, or one a crash left unreadable: measure again


def _write(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
    partial.replace(path)
