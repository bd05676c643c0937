"""Benchmark: the four MLPerf Tiny models in float32 and int8, profiled in QEMU. Prints, per
model and precision, total instructions per inference, instructions per MAC, and (where the
board's core has a cycle model) estimated cycles per MAC and latency: with the board's flash
model where its board file describes the flash caches (the RAM-speed cycles and the share
lost to flash beside), else with flash waits bounded. Then, per model and layer type
(depthwise 3x3, 1x1 and 3x3 convolutions, first layers, Adds, quantization, float kernels
of an int8 build, ...), the same estimate per MAC beside the goals of issue 18 and the
kernel each layer took, with a Cortex-M7 and a Cortex-M0+ board's figures in the same rows.

    .venv/bin/python bench/models.py [--board nucleo-l4r5zi] [--also disco-f746ng,...]
        [--models resnet8_cifar10,...] [--precisions int8] [--layers] [--json results.json]
        [--weights-in-ram]

Instructions are exact counts from the emulator; cycles are estimates from the core's
table-driven model. Inputs and calibration data are those of tests/e2e/test_int8_qemu.py.
A model that does not fit a board's memory is shown as such in that board's columns.
The table's figures are those of the first test input; for a model whose kernels' time
depends on the input (dense layers that skip zero inputs), a line under the table gives
the range over every test input and the figure of a --fixed-timing build.
--weights-in-ram builds every model with `ariel build --weights-in-ram` (weights copied to
RAM at reset, read without flash wait states); its rows say so in the precision column
("int8 ram")."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.build import build  # noqa: E402
from codegen.compiler.compile import Options  # noqa: E402
from codegen.compiler.ir import Graph  # noqa: E402
from codegen.errors import ArielError  # noqa: E402
from codegen.run.profiling import run_profile  # noqa: E402
from codegen.run.simulate import open_build  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402
from tests.e2e.test_int8_qemu import calibration_and_tests  # noqa: E402

MODELS = ["resnet8_cifar10", "vww_mobilenet_96", "kws_dscnn", "ad_autoencoder_toycar"]
# The other cores ariel supports, one board each: dual issue (Cortex-M7) and no DSP
# extension or FPU (Cortex-M0+).
ALSO = ["disco-f746ng", "nucleo-g071rb"]

# Issue 18's goals on the Cortex-M4 (NUCLEO-L4R5ZI): whole models in cycles per MAC or
# milliseconds, layer types in cycles per MAC (int8).
MODEL_GOALS = {("resnet8_cifar10", "int8"): (1.50, "cyc/MAC"),
               ("vww_mobilenet_96", "int8"): (1.50, "cyc/MAC"),
               ("kws_dscnn", "int8"): (1.60, "cyc/MAC"),
               ("ad_autoencoder_toycar", "int8"): (4.05, "ms"),
               ("resnet8_cifar10", "float"): (2.80, "cyc/MAC")}
KIND_GOALS = {"depthwise 3x3": 3.0, "1x1 conv": 1.8, "first layer": 2.0}


def layer_kind(graph: Graph, kernel: dict, precision: str) -> str:
    """What kind of layer a kernel computes, as issue 18 groups them."""
    node = graph.nodes[kernel["index"]]
    if precision == "int8" and kernel["kernel"].endswith("_f32"):
        return "float"
    if node.op in ("QuantizeLinear", "DequantizeLinear"):
        return "quantize"
    if node.op in ("Gemm", "MatMul"):
        return "dense"
    if node.op != "Conv":
        return node.op
    x, w = graph.tensor(node.inputs[0]), graph.tensor(node.inputs[1])
    size = "x".join(str(k) for k in w.shape[2:])
    if node.attrs.get("group", 1) == x.shape[1] and w.shape[1] == 1 and x.shape[1] > 1:
        return f"depthwise {size}"
    if x.shape[1] <= 3:
        return "first layer"
    return f"{size} conv"


def measure(model: str, precision: str, board_name: str, folder: Path,
            weights_in_ram: bool = False, fixed_timing: bool = False) -> dict:
    calibration, tests = calibration_and_tests(model)
    path = ROOT / "examples" / "models" / f"{model}.onnx"
    options = Options(weights_in_ram=weights_in_ram)
    if precision == "int8":
        np.save(folder / "calib.npy", calibration.astype(np.float32))
        options = Options(precision="int8", calibration=str(folder / "calib.npy"),
                          weights_in_ram=weights_in_ram, fixed_timing=fixed_timing)
    out = folder / f"{model}-{precision}-{board_name}{'-fixed' if fixed_timing else ''}"
    row = {"model": model, "precision": precision, "board": board_name,
           "weights_in_ram": weights_in_ram}
    try:
        result = build(path, get_board(board_name), out, options)
    except ArielError as error:
        return {**row, "error": str(error).splitlines()[0]}
    built = open_build(out)
    shape = built.info.inputs[0].shape
    x = tests[:1].astype(np.float32).reshape(1, *shape)
    report = run_profile(built, [x], timeout=1800)
    kernels = {k["index"]: k for k in built.info.kernels}
    layers = [{"index": layer.index, "name": layer.name, "op": layer.op,
               "kind": layer_kind(result.compiled.graph, kernels[layer.index], precision),
               "kernel": kernels[layer.index]["kernel"], "macs": layer.macs,
               "skipped_macs": kernels[layer.index].get("skipped_macs", 0),
               "instructions": layer.instructions, "cycles": layer.cycles,
               "ram_cycles": layer.ram_cycles} for layer in report.layers]
    row = {**row, "macs": report.total_macs, "instructions": report.total_instructions,
           "cycles": report.total_cycles, "time_ms": report.time_ms,
           "energy_uj": report.energy_uj, "ram_cycles": report.total_ram_cycles,
           "flash_model": report.flash_model, "layers": layers}
    if any(kernel.get("input_dependent") for kernel in built.info.kernels):
        # The table's figure is the first test input's; the others and a build whose time
        # is the same on every input show how far it moves.
        row["cycles_per_input"] = [row["cycles"]] + [
            run_profile(built, [sample.astype(np.float32).reshape(1, *shape)],
                        timeout=1800).total_cycles for sample in tests[1:]]
        fixed = measure(model, precision, board_name, folder, weights_in_ram, True)
        row["fixed_timing_cycles"] = fixed.get("cycles")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", default="mps2-an386")
    parser.add_argument("--also", default=",".join(ALSO),
                        help="other boards profiled beside it, comma-separated ('' for none)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--precisions", default="float,int8")
    parser.add_argument("--layers", action="store_true", help="print every layer too")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--weights-in-ram", action="store_true",
                        help="build with the weights in RAM (rows labelled 'ram')")
    args = parser.parse_args()
    also = [name for name in args.also.split(",") if name and name != args.board]
    runs = []
    with tempfile.TemporaryDirectory(prefix="ariel-bench-") as folder:
        for model in args.models.split(","):
            for precision in args.precisions.split(","):
                run = {board: measure(model, precision, board, Path(folder),
                                      args.weights_in_ram)
                       for board in [args.board, *also]}
                runs.append(run)
                print_row(run, args.board, also, header=len(runs) == 1)
    print_skipped(runs, args.board)
    print_input_dependent(runs, args.board)
    print()
    print_kinds(runs, args.board, also)
    if args.layers:
        print()
        print_layers(runs, args.board, also)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2) + "\n")


def label(row: dict) -> str:
    """The precision column: the precision, and "ram" for a build with its weights in RAM."""
    return f"{row['precision']} ram" if row.get("weights_in_ram") else row["precision"]


def per_mac(row: dict, key: str = "cycles") -> str:
    """cycles (or instructions) per MAC of a measured row, or why there is none."""
    if "error" in row:
        return "no fit" if "does not fit" in row["error"] or "overflow" in row["error"] \
            else "error"
    if row.get(key) is None:
        return "-"
    return f"{row[key] / row['macs']:.2f}"


def goal_text(goal: tuple[float, str] | None, row: dict) -> str:
    """The goal, and whether the row meets it."""
    if goal is None or "error" in row or row.get("cycles") is None:
        return ""
    value, unit = goal
    now = row["time_ms"] if unit == "ms" else row["cycles"] / row["macs"]
    return (f"{value:.2f} ms" if unit == "ms" else f"<={value:.2f}") + \
        (" met" if now <= value else " open")


def print_row(run: dict, board: str, also: list[str], header: bool) -> None:
    if header:
        print(f"{'model':<24}{'precision':<10}{'MACs':>12}{'instructions':>15}"
              f"{'instr/MAC':>10}{'cycles':>15}{'cyc/MAC':>9}{'RAM c/M':>9}{'est. ms':>10}"
              f"{'est. uJ':>10}{'flash':>7}{'goal':>15}"
              + "".join(f"{name[:13]:>15}" for name in also))
    row = run[board]
    if "error" in row:
        print(f"{row['model']:<24}{label(row):<10} {row['error']}", flush=True)
        return
    cycles, ram = row["cycles"], row["ram_cycles"]
    flash = (f"{(cycles - ram) / cycles:>7.1%}" if row["flash_model"] else f"{'-':>7}")
    print(f"{row['model']:<24}{label(row):<10}{row['macs']:>12,}"
          f"{row['instructions']:>15,.0f}{row['instructions'] / row['macs']:>10.2f}"
          + (f"{cycles:>15,.0f}{cycles / row['macs']:>9.2f}{ram / row['macs']:>9.2f}"
             f"{row['time_ms']:>10.2f}" if cycles is not None
             else f"{'-':>15}{'-':>9}{'-':>9}{'-':>10}")
          + (f"{row['energy_uj']:>10.1f}" if row["energy_uj"] is not None else f"{'-':>10}")
          + flash + f"{goal_text(MODEL_GOALS.get((row['model'], row['precision'])), row):>15}"
          + "".join(f"{per_mac(run[name]):>15}" for name in also),
          flush=True)


def kinds_of(row: dict) -> dict[str, dict]:
    """Per layer kind: MACs, cycles, RAM-speed cycles, layers and the kernels they took."""
    kinds: dict[str, dict] = defaultdict(lambda: {"macs": 0, "cycles": 0.0, "ram_cycles": 0.0,
                                                  "layers": 0, "kernels": set()})
    for layer in row.get("layers", []):
        kind = kinds[layer["kind"]]
        kind["macs"] += layer["macs"]
        kind["cycles"] += layer["cycles"] or 0.0
        kind["ram_cycles"] += layer["ram_cycles"] or 0.0
        kind["layers"] += 1
        kind["kernels"].add(layer["kernel"])
    return kinds


def rate(cycles: float | None, macs: int) -> str:
    """Cycles per MAC, or thousands of cycles where there are no MACs."""
    if cycles is None:
        return "-"
    return f"{cycles / macs:.2f}" if macs else f"{cycles / 1e3:,.0f}k cyc"


def print_skipped(runs: list[dict], board: str) -> None:
    """Under the models' table, for each row whose kernels skip MACs (outputs known at
    compile time, constant_channels.py): how many, and the cycles per MAC computed. The
    tables' cycles per MAC count every MAC of the model, as the published figures do."""
    for run in runs:
        row = run[board]
        skipped = sum(layer["skipped_macs"] for layer in row.get("layers", []))
        if skipped and row.get("cycles") is not None:
            computed = row["macs"] - skipped
            print(f"  {row['model']} {label(row)}: {skipped:,} of its {row['macs']:,} MACs "
                  f"({skipped / row['macs']:.1%}) are in output channels that are one value "
                  f"whatever the input, not computed; {row['cycles'] / computed:.2f} cycles "
                  f"per MAC computed", flush=True)


