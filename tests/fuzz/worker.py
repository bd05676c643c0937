"""A fuzz worker: reads one case per line ({"kind", "seed"}) on stdin, runs it and writes its
Result as one JSON line. Whatever the case prints goes to /dev/null, so that only results
travel on the pipe."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path, help="copy each case's folder here")
    args = parser.parse_args()
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, sys.stdout.fileno())
    os.dup2(quiet, sys.stderr.fileno())
    # One thread per library: two workers share two cores, and hosts differ in count.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    from tests.fuzz.cases import run_case

    for line in sys.stdin:
        request = json.loads(line)
        result = run_case(request["kind"], int(request["seed"]), args.keep)
        answers.write(json.dumps(result.to_dict()) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
