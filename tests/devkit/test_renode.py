"""Renode for real: every board's generated platform, script and Robot test run by renode-test
(all boards in one Renode, whose start-up is most of a run's time), with the firmware
reaching the board's clock, counting cycles and printing the outputs computed at build
time; a wrong expected output failing at once with the line in ariel's message; the profile's
per-layer instruction counts equal to QEMU's on the same code; and the one-line answers when
Renode or a Renode platform is missing. Without Renode on PATH the real runs are skipped,
saying why (in CI they fail instead: tests/conftest.py)."""

import dataclasses
import json
import shutil
import time

import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.devkit.renode import (
    CLOSING_LINE,
    FAILING_LINES,
    MIN_TIMEOUT_S,
    TEST,
    clock_registers,
    renode_files,
    require_platform,
    robot_lines,
)
from codegen.devkit.renode_run import INSTALL_HINT, RESULTS_FILE, read_runs, run_robot_tests
from codegen.devkit.uart import parse_console
from codegen.devkit.uart_run import console_report
from codegen.errors import ArielError
from codegen.run.simulate import open_build
from codegen.target.board_kit import FAMILIES, RenodeInfo
from codegen.target.boards import get_board
from tests.devkit.test_board_data import RENODE
from tests.e2e.test_models_qemu import MODELS

pytestmark = pytest.mark.qemu
PROFILED = "disco-f746ng"  # built in int8 with int8 I/O: its outputs are checked exactly
INT8 = ("--precision", "int8", "--calib", "digits", "--io", "int8")
WRONG = "0" * 20  # not the digits CNN's int8 logits on any input: a wrong expected output


