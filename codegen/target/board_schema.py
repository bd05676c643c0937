"""What a board file may say, checked before it is loaded: every missing or wrong field is one
line naming the field and what it must be, all of them at once (a user writing a file for
their own board fixes them in one pass, not one per run).

The schema is the one boards/*.toml follow (README, "Your own board"); a user's file passes
the same checks as ariel's own. Beyond each field's type and range it checks what fields say
together: an FPU the core has, flash and RAM that do not overlap, a QEMU machine ariel's
firmware runs on whose core can run the board's code, and, for that machine, memory where
the simulation build is linked."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from codegen.compiler.nvm import INTERFACES, KINDS, check_nvm_fields, check_nvm_map
from codegen.target.board_kit import parse_clock_tree, parse_console, parse_debug, parse_renode

KIB, MIB = 1024, 1024 * 1024
ADDRESS_SPACE = 1 << 32

# The -mfpu values each core may carry ("none": no FPU, or floats in software).
CORE_FPUS = {
    "cortex-m0plus": ("none",),
    "cortex-m4": ("none", "fpv4-sp-d16"),
    "cortex-m7": ("none", "fpv5-sp-d16", "fpv5-d16"),
    "cortex-m33": ("none", "fpv5-sp-d16"),
}
# Cores whose code also runs on a machine emulating the key core (the instruction sets nest:
# ARMv6-M within ARMv7E-M; the Cortex-M4's DSP and FPv4 within the Cortex-M7's).
RUNS_ON = {
    "cortex-m0plus": ("cortex-m0plus", "cortex-m4", "cortex-m7"),
    "cortex-m4": ("cortex-m4", "cortex-m7"),
    "cortex-m7": ("cortex-m7",),
    "cortex-m33": ("cortex-m33",),
}
# The FPU instructions each machine's FPU executes, by the -mfpu values they cover.
FPU_COVERS = {"none": ("none",), "fpv4-sp-d16": ("none", "fpv4-sp-d16"),
              "fpv5-d16": ("none", "fpv4-sp-d16", "fpv5-sp-d16", "fpv5-d16")}


@dataclass(frozen=True)
class Machine:
    """A QEMU machine ariel's firmware is known to run on: the core it emulates (as the
    boards name cores: the micro:bit's Cortex-M0 runs Cortex-M0+ code) and where it has
    memory for code and for data (origin, size)."""

    core: str
    fpu: str
    code: tuple[int, int]
    data: tuple[int, int]
    note: str = ""


# From QEMU's hw/arm/mps2.c (ZBT SSRAM1 for code, SSRAM2/3 for data), stm32f405_soc.c and
# nrf51_soc.c; the machines ariel's own boards are tested on.
MACHINES = {
    "mps2-an386": Machine("cortex-m4", "fpv4-sp-d16", (0x00000000, 4 * MIB),
                          (0x20000000, 4 * MIB)),
    "mps2-an500": Machine("cortex-m7", "fpv5-d16", (0x00000000, 4 * MIB),
                          (0x20000000, 4 * MIB)),
    "netduinoplus2": Machine("cortex-m4", "fpv4-sp-d16", (0x08000000, 1 * MIB),
                             (0x20000000, 128 * KIB)),
    "microbit": Machine("cortex-m0plus", "none", (0x00000000, 256 * KIB),
                        (0x20000000, 16 * KIB),
                        "qemu_args = [\"-global\", \"nrf51-soc.sram-size=N\"] gives it N bytes "
                        "of RAM"),
}
# The cycle tables, whose [options] are the core_options a board may choose (the module that
# reads them imports this one's caller, so the folder is named here).
CORES_DIR = Path(__file__).resolve().parent.parent / "run" / "emulate" / "cores"
SRAM_SIZE_ARG = re.compile(r"nrf51-soc\.sram-size=(\d+)")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Field:
    expected: str  # what the value must be, as the error message says it
    valid: Callable[[object], bool]
    required: bool = False


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and value == value


def _positive(value) -> bool:
    return _is_int(value) and value > 0


def _address(value) -> bool:
    return _is_int(value) and 0 <= value < ADDRESS_SPACE


def _text(value) -> bool:
    return isinstance(value, str) and value.strip() != "" and "\n" not in value


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _table_of_text(value) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


ADDRESS = Field("an address, a whole number from 0 to 0xFFFFFFFF", _address, True)
SIZE = Field("a size in bytes, a whole number above 0", _positive, True)
REGION = {"origin": ADDRESS, "size": SIZE}
REGION_TABLE = Field("a table with origin and size", lambda v: isinstance(v, dict), True)
CACHE = {"entry_bytes": Field("a power of two of bytes", lambda v: _positive(v) and not
                              v & (v - 1), True),
         "entries": Field("a whole number, 0 (no cache) or a multiple of ways",
                          lambda v: _is_int(v) and v >= 0, True),
         "ways": Field("a whole number above 0", _positive, True),
         "prefetch": Field("true or false", lambda v: isinstance(v, bool))}
TOP = {
    "name": Field("a name of up to 64 letters, digits, '.', '_' or '-', starting with a letter "
                  "or digit", lambda v: isinstance(v, str) and NAME.fullmatch(v) is not None,
                  True),
    "description": Field("one line of text", _text, True),
    "core": Field(f"one of {', '.join(CORE_FPUS)}", lambda v: v in CORE_FPUS, True),
    "fpu": Field("'none' or an -mfpu value (fpv4-sp-d16, fpv5-sp-d16, fpv5-d16)",
                 lambda v: v in FPU_COVERS or v == "fpv5-sp-d16"),
    "clock_hz": Field("the core clock in Hz, a whole number above 0", _positive, True),
    "stack_bytes": Field("the stack in bytes, a multiple of 8 from 1024", lambda v: _is_int(v)
                         and v >= 1024 and v % 8 == 0),
}
TABLE = Field("a table", lambda v: isinstance(v, dict))
TABLES = {
    "memory": Field("a table with [memory.flash] and [memory.ram]",
                    lambda v: isinstance(v, dict), True),
    "flash_timing": TABLE, "power": TABLE, "emulator": TABLE,
    "core_options": Field("a table of text", _table_of_text),
    "sources": Field("a table of text", _table_of_text),
    "console": TABLE, "clock_tree": TABLE, "debug": TABLE, "renode": TABLE, "nvm": TABLE,
}
FLASH_TIMING = {
    "wait_states": Field("a whole number of wait states, 0 or more",
                         lambda v: _is_int(v) and v >= 0),
    "hidden": Field("true or false", lambda v: isinstance(v, bool)),
    "hidden_by": Field("text", lambda v: isinstance(v, str)),
    "note": Field("text", lambda v: isinstance(v, str)),
    "instruction_side": TABLE, "data_side": TABLE,
}
NON_NEGATIVE = Field("a number, 0 or more", lambda v: _is_number(v) and v >= 0)
POWER = {"supply_voltage_v": NON_NEGATIVE, "run_current_ma": NON_NEGATIVE,
         "run_current_ua_per_mhz": NON_NEGATIVE, "run_power_mw": NON_NEGATIVE,
         "condition": Field("text", lambda v: isinstance(v, str)),
         "note": Field("text", lambda v: isinstance(v, str))}
EMULATOR = {
    "qemu_machine": Field(f"a QEMU machine ariel's firmware runs on: {', '.join(MACHINES)}",
                          lambda v: v in MACHINES),
    "code_origin": Field(ADDRESS.expected, _address), "code_size": Field(SIZE.expected,
                                                                         _positive),
    "data_origin": Field(ADDRESS.expected, _address), "data_size": Field(SIZE.expected,
                                                                         _positive),
    "qemu_args": Field("a list of strings", _strings),
}
POSITIVE_NUMBER = Field("a number above 0", lambda v: _is_number(v) and v > 0)
# Non-volatile memory for intermittent builds (codegen/compiler/nvm.py says what each means).
NVM = {
    "kind": Field(f"one of {', '.join(KINDS)}", lambda v: v in KINDS, True),
    "interface": Field(f"one of {', '.join(INTERFACES)}", lambda v: v in INTERFACES, True),
    "origin": ADDRESS, "size": SIZE,
    "chip_origin": Field(ADDRESS.expected, _address),
    "endurance_cycles": Field("the erase/write cycles it endures, a number above 0",
                              lambda v: _is_number(v) and v > 0, True),
    "page_bytes": Field("the erase page in bytes, a power of two", lambda v: _positive(v)
                        and not v & (v - 1)),
    "program_bytes": Field("the bytes programmed at once, a power of two", lambda v:
                           _positive(v) and not v & (v - 1)),
    "erase_us": POSITIVE_NUMBER, "program_us": POSITIVE_NUMBER,
    "write_ns_per_byte": POSITIVE_NUMBER, "write_power_mw": NON_NEGATIVE,
    "spi_clock_hz": Field("the SPI clock in Hz, a whole number above 0", _positive),
    "spi_command_bytes": Field("the bytes of command and address sent per write, a whole "
                               "number, 0 or more", lambda v: _is_int(v) and v >= 0),
    "spi_lines": Field("the data lines a write uses, 1 (SPI), 2 (dual) or 4 (quad)",
                       lambda v: _is_int(v) and v in (1, 2, 4)),
    "note": Field("text", lambda v: isinstance(v, str)),
}
# The dev-kit tables, checked by the parsers that read them (codegen/target/board_kit.py).
KIT_PARSERS = {"console": parse_console, "clock_tree": parse_clock_tree, "debug": parse_debug,
               "renode": parse_renode}


def check_board_file(path: Path) -> list[str]:
    """Every problem of the board file at `path`, one line each ("" prefixes: the lines name
    fields as `table.field`); an empty list: the file is a valid board."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        return [f"not valid TOML: {exc}"]
    except UnicodeDecodeError:
        return ["not valid TOML: the file is not UTF-8 text"]
    return check_board(data)


