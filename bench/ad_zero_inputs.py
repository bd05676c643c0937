"""A paper estimate, made before the kernel was built: what would a dense kernel that skips
the zero inputs of a layer (ReLU outputs, about half of them zero on real data) save on the
MLPerf Tiny anomaly-detection autoencoder, on a Cortex-M4 reading its weights from flash?
The kernel now exists (codegen/compiler/ops/zero_words.py; bench/models.py measures it); this
script stays as the estimate it was judged by, and its model of the loops is the one below,
not the built one's.

    .venv/bin/python bench/ad_zero_inputs.py

Builds AD int8 (calibrated on the even ToyCar windows, as bench/models.py does), runs
ariel's integer reference on the odd windows and counts, per dense layer, the inputs at
their zero point (real 0). matmul_pairs_s8 reads its row as int16 pairs (one column word =
two inputs), so a skip would drop a column word only when both its inputs are zero; the
estimate pairs inputs by how often each is zero on the calibration windows (so that inputs
dead on most windows share words) and orders the words most-often-nonzero first, so that
the weight bytes read stay as contiguous as they can.

The cycle figures are the Cortex-M4 table's (codegen/run/emulate/cores/cortex-m4.toml) for
two loops, and the flash model of boards/nucleo-l4r5zi.toml (5 wait states per 8-byte
double word missed, each weight read once):
- dense, as now (ariel_dot_3pairs_s8): per step of six outputs and column word, 4 loads
  in a row (5 cycles), 6 SMLAD and 3 SXTB16, the count and branch every 8 words: 14.375;
  its 12 weight bytes 1.5 double words;
- skipping: a list of the nonzero column words and the distance in the weight stream to
  each, made once per layer (about 10 cycles per word), then per step and listed word the
  three weight words, the column word and the distance loaded in a row (6 cycles), the
  pointer moved on by the distance (1), the same 9 multiplies and extensions, a branch
  every 4 entries: 16.75; its weight bytes the double words that the listed words touch;
  5 cycles per step to start the list.
The time of such a kernel depends on its input: the worst case (no input zero) is printed
beside the real-data figure. Layers where skipping does not pay on the calibration windows
keep the dense loop."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.build import build  # noqa: E402
from codegen.compiler.compile import Options  # noqa: E402
from codegen.compiler.quant.output_stage import zero_point_of  # noqa: E402
from codegen.compiler.quant.report import quantize_inputs  # noqa: E402
from codegen.compiler.reference import run_graph_values  # noqa: E402
from codegen.datasets import toycar_windows  # noqa: E402
from codegen.target.boards import get_board  # noqa: E402

DENSE_WORD = 14 + 3 / 8
SKIP_WORD = 16.75
LIST_WORD = 10
STEP_START = 5
WAIT_STATES = 5
WEIGHT_BYTES = 12  # per step and column word: three pairs' weight words


def zero_masks(graph, nodes, windows: np.ndarray) -> list[np.ndarray]:
    """Per node, [windows, K]: which inputs of its row sit at their zero point."""
    shape = graph.tensor(graph.inputs[0]).shape
    x = quantize_inputs(graph, [windows.astype(np.float32).reshape(len(windows), *shape)])[0]
    values = [run_graph_values(graph, [sample]) for sample in x]
    return [np.stack([v[node.inputs[0]].reshape(-1) for v in values]) ==
            zero_point_of(graph.tensor(node.inputs[0])) for node in nodes]


def skip_cycles(zero: np.ndarray, words: np.ndarray, steps: float) -> float:
    """Estimated cycles of the skipping loop for one input (zero: [K])."""
    listed = np.flatnonzero(~(zero[words[:, 0]] & zero[words[:, 1]]))
    doubles = {d for j in listed for d in range(WEIGHT_BYTES * j // 8,
                                                (WEIGHT_BYTES * (j + 1) - 1) // 8 + 1)}
    return (steps * (SKIP_WORD * len(listed) + WAIT_STATES * len(doubles) + STEP_START)
            + LIST_WORD * len(words))


def main() -> None:
    windows = toycar_windows()
    calibration, tests = windows[0::2], windows[1::2]
    with tempfile.TemporaryDirectory(prefix="ariel-zeros-") as folder:
        np.save(Path(folder) / "calib.npy", calibration.astype(np.float32))
        result = build(ROOT / "examples" / "models" / "ad_autoencoder_toycar.onnx",
                       get_board("nucleo-l4r5zi"), Path(folder) / "out",
                       Options(precision="int8", calibration=str(Path(folder) / "calib.npy")))
    graph = result.compiled.graph
    nodes = [node for node in graph.nodes if node.op in ("Gemm", "MatMul")]
    seen, unseen = zero_masks(graph, nodes, calibration), zero_masks(graph, nodes, tests)
    print(f"{'layer':>5} {'K':>4} {'N':>4} {'zero in':>7} {'zero words':>10} {'dense':>8} "
          f"{'skipping':>8} {'worst':>8}  chosen")
    totals = np.zeros(3)
    for index, node in enumerate(nodes):
        k, n = seen[index].shape[1], graph.tensor(node.outputs[0]).shape[-1]
        steps, count = n / 6, k // 2
        dense = steps * count * (DENSE_WORD + WAIT_STATES * WEIGHT_BYTES / 8)
        # Inputs by how often they are zero, least often first, paired neighbour by neighbour.
        words = np.argsort(seen[index].mean(axis=0), kind="stable")[:2 * count].reshape(-1, 2)
        calibrated = np.mean([skip_cycles(z, words, steps) for z in seen[index]])
        real = np.mean([skip_cycles(z, words, steps) for z in unseen[index]])
        worst = skip_cycles(np.zeros(k, bool), words, steps)
        skips = calibrated < dense
        zero_words = np.mean(unseen[index][:, words[:, 0]] & unseen[index][:, words[:, 1]])
        print(f"{index + 1:>5} {k:>4} {n:>4} {unseen[index].mean():>7.0%} {zero_words:>10.0%} "
              f"{dense:>8,.0f} {real:>8,.0f} {worst:>8,.0f}  {'skipping' if skips else 'dense'}")
        totals += [dense, real if skips else dense, worst if skips else dense]
    print(f"dense layers' loops and weight reads: {totals[0]:,.0f} cycles now; skipping where "
          f"it pays {totals[1]:,.0f} on the test windows ({totals[0] - totals[1]:,.0f} "
          f"fewer), {totals[2]:,.0f} in the worst case (no zero input)")


if __name__ == "__main__":
    main()
