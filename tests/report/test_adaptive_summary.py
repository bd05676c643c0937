"""`ariel simulate` on an adaptive build: the inputs each stage answered, the escalation rate,
and the mean and worst cost per inference from the stage costs the build measured."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from codegen.ari.build import build_ari
from codegen.ari.calibrate import measure_costs, set_thresholds
from codegen.ari.spec import AriOptions, ari_stages
from codegen.cli import main
from codegen.compiler.quant.calibrate import CalibrationData
from codegen.datasets import digits_split
from codegen.report.adaptive import format_summary, summarize
from codegen.resources import data_dir
from codegen.run.simulate import open_build
from codegen.target.boards import get_board
from codegen.target.outdir import save_metadata

DIGITS = data_dir("examples") / "models" / "digits_cnn.onnx"
THRESHOLD = 9.0  # inside the int8 stage's margins on the held-out digits: both stages answer


def ari_metadata(costs: list[dict] | None) -> dict:
    stages = [{"model": "/m/cnn.onnx", "precision": "int8"},
              {"model": "/m/cnn.onnx", "precision": "int8", "output": "ariel_exit1"},
              {"model": "/m/cnn.onnx", "precision": "float"}]
    metadata = {"stages": stages, "thresholds": [1.5, 2.0]}
    if costs is not None:
        metadata["calibration_result"] = {"stage_costs": costs}
    return metadata


def test_counts_shares_and_costs_of_a_known_run():
    costs = [{"label": "a", "instructions": 90, "cycles": 100.0, "energy_uj": 1.0},
             {"label": "b", "instructions": 40, "cycles": 50.0, "energy_uj": 0.5},
             {"label": "c", "instructions": 900, "cycles": 1000.0, "energy_uj": 10.0}]
    summary = summarize(ari_metadata(costs), np.array([0, 0, 2, 1, 0, 2, 0, 0]), 1_000_000)
    assert [row.answered for row in summary.stages] == [5, 1, 2]
    assert [row.label for row in summary.stages] == ["cnn:int8", "cnn:int8:ariel_exit1",
                                                     "cnn:float"]
    assert [row.cycles for row in summary.stages] == [100, 150, 1150]
    assert summary.escalated == 3 and summary.escalation == 3 / 8
    # 5 inputs at 100, one at 150, two at 1150 cycles
    assert summary.cycles.mean == pytest.approx((5 * 100 + 150 + 2 * 1150) / 8)
    assert summary.cycles.worst == 1150
    assert summary.time_ms.worst == pytest.approx(1.15)
    assert summary.energy_uj.mean == pytest.approx((5 * 1.0 + 1.5 + 2 * 11.5) / 8)
    text = format_summary(summary)
    assert "escalated past the first stage: 3 of 8 (37.5%)" in text
    assert "worst 1,150 (1.150 ms)" in text


def test_without_recorded_costs_or_power_figures_the_summary_says_so():
    summary = summarize(ari_metadata(None), np.array([0, 1, 2]), 1_000_000)
    assert summary.cycles is None and summary.energy_uj is None
    assert [row.answered for row in summary.stages] == [1, 1, 1]
    assert "no stage costs in this build" in format_summary(summary)
    no_power = [{"cycles": 10.0, "energy_uj": None}] * 3
    summary = summarize(ari_metadata(no_power), np.array([0, 2]), 1_000_000)
    assert summary.cycles.mean == 20 and summary.energy_uj is None
    assert "no power figure" in format_summary(summary)


def test_a_stage_the_build_does_not_have_is_an_error():
    with pytest.raises(Exception, match="reported stage 3 of a build with 3 stages"):
        summarize(ari_metadata(None), np.array([0, 3]), 1_000_000)


@pytest.mark.qemu
def test_simulate_summarizes_an_adaptive_build(tmp_path):
    """On the firmware in QEMU: the counts equal its stage outputs, the means a recomputation
    from the per-stage costs the build measured."""
    folder = tmp_path / "out"
    options = AriOptions(ari_stages(DIGITS), calibration="digits", thresholds=[THRESHOLD])
    build_ari(options, get_board("nucleo-l4r5zi"), folder)
    build = open_build(folder)
    x = digits_split()[2][:80, None]
    costs = measure_costs(build, CalibrationData({"input": x}, None, "test"), 600)
    set_thresholds(build, [THRESHOLD], "the test's threshold")
    metadata = dict(build.metadata)
    metadata["ari"] = {**metadata["ari"],
                       "calibration_result": {"stage_costs": [vars(c) for c in costs]}}
    save_metadata(folder, metadata)
    np.save(tmp_path / "x.npy", x)
    result = CliRunner().invoke(main, ["simulate", str(folder), "--inputs",
                                       str(tmp_path / "x.npy"), "--outputs",
                                       str(tmp_path / "y.npz"), "--json",
                                       str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    stage = np.load(tmp_path / "y.npz")["stage"].reshape(-1)
    assert 0 < stage.mean() < 1  # both stages answered some inputs
    report = json.loads((tmp_path / "r.json").read_text())["adaptive"]
    assert [row["answered"] for row in report["stages"]] == [int((stage == 0).sum()),
                                                             int((stage == 1).sum())]
    assert report["escalated"] == int((stage == 1).sum())
    recorded = json.loads((folder / "ariel.json").read_text())["ari"]["calibration_result"]
    cycles = [c["cycles"] for c in recorded["stage_costs"]]
    energy = [c["energy_uj"] for c in recorded["stage_costs"]]
    per_input = np.where(stage == 0, cycles[0], cycles[0] + cycles[1])
    assert report["cycles"]["mean"] == pytest.approx(per_input.mean(), rel=1e-12)
    assert report["cycles"]["worst"] == pytest.approx(cycles[0] + cycles[1], rel=1e-12)
    energies = np.where(stage == 0, energy[0], energy[0] + energy[1])
    assert report["energy_uj"]["mean"] == pytest.approx(energies.mean(), rel=1e-12)
    assert "Adaptive dispatch on 80 input(s) (thresholds 9)" in result.output
    assert f"escalated past the first stage: {int(stage.sum())} of 80" in result.output
