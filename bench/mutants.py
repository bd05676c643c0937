"""Mutation testing: small, plausible bugs put into a scratch copy of the repository one at a
time, and the tests that cover each run on it. A mutant the tests fail on is killed; one
they pass survives, and is either equivalent (it cannot change behaviour: the reason is
given) or a gap in the tests.

    .venv/bin/python bench/mutants.py                 # every mutant, a table, the kill rate
    .venv/bin/python bench/mutants.py --only ID ...   # some of them
    .venv/bin/python bench/mutants.py --list          # the mutants, without running them
    .venv/bin/python bench/mutants.py --check         # is every pattern still there, once?

The mutants are data (bench/mutant_list.py): files, the exact text each changes (found
exactly once, else the mutant is stale and reported as such), its replacement, why a real bug
would look like it, and a short list of tests (pytest arguments: a `-k` there applies to
every file of the list). The scratch copy is made once, outside the
working tree; each mutant is applied to it, its tests run there (pytest -x, one worker), and
the files are put back. A kill counts only if the test that failed passes on the unmutated
copy: after the mutants, every such test runs once more, unmutated, in one pytest call, and a
kill whose test fails there too is reported as unconfirmed (`--baseline` instead runs every
list of tests unmutated before the mutants: slower, and the same guard).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.mutant_list import MUTANTS, Mutant  # noqa: E402

# What the scratch copy leaves out: version control, the virtual environment, caches and
# build output (the tests write their own).
IGNORED = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache",
                                 "out", "*.egg-info", "build", "dist")
TIMEOUT_S = 900


@dataclass
class Result:
    mutant: Mutant
    outcome: str  # "killed", "survived", "equivalent", "stale", "unconfirmed"
    seconds: float
    detail: str = ""
    failed: str = ""  # the test that killed it


def scratch_copy(into: Path) -> Path:
    copy = into / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORED, symlinks=True)
    return copy


def environment(copy: Path) -> dict[str, str]:
    """The tests import `codegen` from the copy, in this process's children too (the
    editable install's path comes after PYTHONPATH)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)
    # No .pyc: a mutant and the original of the same size written in the same second would
    # otherwise share one (its timestamp has whole seconds), and the next run use the mutant.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("CI", None)  # a missing tool is the copy's problem, not a kill
    return env


@dataclass
class Run:
    code: int
    last: str  # pytest's last line
    failed: list[str]  # node ids of the tests that failed or errored


def run_tests(copy: Path, tests: tuple[str, ...], stop_at_first: bool = True) -> Run:
    command = [sys.executable, "-m", "pytest", "-q", "-rfE", "-n", "0", "-p",
               "no:cacheprovider", "-p", "no:randomly", *(["-x"] if stop_at_first else []),
               *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=environment(copy), capture_output=True,
                              text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Run(-1, f"timed out after {TIMEOUT_S} s", [])
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    # "FAILED tests/x.py::test[a b] - message": the node id may hold spaces.
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in lines
              if line.startswith(("FAILED ", "ERROR "))]
    return Run(done.returncode, lines[-1] if lines else done.stderr.strip()[-200:], failed)


def check_imports_from(copy: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import codegen; print(codegen.__file__)"],
                          cwd=copy, env=environment(copy), capture_output=True, text=True,
                          check=True)
    where = Path(done.stdout.strip()).resolve()
    if copy.resolve() not in where.parents:
        raise SystemExit(f"mutants: the scratch copy imports codegen from {where}, not itself")


def apply(copy: Path, mutant: Mutant) -> dict[Path, str] | str:
    """Put the mutant's edits into the copy; returns the original texts to restore, or why
    the mutant is stale (a pattern not found exactly once)."""
    originals: dict[Path, str] = {}
    for edit in mutant.edits:
        path = copy / edit.file
        text = originals.get(path) or path.read_text()
        originals.setdefault(path, text)
        current = path.read_text()
        count = current.count(edit.pattern)
        if count != 1:
            restore(originals)
            return f"{edit.file}: pattern found {count} times: {edit.pattern!r}"
        path.write_text(current.replace(edit.pattern, edit.replacement))
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text)


def run_mutant(copy: Path, mutant: Mutant) -> Result:
    start = time.monotonic()
    originals = apply(copy, mutant)
    if isinstance(originals, str):
        return Result(mutant, "stale", 0.0, originals)
    try:
        run = run_tests(copy, mutant.tests)
    finally:
        restore(originals)
    seconds = time.monotonic() - start
    if run.code != 0:
        return Result(mutant, "killed", seconds, run.last,
                      run.failed[0] if run.failed else "")
    if mutant.equivalent:
        return Result(mutant, "equivalent", seconds, mutant.equivalent)
    return Result(mutant, "survived", seconds, run.last)


