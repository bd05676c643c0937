"""Limits before heavy work (codegen/compiler/budget.py): a tensor no board could hold is
refused before it is computed, weights over the flash and an arena over the RAM before C is
written, shapes beyond 32-bit indices with one line naming the tensor."""

import resource
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler import emit, frontend
from codegen.compiler.budget import Budget
from codegen.compiler.compile import Options, compile_model
from codegen.errors import ArielError, DoesNotFitError
from codegen.target.boards import get_board

GIB = 1 << 30
# Address space for a child `ariel build`: a normal build needs well under 1.5 GB, so a
# regression that computes a 4 GB tensor fails inside the child instead of exhausting the
# machine.
CHILD_ADDRESS_SPACE = 2 * GIB


def model(nodes, inputs, outputs, initializers=(), ir_version=8) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "limits", inputs, outputs, list(initializers))
    made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    made.ir_version = ir_version
    onnx.checker.check_model(made)
    return made


def vector(name: str, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def constant_of_shape(shape_input: str) -> onnx.NodeProto:
    return helper.make_node("ConstantOfShape", [shape_input], ["c"], name="fill",
                            value=numpy_helper.from_array(np.array([1.0], np.float32)))


def int64(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, np.int64), name)


def compile_saved(made: onnx.ModelProto, folder, budget: Budget):
    path = folder / "model.onnx"
    onnx.save(made, path)
    return compile_model(path, Options(budget=budget))


def build_in_child(path, out):
    """`ariel build` in a child process whose address space is capped."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))
    return subprocess.run([sys.executable, "-m", "codegen.cli", "build", str(path), "-o",
                           str(out)], capture_output=True, text=True, preexec_fn=cap,
                          timeout=120)


# 2**30 float32 ones: 4 GiB. The shape is an initializer (known to plain shape inference),
# or the product of two (known only once folded).
FOUR_GIB_MODELS = {
    "initializer shape": model(
        [constant_of_shape("s"), helper.make_node("Add", ["x", "c"], ["y"])],
        [vector("x", [1])], [vector("y", [1 << 30])], [int64("s", [1 << 30])]),
    "computed shape": model(
        [helper.make_node("Mul", ["a", "b"], ["s"]), constant_of_shape("s"),
         helper.make_node("Add", ["x", "c"], ["y"])],
        [vector("x", [1])], [vector("y", ["n"])], [int64("a", [1 << 15]), int64("b", [1 << 15])]),
}


@pytest.mark.parametrize("name", FOUR_GIB_MODELS)
def test_four_gib_constant_is_refused_before_it_is_computed(tmp_path, name):
    path = tmp_path / "fill.onnx"
    onnx.save(FOUR_GIB_MODELS[name], path)
    result = build_in_child(path, tmp_path / "out")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "'c' (output of ConstantOfShape 'fill') has 1,073,741,824 elements" in errors[0]
    assert "4 GiB as float32" in errors[0] and "mps2-an386 (4 MiB flash" in errors[0]
    assert not (tmp_path / "out").exists()


def test_weights_over_the_flash_are_refused_before_any_c_is_written(tmp_path, monkeypatch):
    """3 MiB of float weights against nucleo-l4r5zi's 2 MiB of flash: refused with the
    figures, and the C formatting of the weights (minutes for tens of MiB) never starts."""
    def no_formatting(*args):
        raise AssertionError("weights were formatted as C")
    monkeypatch.setattr(emit, "c_array_body", no_formatting)
    weights = np.ones((768, 1024), np.float32)
    made = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="big")],
                 [vector("x", [1, 768])], [vector("y", [1, 1024])],
                 [numpy_helper.from_array(weights, "w")])
    board = get_board("nucleo-l4r5zi")
    with pytest.raises(DoesNotFitError) as caught:
        compile_saved(made, tmp_path, board.budget)
    message = str(caught.value)
    assert message.startswith("the firmware does not fit nucleo-l4r5zi (flash 2,097,152 B")
    assert "FLASH overflowed by 1,048,576 bytes or more" in message
    assert "weights alone take 3 MiB (3,145,728 B; the largest: b of MatMul 'big'" in message
    assert "--float-weights fp16" in message and caught.value.regions == ("FLASH",)


def test_half_weights_over_the_flash_say_half_precision_was_tried(tmp_path, monkeypatch):
    monkeypatch.setattr(emit, "c_array_body", lambda *a: pytest.fail("C was formatted"))
    made = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="big")],
                 [vector("x", [1, 256])], [vector("y", [1, 512])],
                 [numpy_helper.from_array(np.ones((256, 512), np.float32), "w")])
    path = tmp_path / "model.onnx"
    onnx.save(made, path)
    budget = get_board("nucleo-g071rb").budget  # 128 KiB of flash; 256 KiB at half precision
    with pytest.raises(DoesNotFitError, match="even with the float weights at half precision "
                       "\\(262,144 B\\), they do not"):
        compile_model(path, Options(float_weights="fp16", budget=budget))


def test_arena_over_the_ram_is_refused_before_any_c_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(emit, "c_array_body", lambda *a: pytest.fail("C was formatted"))
    made = model([helper.make_node("Relu", ["x"], ["y"], name="wide")],
                 [vector("x", [1, 20_000])], [vector("y", [1, 20_000])])
    board = get_board("nucleo-g071rb")  # 36 KiB of RAM; the arena needs 160,000 B
    with pytest.raises(DoesNotFitError) as caught:
        compile_saved(made, tmp_path, board.budget)
    assert "RAM overflowed by 123,136 bytes or more" in str(caught.value)
    assert caught.value.regions == ("RAM",)


def test_loop_bounds_beyond_32_bits_are_refused_naming_the_tensor(tmp_path):
    """[65536, 65537] floats: 4,295,032,832 elements, one more row than uint32_t indices
    reach. Refused by the board's budget first; with a budget that large, by the C's
    32-bit indices."""
    made = model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                 [vector("x", [65536, 65537])], [vector("y", [65536, 65537])])
    with pytest.raises(DoesNotFitError, match="tensor 'x' \\(a graph input\\) has "
                       "4,295,032,832 elements \\(16 GiB as float32\\)"):
        compile_saved(made, tmp_path, get_board("mps2-an386").budget)
    vast = Budget(1 << 40, 1 << 40, "a vast board")
    with pytest.raises(ArielError, match="tensor 'x' \\(a graph input\\) of shape "
                       "\\[65536, 65537\\] .*32-bit unsigned integers"):
        compile_saved(made, tmp_path, vast)


def test_data_propagation_skips_models_with_long_vectors(monkeypatch):
    """ONNX's data propagation spends ~150 bytes and microseconds per element of any 1-D
    tensor it meets (2.4 GB and 7 s for 2**24): it runs on shape arithmetic only."""
    calls = []
    real = frontend.shape_inference.infer_shapes

    def spy(proto, **kwargs):
        calls.append(kwargs.get("data_prop", False))
        return real(proto, **kwargs)
    monkeypatch.setattr(frontend.shape_inference, "infer_shapes", spy)
    long = model([helper.make_node("Add", ["x", "b"], ["y"])], [vector("x", [1 << 20])],
                 [vector("y", [1 << 20])], [numpy_helper.from_array(np.ones(1, np.float32),
                                                                    "b")])
    frontend.infer_shapes(long)
    assert calls == [False]
    short = model([helper.make_node("Add", ["x", "b"], ["y"])], [vector("x", [16])],
                  [vector("y", [16])], [numpy_helper.from_array(np.ones(1, np.float32), "b")])
    calls.clear()
    frontend.infer_shapes(short)
    assert calls == [False, True]
