"""Renode for UART builds: next to the ELF, a platform description of just what the firmware
uses (so nothing is fetched from the network), a .resc script that loads and shows it, and a
Robot Framework test for `renode-test` that checks its console lines against the outputs
computed at build time. Boards whose console no Renode model fits get none, and say why."""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path

import jinja2

from codegen import __version__
from codegen.compiler.emit import ModelInfo
from codegen.errors import ArielError
from codegen.resources import data_dir
from codegen.target.boards import Board

FOLDER = "renode"
SCRIPT = "firmware.resc"
TEST = "firmware.robot"
CLOCK_REGISTERS = "clock_registers.toml"
RENODE_VERSION = "1.16"
# Renode's CPU files that apply an SVD file from the network (seen in Renode 1.16).
SVD_PLATFORMS = ("stm32f4", "stm32f746", "nrf52840", "nucleo_h753zi", "stm32f7_discovery")
# How long the test waits for a line, in virtual seconds: ten times a bound on one inference
# at the board's clock, one instruction per cycle, of INSTRUCTIONS_PER_MAC per multiply-add
# (float in software on a core without an FPU is the slowest ariel builds: the digits CNN
# runs 155 per MAC on the Cortex-M0+), and never less than MIN_TIMEOUT_S. Only a firmware
# that hangs without a word waits it out.
INSTRUCTIONS_PER_MAC = 300
MIN_TIMEOUT_S = 10
# Console lines that fail the test the moment they are printed (Robot regular expressions):
# the firmware's own check failing, a fault, an unexpected exception, and the closing line
# while an expected line has not come yet (CLOSING_LINE, lifted before the last wait).
CLOSING_LINE = "^ariel: done,"
FAILING_LINES = ("^ariel-check [0-9]+ fail", "^ariel: fault at", "^ariel: unexpected exception",
                 CLOSING_LINE)



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
