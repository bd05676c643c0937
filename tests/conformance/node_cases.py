"""ONNX's backend node cases (onnx.backend.test.case.node.collect_testcases()), built once per
test run.

Building them runs every case's reference computation: about 15 s of one core (the 3-D
pooling cases take most of it). Every pytest-xdist worker must hold the same list, so the
first worker of a run to ask builds it and stores it in the run's own temporary folder, and
the other workers load that copy instead of building their own. The store lives only as long
as the run's temporary folder: each run builds the cases afresh (some draw unseeded random
inputs), as it did when every worker built them."""

from __future__ import annotations

import fcntl
import functools
import pickle
import warnings
from pathlib import Path

_shared: Path | None = None


def share_between_workers(folder: Path) -> None:
    """Store the cases in `folder`, which every worker of this test run sees."""
    global _shared
    _shared = folder


@functools.cache
def all_cases() -> list:
    """Every node case of the installed onnx, in collect_testcases()'s order."""
    if _shared is None:
        return _build()
    _shared.mkdir(parents=True, exist_ok=True)
    stored = _shared / "onnx-node-cases.pickle"
    with open(_shared / "onnx-node-cases.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait here while one builds
        if stored.exists():
            return pickle.loads(stored.read_bytes())
        cases = _build()
        partial = stored.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(cases, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(stored)
        return cases


def _build() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(collect_testcases())
