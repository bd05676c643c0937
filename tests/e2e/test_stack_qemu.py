"""The stack as a resource, end to end: a Conv with a 31x31 window keeps 4 x 961 tap
pointers on its stack (15.5 KB against the default board's 8 KiB). The build sizes the stack
from the code and the firmware computes the right outputs; a board whose RAM cannot hold that
stack is refused with the figures; and a stack forced smaller than the code needs (a linker
script edited by hand, or an ELF from an older build) fails the run, naming the stack and
the kernel, instead of returning outputs computed over overwritten memory."""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.build import build
from codegen.compiler.compile import Options
from codegen.compiler.reference import run_graph
from codegen.errors import DoesNotFitError, FirmwareError
from codegen.run.emulate.counting import profile
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board

pytestmark = pytest.mark.qemu


def large_window_conv(path: Path, channels: int, size: int, kernel: int = 31) -> Path:
    """One Conv of `channels` in and out with a `kernel` x `kernel` window, padded to keep
    the input's `size` x `size`."""
    rng = np.random.default_rng(11)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])
    w = numpy_helper.from_array(rng.uniform(-0.1, 0.1, (channels, channels, kernel, kernel))
                                .astype(np.float32), "w")
    b = numpy_helper.from_array(rng.uniform(-0.1, 0.1, channels).astype(np.float32), "b")
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="wide",
                            kernel_shape=[kernel, kernel], pads=[kernel // 2] * 4)
    graph = helper.make_graph([conv], "wide", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(onnx.shape_inference.infer_shapes(model), path)
    return path


def inputs(channels: int, size: int, count: int = 2) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.uniform(-1, 1, (count, 1, channels, size, size)).astype(np.float32)


def onnxruntime_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.stack([session.run(None, {"x": sample})[0] for sample in x])


def with_stack(built: Path, copy: Path, stack_bytes: int) -> Path:
    """A copy of the build folder relinked by its own Makefile with a stack of
    `stack_bytes`, as a user who edits firmware/linker.ld would."""
    subprocess.run(["cp", "-r", str(built), str(copy)], check=True)
    script = copy / "firmware" / "linker.ld"
    text, count = re.subn(r"\. \+= \d+;", f". += {stack_bytes};", script.read_text())
    assert count == 1
    script.write_text(text)
    subprocess.run(["make", "-s", "-C", str(copy)], check=True, capture_output=True)
    return copy


@pytest.fixture(scope="module")
def small_arena(tmp_path_factory):
    """The 31x31 Conv on 4 channels of 8x8: its arena (2 KB) is smaller than its frame."""
    folder = tmp_path_factory.mktemp("small")
    model = large_window_conv(folder / "wide.onnx", 4, 8)
    build(model, get_board("mps2-an386"), folder / "out")
    return model, folder / "out"


def test_a_31x31_float_conv_gets_the_stack_it_needs_and_matches_onnxruntime(small_arena):
    model, out = small_arena
    x = inputs(4, 8)
    run = simulate(open_build(out), [x])
    want = onnxruntime_outputs(model, x)
    assert np.abs(run.outputs[0] - want).max() <= 1e-5 * np.abs(want).max()

    stack = json.loads((out / "ariel.json").read_text())["stack"]
    assert stack["deepest_kernel"]["fn"] == "n01_conv"
    assert stack["deepest_kernel"]["frame"] > 4 * 4 * 31 * 31  # the 4 x 961 tap pointers
    assert stack["reserved"] >= stack["need"] > stack["board"] == 8192


def test_a_stack_the_board_cannot_hold_is_refused_with_the_figures(tmp_path):
    """NUCLEO-G071RB has 36 KiB of RAM: a 28 KiB arena and its 4 KiB stack fit, the 15 KiB
    stack the 31x31 window needs does not."""
    model = large_window_conv(tmp_path / "wide.onnx", 4, 30)
    with pytest.raises(DoesNotFitError) as error:
        build(model, get_board("nucleo-g071rb"), tmp_path / "out")
    message = str(error.value)
    assert "RAM (36,864 B)" in message
    assert re.search(r"kernel n01_conv \(Conv 'wide'\) has a [\d,]+ B stack frame", message)
    assert re.search(r"the stack must be [\d,]+ B \(the board reserves 4,096 B\)", message)
    assert re.search(r"the arena \(28,800 B\) and other data \([\d,]+ B\) leave [\d,]+ B", message)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def large_arena(tmp_path_factory):
    """The 31x31 Conv on 4 channels of 24x24: the arena (18 KB) lies below the stack and is
    large enough to absorb an overflow, so without a check a run exits 0 with wrong
    outputs (the issue's case)."""
    folder = tmp_path_factory.mktemp("large")
    model = large_window_conv(folder / "wide.onnx", 4, 24)
    build(model, get_board("mps2-an386"), folder / "out")
    return model, folder / "out"


def test_a_31x31_conv_over_a_large_arena_matches_onnxruntime(large_arena):
    model, out = large_arena
    x = inputs(4, 24, 1)
    run = simulate(open_build(out), [x])
    want = onnxruntime_outputs(model, x)
    assert np.abs(run.outputs[0] - want).max() <= 1e-5 * np.abs(want).max()


def test_a_stack_forced_too_small_fails_every_run_naming_the_stack(large_arena, tmp_path):
    forced = open_build(with_stack(large_arena[1], tmp_path / "forced", 4096))
    x = inputs(4, 24, 1)
    for run in (lambda: simulate(forced, [x]), lambda: profile(forced, [x])):
        with pytest.raises(FirmwareError) as error:
            run()
        message = str(error.value)
        # The overrun either leaves the run to finish over a worn-out paint or corrupts
        # memory the kernel reads and faults first; both must say it was the stack.
        assert re.search(r"the stack overflowed: the run used all 4,096 B of stack|"
                         r"stack overflow likely", message), message
        assert "deepest kernel n01_conv" in message
        assert "\n" not in message


def test_a_lockup_from_an_overflow_names_the_stack_and_the_function(small_arena, tmp_path):
    """With the small arena the stack runs below RAM: pushing the fault's frame faults too,
    and QEMU reports a lockup with a register dump."""
    _, out = small_arena
    forced = with_stack(out, tmp_path / "forced", 4096)
    with pytest.raises(FirmwareError) as error:
        simulate(open_build(forced), [inputs(4, 8, 1)])
    message = str(error.value)
    assert "locked up" in message
    assert re.search(r"stack overflow likely: the SP 0x[0-9A-F]{8} is below the stack's "
                     r"bottom 0x[0-9A-F]{8}", message)
    assert "deepest kernel n01_conv" in message


def test_a_33x33_int8_conv_on_the_cortex_m0_board_is_bit_exact(tmp_path):
    """The int8 path has the same kind of frame: its direct kernel keeps one pointer per tap
    (4 x 1,089 B), past NUCLEO-G071RB's 4 KiB stack."""
    model = large_window_conv(tmp_path / "wide.onnx", 4, 6, kernel=33)
    calibration = inputs(4, 6, 8)
    np.save(tmp_path / "calib.npy", calibration)
    result = build(model, get_board("nucleo-g071rb"), tmp_path / "out",
                   Options(precision="int8", calibration=str(tmp_path / "calib.npy"),
                           io="int8"))
    graph = result.compiled.graph
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (2, 1, 4, 6, 6)).astype(np.int8)
    firmware = simulate(open_build(tmp_path / "out"), [x]).outputs[0]
    reference = np.stack([run_graph(graph, [sample])[0] for sample in x])
    np.testing.assert_array_equal(firmware, reference)

    stack = json.loads((tmp_path / "out" / "ariel.json").read_text())["stack"]
    assert stack["reserved"] > stack["board"] == 4096
