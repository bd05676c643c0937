"""A board's non-volatile memory for intermittent builds (its optional [nvm] table): what it
is, where the emulated firmware sees it, and what writing it costs in time, energy and wear.

`origin` and `size` are addresses in the map the simulation build is linked for (the
emulator's): there the firmware writes its checkpoints, and there the power-cut emulator keeps
memory across a cut. Internal flash also gives `chip_origin`, the same region in the chip's
own map, and must sit at the end of the flash the firmware is linked in (an intermittent build
keeps its code out of it). An SPI part has no address on the chip: the emulated firmware sees
it as memory, and the cost model charges the bus transfer the real driver would make.

It lives with the compiler, as budget.py does: the checkpoint planner needs these figures,
and the board files (codegen/target) are read into them."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("flash", "fram", "mram")
INTERFACES = ("internal", "spi")
# Fields each kind or interface needs beyond the common ones (the schema says why when missing).
NEEDED = {
    "flash": ("page_bytes", "program_bytes", "erase_us", "program_us"),
    "spi": ("spi_clock_hz", "spi_command_bytes"),
}
YEAR_HOURS = 24 * 365.25


@dataclass(frozen=True)
class Nvm:
    kind: str  # flash | fram | mram
    interface: str  # internal | spi
    origin: int  # in the emulated machine's map
    size: int
    endurance_cycles: float  # erase/write cycles per page (flash) or per byte (FRAM, MRAM)
    chip_origin: int | None = None  # internal: the region in the chip's own map
    page_bytes: int = 1  # the erase unit; 1: bytes are rewritten in place (no erase)
    program_bytes: int = 1  # the unit programmed at once (flash: a double word)
    erase_us: float = 0.0  # one page
    program_us: float = 0.0  # one program unit
    write_ns_per_byte: float = 0.0  # internal FRAM/MRAM: a byte's write time
    spi_clock_hz: int = 0
    spi_command_bytes: int = 0  # opcode and address (and write enable) per write
    spi_lines: int = 1  # data lines each clock carries a bit on: 1 SPI, 2 dual, 4 quad
    write_power_mw: float | None = None  # drawn by the memory while it writes
    note: str = ""

    @property
    def erases(self) -> bool:
        """Whether a byte must be erased (with its whole page) before it is written again."""
        return self.kind == "flash"

    @property
    def end(self) -> int:
        return self.origin + self.size

    def describe(self) -> str:
        bus = {1: "SPI", 2: "dual SPI", 4: "quad SPI"}.get(self.spi_lines,
                                                           f"{self.spi_lines}-line SPI")
        where = "internal" if self.interface == "internal" else \
            f"on {bus} at {self.spi_clock_hz / 1e6:g} MHz"
        return f"{self.kind} ({where}), {self.size:,} B"

    def write_seconds(self, nbytes: int, pages_erased: int = 0, writes: int = 1) -> float:
        """How long `writes` writes of `nbytes` in all take, erasing `pages_erased` pages."""
        if self.interface == "spi":
            # Command, address and data alike go over every line (quad SPI's 4-4-4 mode):
            # a byte takes 8 / lines clocks.
            bits = (nbytes + writes * self.spi_command_bytes) * 8
            seconds = bits / self.spi_lines / self.spi_clock_hz
        elif self.kind == "flash":
            units = -(-nbytes // self.program_bytes)
            seconds = units * self.program_us * 1e-6
        else:
            seconds = nbytes * self.write_ns_per_byte * 1e-9
        return seconds + pages_erased * self.erase_us * 1e-6

    def write_energy_j(self, seconds: float) -> float | None:
        """The memory's own energy for writes lasting `seconds` (None: no figure given)."""
        return None if self.write_power_mw is None else self.write_power_mw * 1e-3 * seconds


