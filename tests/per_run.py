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


def sharing() -> bool:
    """True in a pytest-xdist worker, whose run has a shared folder."""
    return _shared is not None


def once_per_run(name: str, make: Callable[[Path], None], wait: bool = True) -> Path | None:
    """Under pytest-xdist, the path `name` (relative) in the run's shared folder, made by
    `make(path)` in the first worker to ask. The others wait on a lock until it is made (if
    `make` fails, the next worker tries again), or with wait=False get None at once while
    another worker is making it. Without xdist, None: the caller makes its own."""
    if _shared is None:
        return None
    target = _shared / name
    target.parent.mkdir(parents=True, exist_ok=True)
    made = target.with_name(f"{target.name}.made")
    with open(target.with_name(f"{target.name}.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        if not made.exists():
            make(target)
            made.touch()
    return target
