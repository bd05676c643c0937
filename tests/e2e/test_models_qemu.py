"""The four MLPerf Tiny models end to end: `ariel build` for the default board, `ariel
simulate` in QEMU, outputs compared with onnxruntime on the same inputs; and the two digits
models (exported from PyTorch and from skl2onnx) on the other boards, on real digits.

Inputs: the anomaly-detection model gets real ToyCar log-mel windows (examples/data). No
images or speech ship with MLPerf Tiny, so the other three get seeded random inputs in the
ranges their training data used (ResNet-8 raw pixels 0..255, VWW pixels 0..1, KWS MFCC
features about -123..26, as their int8 releases state)."""

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.datasets import digits_split, toycar_windows
from codegen.resources import data_dir

pytestmark = pytest.mark.qemu

MODELS = data_dir("examples") / "models"


def inputs_for(model: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    if model == "ad_autoencoder_toycar":
        return toycar_windows()[::49][:4].reshape(4, 1, 640)
    if model.startswith("digits"):
        x_test = digits_split()[2][:6]
        return x_test.reshape(6, 1, 64) if model == "digits_mlp" else x_test[:, None]
    low, high, shape = {
        "resnet8_cifar10": (0.0, 255.0, (1, 3, 32, 32)),
        "vww_mobilenet_96": (0.0, 1.0, (1, 3, 96, 96)),
        "kws_dscnn": (-123.0, 26.0, (1, 1, 49, 10)),
    }[model]
    return rng.uniform(low, high, size=(3, *shape)).astype(np.float32)


def onnxruntime_outputs(model_path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.stack([session.run(None, {name: sample})[0] for sample in x])


@pytest.mark.parametrize("model,board", [
    ("resnet8_cifar10", "mps2-an386"), ("ad_autoencoder_toycar", "mps2-an386"),
    ("vww_mobilenet_96", "mps2-an386"), ("kws_dscnn", "mps2-an386"),
    # A CNN exported from PyTorch and an MLP from skl2onnx, on the other two boards.
    ("digits_cnn", "netduinoplus2"), ("digits_mlp", "mps2-an500"),
])
def test_model_in_qemu_matches_onnxruntime(model, board, tmp_path):
    path = MODELS / f"{model}.onnx"
    out = tmp_path / "build"
    runner = CliRunner()
    result = runner.invoke(main, ["build", str(path), "--board", board, "-o", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    assert f"Memory on {board}" in result.stdout

    x = inputs_for(model)
    np.save(tmp_path / "x.npy", x)
    result = runner.invoke(main, ["simulate", str(out), "--inputs", str(tmp_path / "x.npy"),
                                  "--outputs", str(tmp_path / "y.npy"),
                                  "--json", str(tmp_path / "run.json")])
    assert result.exit_code == 0, result.output + result.stderr
    _check_stack_need_against_the_run(out, tmp_path / "run.json")
    got = np.load(tmp_path / "y.npy")
    want = onnxruntime_outputs(path, x)
    assert got.shape == want.shape
    if model == "ad_autoencoder_toycar":
        span = want.max() - want.min()
        assert np.abs(got - want).max() / span < 1e-5
    else:
        assert np.abs(got - want).max() < 1e-4
        assert (got.argmax(-1) == want.argmax(-1)).all()


def _check_stack_need_against_the_run(out: Path, run_json: Path) -> None:
    """The stack the build computed from the code (gcc's frames over the ELF's call graph)
    holds what the run measured (the painted stack's high-water mark), and is no more than
    an exception's allowance and a few words above it: the deepest chain is the one that
    runs."""
    stack = json.loads((out / "ariel.json").read_text())["stack"]
    measured = json.loads(run_json.read_text())["stack"]
    assert measured["reserved"] == stack["reserved"] >= stack["need"]
    assert stack["need"] >= measured["high_water"]
    assert stack["deepest_chain"] - measured["high_water"] <= 32, (stack, measured)
    assert stack["unbounded"] == []


def test_real_model_too_big_for_a_small_board(tmp_path):
    """The autoencoder's float weights (1.06 MB) cannot fit the STM32F405's 1 MiB flash."""
    result = CliRunner().invoke(main, ["build", str(MODELS / "ad_autoencoder_toycar.onnx"),
                                       "--board", "netduinoplus2", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "does not fit netduinoplus2" in result.stderr
    assert "FLASH overflowed by" in result.stderr
    assert not (tmp_path / "o").exists()
