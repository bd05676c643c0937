"""The boards ariel knows: one TOML file each in boards/, loaded into a Board.

A board file describes the chip as it is (its real memory map, clock, flash wait states,
supply current and voltage) and, in [emulator], the QEMU machine that runs its firmware. When
that machine is not the chip itself (an STM32 dev kit emulated on an Arm MPS2 FPGA image with
the same core), the firmware built for simulation is linked at the machine's addresses but
with the chip's sizes, so anything that would not fit the chip fails to link."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from codegen.compiler.budget import Budget
from codegen.compiler.nvm import Nvm, parse_nvm
from codegen.errors import ArielError, BoardFileError
from codegen.resources import data_dir
from codegen.target.board_kit import (
    ClockTree,
    Console,
    Debug,
    RenodeInfo,
    parse_clock_tree,
    parse_console,
    parse_debug,
    parse_renode,
)
from codegen.target.board_schema import check_board_file

DEFAULT_BOARD = "mps2-an386"
NO_FIGURE = "no published figure"
BOARD_COPY = "board.toml"  # a build's copy of the user's board file


@dataclass(frozen=True)
class Region:
    origin: int
    size: int

    def contains(self, address: int) -> bool:
        return self.origin <= address < self.origin + self.size

    @property
    def end(self) -> int:
        return self.origin + self.size

    def to_dict(self) -> dict:
        return {"origin": f"0x{self.origin:08X}", "size": self.size}


@dataclass(frozen=True)
class MemoryMap:
    """Where code/constants (flash) and data (RAM) live for one build."""

    name: str  # "chip" for the board's own map, else "qemu <machine>"
    flash: Region
    ram: Region

    def to_dict(self) -> dict:
        return {"name": self.name, "flash": self.flash.to_dict(), "ram": self.ram.to_dict()}


@dataclass(frozen=True)
class Emulator:
    """The QEMU machine that runs this board's firmware and where that machine has memory.
    `code`/`data` are None when the machine emulates the chip itself (same memory map)."""

    qemu_machine: str | None
    code: Region | None = None
    data: Region | None = None
    qemu_args: tuple[str, ...] = ()  # extra QEMU options the machine needs for this board

    @property
    def own_map(self) -> bool:
        return self.code is None and self.data is None


@dataclass(frozen=True)
class CacheGeometry:
    """One side (instructions or data) of what sits in front of a board's flash: `entries`
    entries of `entry_bytes` bytes in sets of `ways`, least recently used replaced; no
    entries: every read goes to the flash."""

    entry_bytes: int
    entries: int
    ways: int

    @property
    def argument(self) -> str:
        """As the counting plugin takes it (icache= / dcache=)."""
        return f"{self.entry_bytes}:{self.entries}:{self.ways}"

    @property
    def bytes(self) -> int:
        return self.entry_bytes * self.entries


@dataclass(frozen=True)
class FlashCaches:
    """The board's flash accelerator or caches, as the cycle model simulates them."""

    instruction: CacheGeometry
    data: CacheGeometry
    prefetch: bool  # the next instruction line is read while the current one executes
    description: str = ""