def parse_nvm(table: dict) -> Nvm:
    """An [nvm] table the schema has checked, as an Nvm."""
    def number(key: str, default: float = 0.0) -> float:
        return float(table.get(key, default))

    return Nvm(kind=table["kind"], interface=table["interface"], origin=int(table["origin"]),
               size=int(table["size"]), endurance_cycles=float(table["endurance_cycles"]),
               chip_origin=int(table["chip_origin"]) if "chip_origin" in table else None,
               page_bytes=int(table.get("page_bytes", 1)),
               program_bytes=int(table.get("program_bytes", 1)),
               erase_us=number("erase_us"), program_us=number("program_us"),
               write_ns_per_byte=number("write_ns_per_byte"),
               spi_clock_hz=int(table.get("spi_clock_hz", 0)),
               spi_command_bytes=int(table.get("spi_command_bytes", 0)),
               spi_lines=int(table.get("spi_lines", 1)),
               write_power_mw=float(table["write_power_mw"]) if "write_power_mw" in table
               else None,
               note=str(table.get("note", "")))


def check_nvm_fields(table: dict) -> list[str]:
    """What an [nvm] table whose fields are each valid says wrong together."""
    problems = []
    kind, interface = table.get("kind"), table.get("interface")
    for needy in (kind, interface):
        for key in NEEDED.get(needy, ()):
            if key not in table:
                problems.append(f"nvm.{key}: missing; {needy} NVM needs it")
    if kind in ("fram", "mram") and interface == "internal" and "write_ns_per_byte" not in table:
        problems.append(f"nvm.write_ns_per_byte: missing; internal {kind} needs its write "
                        "time per byte")
    if interface == "internal" and "chip_origin" not in table:
        problems.append("nvm.chip_origin: missing; internal NVM has an address on the chip")
    if "spi_lines" in table and interface != "spi":
        problems.append("nvm.spi_lines: only an SPI memory has data lines; remove it")
    if interface == "spi" and "chip_origin" in table:
        problems.append("nvm.chip_origin: an SPI memory has no address on the chip; remove it")
    if kind == "flash" and interface == "spi":
        problems.append("nvm.kind: SPI flash is not supported (its erase-before-write over "
                        "SPI has no model here); describe internal flash, or FRAM or MRAM")
    page = table.get("page_bytes", 1)
    if isinstance(page, int) and page > 1:
        if kind != "flash":
            problems.append(f"nvm.page_bytes: {kind} writes bytes in place; only flash has "
                            "an erase page")
        for key in ("origin", "size"):
            value = table.get(key)
            if isinstance(value, int) and value % page:
                problems.append(f"nvm.{key}: expected a multiple of page_bytes ({page}), got "
                                f"0x{value:X}")
    return problems


def check_nvm_map(nvm: dict, flash: tuple[int, int], ram: tuple[int, int],
                  chip_flash: tuple[int, int]) -> list[str]:
    """The region against the map the simulation build is linked in (`flash`, `ram`: origin,
    size) and, for internal flash, the chip's own flash."""
    origin, size = nvm["origin"], nvm["size"]
    end = origin + size
    problems = []
    if _overlaps((origin, size), ram):
        problems.append(f"nvm: 0x{origin:08X}..0x{end:08X} overlaps the RAM the firmware is "
                        "linked in; NVM must keep what RAM loses")
    flash_end = flash[0] + flash[1]
    if nvm["kind"] == "flash" and nvm["interface"] == "internal":
        if end != flash_end or origin <= flash[0]:
            problems.append(f"nvm: internal flash NVM must be the last part of the flash "
                            f"(0x{flash[0]:08X}..0x{flash_end:08X} where the simulation build "
                            f"is linked), ending at 0x{flash_end:08X}; got "
                            f"0x{origin:08X}..0x{end:08X}")
        chip = nvm.get("chip_origin")
        if isinstance(chip, int) and chip - chip_flash[0] != origin - flash[0]:
            problems.append(f"nvm.chip_origin: 0x{chip:08X} is not the same place in the "
                            f"chip's flash as origin 0x{origin:08X} in the emulator's "
                            f"(expected 0x{chip_flash[0] + origin - flash[0]:08X})")
    elif _overlaps((origin, size), flash):
        problems.append(f"nvm: 0x{origin:08X}..0x{end:08X} overlaps the flash the firmware "
                        f"is linked in (0x{flash[0]:08X}..0x{flash_end:08X}); an external "
                        "memory needs a region of its own in the emulator's map")
    return problems


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]
