"""A board of the user's own (--board-file): a Cortex-M4F with 256 KiB of flash and 64 KiB of
RAM, borrowing QEMU's mps2-an386, builds and runs a model there with outputs equal to
onnxruntime's and its own sizes enforced; a broken file gets one line per missing or wrong
field, naming it."""

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.datasets import digits_split
from codegen.resources import data_dir
from codegen.target.board_schema import check_board, check_board_file
from codegen.target.boards import all_boards

MODELS = data_dir("examples") / "models"

# A part like an STM32F3/L4 with 256 KiB of flash and 64 KiB of SRAM, at its own addresses;
# simulation borrows mps2-an386 (a Cortex-M4F), linked at its memory with this chip's sizes.
MY_BOARD = """\
name = "my-m4f"
description = "my PCB: a Cortex-M4F with 256 KiB flash and 64 KiB RAM"
core = "cortex-m4"
fpu = "fpv4-sp-d16"
clock_hz = 80_000_000
stack_bytes = 4096

[memory.flash]
origin = 0x08000000
size = 0x00040000

[memory.ram]
origin = 0x20000000
size = 0x00010000

[flash_timing]
wait_states = 4

[power]
run_current_ua_per_mhz = 100.0
supply_voltage_v = 3.3

[emulator]
qemu_machine = "mps2-an386"
code_origin = 0x00000000
code_size = 0x00400000
data_origin = 0x20000000
data_size = 0x00400000
"""


