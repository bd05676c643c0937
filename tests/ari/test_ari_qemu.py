"""Adaptive builds end to end: the firmware's decisions in QEMU equal the Python simulation
of the dispatcher input by input; calibration picks the smallest threshold with full
agreement; bad stage lists, thresholds and calibration data are refused clearly."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from codegen.ari.build import build_ari
from codegen.ari.calibrate import calibrate, set_thresholds
from codegen.ari.host import stage_scores
from codegen.ari.margins import answers, margins
from codegen.ari.margins import simulate as simulate_dispatch
from codegen.ari.spec import AriOptions, Stage, ari_stages
from codegen.cli import main
from codegen.compiler.quant.calibrate import CalibrationData
from codegen.datasets import basic_motions, digits_split
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board

pytestmark = pytest.mark.qemu
MODELS = data_dir("examples") / "models"
DIGITS = MODELS / "digits_cnn.onnx"


@pytest.fixture(scope="module")
def digits_ari(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ari") / "out"
    options = AriOptions(ari_stages(DIGITS), calibration="digits", thresholds=[9.0])
    build_ari(options, get_board("nucleo-l4r5zi"), folder)
    return open_build(folder)


def test_firmware_decisions_equal_the_simulation(digits_ari):
    x = digits_split()[2][:, None]  # all 540 held-out digits
    scores, stage, margin = simulate(digits_ari, [x]).outputs
    expected = simulate_dispatch(stage_scores(digits_ari, x), [9.0], "top2")
    np.testing.assert_array_equal(stage.ravel(), expected.stage)
    np.testing.assert_array_equal(margin.ravel(), expected.margin)
    np.testing.assert_array_equal(answers(scores.reshape(len(x), -1), "top2"), expected.answer)
    assert 0 < expected.stage.mean() < 1  # both stages answer some inputs


def test_calibration_reaches_full_agreement_with_the_smallest_threshold(digits_ari):
    _, _, x_test, y_test = digits_split()
    held_out = CalibrationData({"input": x_test[:270, None]}, y_test[:270], "test half")
    result = calibrate(digits_ari, held_out)
    assert result.chosen.agreement == 1.0
    smaller = [p for p in result.points if p.threshold < result.chosen.threshold]
    assert all(p.agreement < 1.0 for p in smaller)
    assert [c.label for c in result.costs] == ["digits_cnn:int8", "digits_cnn:float"]
    assert all(c.energy_uj > 0 for c in result.costs)
    metadata = json.loads((digits_ari.folder / "ariel.json").read_text())
    assert metadata["ari"]["thresholds"] == result.thresholds
    # The firmware now holds the chosen threshold: its decisions follow it.
    x = x_test[:60, None]
    stage = simulate(open_build(digits_ari.folder), [x]).outputs[1].ravel()
    expected = simulate_dispatch(stage_scores(digits_ari, x), result.thresholds, "top2")
    np.testing.assert_array_equal(stage, expected.stage)


def test_a_margin_equal_to_the_threshold_answers_at_that_stage(digits_ari):
    """The dispatcher answers when the margin reaches the threshold (margin >= threshold):
    with the threshold set to one input's first-stage margin exactly, the firmware answers
    that input at the first stage and sends those of smaller margin on."""
    x = digits_split()[2][:24, None]
    first = margins(stage_scores(digits_ari, x)[0], "top2")
    tie = int(np.argsort(first)[len(first) // 2])
    assert (first < first[tie]).any() and (first > first[tie]).any()
    set_thresholds(digits_ari, [float(first[tie])], "a threshold equal to one input's margin")
    _, stage, margin = simulate(open_build(digits_ari.folder), [x]).outputs
    assert margin.ravel()[tie] == first[tie]
    assert stage.ravel()[tie] == 0
    np.testing.assert_array_equal(stage.ravel(), (first < first[tie]).astype(int))


def test_too_few_calibration_samples(digits_ari):
    x_test = digits_split()[2]
    few = CalibrationData({"input": x_test[:10, None]}, None, "ten")
    with pytest.raises(Exception, match="needs at least 20 held-out inputs"):
        calibrate(digits_ari, few)
    with pytest.raises(Exception, match="needs at least 1000 held-out inputs"):
        calibrate(digits_ari, CalibrationData({"input": x_test[:100, None]}, None, "h"),
                  target_agreement=0.999)


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stderr


def test_bad_stage_lists_and_thresholds(tmp_path):
    mlp = MODELS / "digits_mlp.onnx"  # takes [1, 64]; the CNN takes [1, 1, 8, 8]
    code, err = run(["build", "--stage", f"{DIGITS}:int8", "--stage", f"{mlp}:float",
                     "--calib", "digits", "--threshold", "1", "-o", tmp_path / "o"])
    assert code == 1 and "must read the same input" in err and not (tmp_path / "o").exists()
    code, err = run(["build", DIGITS, "--precision", "ari", "--calib", "digits",
                     "--scores", "probabilities", "--threshold", "1.5", "-o", tmp_path / "o"])
    assert code == 1 and "outside the margin range [0, 1]" in err
    code, err = run(["build", DIGITS, "--precision", "ari", "--calib", "digits",
                     "--threshold", "-2", "-o", tmp_path / "o"])
    assert code == 1 and "outside the margin range" in err
    code, err = run(["build", "--stage", f"{DIGITS}:int4", "-o", tmp_path / "o"])
    assert code == 1 and "is not of the form MODEL.onnx:int8" in err
    assert not (tmp_path / "o").exists()


def test_cascade_of_different_networks(tmp_path):
    """A big-little cascade: two networks on BasicMotions, little int8 then big float."""
    x_train, _, x_test, _ = basic_motions()
    np.save(tmp_path / "calib.npy", x_train)
    stages = [Stage(MODELS / "basic_motions_little.onnx", "int8"),
              Stage(MODELS / "basic_motions_big.onnx", "float")]
    # The little network's margins on the test recordings run from about 1.5 to 4: a
    # threshold inside them sends some recordings on to the big network and not others.
    options = AriOptions(stages, calibration=str(tmp_path / "calib.npy"), thresholds=[2.5])
    build_ari(options, get_board("mps2-an386"), tmp_path / "out")
    folder = open_build(tmp_path / "out")
    x = x_test[:, None]
    stage = simulate(folder, [x]).outputs[1].ravel()
    expected = simulate_dispatch(stage_scores(folder, x), [2.5], "top2")
    assert 0 < expected.stage.mean() < 1
    np.testing.assert_array_equal(stage, expected.stage)


def test_stages_from_a_config_file(tmp_path):
    """--stages FILE.toml: the stages and thresholds of a cascade from a file (model paths
    relative to it); a file missing a precision, giving some thresholds but not all, or
    giving thresholds that --threshold gives too, is refused before anything is built."""
    x_train = basic_motions()[0]
    np.save(tmp_path / "calib.npy", x_train)
    config = tmp_path / "cascade.toml"
    config.write_text(f'[[stage]]\nmodel = "{MODELS / "basic_motions_little.onnx"}"\n'
                      'precision = "int8"\nthreshold = 2.5\n\n'
                      f'[[stage]]\nmodel = "{MODELS / "basic_motions_big.onnx"}"\n'
                      'precision = "float"\n')
    code, err = run(["build", "--stages", config, "--calib", tmp_path / "calib.npy",
                     "-o", tmp_path / "out"])
    assert code == 0, err
    ari = json.loads((tmp_path / "out" / "ariel.json").read_text())["ari"]
    assert [(s["file"], s["precision"]) for s in ari["stages"]] == [("stage0.onnx", "int8"),
                                                                    ("stage1.onnx", "float")]
    assert ari["thresholds"] == [2.5]
    # The int8 stage's float islands are listed (none: every kernel is integer); float: null.
    assert [s["float_islands"] for s in ari["stages"]] == [[], None]

    code, err = run(["build", "--stages", config, "--calib", tmp_path / "calib.npy",
                     "--threshold", "1", "-o", tmp_path / "o"])
    assert code == 1 and "give them in one place" in err
    config.write_text('[[stage]]\nmodel = "a.onnx"\n\n[[stage]]\nmodel = "b.onnx"\n'
                      'precision = "float"\n')
    code, err = run(["build", "--stages", config, "-o", tmp_path / "o"])
    assert code == 1 and "stage 0 needs model" in err
    config.write_text('[[stage]]\nmodel = "a.onnx"\nprecision = "int8"\n\n'
                      '[[stage]]\nmodel = "b.onnx"\nprecision = "int8"\nthreshold = 1\n\n'
                      '[[stage]]\nmodel = "c.onnx"\nprecision = "float"\n')
    code, err = run(["build", "--stages", config, "-o", tmp_path / "o"])
    assert code == 1 and "for every stage but the last" in err
    assert not (tmp_path / "o").exists()