@dataclass(frozen=True)
class Power:
    """What the chip draws running at the board's clock: a datasheet's run-mode supply
    current and voltage, or a power measured on the board itself. Figures may be missing
    (`note` then says why); an energy estimate needs one or the other."""

    supply_voltage_v: float | None = None
    run_current_ma: float | None = None  # at the board's clock
    run_current_ua_per_mhz: float | None = None  # scaled by the board's clock
    run_power_mw: float | None = None  # measured on the board, running at its clock
    condition: str = ""  # what was measured: regulator, caches, code location, workload
    note: str = NO_FIGURE

    def power_w(self, clock_hz: int) -> float | None:
        """The power at `clock_hz`, in watts, or None when no figure is given."""
        if self.run_power_mw is not None:
            return self.run_power_mw * 1e-3
        current = self.run_current_a(clock_hz)
        if current is None or self.supply_voltage_v is None:
            return None
        return current * self.supply_voltage_v

    def run_current_a(self, clock_hz: int) -> float | None:
        """The supply current at `clock_hz`, in amperes, or None if no figure is given."""
        if self.run_current_ma is not None:
            return self.run_current_ma * 1e-3
        if self.run_current_ua_per_mhz is not None:
            return self.run_current_ua_per_mhz * 1e-6 * clock_hz / 1e6
        return None


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    fpu: str  # a -mfpu value, or "none"
    clock_hz: int
    stack_bytes: int
    chip: MemoryMap  # the chip's real memory map, from [memory]
    emulation: Emulator
    # Flash wait states at clock_hz (what the cycle model charges a flash access; None when
    # the board file could not source the figure) and whether a cache or accelerator in
    # front of the flash hides them on hits, and which.
    wait_states: int | None = 0
    wait_states_hidden: bool = False
    wait_states_hidden_by: str = ""
    # The caches in front of the flash, simulated on every fetch and load from it; None: the
    # board file describes none (the cycle model then bounds the flash's cost instead).
    flash_caches: FlashCaches | None = None
    # Options of the core the chip maker chose (e.g. the Cortex-M0+'s multiplier): the cycle
    # table's classes they select (codegen/run/emulate/cores/*.toml [options]).
    core_options: dict[str, str] = field(default_factory=dict)
    power: Power = field(default_factory=Power)
    sources: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    # The real dev kit (codegen/target/board_kit.py): console UART, clock tree, pyOCD and Renode.
    console: Console | None = None
    clock_tree: ClockTree | None = None
    debug: Debug | None = None
    renode: RenodeInfo | None = None
    # Non-volatile memory for intermittent builds ([nvm]; codegen/compiler/nvm.py), and
    # whether this is such a build's view of the board (for_intermittent).
    nvm: Nvm | None = None
    intermittent: bool = False

    @property
    def arch_flags(self) -> list[str]:
        """The compiler flags that select this board's core and floating-point unit."""
        return arch_flags(self.core, self.fpu)

    @property
    def qemu_machine(self) -> str | None:
        return self.emulation.qemu_machine

    @property
    def emulator(self) -> str:
        return f"QEMU {self.qemu_machine}" if self.qemu_machine else "none"

    @property
    def link_map(self) -> MemoryMap:
        """The map a simulation build is linked for: the chip's own map when the emulator is
        the chip, else the emulator's addresses with the chip's sizes."""
        emu = self.emulation
        if emu.own_map:
            return self.chip
        flash = Region(emu.code.origin, self.chip.flash.size) if emu.code else self.chip.flash
        ram = Region(emu.data.origin, self.chip.ram.size) if emu.data else self.chip.ram
        return MemoryMap(f"qemu {emu.qemu_machine}", flash, ram)

    @property
    def flash(self) -> Region:
        """Flash as the firmware is linked (see link_map): the board's size."""
        return self.link_map.flash

    @property
    def ram(self) -> Region:
        """RAM as the firmware is linked (see link_map): the board's size."""
        return self.link_map.ram

    @property
    def budget(self) -> Budget:
        """What a model built for this board may hold, checked before heavy work."""
        return Budget(self.flash.size, self.ram.size, self.name)

    @property
    def map_summary(self) -> str:
        """Which memory map a build uses, in one line, for reports."""
        link, chip = self.link_map, self.chip
        where = f"flash 0x{link.flash.origin:08X}, RAM 0x{link.ram.origin:08X}"
        if link.name == "chip":
            return f"the board's own map ({where})"
        return (f"{self.qemu_machine}'s addresses ({where}) with {self.name}'s sizes; the "
                f"chip's are 0x{chip.flash.origin:08X} and 0x{chip.ram.origin:08X}")

    def on_chip(self) -> Board:
        """This board as a build for the chip itself sees it (`--io uart`): linked at the
        chip's own memory map, whatever machine emulates its simulation builds."""
        machine = self.qemu_machine if self.emulation.own_map else None
        return replace(self, emulation=Emulator(machine))

    def for_intermittent(self) -> Board:
        """This board as an intermittent build sees it: its linker script gets the NVM
        region, and where the NVM is the end of the internal flash, the firmware's code and
        constants keep out of that part."""
        nvm = self.nvm
        if nvm is None:
            raise ArielError(f"--power intermittent keeps checkpoints in non-volatile memory, "
                             f"and board {self.name} describes none: choose a board with an "
                             "[nvm] table (nucleo-l4r5zi: internal flash; nucleo-l4r5zi-fram: "
                             "SPI F-RAM) or add one to your board file (README, 'Intermittent "
                             "power')")
        chip = self.chip
        if nvm.kind == "flash" and nvm.interface == "internal":
            flash = chip.flash
            chip = MemoryMap("chip", Region(flash.origin, flash.size - nvm.size), chip.ram)
        return replace(self, chip=chip, intermittent=True)

    def memory_map_dict(self) -> dict:
        """What ariel.json records about the map a build used."""
        return {"linked_for": self.link_map.to_dict(), "chip": self.chip.to_dict(),
                "emulator": self.qemu_machine}


