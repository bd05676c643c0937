"""Early exits in the firmware: the dispatcher runs one model segment by segment (int8, or
float) and checks each exit's margin against its threshold; its decisions in QEMU equal
the Python simulation input by input; a stage's measured cost is its segment's increment,
and reaching the final output through the exits costs the sum of the segments, not a rerun
of the backbone per exit."""

import shutil

import numpy as np
import onnx
import pytest

from codegen.ari.build import build_ari
from codegen.ari.calibrate import calibrate, measure_costs, set_thresholds
from codegen.ari.host import stage_scores
from codegen.ari.margins import answers, margins
from codegen.ari.margins import simulate as simulate_dispatch
from codegen.ari.measure import measure_dispatch
from codegen.ari.spec import AriOptions, Stage
from codegen.compiler.quant.calibrate import CalibrationData
from codegen.run.profiling import run_profile
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board
from tests.ari.exit_models import inputs, two_exit_cnn

pytestmark = pytest.mark.qemu
BOARD = "nucleo-l4r5zi"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exits")
    onnx.save(two_exit_cnn(), folder / "ee.onnx")
    np.save(folder / "calib.npy", inputs(64, seed=1))
    return folder


def _build(folder, name, stages, board=BOARD):
    """An adaptive build with every threshold at +inf (every stage runs)."""
    options = AriOptions(stages, calibration=str(folder / "calib.npy"))
    build_ari(options, get_board(board), folder / name)
    return open_build(folder / name)


def _spread_thresholds(scores):
    """Thresholds that leave some inputs to each stage: each exit answers the third of the
    inputs still pending with the largest margins."""
    pending = np.ones(len(scores[0]), bool)
    thresholds = []
    for stage_scores_ in scores[:-1]:
        margin = margins(stage_scores_, "top2")
        threshold = float(np.quantile(margin[pending], 2 / 3))
        thresholds.append(threshold)
        pending &= margin < np.float32(threshold)
    return thresholds


def _check_firmware_equals_simulation(build, x):
    scores = stage_scores(build, x)
    thresholds = _spread_thresholds(scores)
    set_thresholds(build, thresholds, "spread over the test inputs")
    firmware_scores, stage, margin = simulate(open_build(build.folder), [x]).outputs
    expected = simulate_dispatch(scores, thresholds, "top2")
    np.testing.assert_array_equal(stage.ravel(), expected.stage)
    np.testing.assert_array_equal(margin.ravel(), expected.margin)
    np.testing.assert_array_equal(answers(firmware_scores.reshape(len(x), -1), "top2"),
                                  expected.answer)
    assert set(expected.stage) == set(range(len(scores)))  # every stage answers some inputs
    return expected


def test_int8_exits_then_float_decide_as_the_simulation(folder):
    """exit 1 int8 -> exit 2 int8 -> final int8 -> final float. `ariel simulate --profile`
    of the build counts each input's own stages: per inference, what the dispatcher's
    measurement counts for the stages the simulation says it ran."""
    ee = folder / "ee.onnx"
    build = _build(folder, "int8", [Stage(ee, "int8", "ariel_exit1"),
                                    Stage(ee, "int8", "ariel_exit2"), Stage(ee, "int8"),
                                    Stage(ee, "float")])
    x = inputs(90, seed=4)
    expected = _check_firmware_equals_simulation(build, x)
    picked = [int(np.flatnonzero(expected.stage == s)[0]) for s in range(4)]
    build = open_build(build.folder)
    report = run_profile(build, [x[picked]], 600)
    measured = measure_dispatch(build, x[picked], expected.stage[picked])
    assert report.per_inference_instructions == list(measured.instructions)
    assert len(report.layers) == len(build.info.kernels)  # the last input ran them all
    assert any("an adaptive build" in note for note in report.assumptions)


@pytest.mark.parametrize("board", [BOARD, "nucleo-g071rb"])
def test_float_exits_decide_as_the_simulation(folder, board):
    """exit 1 float -> exit 2 float -> final float: the float segments' margins, with a
    floating-point unit (Cortex-M4F) and without (Cortex-M0+, float in software)."""
    ee = folder / "ee.onnx"
    build = _build(folder, f"float-{board}", [Stage(ee, "float", "ariel_exit1"),
                                              Stage(ee, "float", "ariel_exit2"),
                                              Stage(ee, "float")], board)
    _check_firmware_equals_simulation(build, inputs(90, seed=5))


def test_escalating_within_a_precision_does_not_recompute_the_backbone(folder):
    """Stage costs measured in QEMU (exact instruction counts): in the segmented build each
    exit stage costs its segment's increment, and an input answered by the final int8 output
    costs exactly the sum of the three segments; the same stages as three separate models
    (copies of the file, so not grouped) rerun the backbone at every step and cost far more.
    Calibration takes the increments and chooses thresholds that agree on every input."""
    ee = folder / "ee.onnx"
    copies = [folder / f"copy{i}.onnx" for i in (1, 2)]
    for copy in copies:
        shutil.copyfile(ee, copy)
    segmented = _build(folder, "segmented", [Stage(ee, "int8", "ariel_exit1"),
                                             Stage(ee, "int8", "ariel_exit2"),
                                             Stage(ee, "int8")])
    rerun = _build(folder, "rerun", [Stage(ee, "int8", "ariel_exit1"),
                                     Stage(copies[0], "int8", "ariel_exit2"),
                                     Stage(copies[1], "int8")])
    x = inputs(6, seed=6)
    data = CalibrationData({"input": x}, None, "test inputs")
    ours = [c.instructions for c in measure_costs(segmented, data, 600)]
    theirs = [c.instructions for c in measure_costs(rerun, data, 600)]
    # The first exit runs the same kernels either way; an int8 Conv may copy its filters
    # to RAM where its plan leaves room (OpDef.room), and the two plans leave different room.
    assert ours[0] == pytest.approx(theirs[0], rel=0.03)
    assert ours[2] < 0.75 * theirs[2] and sum(ours) < 0.75 * sum(theirs)
    # An input that runs every stage costs the sum of the segments, measured per inference,
    # plus the dispatcher's own work between kernels (three margins, the calls, the result
    # copied): a few hundred instructions, the same for every input.
    last = np.full(len(x), 2)
    measured = measure_dispatch(segmented, x, last)
    again = measure_dispatch(rerun, x, last)
    np.testing.assert_array_equal(measured.stage, last)
    for run, costs in ((measured, ours), (again, theirs)):
        overhead = run.instructions - sum(costs)
        assert (overhead == overhead[0]).all() and 0 <= overhead[0] < 0.01 * sum(costs)
    assert measured.instructions.max() < 0.75 * again.instructions.min()
    print(f"stage costs (instructions): segmented {ours}, rerun {theirs}; per inference "
          f"to the final output {measured.instructions.max():,.0f} against "
          f"{again.instructions.max():,.0f}")
    held_out = CalibrationData({"input": inputs(40, seed=7)}, None, "held out")
    result = calibrate(segmented, held_out)
    assert [c.instructions for c in result.costs] == pytest.approx(ours, rel=1e-3)
    scores = stage_scores(segmented, held_out.inputs["input"])
    dispatch = simulate_dispatch(scores, result.thresholds, "top2")
    assert (dispatch.answer == answers(scores[-1], "top2")).all()
