"""Running the Robot tests ariel writes for Renode (codegen/devkit/renode.py) with renode-test,
and reading its results: pass or fail, the failure's cause in one line, the lines the
firmware printed and the test's message (the profiling counts)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from codegen.devkit.renode import FOLDER, RENODE_VERSION, TEST
from codegen.errors import ArielError, FirmwareError

# OUTDIR/build/renode-results: renode-test's results, replaced on every run. In make's output
# folder, which is ariel's as a whole: a rebuild or `make clean` drops results that no longer
# describe the firmware.
RESULTS = Path("build") / "renode-results"
RESULTS_FILE = "robot_output.xml"
INSTALL_HINT = (
    "Renode is not installed (no `renode-test` on PATH): download Renode "
    f"{RENODE_VERSION} for your system from the Renode project's releases (renode.io: the "
    "Linux portable .tar.gz, .deb or .rpm, or the macOS or Windows package), put `renode` and "
    "`renode-test` on PATH and install renode-test's Python requirements "
    "(`pip install -r tests/requirements.txt` in the Renode folder), then rerun")


@dataclass
class RenodeRun:
    test: Path  # the Robot test that ran
    passed: bool
    reason: str  # why it failed, in one line ("" when it passed)
    message: str  # the test's message (the profiling counts of a profile run)
    console: str  # the lines the firmware printed, as the test logged them
    seconds: float  # how long the test case ran (wall time, Renode's start-up not included)
    failing_seconds: float  # how long the keyword that failed ran (0 when none did)
    results: Path  # renode-test's results folder (robot_output.xml, logs of failures)
    output: str  # what renode-test printed


def robot_test(folder: Path) -> Path:
    """The build folder's Robot test."""
    test = Path(folder).absolute() / FOLDER / TEST
    if not test.is_file():
        raise ArielError(f"'{test}' is missing: this build has no Renode files (build with "
                         "--io uart for a board that has a Renode platform)")
    return test


def run_renode_test(folder: Path, timeout: float, profile: bool = False) -> RenodeRun:
    """Run a build's Robot test with renode-test, its results in OUTDIR/build/renode-results (not
    in the Renode installation or the current folder). `profile` runs the profiling firmware
    with counters at its hooks (codegen/devkit/renode_profile.py)."""
    test = robot_test(folder)
    results = Path(folder) / RESULTS  # as the user named the folder, for messages
    if results.exists():
        shutil.rmtree(results)  # the previous run's
    results.mkdir(parents=True)
    return run_robot_tests([test], results, timeout, profile)[0]


def run_robot_tests(tests: list[Path], results: Path, timeout: float,
                    profile: bool = False) -> list[RenodeRun]:
    """Run Robot tests in one renode-test call, which starts one Renode for all of them (its
    start-up is most of a short test's time), with its results in the folder `results`. Its
    exit status and results say pass or fail (`renode -e` would exit 0 even when a command
    fails)."""
    names = [test.name for test in tests]
    if len(set(names)) < len(names):
        raise ArielError("renode-test merges the results of tests by their file's name: give "
                         f"the tests different names ({', '.join(names)})")
    tool = shutil.which("renode-test")
    if tool is None:
        raise ArielError(INSTALL_HINT)
    command = [tool, "-r", str(results.absolute()),
               *(["--variable", "PROFILE:True"] if profile else []), *map(str, tests)]
    # A session of its own, so that a timeout stops Renode too, not only renode-test.
    process = subprocess.Popen(command, cwd=results, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise FirmwareError(f"renode-test did not finish within {timeout:g} s (stopped)"
                            ) from None
    # One test: renode-test's exit status must agree; several: it fails if any one does.
    return read_runs(results, tests, output, process.returncode == 0 or len(tests) > 1)


def read_runs(results: Path, tests: list[Path], output: str = "",
              exit_ok: bool = True) -> list[RenodeRun]:
    """What renode-test's results in `results` say about each of `tests`."""
    try:
        suites = ElementTree.parse(results / RESULTS_FILE).getroot().iter("suite")
        cases = {suite.get("source"): suite.find("test") for suite in suites}
    except (OSError, ElementTree.ParseError):
        cases = {}
    runs = []
    for test in tests:
        case = cases.get(str(test))
        passed = case is not None and _status(case) == "PASS" and exit_ok
        failed = failed_keyword(case)
        runs.append(RenodeRun(
            test, passed, "" if passed else failure_reason(case, output),
            _text(case, "status"), logged_console(case), _seconds(case),
            _seconds(failed), results, output))
    return runs


def logged_console(case) -> str:
    """The console lines in the terminal tester's report that the test logs at its end."""
    if case is None:
        return ""
    messages = [m.text or "" for m in case.iterfind(".//kw[@name='Log']/msg[@level='INFO']")]
    return "\n".join(_printed(next((m for m in messages if "[host: " in m), "")))


def failure_reason(case, output: str) -> str:
    """Why a test failed, in one line: the keyword that failed with its arguments and what
    Renode said; without results, renode-test's own last words."""
    if case is None:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        said = [line for line in lines if "rror" in line or "refuse" in line] or lines[-3:]
        return "renode-test ran no test: " + (" ".join(said) or "it printed nothing")
    keyword = failed_keyword(case)
    where = ""
    if keyword is not None:
        arguments = " ".join(a.text or "" for a in keyword.findall("arg"))
        where = f" at `{keyword.get('name')} {arguments}`".rstrip()
    return f"the Renode test failed{where}: {_explain(_text(case, 'status'))}"


def failed_keyword(case):
    """The keyword that failed the test (the innermost that failed, the one that raised),
    not counting the teardown's."""
    if case is None:
        return None
    failed = [kw for kw in case.iter("kw") if _status(kw) == "FAIL" and kw.get("type") is None]
    return failed[-1] if failed else None


def _status(element) -> str:
    status = element.find("status")
    return status.get("status", "") if status is not None else ""


def _text(case, tag: str) -> str:
    element = case.find(tag) if case is not None else None
    return (element.text or "").strip() if element is not None else ""


def _seconds(case) -> float:
    status = case.find("status") if case is not None else None
    if status is None or not status.get("starttime") or not status.get("endtime"):
        return 0.0
    start, end = (datetime.strptime(status.get(key), "%Y%m%d %H:%M:%S.%f")
                  for key in ("starttime", "endtime"))
    return (end - start).total_seconds()


def _printed(report: str) -> list[str]:
    """The lines of a terminal tester's report that the UART printed (its own events are in
    parentheses)."""
    return [m.group(1) for m in re.finditer(r"^\[host: [^\]]*\] (.*)$", report, re.M)]


def _explain(message: str) -> str:
    """Renode's failure message, shortened to what says why: the line that failed the test,
    the last line the firmware printed before a timeout, or the message's first lines."""
    failing = re.search(r"Test failing entry has been found on UART:\n(.*)", message)
    if failing:
        return f"the firmware printed `{failing.group(1).strip()}` before it"
    if "Full report:" in message:
        printed = [line.strip() for line in _printed(message) if line.strip()]
        last = f"`{printed[-1]}`" if printed else "nothing"
        return f"it did not come before the timeout; the last line printed was {last}"
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and set(line.strip()) != {"^"}]  # not the carets under a column
    return " ".join(lines[:4]) or "no message"
