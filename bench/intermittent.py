"""Benchmark (issue 20): intermittent builds under power cuts and on harvested energy, in the
power-cut emulator (codegen/run/emulate/machine.py).

    .venv/bin/python bench/intermittent.py [--cuts 1000] [--models digits_cnn,...]
        [--board nucleo-l4r5zi-fram] [--harvest-only | --cuts-only] [--update-readme]

(`--board nucleo-l4r5zi --models digits_cnn --cuts-only` gives the internal-flash row.)

Part 1: the digits CNN and the four MLPerf Tiny models in int8, built with `--power
intermittent` (live checkpoints), each run once uninterrupted and then through --cuts power
cuts at random instructions: runs of --per-run cuts each, at instructions drawn uniformly
within twice the uninterrupted run's length (counted from the first power-up, so that cuts
land while the firmware still has work, and on-periods average a fifth of the run: long
enough to commit some units of work, not all), each run ending with the outputs compared
with the uninterrupted run's bit for bit. The cuts count instructions as unicorn does (an IT
block's skipped ones left out; ten times faster than QEMU's count, and the place of a random
cut needs no unit), except each run's first cut, which falls inside an NVM write: just after
a store drawn at random from the uninterrupted run's (counted as QEMU counts, exact there:
the first power cycle runs as the uninterrupted run does). Reported: the cuts that fell
inside ariel_nvm_write (torn writes), the power cycles and instructions they took, and
whether every run's outputs were equal.

Part 2: ResNet-8 int8 on harvested energy, three constant harvest levels into one capacitor,
built three ways the same way: restart (an inference cut short starts again), live
checkpoints, and the whole arena checkpointed after every layer: time to result, power
cycles, and the energy spent on checkpoints and on re-execution. Cycles per instruction come
from the core's cycle model on a profiling run of each build in QEMU.

--update-readme writes each table into README.md between its markers (intermittent-cuts,
intermittent-harvest), the cuts table again after each model."""

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
from codegen.compiler.checkpoint import PowerOptions  # noqa: E402
from codegen.compiler.compile import Options  # noqa: E402
from codegen.datasets import digits_split  # noqa: E402
from codegen.run.harvest import Capacitor, Harvest  # noqa: E402
from codegen.run.harvested import load_for, run_harvested  # noqa: E402
from codegen.run.power_cuts import (  # noqa: E402
    CutsAt,
    Emulation,
    nvm_region,
    random_cuts,
    run_uninterrupted,
    run_with_cuts,
)
from codegen.run.profiling import run_profile  # noqa: E402
from codegen.run.simulate import open_build  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402
from tests.e2e.test_int8_qemu import calibration_and_tests  # noqa: E402

MODELS = ["digits_cnn", "resnet8_cifar10", "vww_mobilenet_96", "kws_dscnn",
          "ad_autoencoder_toycar"]
SEED = 20
HARVEST_MW = (2.0, 10.0, 30.0)
CAPACITANCE_UF = 1500.0
STRATEGIES = ("restart", "live", "arena")
MARKERS = {part: (f"<!-- intermittent-{part}:begin -->", f"<!-- intermittent-{part}:end -->")
           for part in ("cuts", "harvest")}


def build_model(model: str, board_name: str, strategy: str, folder: Path):
    """An intermittent int8 build of `model` and one test input."""
    board = get_board(board_name)
    if model == "digits_cnn":
        calibration, x = "digits", digits_split()[2][:1]
    else:
        data, tests = calibration_and_tests(model)
        np.save(folder / f"{model}-calib.npy", data.astype(np.float32))
        calibration, x = str(folder / f"{model}-calib.npy"), tests[:1].astype(np.float32)
    out = folder / f"{model}-{strategy}"
    build(ROOT / "examples" / "models" / f"{model}.onnx", board, out, Options(
        precision="int8", calibration=calibration,
        power=PowerOptions(board.nvm, board.clock_hz, strategy, board=board.name)))
    built = open_build(out)
    return built, [x.reshape(1, *built.info.inputs[0].shape)]


