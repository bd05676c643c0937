"""Benchmark: what `--power intermittent` costs with continuous power. For the four MLPerf Tiny
models and the digits CNN in int8 (int8 inputs and outputs, as MLPerf Tiny feeds them), on
the F-RAM boards (nucleo-l4r5zi-fram: SPI at 30 MHz; nucleo-l4r5zi-qspi-fram: quad SPI at
60 MHz) and on internal flash (nucleo-l4r5zi): the normal build
and the intermittent builds (ariel's live checkpoints, and the two baselines: the whole arena
after every layer, and restart from scratch), each profiled in QEMU on one input.

    .venv/bin/python bench/intermittent_overhead.py [--models resnet8_cifar10,...]
        [--boards nucleo-l4r5zi-fram,nucleo-l4r5zi-qspi-fram,nucleo-l4r5zi]
        [--on-periods CYCLES,...]
        [--json results.json] [--readme]

Per build: the commits per inference, the bytes written to NVM per inference (data and
progress records), the NVM's own time for them in cycles (the board's cost model: SPI
transfer of command and data; flash page erase and double-word programming), the extra
instructions the checkpoint code runs (exact, QEMU: the intermittent build's instructions
per inference less the normal build's, each counted as one cycle), and the overhead: both
together against the normal build's estimated cycles. Counting the copy loop's instructions
beside the SPI time the loop would wait for is conservative. `--on-periods` adds ResNet-8 on
the F-RAM boards with commits placed for each on-period (the fewest bytes,
codegen/compiler/checkpoint.py).
`--readme` writes the table into README.md between its markers."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.build import build  # noqa: E402
from codegen.compiler.checkpoint import PowerOptions, nvm_cost  # noqa: E402
from codegen.compiler.compile import Options  # noqa: E402
from codegen.compiler.quant.report import quantize_inputs  # noqa: E402
from codegen.datasets import digits_split  # noqa: E402
from codegen.run.profiling import run_profile  # noqa: E402
from codegen.run.simulate import open_build  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402
from tests.e2e.test_int8_qemu import calibration_and_tests  # noqa: E402

MODELS = ["resnet8_cifar10", "vww_mobilenet_96", "kws_dscnn", "ad_autoencoder_toycar",
          "digits_cnn"]
BOARDS = ["nucleo-l4r5zi-fram", "nucleo-l4r5zi-qspi-fram", "nucleo-l4r5zi"]
# restart writes one record per inference on any board: measured once, on the SPI F-RAM
STRATEGIES = {"nucleo-l4r5zi-fram": ["live", "arena", "restart"],
              "nucleo-l4r5zi-qspi-fram": ["live", "arena"],
              "nucleo-l4r5zi": ["live", "arena"]}
NAMES = {"resnet8_cifar10": "ResNet-8", "vww_mobilenet_96": "VWW MobileNet",
         "kws_dscnn": "KWS DS-CNN", "ad_autoencoder_toycar": "AD autoencoder",
         "digits_cnn": "digits CNN"}
BEGIN, END = "<!-- intermittent-overhead:begin -->", "<!-- intermittent-overhead:end -->"


def data(model: str) -> tuple[np.ndarray, np.ndarray]:
    if model == "digits_cnn":
        x_train, _, x_test, _ = digits_split()
        return x_train[:64], x_test[:1]
    calibration, tests = calibration_and_tests(model)
    return calibration, tests[:1]


def measure(model: str, board_name: str, strategy: str | None, folder: Path,
            on_period: int | None = None) -> dict:
    """One build profiled: `strategy` None is the normal build."""
    calibration, tests = data(model)
    np.save(folder / "calib.npy", calibration.astype(np.float32))
    board = get_board(board_name)
    power = None if strategy is None else PowerOptions(
        board.nvm, board.clock_hz, strategy, on_period, board=board.name)
    out = folder / f"{model}-{board_name}-{strategy}-{on_period}"
    result = build(ROOT / "examples" / "models" / f"{model}.onnx", board, out,
                   Options(precision="int8", calibration=str(folder / "calib.npy"), io="int8",
                           power=power))
    graph = result.compiled.graph
    x = quantize_inputs(graph, [tests.astype(np.float32).reshape(
        1, *graph.tensor(graph.inputs[0]).shape)])[0]
    report = run_profile(open_build(out), [x], timeout=3600)
    row = {"model": model, "board": board_name, "strategy": strategy or "none",
           "on_period_cycles": on_period, "cycles": report.total_cycles,
           "instructions": report.per_inference_instructions[0]}
    if power is not None:
        plan = result.compiled.checkpoints
        cost = nvm_cost(plan, power)
        row.update(commits=cost.commits, nvm_bytes=cost.nbytes, nvm_cycles=cost.cycles,
                   pages_erased=cost.pages_erased, nvm_used=plan.nvm_bytes,
                   energy_uj=None if cost.energy_j is None else cost.energy_j * 1e6)
    return row


def overhead(row: dict, plain: dict) -> dict:
    extra = row["instructions"] - plain["instructions"]
    total = row["nvm_cycles"] + extra
    return {**row, "extra_instructions": extra, "overhead_cycles": total,
            "overhead": total / plain["cycles"]}


def table(rows: list[dict]) -> str:
    lines = ["| model | board | checkpoints | commits | NVM written (B) | NVM time (cycles) | "
             "extra instructions | overhead | NVM used (B) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        what = r["strategy"] + (f", on-period {r['on_period_cycles']:,}"
                                if r["on_period_cycles"] else "")
        lines.append(f"| {NAMES[r['model']]} | {r['board']} | {what} | {r['commits']} | "
                     f"{r['nvm_bytes']:,} | {r['nvm_cycles']:,} | {r['extra_instructions']:,} | "
                     f"{r['overhead']:,.1%} | {r['nvm_used']:,} |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(content):
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", content))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--boards", default=",".join(BOARDS))
    parser.add_argument("--on-periods", default="", help="also ResNet-8 (live, F-RAM) with "
                        "commits placed for each of these on-periods, in cycles")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--readme", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ariel-bench-") as name:
        folder = Path(name)
        for model in args.models.split(","):
            for board in args.boards.split(","):
                plain = measure(model, board, None, folder)
                print(f"{model} on {board}: {plain['cycles']:,.0f} cycles, "
                      f"{plain['instructions']:,} instructions (normal build)", flush=True)
                for strategy in STRATEGIES[board]:
                    rows.append(overhead(measure(model, board, strategy, folder), plain))
                    print(table(rows[-1:]).splitlines()[-1], flush=True)
                for period in [int(p) for p in args.on_periods.split(",") if p]:
                    if model != "resnet8_cifar10" or "fram" not in board:
                        continue
                    rows.append(overhead(measure(model, board, "live", folder, period), plain))
                    print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = table(rows)
    print()
    print(text)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.readme:
        write_readme(text)


if __name__ == "__main__":
    main()
