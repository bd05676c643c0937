"""Shared fixtures: skip tests that need an external tool only when that tool is absent,
and say which tool. In CI (CI set), where every tool is installed (QEMU, the Arm toolchain,
the host's gcc, and Renode from ../shared/renode, linked by `make setup`), no test may skip:
a skip, whatever its reason, is reported as a failure that quotes it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = {"qemu": ["qemu-system-arm", "arm-none-eabi-gcc", "make"],
         "renode": ["renode", "renode-test"],
         "arduino": ["arduino-builder", "avr-gcc", "simavr"]}
HOW = {"qemu": "run `make setup`", "arduino": "run `make setup`",
       "renode": "Renode is in no package registry: install it from the Renode project's "
                 "releases; `make setup` links a copy at ../shared/renode when there is one"}

# The session runs as if its virtual environment were activated: what is installed there
# (ariel, and the Renode launchers scripts/setup_renode.sh writes) is on PATH.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config):
    """pytest-xdist workers make what tests/per_run.py makes once per run in the run's
    temporary folder (the parent of each worker's own)."""
    if hasattr(config, "workerinput") and config.option.basetemp:
        from tests.per_run import share_between_workers

        share_between_workers(Path(config.option.basetemp).parent)


@pytest.fixture(scope="session")
def ariel_wheel(tmp_path_factory) -> Path:
    """ariel's wheel as `pip wheel` builds it from this checkout: made once per test run
    (several seconds of pip), for the tests that read what it carries."""
    from codegen.resources import data_dir
    from tests.per_run import once_per_run

    def make(folder: Path) -> None:
        result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                                 "-w", str(folder), str(data_dir("templates").parent)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    folder = once_per_run("wheel", make)
    if folder is None:
        folder = tmp_path_factory.mktemp("wheel")
        make(folder)
    return next(folder.glob("ariel-*.whl"))


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker, tools in TOOLS.items():
            if marker in item.keywords:
                missing = [t for t in tools if shutil.which(t) is None]
                if missing:
                    item.add_marker(pytest.mark.skip(
                        reason=f"needs {', '.join(missing)} on PATH ({HOW[marker]})"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI every test runs: a skip (a missing tool, or any other reason) is a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"no test may skip in CI (CI is set): {reason}"


def pytest_terminal_summary(terminalreporter):
    """Print how many of ONNX's backend node cases ran, so the count is visible in CI."""
    stats = terminalreporter.stats
    reports = [r for outcome in ("passed", "failed") for r in stats.get(outcome, [])
               if ("test_onnx_node_case[" in r.nodeid or "test_onnx_qoperator_case[" in r.nodeid)
               and r.when == "call"]
    if not reports:
        return
    kinds: dict[str, int] = {}
    for report in reports:
        kind = dict(report.user_properties).get("conformance", "failed")
        kinds[kind] = kinds.get(kind, 0) + 1
    terminalreporter.write_line(
        f"ONNX backend node cases for the supported operators: {len(reports)}; "
        + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
