"""Benchmark: elementwise kernels on a 16x16x16 tensor (4,096 elements), float32 and int8,
profiled in QEMU. Prints, per kernel, instructions per element and the flash its constants
take: the float activations (libm's expf, erff, tanhf, log1pf) against their int8 tables,
PRelu per channel as two requantizations against one slope's table, Where's branches moved
to the output's scale against a branch already at it, and the squeeze-excite Mul.

    .venv/bin/python bench/elementwise.py [--board mps2-an386]

Instructions are exact counts from the emulator (the float inputs are random normal values;
libm's cost depends a little on the value)."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.build import build  # noqa: E402
from codegen.compiler.compile import Options  # noqa: E402
from codegen.run.profiling import run_profile  # noqa: E402
from codegen.run.simulate import open_build  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402
from tests.compiler.ops.test_elementwise_unary import model_of  # noqa: E402
from tests.compiler.ops.test_quantize import minmax_params, with_qdq  # noqa: E402
from tests.support import run_reference  # noqa: E402

SHAPE = (1, 16, 16, 16)
ELEMENTS = int(np.prod(SHAPE))
BYTES = {"int8_t": 1, "uint8_t": 1, "int32_t": 4, "float": 4}
node = helper.make_node

# (label, node); every node reads x (and s, c, z), writes its own output.
ROWS = [
    ("HardSwish", node("HardSwish", ["x"], ["y0"])),
    ("HardSigmoid", node("HardSigmoid", ["x"], ["y1"])),
    ("Sigmoid", node("Sigmoid", ["x"], ["y2"])),
    ("Gelu", node("Gelu", ["x"], ["y3"])),
    ("Erf", node("Erf", ["x"], ["y4"])),
    ("Exp", node("Exp", ["x"], ["y5"])),
    ("Mish", node("Mish", ["x"], ["y6"])),
    ("PRelu, one slope per channel", node("PRelu", ["x", "slopes"], ["y7"])),
    ("PRelu, one slope", node("PRelu", ["x", "slope"], ["y8"])),
    ("Where, branches rescaled", node("Where", ["c", "x", "z"], ["y9"])),
    ("Where, x at the output's scale", node("Where", ["c", "x", "z"], ["y10"])),
    ("Mul, per channel (squeeze-excite)", node("Mul", ["x", "s"], ["y11"])),
]


def float_model(rng) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    inputs = {"x": rng.normal(0, 1.5, SHAPE).astype(np.float32),
              "s": rng.uniform(0, 1, (1, 16, 1, 1)).astype(np.float32),
              "c": rng.random(SHAPE) > 0.5,
              "z": rng.normal(0, 3, SHAPE).astype(np.float32)}
    constants = {"slopes": rng.uniform(-0.5, 0.5, (16, 1, 1)).astype(np.float32),
                 "slope": np.array([0.25], np.float32)}
    return model_of([n for _, n in ROWS], inputs, constants, opset=20), inputs


def int8_model(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The model with Q/DQ pairs at MinMax parameters of its values on `inputs`; y10 shares
    x's parameters, so its Where copies x's branch as it is."""
    outputs = run_reference(model, list(inputs.values()))
    params = {name: minmax_params(value) for name, value in inputs.items() if name != "c"}
    params.update({f"y{k}": minmax_params(v) for k, v in enumerate(outputs)})
    params["y10"] = params["x"]
    return with_qdq(model, params)


def profile(model: onnx.ModelProto, inputs: dict[str, np.ndarray], precision: str,
            board: str, folder: Path) -> dict[str, tuple[float, int]]:
    """Instructions per element and constant bytes of each row's kernel."""
    path = folder / f"{precision}.onnx"
    onnx.save(model, path)
    out = folder / precision
    build(path, get_board(board), out, Options(precision=precision))
    built = open_build(out)
    report = run_profile(built, [inputs[i.name][None] for i in built.info.inputs], timeout=600)
    arrays = re.findall(r"const (\w+) (\w+)\[(\d+)\]",
                        (out / "model" / f"{built.info.prefix}_weights.c").read_text())
    layers = [r for r in report.layers if r.op in {n.op_type for _, n in ROWS}]
    result = {}
    for (label, _), layer in zip(ROWS, layers, strict=True):
        prefix = f"{built.info.prefix}_n{layer.index:02d}_"
        size = sum(int(count) * BYTES[ctype] for ctype, name, count in arrays
                   if name.startswith(prefix))
        result[label] = (layer.instructions / ELEMENTS, size)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", default="mps2-an386")
    args = parser.parse_args()
    model, inputs = float_model(np.random.default_rng(0))
    with tempfile.TemporaryDirectory(prefix="ariel-bench-") as folder:
        floats = profile(model, inputs, "float", args.board, Path(folder))
        ints = profile(int8_model(model, inputs), inputs, "int8", args.board, Path(folder))
    print(f"{'kernel (' + args.board + ')':<38}{'float32 instr/elem':>20}"
          f"{'int8 instr/elem':>17}{'int8 constants':>16}")
    for label, _ in ROWS:
        print(f"{label:<38}{floats[label][0]:>20.1f}{ints[label][0]:>17.1f}"
              f"{ints[label][1]:>14,} B")


if __name__ == "__main__":
    main()