def check_board(data: dict) -> list[str]:
    """Every problem of a board file's parsed contents, one line each."""
    problems = _check_table(data, {**TOP, **TABLES}, "")
    memory = data.get("memory")
    if isinstance(memory, dict):
        problems += _check_table(memory, {"flash": REGION_TABLE, "ram": REGION_TABLE},
                                 "memory.")
        for region in ("flash", "ram"):
            if isinstance(memory.get(region), dict):
                problems += _check_subtable(memory[region], REGION, f"memory.{region}")
    problems += _check_optional(data, "flash_timing", FLASH_TIMING)
    timing = data.get("flash_timing")
    if isinstance(timing, dict):
        sides = [s for s in ("instruction_side", "data_side") if s in timing]
        if len(sides) == 1:
            problems.append(f"flash_timing: {sides[0]} given without "
                            f"{({'instruction_side', 'data_side'} - set(sides)).pop()}: give "
                            "both sides of the cache or neither")
        for side in sides:
            if not isinstance(timing[side], dict):
                continue
            problems += _check_subtable(timing[side], CACHE, f"flash_timing.{side}")
            problems += _check_cache_shape(timing[side], f"flash_timing.{side}")
    problems += _check_optional(data, "power", POWER)
    problems += _check_optional(data, "emulator", EMULATOR)
    problems += _check_optional(data, "nvm", NVM)
    for name, parse in KIT_PARSERS.items():
        if isinstance(data.get(name), dict):
            problems += _check_kit_table(name, data[name], parse)
    if not problems:
        problems += _check_together(data)
    return problems


