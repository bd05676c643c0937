"""Benchmark: ConvTranspose on U-Net-sized layers, profiled in QEMU. Prints, per layer, the
instructions of ariel's kernel (phases of Conv kernels: each output pixel sums only the
taps that reach it) against the direct kernel that checks every tap of every output pixel
(the one ariel uses for filters computed at run time: the naive gather), in float32, and
ariel's int8 kernel for scale.

    .venv/bin/python bench/conv_transpose.py [--board mps2-an386]

Instructions are exact counts from the emulator, for the ConvTranspose kernel alone (the
layout copies around it are left out); cycles are the board's estimate."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.build import build  # noqa: E402
from codegen.compiler.compile import Options  # noqa: E402
from codegen.run.profiling import run_profile  # noqa: E402
from codegen.run.simulate import open_build  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402
from tests.support import single_node_model  # noqa: E402

# name: (input [C, H, W], filters [C, M, k, k], attributes)
LAYERS = {
    "U-Net up, k2 s2, 32->16, 14x14->28x28": ((32, 14, 14), (32, 16, 2, 2), dict(strides=[2, 2])),
    "k3 s2 p1 op1, 16->8, 14x14->28x28": ((16, 14, 14), (16, 8, 3, 3),
                                         dict(strides=[2, 2], pads=[1, 1, 1, 1],
                                              output_padding=[1, 1])),
    "k4 s2 p1, 16->16, 8x8->16x16": ((16, 8, 8), (16, 16, 4, 4),
                                     dict(strides=[2, 2], pads=[1, 1, 1, 1])),
}


def layer_model(spec, runtime_filters: bool) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    x_shape, w_shape, attrs = spec
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, *x_shape)).astype(np.float32)
    w = rng.uniform(-0.2, 0.2, w_shape).astype(np.float32)
    b = rng.uniform(-0.1, 0.1, w_shape[1]).astype(np.float32)
    if runtime_filters:
        return single_node_model("ConvTranspose", {"x": x, "w": w}, {"b": b}, **attrs), [x, w]
    return single_node_model("ConvTranspose", {"x": x}, {"w": w, "b": b}, **attrs), [x]


def measure(spec, variant: str, board: str, folder: Path) -> dict:
    model, inputs = layer_model(spec, runtime_filters=variant == "naive float32")
    path = folder / f"{variant.replace(' ', '_')}.onnx"
    onnx.save(model, path)
    options = Options()
    if variant == "int8":
        np.save(folder / "calib.npy", np.random.default_rng(1).uniform(
            -1, 1, (16, *inputs[0].shape)).astype(np.float32))
        options = Options(precision="int8", calibration=str(folder / "calib.npy"))
    out = folder / path.stem
    build(path, get_board(board), out, options)
    report = run_profile(open_build(out), [x[None] for x in inputs], timeout=900)
    row = next(r for r in report.layers if r.op == "ConvTranspose")
    return {"instructions": row.instructions, "cycles": row.cycles, "macs": row.macs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", default="mps2-an386")
    args = parser.parse_args()
    print(f"{'layer':<40}{'kernel':<16}{'MACs':>10}{'instructions':>14}{'instr/MAC':>11}"
          f"{'cycles':>12}{'vs naive':>10}")
    with tempfile.TemporaryDirectory(prefix="ariel-bench-") as folder:
        for name, spec in LAYERS.items():
            naive = None
            for variant in ("naive float32", "phases float32", "int8"):
                row = measure(spec, variant, args.board, Path(folder))
                naive = naive or row["instructions"]
                cycles = f"{row['cycles']:>12,.0f}" if row["cycles"] else f"{'-':>12}"
                print(f"{name:<40}{variant:<16}{row['macs']:>10,}{row['instructions']:>14,.0f}"
                      f"{row['instructions'] / row['macs']:>11.2f}{cycles}"
                      f"{naive / row['instructions']:>9.1f}x")


if __name__ == "__main__":
    main()
