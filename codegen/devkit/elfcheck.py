"""Check a UART build's ELF against its board without running it: the vector table at the
chip's flash origin with an initial stack pointer in RAM and a Thumb reset vector in flash,
every section inside the chip's flash and RAM, and the console's registers (and the clock
enables and pin set-up they need) actually written or read by the code, found by following
the constants the code loads into registers (literal pools, movw/movt, immediate moves) into
its loads and stores. The register offsets here come from the reference manuals, apart from
the C in firmware/board/, so the two check each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import capstone
from capstone import arm as cs_arm
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from codegen.errors import ArielError
from codegen.target.boards import Board
from codegen.target.firmware import ELF_PATH

# Console registers by driver, offsets from the UART's base.
UART_REGISTERS = {
    # RM0090 'USART registers' (STM32F4, first generation).
    "stm32-usart-v1": {"SR": 0x00, "DR": 0x04, "BRR": 0x08, "CR1": 0x0C},
    # RM0385, RM0432, RM0444, RM0433/RM0455 'USART registers' (and the LPUART's).
    "stm32-usart": {"CR1": 0x00, "BRR": 0x0C, "ISR": 0x1C, "TDR": 0x28},
    "stm32-lpuart": {"CR1": 0x00, "BRR": 0x0C, "ISR": 0x1C, "TDR": 0x28},
    # nRF52840 PS 'UARTE' registers.
    "nrf-uarte": {"TASKS_STARTTX": 0x008, "EVENTS_ENDTX": 0x120, "ENABLE": 0x500,
                  "PSEL.TXD": 0x50C, "BAUDRATE": 0x524, "TXD.PTR": 0x544,
                  "TXD.MAXCNT": 0x548},
}
# Reset and clock control, from each family's memory map.
RCC_BASE = {"stm32f4": 0x40023800, "stm32f7": 0x40023800, "stm32l4": 0x40021000,
            "stm32g0": 0x40021000, "stm32h7": 0x58024400}
GPIO_MODER, GPIO_AFRL, GPIO_AFRH = 0x00, 0x20, 0x24  # STM32 GPIO port registers
NRF_GPIO_OUTSET, NRF_GPIO_DIRSET, NRF_PORT_STRIDE = 0x508, 0x518, 0x300  # nRF52840 PS GPIO
CALLER_SAVED = {cs_arm.ARM_REG_R0, cs_arm.ARM_REG_R1, cs_arm.ARM_REG_R2, cs_arm.ARM_REG_R3,
                cs_arm.ARM_REG_R12}


@dataclass
class ElfCheck:
    elf: Path
    vector_sp: int = 0
    vector_reset: int = 0
    accessed: set[int] = field(default_factory=set)  # register addresses loaded or stored
    expected: dict[str, int] = field(default_factory=dict)  # name -> address
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, board: Board) -> str:
        found = [n for n, a in self.expected.items() if a in self.accessed]
        return (f"ELF checked against {board.name}'s memory map and console: vector table at "
                f"0x{board.chip.flash.origin:08X} (SP 0x{self.vector_sp:08X}, reset "
                f"0x{self.vector_reset:08X}), every section in the chip's flash and RAM, "
                f"{len(found)}/{len(self.expected)} console registers used "
                f"({', '.join(found)})")


def expected_registers(board: Board) -> dict[str, int]:
    """The register addresses a UART build for `board` must touch, by name."""
    console = board.console
    names = {f"{console.peripheral}.{name}": console.base + offset
             for name, offset in UART_REGISTERS[console.kind].items()}
    if console.family in RCC_BASE:
        rcc = RCC_BASE[console.family]
        if console.clock_enable:
            names[f"RCC+0x{console.clock_enable[0]:02X} ({console.peripheral} clock)"] = (
                rcc + console.clock_enable[0])
        if console.gpio_clock_enable:
            names[f"RCC+0x{console.gpio_clock_enable[0]:02X} (GPIO clock)"] = (
                rcc + console.gpio_clock_enable[0])
        afr = GPIO_AFRL if console.tx.number < 8 else GPIO_AFRH
        names[f"GPIO{chr(65 + console.tx.port)}.MODER"] = console.gpio_base + GPIO_MODER
        names[f"GPIO{chr(65 + console.tx.port)}.AFR{'L' if afr == GPIO_AFRL else 'H'}"] = (
            console.gpio_base + afr)
    elif console.gpio_base is not None:
        port = console.gpio_base + NRF_PORT_STRIDE * console.tx.port
        names[f"P{console.tx.port}.OUTSET"] = port + NRF_GPIO_OUTSET
        names[f"P{console.tx.port}.DIRSET"] = port + NRF_GPIO_DIRSET
    return names


def check_elf(elf_path: Path, board: Board) -> ElfCheck:
    """Everything checkable about a UART build's ELF for `board` (linked at its chip)."""
    result = ElfCheck(Path(elf_path))
    flash, ram = board.chip.flash, board.chip.ram
    with open(elf_path, "rb") as handle:
        elf = ELFFile(handle)
        _check_vector_table(elf, board, result)
        _check_sections(elf, board, result)
        result.accessed = register_accesses(elf)
    result.expected = expected_registers(board)
    for name, address in result.expected.items():
        if address not in result.accessed:
            result.problems.append(f"no load or store of {name} (0x{address:08X}) in the code")
    del flash, ram
    return result


