"""The fuzzing suite's share of the test suite: a few hundred seeded cases, each in a worker
process, none of which may end badly. Only kinds that pass on main today are selected here
(`bench/fuzz.py` runs every kind and shows what fails); widen SUITE as the fixes of issue 11
land. Select these tests with `-m fuzz`, leave them out with `-m "not fuzz"`."""

from __future__ import annotations

import pytest

from tests.fuzz.cases import KINDS, TIME_LIMITS
from tests.fuzz.outcomes import (
    CLEAN,
    CORRECT,
    CRASH,
    INTERNAL,
    TRACEBACK,
    UNCLEAR,
    Result,
    classify_exit,
    counts_table,
)
from tests.fuzz.runner import SEED_STRIDE, run_cases

SEED = 11
# Groups of (kind, cases), one test each so that pytest-xdist spreads them over the cores.
SUITE = {
    "float graphs": [("float", 70)],
    "int8 graphs": [("int8", 36)],
    "model files and command lines": [
        ("file-truncated", 12), ("file-bit-flips", 12), ("file-garbage", 10),
        ("file-cycle", 8), ("file-odd-attributes", 10), ("file-external-data", 10),
        ("build-output-is-cwd-or-parent", 3), ("simulate-good-run", 3), ("qemu", 4)],
}


def cases_of(group: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [(kind, SEED * SEED_STRIDE + i) for kind, count in group for i in range(count)]


@pytest.mark.fuzz
@pytest.mark.parametrize("name", sorted(SUITE))
def test_fuzz_cases_end_well(name):
    cases = cases_of(SUITE[name])
    results = run_cases(cases, TIME_LIMITS, workers=1)
    assert len(results) == len(cases)
    bad = [r for r in results if r.bad]
    report = "\n".join(f"{r.kind}:{r.seed} {r.outcome}: {r.detail}\n  {r.replay}" for r in bad)
    assert not bad, f"\n{counts_table(results)}\n{report}"
    if name.endswith("graphs"):  # the generator keeps to what ariel supports
        correct = sum(r.outcome == CORRECT for r in results)
        assert correct >= 0.8 * len(results), counts_table(results)


def test_suite_names_real_kinds():
    assert {kind for group in SUITE.values() for kind, _ in group} <= set(KINDS)


@pytest.mark.parametrize("code, stderr, outcome", [
    (1, "ariel: compiling m.onnx\nerror: node 'a' (Conv): thing is not supported\n", CLEAN),
    (2, "Usage: ariel build [OPTIONS] [MODEL]\nTry 'ariel build -h' for help.\n\n"
        "Error: Invalid value for '--precision': 'int4' is not one of 'float', 'int8'.\n",
     CLEAN),
    (1, "error: firmware build failed:\nmodel.c:3:1: error: expected ';'\nmake: *** [x] 1\n",
     UNCLEAR),
    (1, "", UNCLEAR),
    (1, "Traceback (most recent call last):\n  File x\nValueError: y\n", TRACEBACK),
    (70, "internal error: ValueError: y (this is a bug in ariel)\n", INTERNAL),
    (-8, "", CRASH),
    (136, "", CRASH),
    (3, "error: odd\n", CRASH),
])
def test_exits_are_classified(code, stderr, outcome):
    assert classify_exit(code, stderr)[0] == outcome


def test_counts_table_has_every_outcome_column():
    table = counts_table([Result("float", 1, CLEAN), Result("float", 2, CRASH, "SIGFPE")])
    header, row, total = table.splitlines()
    assert header.split()[:2] == ["kind", "tried"]
    for column in ("clean refusal", "correct", "traceback", "internal error", "wrong",
                   "hang", "data lost", "crash", "unclear error"):
        assert column in header
    assert row.split()[:4] == ["float", "2", "1", "0"] and total.split()[1] == "2"
