"""What a fuzz case can end in, how a command's exit is classified, and the counts table."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass

# Good outcomes: ariel refused with one clear line, or its answer matched the oracle.
CLEAN = "clean refusal"
CORRECT = "correct"
# Bad outcomes: each one is a bug.
TRACEBACK = "traceback"
INTERNAL = "internal error"  # exit 70: an exception ariel did not expect
WRONG = "wrong"  # exit 0 (or a result) that disagrees with the oracle, or broken C
HANG = "hang"  # no answer before the case's time limit
DATA_LOST = "data lost"  # a file ariel did not write was deleted or changed
CRASH = "crash"  # killed by a signal (SIGFPE, SIGSEGV) or an exit code ariel never uses
UNCLEAR = "unclear error"  # refused, but not in one line (a raw gcc or make dump, say)

GOOD = (CLEAN, CORRECT)
BAD = (TRACEBACK, INTERNAL, WRONG, HANG, DATA_LOST, CRASH, UNCLEAR)
COLUMNS = (CLEAN, CORRECT, TRACEBACK, INTERNAL, WRONG, HANG, DATA_LOST, CRASH, UNCLEAR)


@dataclass
class Result:
    """One case's outcome; `detail` says why in one line, `replay` how to run it again."""

    kind: str
    seed: int
    outcome: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def replay(self) -> str:
        return f".venv/bin/python bench/fuzz.py --case {self.kind}:{self.seed}"

    @property
    def bad(self) -> bool:
        return self.outcome in BAD

    def to_dict(self) -> dict:
        return asdict(self)


class Verdict(Exception):
    """Raised inside a case to end it with an outcome (WRONG with what disagreed, say)."""

    def __init__(self, outcome: str, detail: str = ""):
        super().__init__(detail)
        self.outcome, self.detail = outcome, detail


# Lines a refusal may carry beside its one error line: ariel's progress lines, and click's
# usage header for a bad option (exit 2).
_ALLOWED = re.compile(r"^(ariel: |Usage: |Try '|\s*$)")
_ERROR = re.compile(r"^(error|Error): ")


def classify_exit(code: int | None, stderr: str, traceback_seen: bool = False) -> tuple[str, str]:
    """The outcome of a refused command from its exit status and stderr (exit 0 is judged
    by the caller against its oracle). Negative codes are deaths by signal."""
    last = _last_error(stderr)
    if traceback_seen or "Traceback (most recent call last)" in stderr:
        return TRACEBACK, last
    if code is None:
        return HANG, "no exit"
    if code < 0 or code > 128:
        signal = -code if code < 0 else code - 128
        return CRASH, f"killed by signal {signal}"
    if code == 70:
        return INTERNAL, last
    if code not in (1, 2):
        return CRASH, f"exit {code}: {last}"
    lines = stderr.splitlines()
    errors = [line for line in lines if _ERROR.match(line)]
    others = [line for line in lines if not _ERROR.match(line) and not _ALLOWED.match(line)]
    if len(errors) != 1 or others:
        return UNCLEAR, f"{len(lines)} lines: {_squash(stderr)}"
    return CLEAN, errors[0]


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return _squash(lines[-1]) if lines else ""


def _squash(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def one_line(text: str, limit: int = 160) -> str:
    """`text` as one line of at most `limit` characters, for a table row."""
    return _squash(str(text), limit)


def counts_table(results: list[Result]) -> str:
    """Tried and each outcome, per kind and in total."""
    kinds = sorted({r.kind for r in results})
    headers = ("kind", "tried", *COLUMNS)
    rows = []
    for kind in [*kinds, "total"]:
        chosen = [r for r in results if kind in ("total", r.kind)]
        counts = Counter(r.outcome for r in chosen)
        rows.append((kind, str(len(chosen)), *(str(counts[c]) for c in COLUMNS)))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w)
                       for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    for row in rows:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(lines)
