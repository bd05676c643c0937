"""Writing a file the user will read (reports, outputs, build files rewritten in place): all
at once or not at all, and never through a name someone else could have prepared.

The bytes go to a temporary file beside the target, created with O_EXCL | O_NOFOLLOW under an
unpredictable name (so a symlink planted at a guessable `.NAME.tmp` cannot redirect the
write), synced, then renamed over the target; any failure removes the temporary. The file is
created with mode 0666 and the user's umask applies, as for any file a program writes (where
the target exists already, it keeps that file's permissions)."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from codegen.errors import ArielError

_TEMPORARY_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                    | getattr(os, "O_CLOEXEC", 0))


def check_target(path: Path, what: str) -> Path:
    """Refuse, before any work is done, a target ariel could not write: in a folder that does
    not exist, or naming a folder. `what` names the option in the message (e.g. --json)."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise ArielError(f"{what} '{path}' is a folder; give a file name inside it")
    if not folder.exists():
        raise ArielError(f"{what} '{path}': the folder '{folder}' does not exist; create it "
                         "first")
    if not folder.is_dir():
        raise ArielError(f"{what} '{path}': '{folder}' is not a folder")
    return path


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary handle whose bytes become `path` when the block ends without an error."""
    path = Path(path)
    descriptor, temporary = _create_temporary(path)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(temporary, path)
        except OSError as exc:
            raise ArielError(f"cannot write '{path}': {exc.strerror}") from None
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write text (UTF-8) or bytes to `path` through `atomic_file`. A path that is not UTF-8
    (held in text as os.fsdecode's lone surrogates) is written as the bytes it stands for."""
    with atomic_file(path) as handle:
        handle.write(content.encode("utf-8", "surrogateescape") if isinstance(content, str)
                     else content)


def _create_temporary(path: Path) -> tuple[int, Path]:
    mode = 0o666
    with suppress(OSError):
        existing = path.lstat()
        if stat.S_ISREG(existing.st_mode):
            mode = stat.S_IMODE(existing.st_mode)
    for _ in range(100):
        # The name kept short enough for any file system (a long target name is cut).
        temporary = path.with_name(f".{path.name[:64]}.{secrets.token_hex(8)}.tmp")
        try:
            descriptor = os.open(temporary, _TEMPORARY_FLAGS, mode)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ArielError(f"cannot write '{path}': {exc.strerror}") from None
        if mode != 0o666:
            os.fchmod(descriptor, mode)  # the target's own permissions, not the umask's
        return descriptor, temporary
    raise ArielError(f"cannot write '{path}': no free temporary name beside it")
