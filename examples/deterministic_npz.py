"""np.savez_compressed's format without its timestamps, so that extracting a data set twice
gives the same bytes (the checksums in SHA256SUMS stay valid). Shared by the extract_*.py
scripts, which find it beside them (a script's folder is on Python's path)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`arrays` as an .npz that np.load reads, each entry deflated, with fixed metadata; read
    back the way codegen.datasets reads it and compared (SystemExit if anything changed)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)
    with np.load(path, allow_pickle=False) as saved:
        for name, array in arrays.items():
            if saved[name].dtype != array.dtype or not np.array_equal(saved[name], array):
                raise SystemExit(f"error: {name} did not read back unchanged from {path}")