def confirm_kills(copy: Path, results: list[Result]) -> None:
    """Run every test that killed a mutant once more on the unmutated copy, in one call: a
    kill stands only if its test passes there (a test that fails anyway proves nothing)."""
    killers = sorted({r.failed for r in results if r.outcome == "killed" and r.failed})
    broken = set(run_tests(copy, tuple(killers), stop_at_first=False).failed) if killers \
        else set()
    for r in results:
        if r.outcome == "killed" and (not r.failed or r.failed in broken):
            r.outcome = "unconfirmed"
            r.detail = (f"{r.failed} fails unmutated too" if r.failed else
                        f"no failing test named ({r.detail})")


def package_of(mutant: Mutant) -> str:
    """The folder of the mutant's first file (codegen/compiler/ops, templates/kernels, ...)."""
    return str(Path(mutant.edits[0].file).parent)


def table(results: list[Result]) -> str:
    rows = [("mutant", "package", "outcome", "s", "why a real bug looks like it")]
    for r in results:
        rows.append((r.mutant.id, package_of(r.mutant), r.outcome, f"{r.seconds:.0f}",
                     r.mutant.why))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
                     + "  " + row[4])
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def summary(results: list[Result]) -> str:
    counts = {kind: sum(r.outcome == kind for r in results)
              for kind in ("killed", "survived", "equivalent", "stale", "unconfirmed")}
    judged = counts["killed"] + counts["survived"] + counts["unconfirmed"]
    rate = counts["killed"] / judged if judged else 0.0
    packages = sorted({package_of(r.mutant) for r in results})
    lines = [f"{len(results)} mutants over {len(packages)} packages ({', '.join(packages)}): "
             f"{counts['killed']} killed, {counts['survived']} survived, "
             f"{counts['equivalent']} equivalent (cannot change behaviour), "
             f"{counts['stale']} stale, {counts['unconfirmed']} unconfirmed",
             f"kill rate {rate:.1%} ({counts['killed']} of {judged} non-equivalent mutants); "
             f"{sum(r.seconds for r in results) / 60:.1f} min of tests"]
    for r in results:
        if r.outcome != "killed":
            lines.append(f"  {r.outcome}: {r.mutant.id}: {r.detail}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--check", action="store_true",
                        help="check that every pattern is found exactly once, run nothing")
    parser.add_argument("--baseline", action="store_true",
                        help="first run each list of tests unmutated (slow)")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if not args.only or m.id in args.only]
    if args.only and len(mutants) != len(set(args.only)):
        known = {m.id for m in MUTANTS}
        raise SystemExit(f"mutants: unknown: {', '.join(sorted(set(args.only) - known))}")
    if args.list:
        for m in mutants:
            print(f"{m.id:32} {package_of(m):18} {m.why}")
        return
    if args.check:
        stale = [f"{m.id}: {edit.file}: found {count} times"
                 for m in mutants for edit in m.edits
                 if (count := (ROOT / edit.file).read_text().count(edit.pattern)) != 1]
        print("\n".join(stale) or f"all {len(mutants)} mutants apply")
        raise SystemExit(1 if stale else 0)
    with tempfile.TemporaryDirectory(prefix="ariel-mutants-") as scratch:
        copy = scratch_copy(Path(scratch))
        check_imports_from(copy)
        if args.baseline:
            for tests in dict.fromkeys(m.tests for m in mutants):
                start = time.monotonic()
                run = run_tests(copy, tests)
                if run.code != 0:
                    raise SystemExit(f"mutants: the unmutated tests fail ({run.last}): "
                                     f"{' '.join(tests)}")
                print(f"unmutated: {' '.join(tests)}: {run.last} "
                      f"({time.monotonic() - start:.0f} s)", flush=True)
        results = []
        for index, mutant in enumerate(mutants, 1):
            result = run_mutant(copy, mutant)
            print(f"[{index}/{len(mutants)}] {mutant.id}: {result.outcome} "
                  f"({result.seconds:.0f} s){' by ' + result.failed if result.failed else ''}",
                  flush=True)
            results.append(result)
        confirm_kills(copy, results)
    print()
    print(table(results))
    print()
    print(summary(results))


if __name__ == "__main__":
    main()
