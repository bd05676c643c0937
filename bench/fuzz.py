"""Run N fuzz cases (tests/fuzz/) and print the counts table: per kind, how many ended in a
clean refusal, a correct answer, or one of the bad outcomes, with each failing case's seed
and the one line that replays it.

    .venv/bin/python bench/fuzz.py 500 --seed 1 --kinds float,int8
    .venv/bin/python bench/fuzz.py --case int32:1000017      # replay one case
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.cases import KINDS, TIME_LIMITS, select_kinds  # noqa: E402
from tests.fuzz.outcomes import counts_table  # noqa: E402
from tests.fuzz.runner import plan, run_cases  # noqa: E402


def seconds_by_kind(results) -> dict[str, float]:
    kinds = sorted({r.kind for r in results})
    return {k: sum(r.seconds for r in results if r.kind == k)
            / sum(1 for r in results if r.kind == k) for k in kinds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=100, help="cases to run")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    parser.add_argument("--kinds", default="all",
                        help="comma-separated kinds or groups (file, build, simulate; "
                             f"default: all): {', '.join(KINDS)}")
    parser.add_argument("--case", metavar="KIND:SEED", action="append", default=[],
                        help="run these cases only (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep each case's files under this folder")
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every case as it ends")
    args = parser.parse_args()
    if args.case:
        cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.case]
    else:
        try:
            kinds = select_kinds(args.kinds)
        except ValueError as exc:
            parser.error(str(exc))
        cases = plan(args.count, args.seed, kinds)

    def show(result) -> None:
        if args.verbose or result.bad:
            print(f"  {result.kind}:{result.seed} {result.outcome} ({result.seconds:.1f} s): "
                  f"{result.detail}", file=sys.stderr, flush=True)

    start = time.monotonic()
    results = run_cases(cases, TIME_LIMITS, args.workers, args.keep, show)
    elapsed = time.monotonic() - start
    print(counts_table(results))
    print(f"{len(results)} cases in {elapsed:.0f} s on {args.workers} workers: "
          f"{len(results) / elapsed:.2f} cases/s")
    print("seconds per case, by kind (mean, in one worker): " + ", ".join(
        f"{kind} {mean:.2f}" for kind, mean in seconds_by_kind(results).items()))
    failing = [r for r in results if r.bad]
    if failing:
        print(f"\n{len(failing)} failing cases:")
        for result in failing:
            print(f"  {result.kind}:{result.seed} {result.outcome}: {result.detail}")
            print(f"    replay: {result.replay}")
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in results], indent=1) + "\n")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
