"""Things the tests make once per test run, shared by every pytest-xdist worker of the run.

Each worker is its own process, so a module- or session-scoped fixture is built once per
worker. What is costly and the same for every worker (ONNX's node cases, ariel's wheel) is
made by the first worker that asks, in the run's temporary folder, and the others wait for
it and use it. It lives as long as that folder: every run makes it afresh."""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path

_shared: Path | None = None


def share_between_workers(folder: Path) -> None:
    """Make things in `folder`, which every worker of this run sees (tests/conftest.py)."""
    global _shared
    _shared = folder


def once_per_run(name: str, make: Callable[[Path], None]) -> Path | None:
    """Under pytest-xdist, the path `name` in the run's shared folder, made by `make(path)`
    in the first worker to ask (the others wait on a lock until it is made; if `make`
    fails, the next worker tries again). Without xdist, None: the caller makes its own."""
    if _shared is None:
        return None
    target = _shared / name
    made = _shared / f"{name}.made"
    with open(_shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not made.exists():
            make(target)
            made.touch()
    return target
