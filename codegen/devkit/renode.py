"""Renode for UART builds: next to the ELF, a platform description of just what the firmware
uses (so nothing is fetched from the network), a .resc script that loads and shows it, and a
Robot Framework test for `renode-test` that checks its console lines against the outputs
computed at build time. Boards whose console no Renode model fits get none, and say why."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import jinja2

from codegen import __version__
from codegen.compiler.emit import ModelInfo
from codegen.errors import ArielError, FirmwareError
from codegen.resources import data_dir
from codegen.target.boards import Board

FOLDER = "renode"
SCRIPT = "firmware.resc"
TEST = "firmware.robot"
RESULTS = "results"  # OUTDIR/renode/results: renode-test's results, replaced on every run
CLOCK_REGISTERS = "clock_registers.toml"
RENODE_VERSION = "1.16"
# Renode's CPU files that apply an SVD file from the network (seen in Renode 1.16).
SVD_PLATFORMS = ("stm32f4", "stm32f746", "nrf52840", "nucleo_h753zi", "stm32f7_discovery")
# How long the test waits for a line, in virtual seconds: ten times a bound on one inference
# at the board's clock, one instruction per cycle, of INSTRUCTIONS_PER_MAC per multiply-add
# (float in software on a core without an FPU is the slowest ariel builds: ~30), and never
# less than MIN_TIMEOUT_S. Only a firmware that hangs without a word waits it out.
INSTRUCTIONS_PER_MAC = 100
MIN_TIMEOUT_S = 10
# Console lines that fail the test the moment they are printed (Robot regular expressions):
# the firmware's own check failing, a fault, an unexpected exception, and the closing line
# while an expected line has not come yet (CLOSING_LINE, lifted before the last wait).
CLOSING_LINE = "^ariel: done,"
FAILING_LINES = ("^ariel-check [0-9]+ fail", "^ariel: fault at", "^ariel: unexpected exception",
                 CLOSING_LINE)
INSTALL_HINT = (
    "Renode is not installed (no `renode-test` on PATH): download Renode "
    f"{RENODE_VERSION} for your system from the Renode project's releases (renode.io: the "
    "Linux portable .tar.gz, .deb or .rpm, or the macOS or Windows package), put `renode` and "
    "`renode-test` on PATH and install renode-test's Python requirements "
    "(`pip install -r tests/requirements.txt` in the Renode folder), then rerun")


def repl_name(board: Board) -> str:
    return f"{board.name}.repl"


def renode_files(board: Board, info: ModelInfo, expected: dict) -> dict[str, str]:
    """The files for `board` (paths relative to the build folder), or none when no Renode
    model fits its console."""
    if board.renode is None or not board.renode.available or board.console is None:
        return {}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir(FOLDER))),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    common = {"version": __version__, "board": board, "console": board.console,
              "repl": repl_name(board), "renode_version": RENODE_VERSION}
    armv6 = board.core.startswith("cortex-m0")
    svd = any(p in board.renode.platform for p in SVD_PLATFORMS)
    return {
        f"{FOLDER}/{repl_name(board)}": env.get_template("platform.repl.j2").render(
            common, priority_mask="0xC0" if armv6 else "0xF0", svd_note=svd,
            mips=max(board.clock_hz // 1_000_000, 1), dwt=not armv6,
            clocks=clock_registers(board.console.family)),
        f"{FOLDER}/{SCRIPT}": env.get_template("firmware.resc.j2").render(common),
        f"{FOLDER}/{TEST}": env.get_template("firmware.robot.j2").render(
            common, lines=[robot_cell(line) for line in robot_lines(expected)],
            runs=expected["runs"], timeout=line_timeout(board, info),
            failing_lines=FAILING_LINES, closing_pattern=CLOSING_LINE,
            board_name=robot_cell(board.name), peripheral=robot_cell(board.console.peripheral)),
    }


def robot_lines(expected: dict) -> list[str]:
    """The console lines the test waits for, in order: integer outputs exactly as computed at
    build time; float32 outputs by their prefix (the firmware's own check, on the next line,
    compares them within the tolerance)."""
    lines = []
    for run in range(1, expected["runs"] + 1):
        for out in expected["outputs"]:
            line = f"ariel-output {run} {out['index']}"
            lines.append(line if out["dtype"] == "float32" else f"{line} {out['hex']}")
        lines.append(f"ariel-check {run} pass")
    return lines


def robot_cell(text: str) -> str:
    """`text` as one literal Robot Framework argument: backslashes and variable syntax
    escaped, and runs of spaces (which separate arguments) kept as escaped spaces."""
    text = text.replace("\\", "\\\\")
    text = re.sub(r"([$@&%]\{)", r"\\\1", text)
    return re.sub(r" (?= )", r"\\ ", text)


def line_timeout(board: Board, info: ModelInfo) -> int:
    """Virtual seconds the test waits for each console line."""
    macs = sum(kernel["macs"] for kernel in info.kernels)
    bound = 10 * INSTRUCTIONS_PER_MAC * macs / board.clock_hz
    return max(MIN_TIMEOUT_S, int(bound) + 1)


@functools.cache
def _clock_register_table() -> dict:
    return tomllib.loads((data_dir(FOLDER) / CLOCK_REGISTERS).read_text())


def clock_registers(family: str) -> dict:
    """The clock-controller blocks of `family` (renode/clock_registers.toml) for the
    platform template: plain `memory` blocks, and register `blocks` whose reset values and
    flag rules are rendered as the Python literals the peripheral's script starts from."""
    table = _clock_register_table().get(family, {})
    blocks = []
    for block in table.get("blocks", []):
        reset = {r["register"]: r["value"] for r in block.get("reset", [])}
        always = {r["register"]: r["bits"] for r in block.get("always", [])}
        follow = [(f["register"], f["from"], f["bits"], f["shift"])
                  for f in block.get("follow", [])]
        blocks.append({
            "name": block["name"], "base": block["base"], "size": block["size"],
            "reset": _python_dict(reset), "always": _python_dict(always),
            "follow": "[" + ", ".join(f"(0x{r:X}, 0x{f:X}, 0x{b:X}, {n})"
                                      for r, f, b, n in follow) + "]",
        })
    return {"memory": table.get("memory", []), "blocks": blocks}


