"""Write a build into its output folder all at once: everything goes to a hidden staging
folder beside it, which replaces the folder only when the build has succeeded. A failed
build leaves nothing behind (not even parent folders it had to create)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codegen.errors import ArielError

MARKER = "ariel.json"


@contextmanager
def staged_output(outdir: Path) -> Iterator[Path]:
    outdir = Path(outdir).absolute()
    if outdir.exists() and not _replaceable(outdir):
        raise ArielError(f"output folder '{outdir}' exists and is not an ariel build; "
                         "choose another folder or remove it")
    created = _missing_ancestors(outdir.parent)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        yield staging
        _replace(outdir, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _replaceable(outdir: Path) -> bool:
    return outdir.is_dir() and ((outdir / MARKER).is_file() or not any(outdir.iterdir()))


def _missing_ancestors(folder: Path) -> list[Path]:
    """Folders from `folder` upwards that do not exist yet, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _replace(outdir: Path, staging: Path) -> None:
    if outdir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old.", dir=outdir.parent))
        retired.rmdir()
        outdir.rename(retired)
        staging.rename(outdir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(outdir)
