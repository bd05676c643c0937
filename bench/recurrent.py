"""The recurrent keyword spotters three ways, measured in QEMU on the default board:

    .venv/bin/python bench/recurrent.py [--board B]

float (the float model), int8 with the recurrent layer a float island (ONNX Runtime's QDQ
model as its quantizer writes it: the LSTM or GRU keeps float weights), and int8 as ariel
builds it (the recurrent layer's weights int8, its state float, products on the packed int8
helpers). For each: instructions per inference (QEMU, exact), weights and arena bytes, and
agreement with the float model in onnxruntime over the held-out MFCC-like windows of the
ToyCar recording (same top class, largest logit difference relative to the logits' range).
Calibration takes every third window; the other two thirds are held out."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.cli import main as ariel  # noqa: E402
from codegen.compiler.quant.calibrate import CalibrationData, quantize_float_model  # noqa: E402
from codegen.datasets import toycar_mfcc_windows  # noqa: E402

MODELS = ROOT / "examples" / "models"
SPOTTERS = ("kws_gru", "kws_lstm")


def run(args: list[str]) -> str:
    result = CliRunner().invoke(ariel, args)
    if result.exit_code != 0:
        raise SystemExit(f"ariel {' '.join(args)} failed:\n{result.output}{result.stderr}")
    return result.stdout


def measure(build_args: list[str], held_out: np.ndarray, folder: Path) -> dict:
    out = folder / "build"
    run(["build", *build_args, "-o", str(out)])
    np.save(folder / "x.npy", held_out)
    run(["simulate", str(out), "--inputs", str(folder / "x.npy"), "--outputs",
         str(folder / "y.npy")])
    np.save(folder / "few.npy", held_out[:4])
    run(["simulate", str(out), "--inputs", str(folder / "few.npy"), "--profile", "--json",
         str(folder / "profile.json")])
    profile = json.loads((folder / "profile.json").read_text())
    info = json.loads((out / "ariel.json").read_text())["model_info"]
    return {"instructions": profile["total_instructions"], "weights": info["weights_bytes"],
            "arena": info["arena_size"], "outputs": np.load(folder / "y.npy")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="mps2-an386")
    args = parser.parse_args()

    windows = toycar_mfcc_windows()[:, None]
    calibration, held_out = windows[1::3], np.delete(windows, np.s_[1::3], axis=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ariel-bench-recurrent-") as scratch:
        scratch = Path(scratch)
        np.save(scratch / "calib.npy", calibration)
        for name in SPOTTERS:
            path = MODELS / f"{name}.onnx"
            session = onnxruntime.InferenceSession(str(path),
                                                   providers=["CPUExecutionProvider"])
            reference = np.stack([session.run(None, {"mfcc": x})[0] for x in held_out])
            island = scratch / f"{name}_island_qdq.onnx"
            data = CalibrationData({"mfcc": calibration}, None, "bench")
            onnx.save(quantize_float_model(onnx.load(str(path)), data,
                                           recurrent_weights=False), island)
            variants = {
                "float": [str(path)],
                "int8, float island": [str(island), "--precision", "int8"],
                "int8, int8 weights": [str(path), "--precision", "int8", "--calib",
                                       str(scratch / "calib.npy")],
            }
            for label, build_args in variants.items():
                folder = scratch / f"{name}-{len(rows)}"
                folder.mkdir()
                result = measure([*build_args, "--board", args.board], held_out, folder)
                got = result["outputs"]
                span = float(reference.max() - reference.min())
                rows.append((name, label, result["instructions"], result["weights"],
                             result["arena"], float((got.argmax(-1) == reference.argmax(-1))
                                                    .mean()),
                             float(np.abs(got - reference).max()) / span))
    print(f"{len(held_out)} held-out windows, board {args.board}")
    print(f"{'model':10} {'build':20} {'instructions':>13} {'weights B':>10} {'arena B':>8} "
          f"{'same top class':>15} {'max |diff| / range':>19}")
    for name, label, instructions, weights, arena, agree, diff in rows:
        print(f"{name:10} {label:20} {instructions:>13,.0f} {weights:>10,} {arena:>8,} "
              f"{agree:>14.1%} {diff:>19.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