def _check_vector_table(elf: ELFFile, board: Board, result: ElfCheck) -> None:
    flash, ram = board.chip.flash, board.chip.ram
    vectors = elf.get_section_by_name(".isr_vector")
    if vectors is None or vectors["sh_addr"] != flash.origin:
        where = "missing" if vectors is None else f"at 0x{vectors['sh_addr']:08X}"
        result.problems.append(f"the vector table is {where}, not at the chip's flash origin "
                               f"0x{flash.origin:08X}")
        return
    data = vectors.data()
    result.vector_sp = int.from_bytes(data[0:4], "little")
    result.vector_reset = int.from_bytes(data[4:8], "little")
    if not (ram.origin < result.vector_sp <= ram.end and result.vector_sp % 8 == 0):
        result.problems.append(f"initial SP 0x{result.vector_sp:08X} is not an 8-byte aligned "
                               f"address in RAM 0x{ram.origin:08X}..0x{ram.end:08X}")
    reset = result.vector_reset
    if not reset & 1 or not flash.contains(reset & ~1):
        result.problems.append(f"reset vector 0x{reset:08X} is not a Thumb address in flash")
    symbols = elf.get_section_by_name(".symtab")
    handler = symbols.get_symbol_by_name("Reset_Handler") if symbols else None
    if handler and (handler[0]["st_value"] | 1) != reset:
        result.problems.append(f"reset vector 0x{reset:08X} is not Reset_Handler")


def _check_sections(elf: ELFFile, board: Board, result: ElfCheck) -> None:
    flash, ram = board.chip.flash, board.chip.ram
    segments = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
    for section in elf.iter_sections():
        if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC or section["sh_size"] == 0:
            continue
        start, end = section["sh_addr"], section["sh_addr"] + section["sh_size"]
        region = flash if flash.contains(start) else ram if ram.contains(start) else None
        if region is None or end > region.end:
            result.problems.append(f"section {section.name} (0x{start:08X}..0x{end:08X}) lies "
                                   "outside the chip's flash and RAM")
            continue
        if region is ram and section["sh_type"] != "SHT_NOBITS":
            load = next((s["p_paddr"] + start - s["p_vaddr"] for s in segments
                         if s["p_vaddr"] <= start < s["p_vaddr"] + max(s["p_memsz"], 1)), None)
            if load is None or not flash.contains(load):
                result.problems.append(f"section {section.name}'s initial values do not load "
                                       "from flash")


