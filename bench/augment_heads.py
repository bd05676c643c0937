"""Benchmark: the heads `ariel augment` trains, by pooling, on the data sets of the early-exit
evaluation (digits CNN, MNIST CNN, BasicMotions big network). Prints, per exit and head:
the share of the backbone's MACs before the exit, the head's MACs, its held-out accuracy and
agreement with the final output, and how many held-out inputs it could answer on its own
with the rest left to the final output at 99.5% agreement: the margin threshold is chosen
on the even held-out inputs, the share answered and the agreement reported on the odd ones.
Then the seconds each augment took (features, training, validation).

    .venv/bin/python bench/augment_heads.py [--sets digits,mnist,basic_motions]

Everything runs on the host (onnxruntime and numpy); nothing is emulated."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.ari.augment.heads import HeadShape  # noqa: E402
from codegen.ari.augment.pipeline import AugmentRequest, augment  # noqa: E402
from codegen.datasets import basic_motions, digits_split, mnist  # noqa: E402

MODELS = ROOT / "examples" / "models"
SETS = {"digits": ("digits_cnn.onnx", digits_split),
        "mnist": ("mnist_cnn.onnx", mnist),
        "basic_motions": ("basic_motions_big.onnx", basic_motions)}
HEADS = [HeadShape("global"), HeadShape("grid", 0, 2), HeadShape("grid", 0, 4),
         HeadShape("grid", 32, 4), HeadShape("auto")]
TARGET = 0.995


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    args = parser.parse_args()
    rows = [("data set", "exit", "MACs before", "head", "head MACs", "accuracy", "agreement",
             "answers alone", "its agreement", "seconds")]
    with tempfile.TemporaryDirectory() as folder:
        for name in args.sets.split(","):
            rows += _rows(name, Path(folder))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.rjust(w) if i > 3 else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
        if index == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


def _rows(name: str, folder: Path) -> list[tuple[str, ...]]:
    model_file, load = SETS[name]
    x_train, y_train, x_test, y_test = load()
    train, held = folder / f"{name}_train.npz", folder / f"{name}_held.npz"
    np.savez(train, x=x_train, y=y_train)
    np.savez(held, x=x_test, y=y_test)
    rows = []
    for shape in HEADS:
        start = time.monotonic()
        result = augment(AugmentRequest(MODELS / model_file, str(train), folder / "ee.onnx",
                                        str(held), head=shape), lambda _: None)
        seconds = time.monotonic() - start
        scores = _run(result.model.SerializeToString(), x_test)
        final = scores[0].argmax(axis=1)
        total = result.sidecar["macs_total"]
        for exit_result, exit_scores in zip(result.exits, scores[1:], strict=True):
            answered, agreement = _alone(exit_scores, final)
            rows.append((name, exit_result.output,
                         f"{exit_result.point.macs / total:.1%}", exit_result.head.shape.label
                         + (" (auto)" if shape.pool == "auto" else ""),
                         f"{exit_result.head.macs:,}", f"{exit_result.accuracy:.1%}",
                         f"{exit_result.agreement:.1%}", f"{answered:.1%}",
                         f"{agreement:.1%}", f"{seconds:.1f}"))
    return rows


def _run(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    runs = [session.run(None, {name: sample[None]}) for sample in x]
    return [np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))]


def _alone(scores: np.ndarray, final: np.ndarray) -> tuple[float, float]:
    """The share of the odd inputs the exit answers, and the agreement with the final answer
    over all odd inputs, at the smallest top-2 margin threshold that keeps TARGET agreement
    on the even ones (the others answered by the final output)."""
    ordered = np.sort(scores, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]
    agrees = scores.argmax(axis=1) == final
    even, odd = np.arange(0, len(final), 2), np.arange(1, len(final), 2)
    threshold = np.inf
    for candidate in np.sort(margin[even])[::-1]:
        answered = margin[even] >= candidate
        if 1 - np.sum(answered & ~agrees[even]) / len(even) < TARGET:
            break
        threshold = candidate
    answered = margin[odd] >= threshold
    return (float(np.mean(answered)),
            1 - float(np.sum(answered & ~agrees[odd])) / len(odd))


if __name__ == "__main__":
    main()