def arch_flags(core: str, fpu: str) -> list[str]:
    """The compiler flags that select a core and its floating-point unit ("none": floats in
    software)."""
    flags = [f"-mcpu={core}", "-mthumb"]
    if fpu == "none":
        return flags + ["-mfloat-abi=soft"]
    return flags + [f"-mfpu={fpu}", "-mfloat-abi=hard"]


def is_custom(board: Board) -> bool:
    """Whether `board` comes from a user's file (--board-file) rather than ariel's boards/."""
    return board.path is None or board.path.resolve().parent != data_dir("boards").resolve()


def keep_board_file(folder: Path, board: Board, metadata: dict) -> None:
    """A build for a user's board keeps a copy of its file (BOARD_COPY), named in
    `metadata`, so that the build can be simulated and profiled without it."""
    if is_custom(board) and board.path is not None:
        (Path(folder) / BOARD_COPY).write_bytes(board.path.read_bytes())
        metadata["board_file"] = BOARD_COPY


def board_of_build(folder: Path, metadata: dict, board_file: Path | None = None) -> Board:
    """The board a build was made for: ariel's by name, or the copy of the user's file it
    keeps; `board_file` (simulate --board-file) stands in for that copy."""
    if board_file is None and "board_file" not in metadata:
        return get_board(metadata["board"])
    board = load_board(board_file or Path(folder) / metadata["board_file"])
    if board.name != metadata["board"]:
        raise ArielError(f"'{folder}' was built for board '{metadata['board']}', and "
                         f"'{board_file}' describes '{board.name}': give that board's file")
    return board


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


def load_board(path: Path) -> Board:
    """A board from any TOML file (a user's --board-file, or a test's board)."""
    path = Path(path)
    if not path.is_file():
        raise ArielError(f"board file '{path}' not found")
    return _load(path)


def _region(table: dict, origin: str = "origin", size: str = "size") -> Region:
    return Region(int(table[origin]), int(table[size]))


def _cache(table: dict) -> CacheGeometry:
    geometry = CacheGeometry(int(table["entry_bytes"]), int(table["entries"]),
                             int(table["ways"]))
    if geometry.entry_bytes & (geometry.entry_bytes - 1) or geometry.ways < 1 or \
            geometry.entries % geometry.ways:
        raise ValueError(f"cache {table}: entry_bytes must be a power of two and entries a "
                         "multiple of ways")
    return geometry


def _flash_caches(timing: dict) -> FlashCaches | None:
    if "instruction_side" not in timing:
        return None
    return FlashCaches(_cache(timing["instruction_side"]), _cache(timing["data_side"]),
                       bool(timing["instruction_side"].get("prefetch", False)),
                       str(timing.get("hidden_by", "")))


def _optional_float(table: dict, key: str) -> float | None:
    return float(table[key]) if key in table else None


