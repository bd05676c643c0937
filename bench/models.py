"""Benchmark: the four MLPerf Tiny models in float32 and int8, profiled in QEMU. Prints, per
model and precision, total instructions per inference, instructions per MAC, and (where the
board's core has a cycle model) estimated cycles per MAC and latency: with the board's flash
model where its board file describes the flash caches (the RAM-speed cycles and the share
lost to flash beside), else with flash waits bounded.

    .venv/bin/python bench/models.py [--board nucleo-l4r5zi] [--json results.json]

Instructions are exact counts from the emulator; cycles are estimates from the core's
table-driven model. Inputs and calibration data are those of tests/e2e/test_int8_qemu.py."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.build import build  # noqa: E402
from codegen.compiler.compile import Options  # noqa: E402
from codegen.run.profiling import run_profile  # noqa: E402
from codegen.run.simulate import open_build  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402
from tests.e2e.test_int8_qemu import calibration_and_tests  # noqa: E402

MODELS = ["resnet8_cifar10", "vww_mobilenet_96", "kws_dscnn", "ad_autoencoder_toycar"]


def measure(model: str, precision: str, board_name: str, folder: Path) -> dict:
    calibration, tests = calibration_and_tests(model)
    path = ROOT / "examples" / "models" / f"{model}.onnx"
    options = Options()
    if precision == "int8":
        np.save(folder / "calib.npy", calibration.astype(np.float32))
        options = Options(precision="int8", calibration=str(folder / "calib.npy"))
    out = folder / f"{model}-{precision}"
    build(path, get_board(board_name), out, options)
    built = open_build(out)
    shape = built.info.inputs[0].shape
    x = tests[:1].astype(np.float32).reshape(1, *shape)
    report = run_profile(built, [x], timeout=600)
    return {"model": model, "precision": precision, "board": board_name,
            "macs": report.total_macs, "instructions": report.total_instructions,
            "cycles": report.total_cycles, "time_ms": report.time_ms,
            "energy_uj": report.energy_uj, "ram_cycles": report.total_ram_cycles,
            "flash_model": report.flash_model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", default="mps2-an386")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ariel-bench-") as folder:
        for model in MODELS:
            for precision in ("float", "int8"):
                rows.append(measure(model, precision, args.board, Path(folder)))
                print_row(rows[-1], header=len(rows) == 1)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def print_row(row: dict, header: bool) -> None:
    if header:
        print(f"{'model':<24}{'precision':<10}{'MACs':>12}{'instructions':>15}"
              f"{'instr/MAC':>10}{'cycles':>15}{'cyc/MAC':>9}{'est. ms':>10}{'est. uJ':>10}"
              f"{'RAM-speed':>15}{'flash':>7}")
    cycles, ram = row["cycles"], row["ram_cycles"]
    flash = (f"{ram:>15,.0f}{(cycles - ram) / cycles:>7.1%}" if row["flash_model"]
             else f"{'(bounded)':>15}{'-':>7}")
    print(f"{row['model']:<24}{row['precision']:<10}{row['macs']:>12,}"
          f"{row['instructions']:>15,.0f}{row['instructions'] / row['macs']:>10.2f}"
          + (f"{cycles:>15,.0f}{cycles / row['macs']:>9.2f}{row['time_ms']:>10.2f}"
             if cycles is not None else f"{'-':>15}{'-':>9}{'-':>10}")
          + (f"{row['energy_uj']:>10.1f}" if row["energy_uj"] is not None else f"{'-':>10}")
          + (flash if cycles is not None else ""),
          flush=True)


if __name__ == "__main__":
    main()
