"""Renode for UART builds: next to the ELF, a platform description of just what the firmware
uses (so nothing is fetched from the network), a .resc script that loads and shows it, and a
Robot Framework test for `renode-test` that checks its console lines against the outputs
computed at build time. Boards whose chip has no Renode platform get none, and say why."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
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
RENODE_VERSION = "1.16"
# Renode's CPU files that apply an SVD file from the network (seen in Renode 1.16).
SVD_PLATFORMS = ("stm32f4", "stm32f746", "nrf52840", "nucleo_h753zi", "stm32f7_discovery")
TIMEOUT_S = 600  # virtual seconds the test waits for each line
INSTALL_HINT = (
    "Renode is not installed (no `renode-test` on PATH): download Renode "
    f"{RENODE_VERSION} for your system from the Renode project's releases (renode.io: the "
    "Linux portable .tar.gz, .deb or .rpm, or the macOS or Windows package), put `renode` and "
    "`renode-test` on PATH and install renode-test's Python requirements "
    "(`pip install -r tests/requirements.txt` in the Renode folder), then rerun")


def repl_name(board: Board) -> str:
    return f"{board.name}.repl"


def renode_files(board: Board, info: ModelInfo, expected: dict) -> dict[str, str]:
    """The files for `board` (paths relative to the build folder), or none when Renode has no
    platform for its chip."""
    if board.renode is None or not board.renode.available or board.console is None:
        return {}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir(FOLDER))),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    common = {"version": __version__, "board": board, "console": board.console,
              "repl": repl_name(board), "renode_version": RENODE_VERSION}
    mask = "0xC0" if board.core.startswith("cortex-m0") else "0xF0"
    svd = any(p in board.renode.platform for p in SVD_PLATFORMS)
    return {
        f"{FOLDER}/{repl_name(board)}": env.get_template("platform.repl.j2").render(
            common, priority_mask=mask, svd_note=svd),
        f"{FOLDER}/{SCRIPT}": env.get_template("firmware.resc.j2").render(common),
        f"{FOLDER}/{TEST}": env.get_template("firmware.robot.j2").render(
            common, lines=robot_lines(expected), runs=expected["runs"], timeout=TIMEOUT_S),
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


def run_renode_test(folder: Path, timeout: float) -> RenodeRun:
    """Run the build's Robot test with renode-test; its own exit status says pass or fail
    (unlike `renode -e`, which exits 0 even when a command fails)."""
    test = Path(folder).absolute() / FOLDER / TEST
    if not test.is_file():
        raise ArielError(f"'{test}' is missing: this build has no Renode files (build with "
                         "--io uart for a board that has a Renode platform)")
    tool = shutil.which("renode-test")
    if tool is None:
        raise ArielError(INSTALL_HINT)
    # Run from a scratch folder: renode-test writes its logs and results where it runs.
    with tempfile.TemporaryDirectory(prefix="ariel-renode-") as scratch:
        try:
            result = subprocess.run([tool, str(test)], cwd=scratch, capture_output=True,
                                    text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise FirmwareError(f"renode-test did not finish within {timeout:g} s") from None
    return RenodeRun(result.returncode == 0, result.stdout + result.stderr)
