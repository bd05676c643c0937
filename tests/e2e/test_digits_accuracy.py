"""The digits CNN (trained by examples/train_digits_cnn.py, exported from PyTorch) built in
float32 and in int8 (calibrated on the training split), run in QEMU on all 540 held-out
digits: int8 misclassifies at most one digit more than float."""

import pytest

from codegen.build import build
from codegen.compiler.compile import Options
from codegen.datasets import digits_split
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board

pytestmark = pytest.mark.qemu
MODEL = data_dir("examples") / "models" / "digits_cnn.onnx"


def accuracy_in_qemu(folder, x, y) -> float:
    logits = simulate(open_build(folder), [x]).outputs[0].reshape(len(x), -1)
    return float((logits.argmax(1) == y).mean())


def test_int8_misclassifies_at_most_one_digit_more_than_float(tmp_path):
    _, _, x_test, y_test = digits_split()
    board = get_board("mps2-an386")
    build(MODEL, board, tmp_path / "float")
    build(MODEL, board, tmp_path / "int8", Options(precision="int8", calibration="digits"))
    float_accuracy = accuracy_in_qemu(tmp_path / "float", x_test, y_test)
    int8_accuracy = accuracy_in_qemu(tmp_path / "int8", x_test, y_test)
    print(f"\ndigits CNN on {len(y_test)} held-out digits in QEMU: float32 "
          f"{100 * float_accuracy:.2f}%, int8 {100 * int8_accuracy:.2f}%")
    assert float_accuracy > 0.95
    # At most one held-out digit more misclassified in int8 than in float (measured: the
    # same 7 of 540 in both): quantization may tip one borderline digit, not five.
    errors = [round((1 - accuracy) * len(y_test)) for accuracy in (float_accuracy, int8_accuracy)]
    assert errors[1] <= errors[0] + 1, errors