def run(args, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    return result.exit_code, result.stdout, result.stderr


def uart_build(board, out, *options):
    code, _, err = run(["build", MODELS / "digits_cnn.onnx", "--board", board, *options,
                        "--io", "uart", "-o", out])
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    return uart_build(PROFILED, tmp_path_factory.mktemp(PROFILED) / "uart", *INT8)


def with_wrong_output(build, folder):
    """A copy of `build` whose Robot test expects a wrong first output."""
    shutil.copytree(build, folder)
    test = folder / "renode" / "firmware.robot"
    expected = json.loads((folder / "expected_output.json").read_text())
    right = f"ariel-output 1 0 {expected['outputs'][0]['hex']}"
    text = test.read_text()
    assert right in text
    test.write_text(text.replace(right, f"ariel-output 1 0 {WRONG}"))
    return folder


def board_problems(board, build, renode) -> list[str]:
    """What is wrong with a board's Renode run (nothing when it is right)."""
    if not renode.passed:
        return [renode.reason]
    console = parse_console(renode.console)
    spec, tree = get_board(board), get_board(board).clock_tree
    problems = []
    # The clock registers answer: the firmware reaches the board file's clock, as on the board.
    source = ("HFXO 64 MHz" if board == "nrf52840-dk"
              else f"PLL from {tree.source.upper()} {tree.source_hz / 1e6:g} MHz")
    clock = (console.core_hz, console.clock_source, console.clock_problem)
    if clock != (spec.clock_hz, source, ""):
        problems.append(f"clock {console.core_hz} Hz from {console.clock_source!r} "
                        f"({console.clock_problem or 'no problem'})")
    # A cycle counter that counts: DWT on Armv7-M, SysTick on the Cortex-M0+.
    counter = ("systick (the Cortex-M0+ has no DWT cycle counter)"
               if spec.core == "cortex-m0plus" else "dwt")
    if console.counter != counter or not all(r.cycles for r in console.runs):
        problems.append(f"cycle counter {console.counter!r}, cycles "
                        f"{[r.cycles for r in console.runs]}")
    # The same check `ariel simulate --emulator renode` prints.
    lines = console_report(open_build(build), renode.console, "Renode")
    if lines[-1] != "Renode: 3 runs, every output as computed on the host at build time":
        problems.append(lines[-1])
    return problems


@pytest.mark.renode
def test_every_board_runs_in_renode(profiled, tmp_path):
    """Every board's Robot test, in one renode-test call (which merges results by file name:
    each test is copied beside itself under its board's name)."""
    builds = {board: uart_build(board, tmp_path / board)
              for board in sorted(RENODE) if board != PROFILED} | {PROFILED: profiled}
    tests = [shutil.copyfile(builds[b] / "renode" / TEST, builds[b] / "renode" / f"{b}.robot")
             for b in sorted(RENODE)]
    results = tmp_path / "results"
    results.mkdir()
    runs = run_robot_tests(tests, results, timeout=900)
    problems = {board: found for board, renode in zip(sorted(RENODE), runs, strict=True)
                if (found := board_problems(board, builds[board], renode))}
    assert not problems, problems


@pytest.mark.renode
def test_a_wrong_expected_output_fails_at_once_with_the_line(profiled, tmp_path):
    wrong = with_wrong_output(profiled, tmp_path / "wrong")
    start = time.monotonic()
    code, _, err = run(["simulate", wrong, "--emulator", "renode"])
    seconds = time.monotonic() - start
    assert code == 1 and "Traceback" not in err
    message = err.strip().splitlines()[-1]
    # The line it waited for, and the line that failed it: the closing line came first.
    assert f"Wait For Line On Uart ariel-output 1 0 {WRONG}" in message
    assert "the firmware printed `ariel: done, 3 runs, all outputs as expected` before it" \
        in message
    # Results in the build's folder, not the Renode installation's.
    results = wrong / "build" / "renode-results"
    assert str(results) in message and (results / RESULTS_FILE).is_file()
    # It failed when the closing line came, not at the wait's timeout (at least
    # MIN_TIMEOUT_S of virtual time, which passes at about host speed once the firmware
    # sleeps): the failing wait ran the rest of the firmware, a fraction of a second.
    failing = read_runs(results, [wrong / "renode" / "firmware.robot"])[0]
    assert failing.failing_seconds < MIN_TIMEOUT_S / 2, (
        f"the failing wait ran {failing.failing_seconds:.1f} s (the test "
        f"{failing.seconds:.1f} s, all of ariel simulate {seconds:.1f} s)")


@pytest.mark.renode
def test_renode_profile_equals_qemus_per_layer(profiled, tmp_path):
    out = profiled
    code, text, err = run(["simulate", out, "--emulator", "renode", "--profile",
                           "--json", tmp_path / "profile.json"])
    assert code == 0, err
    report = json.loads((tmp_path / "profile.json").read_text())
    renode, qemu = report["renode"], report["qemu"]
    assert report["differences"] == []
    assert [r["instructions"] for r in renode["layers"]] == \
        [q["instructions"] for q in qemu["layers"]]
    assert renode["per_inference_instructions"] == qemu["per_inference_instructions"]
    assert len(renode["per_inference_instructions"]) == 3
    assert renode["between_layers"] == qemu["between_layers"]
    # Same code, same cycle and energy model: the same estimates.
    assert [r["cycles"] for r in renode["layers"]] == [q["cycles"] for q in qemu["layers"]]
    assert renode["total_cycles"] == qemu["total_cycles"]
    assert "Renode and QEMU agree on every layer" in text
    # The firmware's own cycle count in Renode (DWT at the board's clock, one instruction per
    # cycle) is the instructions of an inference, plus the few around its measurement.
    per_inference = renode["per_inference_instructions"][0]
    assert len(report["firmware_cycles"]) == 3
    assert all(abs(c - per_inference) < 0.001 * per_inference for c in report["firmware_cycles"])


def test_missing_renode_says_how_to_install_it(profiled, tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    code, _, err = run(["simulate", profiled, "--emulator", "renode"], env={"PATH": str(bare)})
    assert code == 1 and "Traceback" not in err
    assert f"error: {INSTALL_HINT}" in err.splitlines()


def test_board_without_a_renode_platform_says_why():
    board = get_board("nucleo-l4r5zi")
    without = dataclasses.replace(board, renode=RenodeInfo(note="no model fits its console"))
    assert renode_files(without, None, {}) == {}
    with pytest.raises(ArielError, match="board nucleo-l4r5zi has no Renode platform: no model "
                                         "fits its console"):
        require_platform(without)


def test_every_stm32_family_answers_its_clock_flags():
    """The platform of every STM32 family gives the firmware its clock registers (the nRF52's
    clock is Renode's own model, named in its board file)."""
    for family in FAMILIES:
        blocks = clock_registers(family)
        if family.startswith("stm32"):
            assert blocks["blocks"] and blocks["memory"], family
            assert any(block["name"] == "rcc" for block in blocks["blocks"])
        else:
            assert blocks == {"memory": [], "blocks": []}


def test_a_console_passes_only_with_its_closing_line():
    """Every run checked "pass" is not enough: the firmware must also have printed its
    closing line (a console cut off after the last check has not finished)."""
    runs = "".join(f"ariel-output {r} 0 00ff\nariel-check {r} pass\n" for r in (1, 2, 3))
    assert parse_console(runs + "ariel: done, 3 runs, all outputs as expected\n").passed
    assert not parse_console(runs).passed
    assert not parse_console("ariel: done, 0 runs, all outputs as expected\n").passed


def test_failing_lines_cover_the_firmwares_failures():
    """The lines firmware/harness_uart.c and startup.c print when something is wrong fail
    the Robot test as soon as they are printed."""
    import re

    for line in ("ariel-check 2 fail output 0 byte 3", "ariel: fault at pc=0x08000123",
                 "ariel: unexpected exception 3", "ariel: done, 3 runs, 1 failed"):
        assert any(re.search(pattern, line) for pattern in FAILING_LINES), line
    assert not any(re.search(pattern, line) for pattern in FAILING_LINES
                   for line in ("ariel-check 1 pass", "ariel-output 1 0 00ff"))
    assert CLOSING_LINE in FAILING_LINES


def test_robot_waits_for_exact_integer_outputs_and_the_float_check():
    expected = {"runs": 2, "outputs": [
        {"index": 0, "dtype": "float32", "hex": "0000803f"},
        {"index": 1, "dtype": "int8", "hex": "7f80"}]}
    assert robot_lines(expected) == [
        "ariel-output 1 0", "ariel-output 1 1 7f80", "ariel-check 1 pass",
        "ariel-output 2 0", "ariel-output 2 1 7f80", "ariel-check 2 pass"]


def test_uart_build_in_qemu_runs_its_own_input_and_profiles_only_in_renode(tmp_path):
    out = uart_build("stm32f4-discovery", tmp_path / "f4")
    # A UART build runs its own embedded input: --inputs is not needed and not read.
    code, text, err = run(["simulate", out])
    assert code == 0, err
    assert "ariel: input zeros" in text
    code, _, err = run(["simulate", out, "--profile"])
    assert code == 1 and "Traceback" not in err
    assert "is a --io uart build: profile it with --emulator renode" in err
