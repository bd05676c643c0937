"""`ariel build --tune` (codegen/tune.py): a dense layer's choice between listing its row's
nonzero words and reading every word is measured in the emulator, the faster kept, and the
measurement cached by the layer's signature so that a second build runs no emulator."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest

from codegen import tune as tuning
from codegen.build import build
from codegen.compiler.compile import Options
from codegen.target.boards import get_board
from tests.compiler.ops.test_gemm_listed_s8 import relu_mlp

pytestmark = pytest.mark.qemu


def test_tune_keeps_the_faster_kernel_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv(tuning.CACHE_ENV, str(tmp_path / "tune.json"))
    rng = np.random.default_rng(8)
    onnx.save(relu_mlp(rng), tmp_path / "mlp.onnx")
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (40, 1, 64)).astype(np.float32))
    board = get_board("mps2-an386")
    options = Options(precision="int8", calibration=str(tmp_path / "calib.npy"))
    tuned, notes = tuning.tune(tmp_path / "mlp.onnx", board, options)
    first = build(tmp_path / "mlp.onnx", board, tmp_path / "a", tuned)
    cache = json.loads((tmp_path / "tune.json").read_text())
    assert notes and len(cache) == len(notes) and all("(measured)" in n for n in notes)
    source = first.compiled.files["mlp.c"]
    listing = {node.name: node.listing is not None for node in first.compiled.graph.nodes}
    for note in notes:
        name = note.split("'")[1]
        listed, dense = (float(number.replace(",", "")) for number in re.findall(
            r"([\d,]+) (?:listed|dense)", note))
        # Each layer with a choice lists exactly when it measured faster listed.
        assert listing[name] == (listed < dense) == ("' lists:" in note)

    def no_emulator(*args, **kwargs):
        raise AssertionError("a cached layer was measured again")

    monkeypatch.setattr(tuning, "_measure", no_emulator)
    again, cached = tuning.tune(tmp_path / "mlp.onnx", board, options)
    assert cached == [n.replace("(measured)", "(cached)") for n in notes]
    second = build(tmp_path / "mlp.onnx", board, tmp_path / "b", again)
    assert second.compiled.files["mlp.c"] == source