def register_accesses(elf: ELFFile) -> set[int]:
    """Addresses the code loads from or stores to through a register holding a constant."""
    text = elf.get_section_by_name(".text")
    symbols = elf.get_section_by_name(".symtab")
    if text is None or symbols is None:
        return set()
    base, code = text["sh_addr"], text.data()
    literal = _literal_reader(elf)
    disassembler = capstone.Cs(capstone.CS_ARCH_ARM,
                               capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    disassembler.detail = True
    accessed: set[int] = set()
    for symbol in symbols.iter_symbols():
        if symbol["st_info"]["type"] != "STT_FUNC" or not symbol["st_size"]:
            continue
        start = (symbol["st_value"] & ~1) - base
        if not 0 <= start < len(code):
            continue
        body = code[start:start + symbol["st_size"]]
        accessed |= _function_accesses(disassembler.disasm(body, base + start), literal)
    return accessed


def _literal_reader(elf: ELFFile):
    sections = [s for s in elf.iter_sections()
                if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_type"] != "SHT_NOBITS"]
    cache = {s.name: s.data() for s in sections}

    def read(address: int) -> int | None:
        for s in sections:
            offset = address - s["sh_addr"]
            if 0 <= offset <= s["sh_size"] - 4:
                return int.from_bytes(cache[s.name][offset:offset + 4], "little")
        return None
    return read


def _function_accesses(instructions, literal) -> set[int]:
    known: dict[int, int] = {}
    accessed: set[int] = set()
    for insn in instructions:
        ops = insn.operands
        value = _constant(insn, ops, known, literal)
        memory = next((op for op in ops if op.type == cs_arm.ARM_OP_MEM), None)
        if (memory is not None and memory.mem.base in known and memory.mem.index == 0
                and memory.mem.base != cs_arm.ARM_REG_PC):
            accessed.add((known[memory.mem.base] + memory.mem.disp) & 0xFFFFFFFF)
        _, written = insn.regs_access()
        for register in written:
            known.pop(register, None)
        if insn.mnemonic.startswith(("bl", "blx")):
            for register in CALLER_SAVED:
                known.pop(register, None)
        if value is not None:
            known[ops[0].reg] = value & 0xFFFFFFFF
    return accessed


def _constant(insn, ops, known: dict[int, int], literal) -> int | None:
    """The constant `insn` puts in its first register, if it is one of: a PC-relative
    literal load, mov/movw/movt of an immediate, a shift of a known register by an
    immediate, or add/sub of an immediate to a known register."""
    name = insn.mnemonic.split(".")[0]
    if not ops or ops[0].type != cs_arm.ARM_OP_REG:
        return None
    target = ops[0].reg
    if name == "ldr" and len(ops) == 2 and ops[1].type == cs_arm.ARM_OP_MEM \
            and ops[1].mem.base == cs_arm.ARM_REG_PC:
        return literal(((insn.address + 4) & ~3) + ops[1].mem.disp)
    if name in ("mov", "movs", "movw") and len(ops) == 2 and ops[1].type == cs_arm.ARM_OP_IMM:
        return ops[1].imm
    if name == "movt" and target in known and ops[1].type == cs_arm.ARM_OP_IMM:
        return (known[target] & 0xFFFF) | (ops[1].imm << 16)
    if name in ("lsl", "lsls") and len(ops) == 3 and ops[2].type == cs_arm.ARM_OP_IMM \
            and ops[1].reg in known:
        # Armv6-M builds large constants as a small move and a shift (movs r3, #0xa0;
        # lsls r3, r3, #23 is 0x50000000).
        return known[ops[1].reg] << ops[2].imm
    if name in ("add", "adds", "addw", "sub", "subs", "subw") \
            and ops[-1].type == cs_arm.ARM_OP_IMM:
        source = ops[1].reg if len(ops) == 3 else target
        if source in known:
            sign = -1 if name.startswith("sub") else 1
            return known[source] + sign * ops[-1].imm
    return None


def check_uart_elf(folder: Path, board: Board, progress: Callable[[str], None]) -> str:
    """A UART build's ELF must match its chip: vector table, memory map, console registers
    (codegen/devkit/elfcheck.py). Returns the check's summary."""
    check = check_elf(folder / ELF_PATH, board)
    if not check.ok:
        raise ArielError(f"the UART build for {board.name} does not match its board file: "
                         + "; ".join(check.problems))
    progress(check.summary(board))
    return check.summary(board)
