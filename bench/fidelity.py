"""Fidelity report: hand-written sequences and loops whose cycles follow from the published
rules, run in QEMU and estimated by ariel's cycle model, for every core and for the flash
models. Prints, per sequence, the cycles the rules give, the estimate, and the difference.

    .venv/bin/python bench/fidelity.py

The expected figures are derived by hand from the sources each core file cites (Cortex-M4:
Arm DDI 0439B; Cortex-M0+: Arm DDI 0484C; Cortex-M7: Arm's LLVM scheduling model,
ARMScheduleM7.td; Cortex-M33: the M4 figures, as Arm's LLVM model also takes them) and, for
the flash, from the caches' geometry in the board files (RM0432, RM0385 with the Cortex-M7
TRM). The sequences are the test suite's (tests/run/), so the report and the tests check
the same thing; the tests fail on any difference, this report shows them all."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.run.emulate.cycles import Memory, estimate  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402
from tests.run import test_cycles as m4  # noqa: E402
from tests.run import test_flash_model as flash  # noqa: E402
from tests.run import test_pipelines as pipelines  # noqa: E402

# Published figures measured on real boards for code this repository builds: none yet.
# (Arm's CoreMark/MHz and Embench-IoT's STM32F407 baselines need sources ariel does not
# ship; see README "Profiling".)
REAL_BOARD_FIGURES: list[tuple[str, str, float, float]] = []


def rows(folder: Path) -> list[tuple[str, str, int, int, str]]:
    """(core or board, sequence, expected cycles, estimated cycles, rule) per sequence."""
    found = []
    layers = m4.m4_layers(folder / "m4")
    bodies = m4.expected_body()
    for name, body in bodies.items():
        found.append(("cortex-m4", name, m4.OVERHEAD + m4.loop(body),
                      layers[name][2].core_cycles, "DDI 0439B Table 3-1, 3.3.2"))
    _, m0 = m4.m0_layers(_made(folder / "m0"))
    for body, lines, result in zip(m4.M0_BODIES, m4.M0_LAYERS, m0, strict=True):
        found.append(("cortex-m0plus", "; ".join(lines), 7 + m4.M0_LOOP + 50 * body,
                      result.core_cycles, "DDI 0484C 3.3"))
    m7 = pipelines.m7_estimates(_made(folder / "m7"))
    for name, (_, block) in pipelines.M7_LAYERS.items():
        found.append(("cortex-m7", name, pipelines.HOOK + block, m7[name].core_cycles,
                      "ARMScheduleM7.td"))
    found.append(("cortex-m7", "loop of 50, predicted", pipelines.HOOK + 3 + 49 * 2 + 4 + 1,
                  m7["loop"].core_cycles, "ARMScheduleM7.td (MispredictPenalty)"))
    m33 = pipelines.m33_estimate(_made(folder / "m33"))
    found.append(("cortex-m33", "LDA; STL; TT x 10", pipelines.M33_EXPECTED, m33.core_cycles,
                  "M4 figures, Armv8-M classes"))
    found += flash_rows(folder)
    return found


def flash_rows(folder: Path) -> list[tuple[str, str, int, int, str]]:
    """Wait states of the data misses that the caches' geometry gives, per board."""
    expected_misses = {
        "nucleo-l4r5zi": {"stream 4 KiB once": 512, "64 B four times": 8, "512 B twice": 128,
                          "4 KiB twice": 1024},
        "disco-f746ng": {"stream 4 KiB once": 128, "64 B four times": 2, "512 B twice": 16,
                         "4 KiB twice": 128},
    }
    found = []
    for board_name, misses in expected_misses.items():
        board = get_board(board_name)
        counts, segments = flash.run(board, _made(folder / board_name))
        memory = Memory(board.wait_states, True, board.flash_caches)
        for (name, miss), segment in zip(misses.items(), segments, strict=False):
            result = estimate(counts, segment, board.core, memory)
            found.append((board_name, f"flash data: {name}", miss * board.wait_states,
                          result.flash_stalls["data"], "cache geometry x wait states"))
    return found


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ariel-fidelity-") as folder:
        table = rows(Path(folder))
    print(f"{'core / board':<16}{'sequence':<42}{'expected':>10}{'estimated':>11}"
          f"{'diff':>8}  rule")
    for core, name, expected, estimated, rule in table:
        diff = (estimated - expected) / expected if expected else 0.0
        print(f"{core:<16}{name[:41]:<42}{expected:>10,}{estimated:>11,}{diff:>+8.1%}  {rule}")
    exact = sum(expected == estimated for _, _, expected, estimated, _ in table)
    print(f"{exact} of {len(table)} sequences estimated exactly as the rules give")
    if not REAL_BOARD_FIGURES:
        print("real-board figures: none for code this repository builds (Arm's CoreMark/MHz "
              "and Embench-IoT's measured baselines need sources ariel does not ship)")


if __name__ == "__main__":
    main()
