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
    result = runner.invoke(main, ["build", str(model), "-o", str(tmp_path / "out")])
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
    page = (tmp_path / "out" / "profile.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert page.count("<rect") == len(report["layers"])