def cut_rows(models: list[str], board: str, cuts: int, per_run: int, folder: Path,
             publish) -> list[str]:
    rows = ["| model | board | uninterrupted instructions | cuts (runs) | inside "
            "`ariel_nvm_write` (torn) | power cycles | instructions in the cut power cycles | "
            "NVM bytes stored | outputs | wall time |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for model in models:
        built, inputs = build_model(model, board, "live", folder)
        start = time.monotonic()
        reference = run_uninterrupted(built, inputs, nvm_region(built), SEED)
        stores = store_indices(built, inputs)
        rng = np.random.default_rng(SEED)
        made = torn = cycles = instructions = stored = equal = runs = 0
        while made < cuts:
            count = min(per_run, cuts - made)
            first = int(rng.choice(stores)) + 1
            rest = random_cuts(count, 2 * reference.instructions, SEED + runs).positions[1:]
            run = run_with_cuts(built, inputs, CutsAt([first, *(first + p for p in rest)]),
                                SEED + runs, reference, native_from=1)
            runs += 1
            made += len(run.cuts)
            torn += run.torn_writes
            cycles += run.power_cycles
            instructions += run.instructions
            stored += run.nvm_bytes
            equal += run.equal
            if not run.completed:
                print(f"{model}: run {runs} did not finish: {run.stuck}", flush=True)
                break
        wall = time.monotonic() - start
        outcome = "equal, bit for bit, in every run" if equal == runs else \
            f"DIFFERENT in {runs - equal} of {runs} runs"
        rows.append(f"| {model} | {board} | {reference.instructions:,} | {made:,} ({runs}) | "
                    f"{torn:,} | "
                    f"{cycles:,} | {instructions:,} | {stored:,} | {outcome} | {wall:.0f} s |")
        print(rows[-1], flush=True)
        publish(rows)
    return rows


def store_indices(built, inputs) -> list[int]:
    """The instruction index of every store into the NVM in an uninterrupted run."""
    emulation = Emulation(built, inputs, nvm_region(built), SEED)
    found: list[int] = []
    emulation.machine.on_nvm_store = lambda index, address, size: found.append(index)
    emulation.power_up(0)
    emulation.machine.run()
    return found


def harvest_rows(board: str, folder: Path) -> list[str]:
    capacitor = Capacitor(CAPACITANCE_UF * 1e-6, 3.3, 1.8)
    rows = ["| harvest | checkpoints | finished | time to result | power cycles | powered | "
            "energy used | on checkpoints | on re-execution | NVM bytes stored |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    builds = {}
    for strategy in STRATEGIES:
        built, inputs = build_model("resnet8_cifar10", board, strategy, folder)
        profile = run_profile(built, inputs, 1800)
        cpi = profile.total_cycles / profile.total_instructions
        builds[strategy] = (built, inputs, cpi,
                            run_uninterrupted(built, inputs, nvm_region(built), SEED))
    for milliwatts in HARVEST_MW:
        for strategy in STRATEGIES:
            built, inputs, cpi, reference = builds[strategy]
            run = run_harvested(built, inputs, Harvest.constant(milliwatts * 1e-3), capacitor,
                                load_for(built, cpi, 0.0), SEED, reference)
            done = ("yes" if run.equal else "outputs DIFFER") if run.completed else \
                "never (no progress)"
            time_to_result = f"{run.seconds:,.2f} s" if run.completed else "-"
            # Work that never finishes is all lost: re-execution means nothing there.
            reexecution = f"{run.reexecution_joules * 1e3:,.2f} mJ" if run.completed else "-"
            rows.append(f"| {milliwatts:g} mW | {strategy} | {done} | {time_to_result} | "
                        f"{run.power_cycles:,} | {run.on_seconds * 1e3:,.1f} ms | "
                        f"{run.run_joules * 1e3:,.2f} mJ | {run.checkpoint_joules * 1e3:,.2f} mJ"
                        f" | {reexecution} | {run.nvm_bytes:,} |")
            print(rows[-1], flush=True)
    return rows


def merged_rows(rows: list[str]) -> list[str]:
    """The cuts table's rows: those given, then the README's rows of other models or boards."""
    begin, end = MARKERS["cuts"]
    content = (ROOT / "README.md").read_text()
    old = content.split(begin, 1)[1].split(end, 1)[0] if begin in content else ""

    def key(row: str) -> tuple[str, str]:
        cells = [cell.strip() for cell in row.split("|")]
        return cells[1], cells[2]
    given = {key(row) for row in rows[2:]}
    kept = [line for line in old.splitlines() if line.startswith("| ")
            and key(line) not in given and key(line)[0] != "model"]
    return [*rows, *kept]


def update_readme(part: str, text: str) -> None:
    begin, end = MARKERS[part]
    readme = ROOT / "README.md"
    content = readme.read_text()
    if begin not in content or end not in content:
        raise SystemExit(f"README.md has no {begin} ... {end} section to update")
    before, rest = content.split(begin, 1)
    after = rest.split(end, 1)[1]
    readme.write_text(f"{before}{begin}\n{text}\n\nProduced by `bench/intermittent.py "
                      f"--update-readme`.\n{end}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuts", type=int, default=1000)
    parser.add_argument("--per-run", type=int, default=10)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--board", default="nucleo-l4r5zi-fram")
    parser.add_argument("--cuts-only", action="store_true")
    parser.add_argument("--harvest-only", action="store_true")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ariel-intermittent-") as temporary:
        folder = Path(temporary)
        if not args.harvest_only:
            title = (f"{args.cuts:,} power cuts per model and board at random instructions, "
                     f"{args.per_run} per run (seeds from {SEED}), int8, `--power "
                     "intermittent` (live checkpoints), one input:")

            def publish(rows: list[str]) -> None:
                if args.update_readme:  # rows of models not run this time are kept
                    update_readme("cuts", "\n".join([title, "", *merged_rows(rows)]))

            rows = cut_rows(args.models.split(","), args.board, args.cuts, args.per_run,
                            folder, publish)
            print("\n".join([title, "", *rows]) + "\n")
        if not args.harvest_only and args.cuts_only:
            return
        rows = harvest_rows(args.board, folder)
        text = "\n".join([f"ResNet-8 int8 on {args.board}, one inference on harvested "
                          f"energy: a constant harvest into {CAPACITANCE_UF:g} uF (on at 3.3 V,"
                          " off at 1.8 V), run power 78 mW:", "", *rows])
        print(text)
        if args.update_readme:
            update_readme("harvest", text)


if __name__ == "__main__":
    main()
