"""Models at the edges of what a build can be: no run-time inputs, inputs shadowed by an
initializer, shapes of tens of GB or beyond 32-bit indices. Each gets one clear line (or
builds), never a gcc dump."""

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from codegen.cli import main
from codegen.run.simulate import open_build

pytestmark = pytest.mark.qemu

VALUES = np.array([1, -2, 3, -4], np.float32)


def save(tmp_path, nodes, inputs, outputs, initializers=(), ir_version=8):
    graph = helper.make_graph(nodes, "edge", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    path = tmp_path / "edge.onnx"
    onnx.save(model, path)
    return path


def floats(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def build(path, out, *extra):
    result = CliRunner().invoke(main, ["build", str(path), "-o", str(out), *extra])
    return result.exit_code, result.stderr


def one_error(code, stderr) -> str:
    assert code == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    assert "gcc" not in stderr and "make" not in stderr, stderr
    return errors[0]


def test_a_model_without_inputs_is_refused(tmp_path):
    path = save(tmp_path, [helper.make_node("Relu", ["c"], ["y"])], [], [floats("y", [4])],
                [numpy_helper.from_array(VALUES, "c")])
    error = one_error(*build(path, tmp_path / "out"))
    assert "the model has no inputs: its outputs are constants" in error
    assert not (tmp_path / "out").exists()


def test_a_model_whose_only_input_is_shadowed_says_what_ariel_does(tmp_path):
    """ONNX (IR >= 4): an initializer named like a graph input is that input's default
    value. ariel builds it in as a constant; with nothing left to read, it says so."""
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [floats("x", [4])],
                [floats("y", [4])], [numpy_helper.from_array(VALUES, "x")])
    error = one_error(*build(path, tmp_path / "out"))
    assert "no run-time inputs: its graph input(s) 'x' also have an initializer" in error
    assert "remove those initializers" in error
    assert not (tmp_path / "out").exists()


def test_a_shadowed_input_beside_a_real_one_is_built_in_with_a_note(tmp_path):
    path = save(tmp_path, [helper.make_node("Add", ["x", "c"], ["y"])],
                [floats("x", [4]), floats("c", [4])], [floats("y", [4])],
                [numpy_helper.from_array(VALUES, "c")])
    code, stderr = build(path, tmp_path / "out")
    assert code == 0, stderr
    assert "note: graph input(s) 'c' also have an initializer" in stderr
    info = open_build(tmp_path / "out").info
    assert [t.name for t in info.inputs] == ["x"]
    x = np.array([[0.5, 0.5, 0.5, 0.5]], np.float32)
    np.save(tmp_path / "x.npy", x)
    result = CliRunner().invoke(main, ["simulate", str(tmp_path / "out"), "--inputs",
                                       str(tmp_path / "x.npy"), "--outputs",
                                       str(tmp_path / "y.npy"), "--compare"])
    assert result.exit_code == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), x + VALUES)
    assert "largest difference 0 " in result.stdout  # onnxruntime uses the default too


@pytest.mark.parametrize("shape, elements, size", [
    ([65536, 65537], "4,295,032,832", "16 GiB"),  # a loop bound beyond 2**32
    ([10, 1024, 1024, 1024], "10,737,418,240", "40 GiB"),
])
def test_huge_shapes_get_one_line_naming_the_tensor(tmp_path, shape, elements, size):
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="r")],
                [floats("x", shape)], [floats("y", shape)])
    error = one_error(*build(path, tmp_path / "out"))
    assert f"tensor 'x' (a graph input) has {elements} elements ({size} as float32)" in error
    assert "mps2-an386 (4 MiB flash, 4 MiB RAM)" in error
    assert not (tmp_path / "out").exists()
