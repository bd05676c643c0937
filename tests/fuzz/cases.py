"""Every kind of fuzz case by name, and how one case runs in-process: its function's answer,
a Verdict it raises, or any other exception, which is what the command line would turn into
an internal error (exit 70)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from tests.fuzz import cli_cases, file_cases, graph_cases, name_cases
from tests.fuzz.outcomes import INTERNAL, Result, Verdict, one_line

KINDS = {**graph_cases.KINDS, **file_cases.KINDS, **name_cases.KINDS, **cli_cases.KINDS}
# Seconds a case may take before it counts as a hang (a build and a QEMU run take longest).
TIME_LIMITS = {**{k: 60.0 for k in KINDS}, **file_cases.TIME_LIMITS,
               **cli_cases.TIME_LIMITS, **name_cases.TIME_LIMITS}


def run_case(kind: str, seed: int, keep: Path | None = None) -> Result:
    """Run case (`kind`, `seed`) in a fresh folder (kept under `keep` if given)."""
    start = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix=f"ariel-fuzz-{kind}-{seed}-"))
    try:
        outcome, detail = KINDS[kind](seed, folder)
    except Verdict as verdict:
        outcome, detail = verdict.outcome, verdict.detail
    except Exception as exc:  # a bug of the harness itself (ariel's own are caught inside)
        outcome, detail = INTERNAL, one_line(f"fuzz harness: {type(exc).__name__}: {exc}")
    finally:
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(folder, keep / f"{kind}-{seed}", dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
    return Result(kind, seed, outcome, one_line(detail, 300), time.monotonic() - start)


def select_kinds(spec: str) -> list[str]:
    """Kinds named in a comma-separated `spec`; a group name (file, build, simulate) stands
    for every kind of that group, `all` for every kind."""
    chosen: list[str] = []
    for word in [w.strip() for w in spec.split(",") if w.strip()]:
        matches = list(KINDS) if word == "all" else [
            k for k in KINDS if k == word or k.startswith(f"{word}-")]
        if not matches:
            raise ValueError(f"unknown kind '{word}'; kinds: {', '.join(KINDS)}")
        chosen += [k for k in matches if k not in chosen]
    return chosen