def _check_table(table: dict, fields: dict[str, Field], prefix: str) -> list[str]:
    problems = []
    for name, field in fields.items():
        if name not in table:
            if field.required:
                problems.append(f"{prefix}{name}: missing; expected {field.expected}")
        elif field.valid is not None and not field.valid(table[name]):
            problems.append(f"{prefix}{name}: expected {field.expected}, got "
                            f"{_shown(table[name])}")
    for name in table:
        if name not in fields:
            problems.append(f"{prefix}{name}: unknown field (known here: "
                            f"{', '.join(fields)})")
    return problems


def _check_subtable(value, fields: dict[str, Field], name: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{name}: expected a table ([{name}]), got {_shown(value)}"]
    return _check_table(value, fields, f"{name}.")


def _check_optional(data: dict, name: str, fields: dict[str, Field]) -> list[str]:
    return _check_subtable(data[name], fields, name) if isinstance(data.get(name), dict) \
        else []


def _check_cache_shape(table, name: str) -> list[str]:
    if isinstance(table, dict) and _is_int(table.get("entries")) and \
            _positive(table.get("ways")) and table["entries"] % table["ways"]:
        return [f"{name}.entries: expected a multiple of ways ({table['ways']}), got "
                f"{table['entries']}"]
    return []


def _check_kit_table(name: str, table: dict, parse) -> list[str]:
    try:
        parse(table)
    except KeyError as exc:
        return [f"{name}.{exc.args[0]}: missing (the [{name}] table needs it)"]
    except (ValueError, TypeError) as exc:
        return [f"{name}: {exc}"]
    return []


def _check_together(data: dict) -> list[str]:
    """What the fields say together (each field alone is valid here)."""
    problems = []
    core, fpu = data["core"], data.get("fpu", "none")
    if fpu not in CORE_FPUS[core]:
        problems.append(f"fpu: a {core} has no {fpu}; expected one of "
                        f"{', '.join(CORE_FPUS[core])}")
    flash, ram = data["memory"]["flash"], data["memory"]["ram"]
    for region_name, region in (("flash", flash), ("ram", ram)):
        if region["origin"] + region["size"] > ADDRESS_SPACE:
            problems.append(f"memory.{region_name}: origin + size ends past 0xFFFFFFFF")
    if flash["origin"] < ram["origin"] + ram["size"] and \
            ram["origin"] < flash["origin"] + flash["size"]:
        problems.append("memory: flash and ram overlap; expected two separate regions")
    options = data.get("core_options", {})
    problems += _check_core_options(core, options)
    emulator = data.get("emulator", {})
    if emulator.get("qemu_machine") is not None:
        problems += _check_machine(data, emulator, core, fpu)
    if "nvm" in data:
        problems += _check_nvm(data, emulator)
    return problems


def _check_nvm(data: dict, emulator: dict) -> list[str]:
    """The [nvm] table's fields together, and its region against the map the simulation
    build is linked in and the emulator's memory (where it must be writable)."""
    nvm = data["nvm"]
    problems = check_nvm_fields(nvm)
    if problems:
        return problems
    chip = data["memory"]
    flash = (emulator.get("code_origin", chip["flash"]["origin"]), chip["flash"]["size"])
    ram = (emulator.get("data_origin", chip["ram"]["origin"]), chip["ram"]["size"])
    problems += check_nvm_map(nvm, flash, ram, (chip["flash"]["origin"], chip["flash"]["size"]))
    machine = MACHINES.get(emulator.get("qemu_machine"))
    region = (nvm["origin"], nvm["size"])
    if machine is not None and not (_inside(region, machine.code) or
                                    _inside(region, _machine_data(machine, emulator.get(
                                        "qemu_args", [])))):
        problems.append(f"nvm: 0x{region[0]:08X}..0x{region[0] + region[1]:08X} is not inside "
                        f"QEMU {emulator['qemu_machine']}'s memory (code {_size(machine.code[1])} "
                        f"at 0x{machine.code[0]:08X}, data {_size(machine.data[1])} at "
                        f"0x{machine.data[0]:08X}), where the emulated NVM must be writable")
    return problems


def _check_core_options(core: str, options: dict) -> list[str]:
    known = _core_options(core)
    problems = []
    for key, value in options.items():
        if key not in known:
            problems.append(f"core_options.{key}: unknown for {core} (known: "
                            f"{', '.join(known) or 'none'})")
        elif value not in known[key]:
            problems.append(f"core_options.{key}: expected one of {', '.join(known[key])}, "
                            f"got {_shown(value)}")
    return problems


@cache
def _core_options(core: str) -> dict[str, tuple[str, ...]]:
    """The options a core's cycle table takes (codegen/run/emulate/cores/CORE.toml)."""
    path = CORES_DIR / f"{core}.toml"
    options = tomllib.loads(path.read_text()).get("options", {}) if path.is_file() else {}
    return {name: tuple(entry.get("values", {})) for name, entry in options.items()}


def _check_machine(data: dict, emulator: dict, core: str, fpu: str) -> list[str]:
    name = emulator["qemu_machine"]
    machine = MACHINES[name]
    problems = []
    if machine.core not in RUNS_ON[core]:
        problems.append(f"emulator.qemu_machine: {name} emulates a {machine.core}, which "
                        f"cannot run {core} code; borrow a machine emulating one of "
                        f"{', '.join(m for m, s in MACHINES.items() if s.core in RUNS_ON[core])}")
    elif fpu in CORE_FPUS[core] and fpu not in FPU_COVERS[machine.fpu]:
        problems.append(f"emulator.qemu_machine: {name}'s FPU ({machine.fpu}) cannot run "
                        f"{fpu} code")
    data_memory = _machine_data(machine, emulator.get("qemu_args", []))
    for key, chip_name, memory in (("code", "flash", machine.code), ("data", "ram", data_memory)):
        origin, size = f"{key}_origin", f"{key}_size"
        if (origin in emulator) != (size in emulator):
            problems.append(f"emulator: {origin} and {size} go together; give both or "
                            "neither")
            continue
        # The region the simulation build is linked in: the one the file gives the machine
        # (whose size must then hold the chip's, boards.py checks), else the chip's own.
        chip = data["memory"][chip_name]
        given = origin in emulator
        region = (emulator[origin], emulator[size]) if given else (chip["origin"], chip["size"])
        if not _inside(region, memory):
            where = f"emulator.{origin}" if given else f"memory.{chip_name}"
            note = f"; {machine.note}" if machine.note and key == "data" else ""
            problems.append(
                f"{where}: 0x{region[0]:08X}..0x{region[0] + region[1]:08X} is not inside "
                f"QEMU {name}'s {key} memory ({_size(memory[1])} at 0x{memory[0]:08X}); "
                f"expected [emulator] {origin} and {size} inside it, where the simulation "
                f"build is then linked{note}")
    return problems


def _machine_data(machine: Machine, qemu_args: list[str]) -> tuple[int, int]:
    for argument in qemu_args:
        match = SRAM_SIZE_ARG.search(argument)
        if match and machine is MACHINES["microbit"]:
            return machine.data[0], int(match.group(1))
    return machine.data


def _inside(region: tuple[int, int], memory: tuple[int, int]) -> bool:
    return memory[0] <= region[0] and region[0] + region[1] <= memory[0] + memory[1]


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n % MIB == 0 else f"{n // KIB} KiB" if n % KIB == 0 \
        else f"{n:,} B"


def _shown(value) -> str:
    """A wrong value as the message quotes it (long ones cut)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