def invalid_board(path: Path, problems: list[str]) -> BoardFileError:
    """The refusal of a board file: a first line, then one line per problem."""
    return BoardFileError(f"board file '{path}' is invalid ({len(problems)} problem"
                          f"{'s' if len(problems) > 1 else ''})",
                          "\n".join(f"{path}: {problem}" for problem in problems))


def _load(path: Path) -> Board:
    problems = check_board_file(path)
    if problems:
        raise invalid_board(path, problems)
    try:
        data = tomllib.loads(path.read_text())
        memory = data["memory"]
        chip = MemoryMap("chip", _region(memory["flash"]), _region(memory["ram"]))
        emu = data.get("emulator", {})
        emulation = Emulator(
            qemu_machine=emu.get("qemu_machine"),
            code=_region(emu, "code_origin", "code_size") if "code_origin" in emu else None,
            data=_region(emu, "data_origin", "data_size") if "data_origin" in emu else None,
            qemu_args=tuple(str(a) for a in emu.get("qemu_args", ())))
        timing = data.get("flash_timing", {})
        power = data.get("power", {})
        board = Board(
            name=data["name"],
            description=data["description"],
            core=data["core"],
            fpu=data.get("fpu", "none"),
            clock_hz=int(data["clock_hz"]),
            stack_bytes=int(data.get("stack_bytes", 8192)),
            chip=chip,
            emulation=emulation,
            wait_states=int(timing["wait_states"]) if "wait_states" in timing else None,
            wait_states_hidden=bool(timing.get("hidden", False)),
            wait_states_hidden_by=str(timing.get("hidden_by", "")),
            flash_caches=_flash_caches(timing),
            core_options={str(k): str(v) for k, v in data.get("core_options", {}).items()},
            power=Power(supply_voltage_v=_optional_float(power, "supply_voltage_v"),
                        run_current_ma=_optional_float(power, "run_current_ma"),
                        run_current_ua_per_mhz=_optional_float(power, "run_current_ua_per_mhz"),
                        run_power_mw=_optional_float(power, "run_power_mw"),
                        condition=str(power.get("condition", "")),
                        note=str(power.get("note", NO_FIGURE))),
            sources=dict(data.get("sources", {})),
            path=path,
            console=parse_console(data["console"]) if "console" in data else None,
            clock_tree=parse_clock_tree(data["clock_tree"]) if "clock_tree" in data else None,
            debug=parse_debug(data["debug"]) if "debug" in data else None,
            renode=parse_renode(data["renode"]) if "renode" in data else None,
            nvm=parse_nvm(data["nvm"]) if "nvm" in data else None,
        )
    except (KeyError, ValueError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise ArielError(f"board file '{path}' is invalid: {exc}") from exc
    _check_fits_emulator(board, path)
    _check_clock_tree(board, path)
    return board


def _check_clock_tree(board: Board, path: Path) -> None:
    """The clock tree must give the board's clock exactly: it is what the firmware sets."""
    tree = board.clock_tree
    if tree is not None and round(tree.core_hz) != board.clock_hz:
        raise ArielError(
            f"board file '{path}' is invalid: its clock tree gives {tree.core_hz:,.0f} Hz "
            f"({tree.source_hz:,} / {tree.pll_m} * {tree.pll_n} / {tree.pll_div} / "
            f"{tree.core_div}), not clock_hz {board.clock_hz:,}")


def _check_fits_emulator(board: Board, path: Path) -> None:
    """The chip's sizes must fit the emulating machine's memory, or a firmware that fits the
    chip could not run in the emulator."""
    for what, chip_region, machine_region in (
            ("flash", board.chip.flash, board.emulation.code),
            ("RAM", board.chip.ram, board.emulation.data)):
        if machine_region is not None and chip_region.size > machine_region.size:
            raise ArielError(
                f"board file '{path}' is invalid: {board.name}'s {what} "
                f"({chip_region.size:,} B) is larger than QEMU {board.qemu_machine}'s memory "
                f"for it ({machine_region.size:,} B at 0x{machine_region.origin:08X})")
