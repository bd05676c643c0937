"""Run fuzz cases in worker processes: a case that kills its process (SIGFPE in generated C,
say) or runs past its time limit ends as a crash or a hang of that one case, and the worker
is replaced. Each worker imports ariel once and takes cases one at a time over a pipe."""

from __future__ import annotations

import json
import os
import queue
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tests.fuzz.outcomes import CRASH, HANG, Result

ROOT = Path(__file__).resolve().parents[2]
SEED_STRIDE = 1_000_000  # case i of a run with seed S has seed S * SEED_STRIDE + i
MEMORY_LIMIT = 8 << 30  # bytes of address space per worker: a runaway allocation fails


def plan(count: int, seed: int, kinds: list[str]) -> list[tuple[str, int]]:
    """The cases of a run: kinds in turn, each case with its own seed."""
    return [(kinds[i % len(kinds)], seed * SEED_STRIDE + i) for i in range(count)]


class Worker:
    """One `python -m tests.fuzz.worker` process."""

    def __init__(self, keep: Path | None = None):
        command = [sys.executable, "-m", "tests.fuzz.worker"]
        if keep is not None:
            command += ["--keep", str(keep)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, start_new_session=True,
            preexec_fn=_limit_memory)

    def run(self, kind: str, seed: int, limit: float) -> Result:
        start = time.monotonic()
        try:
            self.process.stdin.write(json.dumps({"kind": kind, "seed": seed}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        # The worker's start (imports) is not the case's time.
        ready, _, _ = select.select([self.process.stdout], [], [], limit + 30.0)
        if not ready:
            self.kill()
            return Result(kind, seed, HANG, f"no answer within {limit:g} s",
                          time.monotonic() - start)
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            self.process = None
            how = (f"killed by signal {signal.Signals(-code).name}" if code < 0
                   else f"exit {code}")
            return Result(kind, seed, CRASH, f"the process running the case died: {how}",
                          time.monotonic() - start)
        return Result(**json.loads(line))

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """End the worker: let an idle one finish (it removes its files), kill a stuck one."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the worker and what it started
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cases(cases: Iterable[tuple[str, int]], limits: dict[str, float], workers: int = 2,
              keep: Path | None = None,
              progress: Callable[[Result], None] = lambda result: None) -> list[Result]:
    """Run `cases` on `workers` processes; results in the order of `cases`."""
    cases = list(cases)
    todo: queue.Queue = queue.Queue()
    for index, case in enumerate(cases):
        todo.put((index, case))
    results: list[Result | None] = [None] * len(cases)
    lock = threading.Lock()

    def serve() -> None:
        worker = None
        try:
            while True:
                try:
                    index, (kind, seed) = todo.get_nowait()
                except queue.Empty:
                    return
                if worker is None or not worker.alive:
                    worker = Worker(keep)
                result = worker.run(kind, seed, limits[kind])
                results[index] = result
                with lock:
                    progress(result)
        finally:
            if worker is not None:
                worker.stop()

    threads = [threading.Thread(target=serve) for _ in range(max(1, min(workers, len(cases))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in results if r is not None]