def print_input_dependent(runs: list[dict], board: str) -> None:
    """Under the models' table, for each row with kernels whose time depends on the input
    (dense layers that skip zero inputs, zero_words.py): its cycles on every test input, and
    those of the same model built with --fixed-timing."""
    for run in runs:
        row = run[board]
        cycles = row.get("cycles_per_input")
        if not cycles:
            continue
        fixed = row.get("fixed_timing_cycles")
        print(f"  {row['model']} {label(row)}: its time depends on the input; over its "
              f"{len(cycles)} test inputs {min(cycles):,.0f} to {max(cycles):,.0f} cycles "
              f"(mean {np.mean(cycles):,.0f}; the table's figure is the first), "
              + (f"{fixed:,.0f} built with --fixed-timing" if fixed else
                 "the --fixed-timing build failed"), flush=True)


def print_kinds(runs: list[dict], board: str, also: list[str]) -> None:
    """Per model, precision and layer kind: the cycles per MAC on each board (cycles per
    inference where a kind has no MACs), its share of the model's cycles, the goal, and the
    kernels its layers took."""
    print(f"{'model':<24}{'precision':<10}{'layer type':<16}{'layers':>7}{'MACs':>12}"
          f"{'cycles':>8}{'cyc/MAC':>9}{'RAM c/M':>9}{'goal':>11}"
          + "".join(f"{name[:13]:>15}" for name in also) + "  kernels")
    for run in runs:
        row = run[board]
        if "error" in row:
            continue
        others = {name: kinds_of(run[name]) for name in also}
        for kind, figures in sorted(kinds_of(row).items(), key=lambda item: -item[1]["cycles"]):
            macs = figures["macs"]
            goal = KIND_GOALS.get(kind) if row["precision"] == "int8" else None
            met = "" if goal is None else (" met" if figures["cycles"] <= goal * macs
                                           else " open")
            other = "".join(f"{kind_rate(run[name], others[name].get(kind), macs):>15}"
                            for name in also)
            print(f"{row['model']:<24}{label(row):<10}{kind:<16}{figures['layers']:>7}"
                  f"{macs:>12,}{figures['cycles'] / row['cycles']:>8.1%}"
                  f"{rate(figures['cycles'], macs):>9}{rate(figures['ram_cycles'], macs):>9}"
                  f"{'' if goal is None else f'<={goal:.1f}' + met:>11}{other}  "
                  + ", ".join(sorted(figures["kernels"])), flush=True)