def _python_dict(values: dict[int, int]) -> str:
    return "{" + ", ".join(f"0x{k:X}: 0x{v:X}" for k, v in sorted(values.items())) + "}"


def write_renode_files(folder: Path, board: Board, info: ModelInfo) -> list[Path]:
    import json

    from codegen.devkit.uart import EXPECTED_FILE

    expected = json.loads((folder / EXPECTED_FILE).read_text())
    written = []
    for relative, text in renode_files(board, info, expected).items():
        path = folder / relative
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def require_platform(board: Board) -> None:
    if board.renode is None or not board.renode.available:
        why = board.renode.note if board.renode else "its board file has no [renode] table"
        raise ArielError(f"board {board.name} has no Renode platform: {why}")


@dataclass
class RenodeRun:
    passed: bool
    output: str  # what renode-test printed
    reason: str  # why the test failed, in one line ("" when it passed)
    message: str  # the test's message (the profiling marks of a profile run)
    console: str  # the lines the firmware printed, as the test logged them
    results: Path  # renode-test's results folder (robot_output.xml, logs of failures)


def run_renode_test(folder: Path, timeout: float, profile: bool = False) -> RenodeRun:
    """Run the build's Robot test with renode-test; its own exit status says pass or fail
    (unlike `renode -e`, which exits 0 even when a command fails). Its results go to
    OUTDIR/renode/results, not to the Renode installation or the current folder. `profile`
    runs the profiling firmware with counters at its hooks (codegen/devkit/renode_profile.py)."""
    test = Path(folder).absolute() / FOLDER / TEST
    if not test.is_file():
        raise ArielError(f"'{test}' is missing: this build has no Renode files (build with "
                         "--io uart for a board that has a Renode platform)")
    tool = shutil.which("renode-test")
    if tool is None:
        raise ArielError(INSTALL_HINT)
    results = test.parent / RESULTS
    if results.exists():
        shutil.rmtree(results)  # the previous run's, which this function wrote
    results.mkdir()
    command = [tool, "-r", str(results), *(["--variable", "PROFILE:True"] if profile else []),
               str(test)]
    try:
        done = subprocess.run(command, cwd=results, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FirmwareError(f"renode-test did not finish within {timeout:g} s") from None
    output = done.stdout + done.stderr
    status = result_status(results / "robot_output.xml")
    passed = done.returncode == 0 and status is not None and status[0] == "PASS"
    reason = "" if passed else failure_reason(results / "robot_output.xml", output)
    return RenodeRun(passed, output, reason, status[1] if status else "",
                     logged_console(results / "robot_output.xml"), results)


def result_status(xml: Path) -> tuple[str, str] | None:
    """The status (PASS, FAIL, SKIP) and message of the first test in renode-test's results,
    or None when it wrote none."""
    try:
        test = ElementTree.parse(xml).find(".//test")
    except (OSError, ElementTree.ParseError):
        return None
    status = test.find("status") if test is not None else None
    if status is None:
        return None
    return status.get("status", ""), (status.text or "").strip()


def logged_console(xml: Path) -> str:
    """The console lines in the terminal tester's report that the test logs at its end."""
    try:
        tree = ElementTree.parse(xml)
        messages = [m.text or "" for m in tree.iterfind(".//kw[@name='Log']/msg[@level='INFO']")]
    except (OSError, ElementTree.ParseError):
        return ""
    report = next((m for m in messages if "[host: " in m), "")
    return "\n".join(_printed(report))


def _printed(report: str) -> list[str]:
    """The lines of a terminal tester's report that the UART printed (its own events are in
    parentheses)."""
    return [m.group(1) for m in re.finditer(r"^\[host: [^\]]*\] (.*)$", report, re.M)]


def failure_reason(xml: Path, output: str) -> str:
    """Why the test failed, in one line: the keyword that failed with its arguments and what
    Renode said, from renode-test's results; else renode-test's own last words."""
    try:
        test = ElementTree.parse(xml).find(".//test")
    except (OSError, ElementTree.ParseError):
        test = None
    if test is None:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        said = [line for line in lines if "rror" in line or "refuse" in line] or lines[-3:]
        return "renode-test ran no test: " + (" ".join(said) or "it printed nothing")
    failed = [kw for kw in test.iter("kw") if _status(kw) == "FAIL" and kw.get("type") is None]
    keyword = failed[-1] if failed else None  # the innermost: the one that raised
    message = (test.find("status").text or "").strip()
    where = ""
    if keyword is not None:
        arguments = " ".join(a.text or "" for a in keyword.findall("arg"))
        where = f" at `{keyword.get('name')} {arguments}`".rstrip()
    return f"the Renode test failed{where}: {_explain(message)}"


def _status(element) -> str:
    status = element.find("status")
    return status.get("status", "") if status is not None else ""


def _explain(message: str) -> str:
    """Renode's failure message, shortened to what says why: the line that failed the test,
    the last line the firmware printed before a timeout, or the message's first lines."""
    failing = re.search(r"Test failing entry has been found on UART:\n(.*)", message)
    if failing:
        return f"the firmware printed `{failing.group(1).strip()}` before it"
    if "Full report:" in message:
        printed = [line.strip() for line in _printed(message) if line.strip()]
        last = f"; the last line it printed was `{printed[-1]}`" if printed else \
            "; it printed nothing"
        return "the line did not come before the timeout" + last
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and set(line.strip()) != {"^"}]  # not the carets under a column
    return " ".join(lines[:4]) or "no message"
