"""`ariel simulate --profile`: the per-layer table on the terminal, the same data in --json,
and the HTML report, for a real model; the per-layer counts add up to the inference."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.datasets import digits_split
from codegen.resources import data_dir

pytestmark = pytest.mark.qemu


def test_profile_table_json_and_html(tmp_path):
    runner = CliRunner()
    model = data_dir("examples") / "models" / "digits_cnn.onnx"
    result = runner.invoke(main, ["build", str(model), "--board", "nucleo-l4r5zi", "-o",
                                  str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    np.save(tmp_path / "x.npy", digits_split()[2][:3])
    result = runner.invoke(main, ["simulate", str(tmp_path / "out"), "--inputs",
                                  str(tmp_path / "x.npy"), "--profile", "--json",
                                  str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["inferences"] == 3
    ops = [layer["op"] for layer in report["layers"]]
    assert ops.count("Conv") == 3 and "Gemm" in ops
    per_inference = sum(layer["instructions"] for layer in report["layers"]) + \
        report["between_layers"]
    assert per_inference == pytest.approx(report["total_instructions"])
    for layer in report["layers"]:
        assert layer["op"] in result.stdout
        assert f"{layer['instructions']:,.0f}" in result.stdout
    # Cycles come from the Cortex-M4 table (at least one per instruction), time from the
    # board's 120 MHz for the whole cycles (the estimate, a mean over the runs, is
    # fractional), energy from its 78.0 mW.
    assert report["total_cycles"] >= report["total_instructions"] - report["between_layers"]
    assert report["time_ms"] == pytest.approx(round(report["total_cycles"]) / 120e6 * 1e3,
                                              rel=1e-9)
    assert report["energy_uj"] == pytest.approx(report["time_ms"] * 78.0, rel=1e-6)
    assert sum(layer["cycles"] for layer in report["layers"]) == \
        pytest.approx(report["total_cycles"])
    assert 0 < report["stack_bytes"] < report["stack_reserved"]
    # NUCLEO-L4R5ZI describes its ART accelerator: the estimate simulates it, and each layer
    # shows the RAM-speed cycles beside and the share lost to flash.
    assert report["flash_model"]
    assert report["total_ram_cycles"] < report["total_cycles"]
    for layer in report["layers"]:
        assert layer["cycles"] == pytest.approx(layer["ram_cycles"] + layer["flash_cycles"])
        assert layer["flash_cycles"] >= 0
    assert "RAM-speed" in result.stdout and "at RAM speed:" in result.stdout
    assert "weights in RAM:" in result.stdout
    assert any("ART accelerator" in line for line in report["assumptions"])
    assert any("Arm DDI 0439B" in line for line in report["assumptions"])
    page = (tmp_path / "out" / "profile.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert page.count("<rect") == len(report["layers"])
