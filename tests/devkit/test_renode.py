"""Renode: the generated Robot test run for real by renode-test (skipped, saying so, where
Renode is not installed: it is in no package registry these machines reach), and the one-line
answers when Renode or a Renode platform is missing."""

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.devkit.renode import INSTALL_HINT, robot_lines
from tests.devkit.test_board_data import RENODE
from tests.e2e.test_models_qemu import MODELS

pytestmark = pytest.mark.qemu
RENODE_ABSENT = shutil.which("renode-test") is None or shutil.which("renode") is None


def run(args, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    return result.exit_code, result.stdout, result.stderr


def uart_build(board, out):
    code, _, err = run(["build", MODELS / "digits_cnn.onnx", "--board", board, "--io", "uart",
                        "-o", out])
    assert code == 0, err
    return out


@pytest.mark.skipif(RENODE_ABSENT, reason="Renode is not installed (no renode/renode-test on "
                                          "PATH; it installs from the Renode project's "
                                          "releases, not from a package registry)")
@pytest.mark.parametrize("board", sorted(RENODE))
def test_renode_runs_the_uart_build(board, tmp_path):
    out = uart_build(board, tmp_path / "uart")
    code, text, err = run(["simulate", out, "--emulator", "renode", "--timeout", "900"])
    assert code == 0, text + err
    assert "Renode: the firmware printed the expected outputs" in text


def test_missing_renode_says_how_to_install_it(tmp_path):
    out = uart_build("nucleo-h753zi", tmp_path / "h7")
    bare = tmp_path / "bin"
    bare.mkdir()
    code, _, err = run(["simulate", out, "--emulator", "renode"], env={"PATH": str(bare)})
    assert code == 1 and "Traceback" not in err
    assert f"error: {INSTALL_HINT}" in err.splitlines()


def test_board_without_a_renode_platform_says_why(tmp_path):
    out = uart_build("nucleo-l4r5zi", tmp_path / "l4")
    assert not (out / "renode").exists()
    code, _, err = run(["simulate", out, "--emulator", "renode"])
    assert code == 1
    assert "board nucleo-l4r5zi has no Renode platform: Renode 1.16 ships no STM32L4" in err


def test_robot_waits_for_exact_integer_outputs_and_the_float_check():
    expected = {"runs": 2, "outputs": [
        {"index": 0, "dtype": "float32", "hex": "0000803f"},
        {"index": 1, "dtype": "int8", "hex": "7f80"}]}
    assert robot_lines(expected) == [
        "ariel-output 1 0", "ariel-output 1 1 7f80", "ariel-check 1 pass",
        "ariel-output 2 0", "ariel-output 2 1 7f80", "ariel-check 2 pass"]


def test_uart_build_cannot_take_inputs_at_run_time(tmp_path):
    out = uart_build("stm32f4-discovery", tmp_path / "f4")
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    # A UART build runs its own embedded input: --inputs is not needed and not read.
    code, text, err = run(["simulate", out])
    assert code == 0, err
    assert "ariel: input zeros" in text
