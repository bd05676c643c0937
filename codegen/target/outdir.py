"""Output folders are the user's: ariel replaces only the files it wrote there.

A build goes to a hidden staging folder beside the output folder and takes its place only when
it has succeeded: a failed build leaves nothing behind (not even parent folders it had to
create). The staging folder's last file is ariel.json, whose manifest lists every file ariel
wrote with its size and SHA-256; make's output folder (build/, which the generated Makefile's
`clean` removes whole) is ariel's as a whole.

Rebuilding into an existing folder:
- an ariel build by its manifest: the files it lists are replaced; every other file (outputs
  and reports saved there, notes, a whole folder of the user's) is kept, moved into the new
  build at the same place. A listed file that has changed since (edited by hand) stops the
  rebuild, naming it, unless --force, which replaces it.
- any other folder (no manifest, or one ariel cannot read) is refused unless --force, which
  builds into it beside its files.
Even with --force no file ariel did not write is deleted or overwritten: a file of the user's
where the build puts one of its own stops the build, naming it."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from codegen.errors import ArielError
from codegen.files import write_atomic

MARKER = "ariel.json"
FORMAT_KEY = "ariel_build"  # the manifest's format version, in ariel.json
FORMAT = 1
FILES_KEY = "files"  # relative path -> {"bytes": size, "sha256": digest}
OWNED_FOLDERS = ("build",)  # make's outputs: `make clean` removes the folder whole
LISTED = 6  # paths named in a message
EARLIER = "holds a build of an earlier ariel"


@dataclass
class Survey:
    """An existing output folder sorted by who wrote what (paths relative to it, with /)."""

    manifest: dict | None  # the files ariel wrote, None when the folder has no manifest
    reason: str = ""  # why it has none
    forceable: bool = True  # whether --force can build beside its files
    ours: list[str] = field(default_factory=list)  # as ariel wrote them (and owned folders)
    changed: list[str] = field(default_factory=list)  # ariel wrote them; changed since
    theirs: list[str] = field(default_factory=list)  # not ariel's (a folder: all of it)


@contextmanager
def staged_output(outdir: Path, force: bool = False) -> Iterator[Path]:
    """A fresh folder to write the build into; it becomes `outdir` when the block ends
    without an error (call write_manifest last)."""
    outdir = output_path(outdir)
    check_output_folder(outdir, force)
    created = _missing_ancestors(outdir.parent)
    try:
        outdir.parent.mkdir(parents=True, exist_ok=True)
        staging = _new_folder(outdir.parent, outdir.name)
    except OSError as exc:
        _remove_empty(created)
        raise ArielError(f"cannot create the output folder '{outdir}': {exc.strerror}") from None
    try:
        yield staging
        if not (staging / MARKER).is_file():
            raise RuntimeError(f"the build wrote no {MARKER} into its staging folder")
        _install(outdir, staging, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise


def output_path(outdir: Path) -> Path:
    """`outdir` made absolute (a symlink to a folder stands for that folder), or refused
    where no folder can be made."""
    outdir = Path(os.path.abspath(outdir))
    if outdir.is_symlink() and outdir.is_dir():
        outdir = outdir.resolve()
    if outdir == outdir.parent:
        raise ArielError(f"'{outdir}' cannot be an output folder; give a folder inside it")
    existing = outdir
    while not os.path.lexists(existing):
        existing = existing.parent
    if existing != outdir and not existing.is_dir():
        raise ArielError(f"cannot create the output folder '{outdir}': '{existing}' is a file, "
                         "not a folder")
    return outdir


def check_output_folder(outdir: Path, force: bool = False) -> Survey | None:
    """Refuse an output folder ariel may not build into; its survey when it exists."""
    outdir = Path(outdir)
    if not os.path.lexists(outdir):
        return None
    if not outdir.is_dir():
        raise ArielError(f"the output folder '{outdir}' exists and is a file; choose a folder")
    found = survey(outdir)
    if found.manifest is None and found.theirs and (not force or not found.forceable):
        advice = (", or give --force to build into it beside the files it holds (none of "
                  "them is replaced)") if found.forceable else ""
        raise ArielError(f"the output folder '{outdir}' exists and {found.reason}: choose "
                         f"another folder{advice}")
    if found.changed and not force:
        raise ArielError(f"the output folder '{outdir}' is an ariel build, but "
                         f"{_some(found.changed)} changed since ariel wrote them: choose "
                         "another folder, or give --force to replace them")
    return found


def survey(folder: Path) -> Survey:
    files, reason = read_manifest(folder)
    found = Survey(files, reason, forceable=not reason.startswith(EARLIER))
    parents = {"/".join(p.split("/")[:i]) for p in files or {} for i in
               range(1, p.count("/") + 1)}

    def visit(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                relative = prefix + entry.name
                is_dir = entry.is_dir(follow_symlinks=False)
                if files is not None and (relative == MARKER or
                                          (is_dir and relative in OWNED_FOLDERS)):
                    found.ours.append(relative)
                elif is_dir and relative in parents:
                    visit(Path(entry.path), relative + "/")
                elif files is not None and relative in files:
                    unchanged = _matches(Path(entry.path), files[relative])
                    (found.ours if unchanged else found.changed).append(relative)
                else:
                    found.theirs.append(relative)

    visit(folder, "")
    return found


def read_manifest(folder: Path) -> tuple[dict | None, str]:
    """The files ariel wrote into `folder` by its ariel.json, or None and why there is none."""
    marker = Path(folder) / MARKER
    if not marker.is_file() or marker.is_symlink():
        return None, f"is not an ariel build (it has no {MARKER})"
    try:
        metadata = json.loads(marker.read_bytes())
    except (OSError, ValueError):
        return None, f"is not an ariel build (its {MARKER} is not ariel's)"
    if not isinstance(metadata, dict) or "ariel_version" not in metadata:
        return None, f"is not an ariel build (its {MARKER} is not ariel's)"
    files = metadata.get(FILES_KEY)
    if metadata.get(FORMAT_KEY) != FORMAT or not _valid_files(files):
        return None, (f"{EARLIER} that kept no list of the files it wrote, so ariel cannot "
                      "tell them from yours (remove the folder once you have kept what you "
                      "need)")
    return files, ""


def write_manifest(folder: Path, metadata: dict) -> None:
    """Write ariel.json: `metadata` and the list of every file now in `folder` (the staging
    folder of a build, which holds only ariel's files)."""
    files = {}
    for path in sorted(Path(folder).rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if (path.is_file() and not path.is_symlink() and relative != MARKER
                and relative.split("/")[0] not in OWNED_FOLDERS):
            files[relative] = _fingerprint(path)
    _write_marker(folder, {**metadata, FORMAT_KEY: FORMAT, FILES_KEY: files})


def rewrite_build_file(folder: Path, relative: str, content: str | bytes) -> None:
    """Write one of ariel's files into an existing build (a report, a rebuilt source) and
    list it in the manifest, so that a rebuild knows it for ariel's."""
    path = Path(folder) / relative
    write_atomic(path, content)
    metadata = json.loads((Path(folder) / MARKER).read_text())
    if isinstance(metadata.get(FILES_KEY), dict):
        metadata[FILES_KEY][relative] = _fingerprint(path)
        _write_marker(folder, metadata)


def save_metadata(folder: Path, metadata: dict) -> None:
    """Rewrite a build's ariel.json with new `metadata`, keeping its manifest."""
    current = json.loads((Path(folder) / MARKER).read_text())
    kept = {key: current[key] for key in (FORMAT_KEY, FILES_KEY) if key in current}
    _write_marker(folder, {**metadata, **kept})


def is_build_file(folder: Path, path: Path) -> bool:
    """Whether `path` is one of the files of the build in `folder` (its manifest, a file it
    lists, anything in make's output folder), which a user's output must not replace. In a
    build without a manifest, any file already there counts."""
    path = Path(path).parent.resolve() / Path(path).name
    try:
        relative = path.relative_to(Path(folder).resolve()).as_posix()
    except ValueError:
        return False
    if relative == MARKER or relative.split("/")[0] in OWNED_FOLDERS:
        return True
    files, _ = read_manifest(folder)
    return relative in files if files is not None else os.path.lexists(path)


def _install(outdir: Path, staging: Path, force: bool) -> None:
    """Put the finished build in `staging` in the place of `outdir`, keeping the user's
    files; the folder is surveyed again, since it may have changed during the build."""
    found = check_output_folder(outdir, force)
    if found is None:
        staging.rename(outdir)
        return
    clashes = [relative for relative in found.theirs if _occupied(staging, relative)]
    if clashes:
        raise ArielError(f"the output folder '{outdir}' holds {_some(clashes)} that ariel did "
                         "not write, where the build writes its own: move them out of the "
                         "folder, or choose another folder")
    moved = []
    try:
        for relative in found.theirs:
            _move(outdir / relative, staging / relative)
            moved.append(relative)
        os.chmod(staging, stat.S_IMODE(outdir.stat().st_mode))
        retired = _new_folder(outdir.parent, outdir.name + ".old")
        os.rename(outdir, retired)  # over the empty folder just made: no race for the name
    except OSError as exc:
        for relative in reversed(moved):
            _move(staging / relative, outdir / relative)
        raise ArielError(f"cannot replace the output folder '{outdir}': {exc.strerror}") from None
    try:
        staging.rename(outdir)
    except OSError as exc:
        os.rename(retired, outdir)
        for relative in reversed(moved):
            _move(staging / relative, outdir / relative)
        raise ArielError(f"cannot replace the output folder '{outdir}': {exc.strerror}") from None
    _discard(retired, found.ours + found.changed, outdir)


def _discard(retired: Path, ours: list[str], outdir: Path) -> None:
    """Delete the previous build's files, ariel's only; anything else that turns up there
    (written during the rebuild) goes back into the output folder."""
    for relative in ours:
        path = retired / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with suppress(FileNotFoundError):
                path.unlink()
    for directory, _, _ in sorted(os.walk(retired), key=lambda w: -len(w[0])):
        with suppress(OSError):
            os.rmdir(directory)
    if retired.exists():
        for relative in survey(retired).theirs:
            if not _occupied(outdir, relative):
                _move(retired / relative, outdir / relative)
        with suppress(OSError):
            retired.rmdir()


def _occupied(folder: Path, relative: str) -> bool:
    """Whether moving a file to `folder/relative` would replace something there."""
    path = folder / relative
    if os.path.lexists(path):
        return True
    parent = path.parent
    while parent != folder:
        if os.path.lexists(parent) and not parent.is_dir():
            return True
        parent = parent.parent
    return False


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)


def _new_folder(parent: Path, label: str) -> Path:
    """An empty hidden folder in `parent` under an unpredictable name, with the permissions
    of any folder the user makes (mkdir applies the umask; tempfile.mkdtemp would give 0700)."""
    for _ in range(100):
        candidate = parent / f".{label[:64]}.{secrets.token_hex(6)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise ArielError(f"cannot create a folder in '{parent}': no free name")


def _missing_ancestors(folder: Path) -> list[Path]:
    """Folders from `folder` upwards that do not exist yet, deepest first."""
    missing = []
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with suppress(OSError):
            folder.rmdir()


def _fingerprint(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _matches(path: Path, recorded: dict) -> bool:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size != recorded["bytes"]:
            return False
        return _fingerprint(path)["sha256"] == recorded["sha256"]
    except OSError:
        return False


def _valid_files(files) -> bool:
    return isinstance(files, dict) and all(
        isinstance(entry, dict) and isinstance(entry.get("bytes"), int)
        and isinstance(entry.get("sha256"), str) for entry in files.values())


def _write_marker(folder: Path, metadata: dict) -> None:
    write_atomic(Path(folder) / MARKER, json.dumps(metadata, indent=2) + "\n")


def _some(paths: list[str]) -> str:
    """Up to LISTED of `paths`, quoted, and how many more."""
    shown = ", ".join(f"'{p}'" for p in paths[:LISTED])
    more = f" and {len(paths) - LISTED} more" if len(paths) > LISTED else ""
    return f"{len(paths)} file(s) ({shown}{more})"
