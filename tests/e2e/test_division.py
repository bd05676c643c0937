"""Integer division by zero end to end: a --io uart build computes its expected outputs on
the host without dying (it did, with SIGFPE: exit 136), the firmware gives what the kernel
defines on a Cortex-M4 and on a Cortex-M0+ (whose division is libgcc's), and --compare says
in one line what onnxruntime did: refused x / 0, or died of SIGFPE on int64 MIN / -1."""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from codegen.cli import main

pytestmark = pytest.mark.qemu

INT32_MIN, INT64_MIN = -2**31, -2**63


def division_model(tmp_path, elem=TensorProto.INT32, size=8):
    values = [helper.make_tensor_value_info(n, elem, [size]) for n in "aby"]
    graph = helper.make_graph([helper.make_node("Div", ["a", "b"], ["y"], name="divide")],
                              "division", values[:2], values[2:])
    path = tmp_path / "division.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


A = np.array([[7, -7, INT32_MIN, 5, 2**31 - 1, INT32_MIN, 0, 9]], np.int32)
B = np.array([[0, 2, -1, 0, -1, 1, 0, -4]], np.int32)
DEFINED = [0, -3, INT32_MIN, 0, -(2**31 - 1), INT32_MIN, 0, -2]


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_uart_build_computes_expected_outputs_of_a_division_by_zero(tmp_path):
    np.savez(tmp_path / "in.npz", a=A, b=B)
    code, _, err = invoke("build", division_model(tmp_path), "--board", "nucleo-l4r5zi",
                          "--io", "uart", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "o")
    assert code == 0, err
    assert "note: Div 'divide' (int32): its divisor is read at run time; the kernel gives 0 " \
           "for x / 0" in err
    expected = json.loads((tmp_path / "o" / "expected_output.json").read_text())
    assert expected["outputs"][0]["values"] == DEFINED


@pytest.mark.parametrize("board", ["mps2-an386", "nucleo-g071rb"])
def test_firmware_divides_as_defined(tmp_path, board):
    np.savez(tmp_path / "in.npz", a=A, b=B)
    code, _, err = invoke("build", division_model(tmp_path), "--board", board, "-o",
                          tmp_path / "o")
    assert code == 0, err
    code, _, err = invoke("simulate", tmp_path / "o", "--inputs", tmp_path / "in.npz",
                          "--outputs", tmp_path / "y.npy")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), [DEFINED])


def test_compare_where_onnxruntime_refuses_a_division_by_zero(tmp_path):
    np.savez(tmp_path / "in.npz", a=A, b=B)
    assert invoke("build", division_model(tmp_path), "-o", tmp_path / "o")[0] == 0
    code, _, err = invoke("simulate", tmp_path / "o", "--inputs", tmp_path / "in.npz",
                          "--compare")
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: onnxruntime could not run the model (for --compare): ")
    assert "Integer division by zero" in errors[0]


def test_compare_where_onnxruntime_dies_of_sigfpe(tmp_path):
    """onnxruntime (1.32) divides int64 MIN by -1 in the CPU's own instruction: SIGFPE. It
    runs in a child process, so ariel says so instead of dying with it."""
    np.savez(tmp_path / "in.npz", a=np.array([[INT64_MIN, 7, 8, 9]], np.int64),
             b=np.array([[-1, 2, 3, 4]], np.int64))
    model = division_model(tmp_path, TensorProto.INT64, 4)
    assert invoke("build", model, "-o", tmp_path / "o")[0] == 0
    code, _, err = invoke("simulate", tmp_path / "o", "--inputs", tmp_path / "in.npz",
                          "--outputs", tmp_path / "y.npy", "--compare")
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == ["error: onnxruntime was killed by SIGFPE (an arithmetic trap, such as an "
                      "integer division by zero or MIN / -1) running the model (for --compare); "
                      "the model's integer divisions: Div 'divide'"]
