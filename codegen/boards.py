"""The boards ariel knows: one TOML file each in boards/, loaded into a Board."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from codegen.errors import ArielError
from codegen.resources import data_dir

DEFAULT_BOARD = "mps2-an386"


@dataclass(frozen=True)
class Region:
    origin: int
    size: int

    def contains(self, address: int) -> bool:
        return self.origin <= address < self.origin + self.size


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    fpu: str  # a -mfpu value, or "none"
    clock_hz: int
    stack_bytes: int
    flash: Region
    ram: Region
    qemu_machine: str | None
    sources: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def arch_flags(self) -> list[str]:
        """The compiler flags that select this board's core and floating-point unit."""
        flags = [f"-mcpu={self.core}", "-mthumb"]
        if self.fpu == "none":
            return flags + ["-mfloat-abi=soft"]
        return flags + [f"-mfpu={self.fpu}", "-mfloat-abi=hard"]

    @property
    def emulator(self) -> str:
        return f"QEMU {self.qemu_machine}" if self.qemu_machine else "none"


def board_files() -> list[Path]:
    return sorted(data_dir("boards").glob("*.toml"))


def all_boards() -> list[Board]:
    return [_load(path) for path in board_files()]


def get_board(name: str) -> Board:
    for path in board_files():
        if path.stem == name:
            return _load(path)
    known = ", ".join(p.stem for p in board_files())
    raise ArielError(f"unknown board '{name}'; known boards: {known} (see `ariel boards`)")


def _load(path: Path) -> Board:
    try:
        data = tomllib.loads(path.read_text())
        memory = data["memory"]
        return Board(
            name=data["name"],
            description=data["description"],
            core=data["core"],
            fpu=data.get("fpu", "none"),
            clock_hz=int(data["clock_hz"]),
            stack_bytes=int(data.get("stack_bytes", 8192)),
            flash=Region(int(memory["flash"]["origin"]), int(memory["flash"]["size"])),
            ram=Region(int(memory["ram"]["origin"]), int(memory["ram"]["size"])),
            qemu_machine=data.get("emulator", {}).get("qemu_machine"),
            sources=dict(data.get("sources", {})),
            path=path,
        )
    except (KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise ArielError(f"board file '{path}' is invalid: {exc}") from exc
