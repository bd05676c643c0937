"""An augmented model (digits CNN with two exits) builds with `ariel build` as any model
with several outputs: in float its outputs in QEMU match onnxruntime's, in int8 they equal
ariel's numpy integer reference bit for bit and its backbone output equals the original
model's int8 build's; and the exits cost the arena only their heads' own small buffers,
because each sits on a cut of the backbone."""

import numpy as np
import onnx
import onnxruntime
import pytest

from codegen.ari.augment.heads import HeadShape
from codegen.ari.augment.pipeline import AugmentRequest, augment, write_augmented
from codegen.build import build
from codegen.compiler.compile import Options
from codegen.compiler.quant.report import quantize_inputs
from codegen.compiler.reference import run_graph
from codegen.datasets import digits_split
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board

pytestmark = pytest.mark.qemu
DIGITS = data_dir("examples") / "models" / "digits_cnn.onnx"
BOARD = "mps2-an386"


@pytest.fixture(scope="module")
def augmented_digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("augment")
    x_train, y_train, _, _ = digits_split()
    np.savez(folder / "train.npz", x=x_train[:500], y=y_train[:500])
    output = folder / "ee.onnx"
    result = augment(AugmentRequest(DIGITS, str(folder / "train.npz"), output,
                                    head=HeadShape("grid")), lambda _: None)
    write_augmented(result, output)
    return output


def test_float_build_matches_onnxruntime(augmented_digits, tmp_path):
    x = digits_split()[2][:12, None]
    result = build(augmented_digits, get_board(BOARD), tmp_path / "out", Options("float"))
    outputs = simulate(open_build(tmp_path / "out"), [x]).outputs
    session = onnxruntime.InferenceSession(str(augmented_digits),
                                           providers=["CPUExecutionProvider"])
    expected = [np.concatenate(column) for column in
                zip(*(session.run(None, {"input": sample}) for sample in x), strict=True)]
    assert len(outputs) == 3
    for got, want in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4)
    original = build(DIGITS, get_board(BOARD), tmp_path / "original", Options("float"))
    # The heads' own buffers (pooled features and logits: under 300 bytes here) and no more.
    extra = result.compiled.info.arena_size - original.compiled.info.arena_size
    assert 0 <= extra <= 300, extra


def test_int8_build_equals_the_integer_reference(augmented_digits, tmp_path):
    result = build(augmented_digits, get_board(BOARD), tmp_path / "out",
                   Options(precision="int8", calibration="digits", io="int8"))
    graph = result.compiled.graph
    x = quantize_inputs(graph, [digits_split()[2][:12, None]])[0]
    outputs = simulate(open_build(tmp_path / "out"), [x]).outputs
    assert len(outputs) == 3 == len(onnx.load(str(augmented_digits)).graph.output)
    references = [run_graph(graph, [sample]) for sample in x]
    for index, got in enumerate(outputs):
        assert got.dtype == np.int8
        np.testing.assert_array_equal(
            got, np.stack([reference[index] for reference in references]))
    # The backbone's int8 output is the original model's int8 build's, bit for bit: the
    # heads change no range the calibration sees in the backbone.
    original = build(DIGITS, get_board(BOARD), tmp_path / "original",
                     Options(precision="int8", calibration="digits", io="int8"))
    plain = simulate(open_build(tmp_path / "original"), [x]).outputs[0]
    # (The same int8 input means the same thing to both: the same input quantization.)
    for field in ("scale", "zero_point"):
        np.testing.assert_array_equal(
            getattr(original.compiled.graph.tensor(graph.inputs[0]).quant, field),
            getattr(graph.tensor(graph.inputs[0]).quant, field))
    np.testing.assert_array_equal(outputs[0], plain)
    # And the int8 answers are the float model's (onnxruntime) on nearly every input.
    session = onnxruntime.InferenceSession(str(augmented_digits),
                                           providers=["CPUExecutionProvider"])
    floats = [session.run(None, {"input": sample}) for sample in digits_split()[2][:12, None]]
    for index, got in enumerate(outputs):
        want = np.concatenate([run[index] for run in floats]).argmax(axis=1)
        assert np.mean(got.reshape(len(want), -1).argmax(axis=1) == want) >= 11 / 12
