"""`--power intermittent` builds with continuous power: in QEMU, the firmware that keeps its
progress in NVM gives outputs equal bit for bit to the normal int8 build's (the digits CNN,
with each checkpoint strategy, on the FRAM and the flash board) and to ariel's integer
reference (the four MLPerf Tiny models); bad input gets one clear line."""

import numpy as np
import pytest

from codegen.build import build
from codegen.compiler.checkpoint import PowerOptions
from codegen.compiler.compile import Options
from codegen.compiler.quant.report import quantize_inputs
from codegen.compiler.reference import run_graph
from codegen.datasets import digits_split
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board
from tests.e2e.test_cli_errors import assert_clean_error, run
from tests.e2e.test_int8_qemu import calibration_and_tests

pytestmark = pytest.mark.qemu
MODELS = data_dir("examples") / "models"


def power(board: str, strategy: str = "live") -> PowerOptions:
    b = get_board(board)
    return PowerOptions(b.nvm, b.clock_hz, strategy, board=b.name)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The digits CNN's normal int8 build on the FRAM board, its outputs on 12 test images."""
    folder = tmp_path_factory.mktemp("digits")
    x = digits_split()[2][:12]
    build(MODELS / "digits_cnn.onnx", get_board("nucleo-l4r5zi-fram"), folder / "normal",
          Options(precision="int8", calibration="digits"))
    return x, simulate(open_build(folder / "normal"), [x]).outputs[0]


@pytest.mark.parametrize("board, strategy", [
    ("nucleo-l4r5zi-fram", "live"), ("nucleo-l4r5zi-fram", "arena"),
    ("nucleo-l4r5zi-fram", "restart"), ("nucleo-l4r5zi", "live")])
def test_intermittent_digits_equal_the_normal_build(digits, board, strategy, tmp_path):
    x, expected = digits
    result = build(MODELS / "digits_cnn.onnx", get_board(board), tmp_path / "out",
                   Options(precision="int8", calibration="digits",
                           power=power(board, strategy)))
    run = simulate(open_build(tmp_path / "out"), [x])
    np.testing.assert_array_equal(run.outputs[0], expected)
    assert "resumed" not in run.console  # continuous power: one boot, nothing to resume
    assert result.compiled.checkpoints.strategy == strategy


@pytest.mark.parametrize("model", ["resnet8_cifar10", "ad_autoencoder_toycar",
                                   "vww_mobilenet_96", "kws_dscnn"])
def test_intermittent_mlperf_models_are_bit_exact(model, tmp_path):
    calibration, tests = calibration_and_tests(model)
    tests = tests[:2]
    np.save(tmp_path / "calib.npy", calibration.astype(np.float32))
    result = build(MODELS / f"{model}.onnx", get_board("nucleo-l4r5zi-fram"), tmp_path / "out",
                   Options(precision="int8", calibration=str(tmp_path / "calib.npy"),
                           io="int8", power=power("nucleo-l4r5zi-fram")))
    graph = result.compiled.graph
    x = quantize_inputs(graph, [tests.astype(np.float32).reshape(
        len(tests), *graph.tensor(graph.inputs[0]).shape)])[0]
    firmware = simulate(open_build(tmp_path / "out"), [x]).outputs[0]
    reference = np.stack([run_graph(graph, [sample])[0] for sample in x])
    np.testing.assert_array_equal(firmware, reference)


def test_board_without_nvm_is_refused(tmp_path):
    code, _, err = run(["build", MODELS / "digits_mlp.onnx", "--board", "mps2-an386",
                        "--power", "intermittent", "-o", tmp_path / "out"])
    assert_clean_error(code, err, r"--power intermittent keeps checkpoints in non-volatile "
                                  r"memory, and board mps2-an386 describes none")
    assert not (tmp_path / "out").exists()