def print_layers(runs: list[dict], board: str, also: list[str]) -> None:
    print(f"{'model':<24}{'precision':<10}{'#':>4} {'layer':<28}{'type':<16}{'kernel':<20}"
          f"{'MACs':>11}{'cyc/MAC':>9}" + "".join(f"{name[:13]:>15}" for name in also))
    for run in runs:
        row = run[board]
        if "error" in row:
            continue
        others = {name: {layer["index"]: layer for layer in run[name].get("layers", [])}
                  for name in also}
        for layer in row["layers"]:
            print(f"{row['model']:<24}{label(row):<10}{layer['index']:>4} "
                  f"{layer['name'][:27]:<28}{layer['kind']:<16}{layer['kernel']:<20}"
                  f"{layer['macs']:>11,}{rate(layer['cycles'], layer['macs']):>9}"
                  + "".join(f"{layer_rate(others[name].get(layer['index'])):>15}"
                            for name in also))


def kind_rate(row: dict, figures: dict | None, macs: int) -> str:
    """A layer kind's cycles per MAC on another board, or why there are none."""
    if "error" in row:
        return per_mac(row)
    return "-" if figures is None else rate(figures["cycles"], macs)


def layer_rate(layer: dict | None) -> str:
    return "-" if layer is None else rate(layer["cycles"], layer["macs"])


if __name__ == "__main__":
    main()
