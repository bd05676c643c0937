"""--float-weights fp16: a float model's filters and matrices stored as IEEE half precision
and widened to float as each is loaded. The oracle is onnxruntime on the same model with
those weights rounded to float16 and back: only the storage changes, so the firmware must
match it as closely as a float32 build matches the original."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from codegen.ari.build import build_ari
from codegen.ari.host import stage_scores
from codegen.ari.margins import simulate as simulate_dispatch
from codegen.ari.spec import AriOptions, ari_stages
from codegen.cli import main
from codegen.compiler.compile import Options, compile_model
from codegen.datasets import digits_split, toycar_windows
from codegen.errors import ArielError
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board
from codegen.target.outdir import MARKER
from tests.support import single_node_model

pytestmark = pytest.mark.qemu
MODELS = data_dir("examples") / "models"


def with_half_weights(path: Path) -> onnx.ModelProto:
    """The model with every Conv, Gemm and MatMul constant weight rounded through float16."""
    model = onnx.load(str(path))
    weights = {node.input[1] for node in model.graph.node
               if node.op_type in ("Conv", "Gemm", "MatMul")}
    for initializer in model.graph.initializer:
        if initializer.name in weights:
            rounded = numpy_helper.to_array(initializer).astype(np.float16).astype(np.float32)
            initializer.CopyFrom(numpy_helper.from_array(rounded, initializer.name))
    return model


def onnxruntime_outputs(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.stack([session.run(None, {name: sample})[0] for sample in x])


def build_and_run(model: Path, board: str, x: np.ndarray, folder: Path) -> np.ndarray:
    runner = CliRunner()
    result = runner.invoke(main, ["build", str(model), "--board", board, "--float-weights",
                                  "fp16", "-o", str(folder / "out")])
    assert result.exit_code == 0, result.output + result.stderr
    assert "half precision" in result.stderr  # the build says what it did
    np.save(folder / "x.npy", x)
    result = runner.invoke(main, ["simulate", str(folder / "out"), "--inputs",
                                  str(folder / "x.npy"), "--outputs", str(folder / "y.npy")])
    assert result.exit_code == 0, result.output + result.stderr
    return np.load(folder / "y.npy")


@pytest.mark.parametrize("model,board,shape", [
    # Conv, depthwise Conv and Gemm on a Cortex-M4F (hardware half conversions) ...
    ("kws_dscnn", "mps2-an386", (1, 1, 49, 10)),
    # ... and a CNN on a Cortex-M0+, which converts in software.
    ("digits_cnn", "nucleo-g071rb", (1, 1, 8, 8)),
])
def test_half_weights_match_onnxruntime_on_the_rounded_model(model, board, shape, tmp_path):
    path = MODELS / f"{model}.onnx"
    if model == "kws_dscnn":
        x = np.random.default_rng(3).uniform(-123, 26, size=(3, *shape)).astype(np.float32)
    else:
        x = digits_split()[2][:6].reshape(6, *shape)
    got = build_and_run(path, board, x, tmp_path)
    want = onnxruntime_outputs(with_half_weights(path), x)
    # Float32 arithmetic on the same weights: differences of float32 rounding only (measured
    # 4e-8 of the largest output on the keyword spotter, 2.4e-7 on the digits CNN). Weights
    # rounded toward zero instead of to nearest differ by 8e-5 of it.
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()
    assert (got.argmax(-1) == want.argmax(-1)).all()
    # The rounding is real: the original weights give measurably different scores.
    original = onnxruntime_outputs(onnx.load(str(path)), x)
    assert np.abs(got - original).max() > 10 * np.abs(got - want).max()

    half = compile_model(path, Options(float_weights="fp16")).info.weights_bytes
    full = compile_model(path).info.weights_bytes
    assert half < 0.55 * full, (half, full)


def test_half_weights_fit_a_model_whose_float_weights_do_not(tmp_path):
    """The anomaly-detection autoencoder's float weights (1.06 MB) overflow the STM32F405's
    1 MiB flash; at half precision they fit, and the model runs on real ToyCar frames."""
    path = MODELS / "ad_autoencoder_toycar.onnx"
    result = CliRunner().invoke(main, ["build", str(path), "--board", "netduinoplus2",
                                       "-o", str(tmp_path / "full")])
    assert result.exit_code == 1
    assert "--float-weights fp16 would store the float weights" in result.stderr
    assert not (tmp_path / "full").exists()

    x = toycar_windows()[::97][:3].reshape(3, 1, 640)
    got = build_and_run(path, "netduinoplus2", x, tmp_path)
    want = onnxruntime_outputs(with_half_weights(path), x)
    assert np.abs(got - want).max() / (want.max() - want.min()) < 1e-5


def test_adaptive_pair_with_half_float_weights(tmp_path):
    """In an adaptive build only the float stage's weights are halved; the firmware's
    decisions still equal the simulation, and the float stage answers as onnxruntime does on
    the rounded model."""
    path = MODELS / "digits_cnn.onnx"
    options = AriOptions(ari_stages(path), calibration="digits", thresholds=[6.0],
                         float_weights="fp16")
    result = build_ari(options, get_board("nucleo-g071rb"), tmp_path / "out")
    int8_stage, float_stage = result.compiled.stages
    assert "_Float16" in "".join(float_stage.files.values())
    assert "_Float16" not in "".join(int8_stage.files.values())
    metadata = json.loads((tmp_path / "out" / MARKER).read_text())
    assert metadata["ari"]["float_weights"] == "fp16"
    assert float_stage.info.weights_bytes < 0.55 * compile_model(path).info.weights_bytes

    build = open_build(tmp_path / "out")
    x = digits_split()[2][:60].reshape(60, 1, 1, 8, 8)
    scores = stage_scores(build, x)
    want = onnxruntime_outputs(with_half_weights(path), x)
    assert np.abs(scores[1] - want.reshape(scores[1].shape)).max() <= 1e-6 * np.abs(want).max()
    expected = simulate_dispatch(scores, [6.0], "top2")
    firmware = simulate(build, [x]).outputs[1].ravel()
    np.testing.assert_array_equal(firmware, expected.stage)
    assert 0 < expected.stage.mean() < 1  # both stages answer some inputs


def test_stages_that_do_not_fit_even_with_half_weights(tmp_path):
    """The autoencoder in int8 and twice in float at half precision: each stage fits the
    STM32F405's 1 MiB flash (so ariel's checks before gcc pass them), all three (1.35 MB)
    do not, which the link finds: the error says fp16 was tried; no output is left. (The
    second float stage is a copy of the file: two stages of one file at one precision would
    be one model, its stages reading different outputs.)"""
    model = MODELS / "ad_autoencoder_toycar.onnx"
    copy = tmp_path / "copy.onnx"
    shutil.copyfile(model, copy)
    result = CliRunner().invoke(main, [
        "build", "--stage", f"{model}:int8", "--stage", f"{model}:float", "--stage",
        f"{copy}:float", "--calib", "toycar", "--threshold", "1,1", "--float-weights", "fp16",
        "--board", "netduinoplus2", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "FLASH overflowed by" in result.stderr
    assert "even with the float weights at half precision" in result.stderr
    assert not (tmp_path / "out").exists()


def test_half_weights_refused_where_they_cannot_apply(tmp_path):
    conv = single_node_model("Conv", {"x": np.zeros((1, 1, 4, 4), np.float32)},
                             {"w": np.full((2, 1, 3, 3), 1e5, np.float32)})
    onnx.save(conv, tmp_path / "conv.onnx")
    with pytest.raises(ArielError, match="Conv 'conv_node' has a weight of magnitude 100000, "
                                         "beyond float16's largest value 65504"):
        compile_model(tmp_path / "conv.onnx", Options(float_weights="fp16"))
    with pytest.raises(ArielError, match="an int8 model has none"):
        compile_model(tmp_path / "conv.onnx", Options(precision="int8", calibration="x",
                                                      float_weights="fp16"))
