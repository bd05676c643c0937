"""tests/conftest.py's rule for skips: a user without QEMU or the toolchain gets the skip with
its reason; in CI (CI set) every skip, a missing tool's or any other, fails. (Renode's
marker works as QEMU's; it is not tried here because the session's own virtual environment,
which conftest puts on PATH, may hold Renode's launchers.)"""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
TESTS = '''
import pytest

@pytest.mark.qemu
def test_needs_qemu():
    pass

def test_needs_the_toolchain():
    pytest.skip("arm-none-eabi-gcc is not installed (run `make setup`)")

def test_runs():
    pass
'''


@pytest.fixture
def without_tools(pytester, monkeypatch, tmp_path):
    """A pytest session whose PATH holds no tool at all, with the project's conftest."""
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    qemu: q\n    renode: r\n")
    pytester.makepyfile(test_tools=TESTS)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return pytester


@pytest.mark.parametrize("ci", ["", "true"])
def test_skips_are_failures_in_ci_only(without_tools, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    result = without_tools.runpytest_inprocess("-rsf", "-p", "no:randomly")
    if ci:
        # A marker's skip happens at setup, so pytest counts its failure as an error.
        result.assert_outcomes(passed=1, failed=1, errors=1)
        result.stdout.fnmatch_lines(["*no test may skip in CI (CI is set)*needs qemu-system-arm*",
                                     "*no test may skip in CI*arm-none-eabi-gcc is not installed*"])
    else:
        result.assert_outcomes(passed=1, skipped=2)
        result.stdout.fnmatch_lines(["*needs qemu-system-arm, arm-none-eabi-gcc, make on PATH "
                                     "(run `make setup`)*"])
