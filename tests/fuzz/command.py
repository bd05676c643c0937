"""Run the `ariel` command line inside the worker (click's test runner: no interpreter start
per case) and guard the user's files around it: sentinel files planted beside and inside
output folders, checked after the command for anything deleted or changed."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from tests.fuzz.outcomes import DATA_LOST, UNCLEAR, Verdict, classify_exit, one_line


@dataclass
class Exit:
    code: int
    stdout: str
    stderr: str
    traceback: bool  # an exception escaped ariel's own handler

    def refusal(self) -> tuple[str, str]:
        """The outcome of a non-zero exit (clean refusal or one of the bad ones)."""
        return classify_exit(self.code, self.stderr, self.traceback)


def ariel(args: list, cwd: Path | None = None) -> Exit:
    """`ariel ARGS` run in `cwd`, as a user would type it."""
    from codegen.cli import main

    with _working_directory(cwd):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    stderr = result.stderr
    if escaped:
        stderr += f"\nTraceback (most recent call last): {result.exception!r}"
    steering = _invisible(result.stdout + stderr)
    if steering:
        raise Verdict(UNCLEAR, f"ariel printed {steering[0]!r} as it is (a terminal control "
                      "character: names must be shown escaped)")
    return Exit(result.exit_code, result.stdout, stderr, escaped)


def _invisible(text: str) -> list[str]:
    """Characters of `text` that steer a terminal rather than show (line breaks and tabs
    aside): escapes, carriage returns, bidirectional overrides, a non-UTF-8 path's bytes."""
    return [c for c in text if c not in "\n\t"
            and unicodedata.category(c) in ("Cc", "Cf", "Cs")]


@contextmanager
def _working_directory(folder: Path | None):
    previous = os.getcwd()
    if folder is not None:
        os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


class Sentinels:
    """Files the user owns; check() says which ariel deleted or changed."""

    def __init__(self) -> None:
        self.files: dict[Path, str] = {}

    def plant(self, path: Path, text: str | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text is not None else f"user data {path.name}\n")
        self.files[path] = _digest(path)
        return path

    def guard(self, path: Path) -> Path:
        """Watch a file that exists already (the model itself, say)."""
        self.files[path] = _digest(path)
        return path

    def check(self) -> None:
        lost = [p for p, digest in self.files.items()
                if not p.is_file() or p.is_symlink() or _digest(p) != digest]
        if lost:
            raise Verdict(DATA_LOST, one_line(
                f"{len(lost)} user file(s) deleted or changed: "
                + ", ".join(str(p) for p in lost[:3])))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