def _write(tmp_path: Path, text: str, name: str = "my_board.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ariels_own_boards_pass_the_schema():
    for board in all_boards():
        assert check_board_file(board.path) == [], board.name


def test_boards_check_accepts_a_valid_file(tmp_path):
    path = _write(tmp_path, MY_BOARD)
    result = CliRunner().invoke(main, ["boards", "--check", str(path)])
    assert result.exit_code == 0, result.output
    assert "a valid board file: my-m4f, cortex-m4 (fpv4-sp-d16) at 80 MHz, flash 256 KiB, " \
           "RAM 64 KiB; simulated on QEMU mps2-an386" in result.stdout


@pytest.mark.qemu
def test_custom_board_builds_and_runs_in_qemu(tmp_path):
    board_file = _write(tmp_path, MY_BOARD)
    model = MODELS / "digits_cnn.onnx"
    out = tmp_path / "build"
    runner = CliRunner()
    result = runner.invoke(main, ["build", str(model), "--board-file", str(board_file),
                                  "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Memory on my-m4f" in result.stdout
    # The chip's sizes hold the link, at the borrowed machine's addresses.
    script = (out / "firmware" / "linker.ld").read_text()
    assert "FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 262144" in script
    assert "RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 65536" in script
    assert (out / "board.toml").read_text() == MY_BOARD

    # The build keeps its board: simulate needs no --board-file.
    board_file.unlink()
    x = digits_split()[2][:5][:, None].astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = runner.invoke(main, ["simulate", str(out), "--inputs", str(tmp_path / "x.npy"),
                                  "--outputs", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    want = np.stack([session.run(None, {name: sample})[0] for sample in x])
    got = np.load(tmp_path / "y.npy")
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4
    assert (got.argmax(-1) == want.argmax(-1)).all()

    # Another board's file is not this build's board.
    other = _write(tmp_path, MY_BOARD.replace('"my-m4f"', '"other"'), "other.toml")
    result = runner.invoke(main, ["simulate", str(out), "--board-file", str(other),
                                  "--inputs", str(tmp_path / "x.npy")])
    assert result.exit_code == 1
    assert "was built for board 'my-m4f'" in result.output


def test_the_chips_sizes_hold_not_the_borrowed_machines(tmp_path):
    """The ResNet-8's float arena (about 100 KB) fits mps2-an386's 4 MiB, not 64 KiB."""
    board_file = _write(tmp_path, MY_BOARD)
    result = CliRunner().invoke(main, ["build", str(MODELS / "resnet8_cifar10.onnx"),
                                       "--board-file", str(board_file), "-o",
                                       str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "my-m4f" in result.output and "65,536" in result.output
    assert not (tmp_path / "out").exists()


BROKEN = """\
name = "my board!"
core = "cortex-m5"
clock_hz = "80 MHz"
stack_bytes = 1000
[memory.flash]
origin = 0x08000000
[memory.ram]
origin = -1
size = 0x10000
[emulator]
qemu_machine = "lm3s6965evb"
colour = "blue"
"""


def test_broken_file_gets_one_line_per_field(tmp_path):
    path = _write(tmp_path, BROKEN)
    result = CliRunner().invoke(main, ["boards", "--check", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == f"error: board file '{path}' is invalid (9 problems):"
    fields = [line.split(": ")[1] for line in lines[1:]]
    assert sorted(fields) == sorted([
        "name", "description", "core", "clock_hz", "stack_bytes", "memory.flash.size",
        "memory.ram.origin", "emulator.qemu_machine", "emulator.colour"])
    for line in lines[1:]:
        assert line.startswith(f"{path}: ")
    said = "\n".join(lines)
    assert "name: expected a name of up to 64 letters" in said and "'my board!'" in said
    assert "description: missing; expected one line of text" in said
    assert "core: expected one of cortex-m0plus, cortex-m4, cortex-m7, cortex-m33, got " \
           "'cortex-m5'" in said
    assert "memory.flash.size: missing; expected a size in bytes" in said
    assert "emulator.colour: unknown field" in said
    # build and simulate refuse it with the same lines.
    result = CliRunner().invoke(main, ["build", str(MODELS / "digits_mlp.onnx"),
                                       "--board-file", str(path), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "memory.flash.size: missing" in result.output


def _board(**changes) -> dict:
    import tomllib

    data = tomllib.loads(MY_BOARD)
    for dotted, value in changes.items():
        *tables, key = dotted.split("__")
        table = data
        for name in tables:
            table = table[name]
        if value is None:
            del table[key]
        else:
            table[key] = value
    return data


@pytest.mark.parametrize("changes,line", [
    ({"fpu": "fpv5-d16"}, "fpu: a cortex-m4 has no fpv5-d16; expected one of none, "
                          "fpv4-sp-d16"),
    ({"core": "cortex-m7", "fpu": "fpv5-d16"},
     "emulator.qemu_machine: mps2-an386 emulates a cortex-m4, which cannot run cortex-m7 "
     "code; borrow a machine emulating one of mps2-an500"),
    ({"memory__ram__origin": 0x08010000},
     "memory: flash and ram overlap; expected two separate regions"),
    ({"emulator__code_origin": None, "emulator__code_size": None},
     "memory.flash: 0x08000000..0x08040000 is not inside QEMU mps2-an386's code memory "
     "(4 MiB at 0x00000000)"),
    ({"emulator__data_size": None},
     "emulator: data_origin and data_size go together; give both or neither"),
    ({"core_options": {"multiplier": "small"}},
     "core_options.multiplier: unknown for cortex-m4 (known: none)"),
    ({"flash_timing__wait_states": -1},
     "flash_timing.wait_states: expected a whole number of wait states, 0 or more, got -1"),
])
def test_fields_that_disagree_are_named(changes, line):
    problems = check_board(_board(**changes))
    assert len(problems) == 1 and problems[0].startswith(line), problems


def test_not_toml_is_one_line(tmp_path):
    problems = check_board_file(_write(tmp_path, "name = \n"))
    assert len(problems) == 1 and problems[0].startswith("not valid TOML:")


def test_export_takes_the_core_and_the_limits_of_a_board_file(tmp_path):
    """`ariel export --board-file`: the board's core and FPU, and its memory as the limit."""
    import json

    board_file = _write(tmp_path, MY_BOARD.replace('core = "cortex-m4"', 'core = "cortex-m7"')
                        .replace('fpu = "fpv4-sp-d16"', 'fpu = "fpv5-d16"')
                        .replace('"mps2-an386"', '"mps2-an500"'))
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(MODELS / "digits_mlp.onnx"), "--board-file",
                                  str(board_file), "-o", str(tmp_path / "lib")])
    assert result.exit_code == 0, result.output
    export = json.loads((tmp_path / "lib" / "ariel.json").read_text())["export"]
    assert (export["core"], export["fpu"]) == ("cortex-m7", "fpv5-d16")
    assert "-mcpu=cortex-m7" in export["flags"] and "-mfpu=fpv5-d16" in export["flags"]
    result = runner.invoke(main, ["export", str(MODELS / "resnet8_cifar10.onnx"),
                                  "--board-file", str(board_file), "-o", str(tmp_path / "big")])
    assert result.exit_code == 1 and "my-m4f" in result.output
    assert not (tmp_path / "big").exists()


@pytest.mark.qemu
def test_hostile_board_description_and_path_run_nothing(tmp_path):
    """A board file's description is the user's text: it reaches the linker script's and
    the build's comments escaped, and a board file whose path holds shell and make syntax is
    read and kept (as board.toml) without running any of it."""
    folder = tmp_path / "boards $(touch PWNED) `touch PWNED`; #"
    folder.mkdir()
    text = MY_BOARD.replace('description = "my PCB: a Cortex-M4F with 256 KiB flash and 64 KiB '
                            'RAM"', 'description = "*/ int evil; /* $(shell touch PWNED) ??/"')
    board_file = _write(folder, text, "my board $(touch PWNED).toml")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(MODELS / "digits_mlp.onnx"),
                                       "--board-file", str(board_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "board.toml").read_text() == text
    script = (out / "firmware" / "linker.ld").read_text()
    assert "int evil;" in script and "*/ int evil" not in script  # kept, as comment text
    assert not [p for p in tmp_path.rglob("*") if p.name == "PWNED"]
