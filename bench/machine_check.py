"""Benchmark: the power-cut emulator's machine (unicorn) against QEMU on the four MLPerf Tiny
models in int8 (SMLAD, SXTB16, SSAT) and float (VFP), built for NUCLEO-L4R5ZI: the outputs
must be equal bit for bit and the instruction counts equal to QEMU's counting plugin's.

    .venv/bin/python bench/machine_check.py [--models resnet8_cifar10,...] [--inferences 2]

Prints one row per build with both counts and both wall times; exits 1 if any differs."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.build import build  # noqa: E402
from codegen.compiler.compile import Options  # noqa: E402
from codegen.run.emulate.counting import count_instructions  # noqa: E402
from codegen.run.power_cuts import run_uninterrupted  # noqa: E402
from codegen.run.simulate import open_build, read_outputs, write_inputs  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402
from tests.e2e.test_int8_qemu import calibration_and_tests  # noqa: E402

MODELS = ["resnet8_cifar10", "vww_mobilenet_96", "kws_dscnn", "ad_autoencoder_toycar"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--inferences", type=int, default=2)
    args = parser.parse_args()
    board = get_board("nucleo-l4r5zi")
    differ = 0
    print("| model | precision | QEMU instructions | unicorn instructions | outputs | "
          "QEMU s | unicorn s |\n|---|---|---:|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="ariel-machine-") as temporary:
        folder = Path(temporary)
        for model in args.models.split(","):
            calibration, tests = calibration_and_tests(model)
            np.save(folder / "calib.npy", calibration.astype(np.float32))
            for precision in ("int8", "float"):
                options = Options(precision="int8", calibration=str(folder / "calib.npy")) \
                    if precision == "int8" else Options()
                out = folder / f"{model}-{precision}"
                build(ROOT / "examples" / "models" / f"{model}.onnx", board, out, options)
                built = open_build(out)
                x = tests[:args.inferences].astype(np.float32)
                inputs = [x.reshape(len(x), *built.info.inputs[0].shape)]
                work = folder / f"{model}-{precision}-run"
                work.mkdir()
                write_inputs(work, inputs)
                start = time.monotonic()
                qemu = count_instructions(built.board, built.elf, work)
                qemu_seconds = time.monotonic() - start
                want = read_outputs(work, built.info, len(x))
                start = time.monotonic()
                run = run_uninterrupted(built, inputs)
                seconds = time.monotonic() - start
                same = all(a.tobytes() == b.tobytes()
                           for a, b in zip(want, run.outputs, strict=True))
                differ += not same or qemu.total != run.instructions
                print(f"| {model} | {precision} | {qemu.total:,} | {run.instructions:,} | "
                      f"{'equal' if same else 'DIFFERENT'} | {qemu_seconds:.2f} | "
                      f"{seconds:.2f} |", flush=True)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
