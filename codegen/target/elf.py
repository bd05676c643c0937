"""Flash and RAM use of a firmware ELF, read with pyelftools, against the board's limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from codegen.errors import ArielError
from codegen.target.boards import Board

if TYPE_CHECKING:
    from codegen.target.stack_depth import StackPlan


@dataclass
class Section:
    name: str
    size: int
    in_flash: bool  # occupies flash (code, constants, initial values of .data)
    in_ram: bool  # occupies RAM at run time


@dataclass
class MemoryUse:
    board: Board
    sections: list[Section]
    symbols: dict[str, int] = field(default_factory=dict)  # size of named objects
    stack: StackPlan | None = None  # how the build sized its stack (firmware.make_firmware)

    @property
    def flash(self) -> int:
        return sum(s.size for s in self.sections if s.in_flash)

    @property
    def ram(self) -> int:
        return sum(s.size for s in self.sections if s.in_ram)

    def section(self, name: str) -> int:
        return sum(s.size for s in self.sections if s.name == name)

    def symbols_with_prefix(self, prefix: str) -> int:
        return sum(size for name, size in self.symbols.items() if name.startswith(prefix))


def memory_use(elf_path: Path, board: Board) -> MemoryUse:
    with open(elf_path, "rb") as handle:
        elf = ELFFile(handle)
        segments = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
        sections = []
        for sec in elf.iter_sections():
            if not sec["sh_flags"] & SH_FLAGS.SHF_ALLOC or sec["sh_size"] == 0:
                continue
            address = sec["sh_addr"]
            load = _load_address(segments, address)
            loaded = sec["sh_type"] != "SHT_NOBITS"
            sections.append(Section(sec.name, sec["sh_size"],
                                    in_flash=loaded and board.flash.contains(load),
                                    in_ram=board.ram.contains(address)))
        symbols = {}
        table = elf.get_section_by_name(".symtab")
        if table is not None:
            for sym in table.iter_symbols():
                if sym["st_info"]["type"] == "STT_OBJECT" and sym["st_size"]:
                    symbols[sym.name] = sym["st_size"]
    return MemoryUse(board, sections, symbols)


def _load_address(segments, address: int) -> int:
    """Where a section's bytes are stored (its LMA): .data runs in RAM but loads from flash."""
    for seg in segments:
        if seg["p_vaddr"] <= address < seg["p_vaddr"] + max(seg["p_memsz"], 1):
            return seg["p_paddr"] + address - seg["p_vaddr"]
    return address


def function_at(elf_path: Path, address: int) -> str | None:
    """The name of the function whose code holds `address` (Thumb bit ignored), or None."""
    address &= ~1
    for sym in _symbols(elf_path):
        start = sym["st_value"] & ~1
        if (sym["st_info"]["type"] == "STT_FUNC"
                and start <= address < start + max(sym["st_size"], 1)):
            return sym.name
    return None


def function_range(elf_path: Path, name: str) -> tuple[int, int] | None:
    """The code addresses [start, end) of function `name` (Thumb bit cleared), or None."""
    for sym in _symbols(elf_path):
        if sym.name == name and sym["st_info"]["type"] == "STT_FUNC":
            start = sym["st_value"] & ~1
            return start, start + max(sym["st_size"], 1)
    return None


def symbol_address(elf_path: Path, name: str) -> int | None:
    """The value of the symbol `name` (a linker script's `_sstack`), or None."""
    return next((sym["st_value"] for sym in _symbols(elf_path) if sym.name == name), None)


def check_firmware_file(elf_path: Path, rebuild: str) -> None:
    """Refuse, in one line, a firmware file that is not a readable 32-bit ARM ELF (damaged
    or replaced since the build): every later reader (the emulator, the fault explainer's
    symbol table, the flasher) would otherwise fail in its own way. `rebuild` says how."""
    try:
        with open(elf_path, "rb") as handle:
            elf = ELFFile(handle)
            machine = elf["e_machine"]
            if machine != "EM_ARM" or elf.elfclass != 32:
                raise ArielError(f"'{elf_path}' is an ELF for {machine} "
                                 f"({elf.elfclass}-bit), not ARM firmware; {rebuild}")
            list(elf.iter_segments())
            table = elf.get_section_by_name(".symtab")
            if table is not None:
                list(table.iter_symbols())
    except (ELFError, ValueError, OSError, EOFError) as exc:
        if isinstance(exc, OSError) and not Path(elf_path).is_file():
            raise
        raise ArielError(f"'{elf_path}' is not a readable firmware ELF ({exc}); "
                         f"{rebuild}") from None


def _symbols(elf_path: Path) -> list:
    with open(elf_path, "rb") as handle:
        table = ELFFile(handle).get_section_by_name(".symtab")
        return [] if table is None else list(table.iter_symbols())
