"""Every bad use of --io uart, --inputs, --emulator and flash gets one line, no traceback
and no output folder."""

import pytest
from click.testing import CliRunner

from codegen.cli import main
from tests.e2e.test_cli_errors import assert_clean_error
from tests.e2e.test_models_qemu import MODELS

pytestmark = pytest.mark.qemu
MODEL = MODELS / "digits_mlp.onnx"


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_uart_on_a_board_without_a_console(tmp_path):
    code, _, err = run(["build", MODEL, "--io", "uart", "-o", tmp_path / "out"])
    assert_clean_error(code, err, "board mps2-an386 has no console UART",
                       "boards with one: .*nucleo-l4r5zi")
    assert not (tmp_path / "out").exists()


def test_uart_adaptive_build_without_fixed_thresholds(tmp_path):
    code, _, err = run(["build", MODEL, "--precision", "ari", "--calib", "digits", "--board",
                        "nucleo-l4r5zi", "--io", "uart", "-o", tmp_path / "out"])
    assert_clean_error(code, err, "an adaptive --io uart build needs fixed thresholds")
    assert not (tmp_path / "out").exists()


def test_inputs_without_uart(tmp_path):
    code, _, err = run(["build", MODEL, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "o"])
    assert_clean_error(code, err, "--inputs builds a test input into a --io uart build")


@pytest.mark.parametrize("pair", [("float", "int8"), ("semihosting", "uart")])
def test_two_of_one_kind(tmp_path, pair):
    code, _, err = run(["build", MODEL, "--io", pair[0], "--io", pair[1], "-o", tmp_path / "o"])
    assert_clean_error(code, err, f"--io gives two of the same kind, {pair[0]} and {pair[1]}")


def test_test_input_of_the_wrong_shape(tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    code, _, err = run(["build", MODEL, "--board", "nucleo-l4r5zi", "--io", "uart",
                        "--inputs", tmp_path / "x.npy", "-o", tmp_path / "o"])
    assert_clean_error(code, err, "x.npy|shape")
    assert not (tmp_path / "o").exists()


def test_semihosting_build_in_renode(tmp_path):
    assert run(["build", MODEL, "--board", "nucleo-h753zi", "-o", tmp_path / "o"])[0] == 0
    code, _, err = run(["simulate", tmp_path / "o", "--emulator", "renode"])
    assert_clean_error(code, err, "talks through semihosting, which Renode does not run")


def test_uart_build_of_a_board_without_its_uart_in_qemu(tmp_path):
    out = tmp_path / "o"
    assert run(["build", MODEL, "--board", "nucleo-h7a3zi-q", "--io", "uart", "-o", out])[0] == 0
    code, _, err = run(["simulate", out])
    assert_clean_error(code, err, "no QEMU machine has nucleo-h7a3zi-q's console UART "
                       r"\(USART3\)", "checked its ELF statically")


def test_flash_of_a_folder_that_is_not_a_build(tmp_path):
    code, _, err = run(["flash", tmp_path, "--dry-run"])
    assert_clean_error(code, err, "not an ariel build folder")