def test_intermittent_options_need_intermittent_power(tmp_path):
    code, _, err = run(["build", MODELS / "digits_mlp.onnx", "--board", "nucleo-l4r5zi-fram",
                        "--checkpoints", "arena", "--on-period-cycles", "5000",
                        "-o", tmp_path / "out"])
    assert_clean_error(code, err, r"--checkpoints, --on-period-cycles have no effect without "
                                  r"--power intermittent; drop them")


def test_uart_builds_cannot_be_intermittent_yet(tmp_path):
    code, _, err = run(["build", MODELS / "digits_mlp.onnx", "--board", "nucleo-l4r5zi",
                        "--power", "intermittent", "--io", "uart", "-o", tmp_path / "out"])
    assert_clean_error(code, err, r"--power intermittent builds run in the emulator")


def test_on_period_too_short_is_refused_with_the_figures(tmp_path):
    code, _, err = run(["build", MODELS / "digits_cnn.onnx", "--board", "nucleo-l4r5zi",
                        "--power", "intermittent", "--on-period-cycles", "20000",
                        "-o", tmp_path / "out"])
    assert_clean_error(code, err, r"--on-period-cycles 20,000: \S+ '[^']+' needs about [\d,]+ "
                                  r"cycles \(static estimate\) plus [\d,]+ to restore its "
                                  r"inputs and checkpoint its output on nucleo-l4r5zi's flash "
                                  r"\(internal\)")


def test_endurance_warning_on_flash(tmp_path):
    code, out, err = run(["build", MODELS / "digits_cnn.onnx", "--board", "nucleo-l4r5zi",
                          "--power", "intermittent", "--inferences-per-hour", "60",
                          "-o", tmp_path / "out"])
    assert code == 0, err
    assert "checkpoints (live): 7 commits per inference in flash (internal)" in out
    assert "warning: at 60 inferences per hour the checkpoints write one page of " \
           "nucleo-l4r5zi's flash 4 times per inference" in err


def test_the_harvesting_model_gives_the_on_period(tmp_path):
    """--harvest-power with a capacitor: the on-period is the capacitor's energy between
    turn-on and brown-out over the power the board draws beyond the harvest."""
    code, out, err = run(["build", MODELS / "digits_cnn.onnx", "--board", "nucleo-l4r5zi-fram",
                          "--power", "intermittent", "--harvest-power", "1",
                          "--capacitance", "100", "-o", tmp_path / "out"])
    assert code == 0, err
    joules = 0.5 * 100e-6 * (3.3 ** 2 - 1.8 ** 2)
    cycles = int(joules / (78e-3 - 1e-3) * 120e6)  # 78 mW: the board's run power
    assert f"on-period from the harvesting model: {cycles:,} cycles (100 uF from 3.3 V to " \
           "1.8 V, 1 mW harvested against 78 mW run)" in err
    code, _, err = run(["build", MODELS / "digits_cnn.onnx", "--board", "nucleo-l4r5zi-fram",
                        "--power", "intermittent", "--harvest-power", "1",
                        "--capacitance", "1", "-o", tmp_path / "small"])
    assert_clean_error(code, err, r"the on-period of 5,\d{3} cycles that --harvest-power "
                                  r"gives: \S+ '[^']+' needs about")


def test_harvest_and_on_period_are_one_or_the_other(tmp_path):
    code, _, err = run(["build", MODELS / "digits_cnn.onnx", "--board", "nucleo-l4r5zi-fram",
                        "--power", "intermittent", "--harvest-power", "1",
                        "--on-period-cycles", "900000", "-o", tmp_path / "out"])
    assert_clean_error(code, err, r"--on-period-cycles and --harvest-power each give the "
                                  r"on-period; give one")
    code, _, err = run(["build", MODELS / "digits_cnn.onnx", "--board", "nucleo-l4r5zi-fram",
                        "--power", "intermittent", "--capacitance", "47",
                        "-o", tmp_path / "out"])
    assert_clean_error(code, err, r"--capacitance has no effect without --harvest-power")
