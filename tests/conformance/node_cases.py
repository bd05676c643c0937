"""ONNX's backend node cases (onnx.backend.test.case.node.collect_testcases()), built once per
test run.

Building them runs every case's reference computation: about 15 s of a core, most of it the
3-D pooling cases. Every pytest-xdist worker must hold the same list, so one worker builds it
and pickles it into the run's temporary folder and the others load that copy (9.7 MB, 0.1 s)
instead of building their own (tests/per_run.py). Each run builds the cases afresh, as
before: some draw unseeded random inputs."""

from __future__ import annotations

import functools
import pickle
import warnings
from pathlib import Path

from tests.per_run import once_per_run


@functools.cache
def all_cases() -> list:
    """Every node case of the installed onnx, in collect_testcases()'s order."""
    stored = once_per_run("onnx-node-cases.pickle", _store)
    if stored is None:
        return _build()
    return pickle.loads(stored.read_bytes())


def _store(path: Path) -> None:
    path.write_bytes(pickle.dumps(_build(), protocol=pickle.HIGHEST_PROTOCOL))


def _build() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(collect_testcases())
