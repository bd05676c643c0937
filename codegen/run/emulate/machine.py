"""A Cortex-M core in the unicorn CPU emulator, driven from Python, for runs that must stop at
an exact instruction: power cuts (codegen/run/power_cuts.py).

Why unicorn and not QEMU, which runs every other simulation: a power cut has to land on an
exact instruction, and afterwards the emulator has to lose the RAM, keep the non-volatile
memory as it stood and start again from reset, hundreds of times per run. QEMU 7.2 (the one
Debian ships) gives three ways in, none of them good here: its TCG plugin API counts
instructions but cannot read or write guest memory and cannot stop the guest; its
instruction counter (-icount) with the gdbstub can stop anywhere but only by single-stepping
or by breakpoints at addresses, a round trip per step (thousands of times slower than TCG);
its monitor can stop the machine but not at an instruction. unicorn (PyPI `unicorn`, QEMU's
TCG packaged as a library) runs Thumb-2 Cortex-M code, stops after exactly N instructions
(`emu_start(..., count=N)`), lets Python read and write memory between runs, and hooks
only the memory ranges asked for. It is checked against QEMU: the same outputs and the same
instruction counts as QEMU's counting plugin for the MLPerf Tiny builds in int8 (SMLAD,
SXTB16, SSAT) and float (VFP) and the digits CNN (tests/run/test_machine.py, the README).

What the machine gives the firmware is what ariel's semihosting harness needs
(firmware/harness.c, startup.c, semihost.c): the memory the build is linked for, the System
Control Space as plain memory (startup writes CPACR; unicorn's FPU is always on), the reset
vector, and the semihosting calls through `bkpt 0xab`. A fault the core would take
(undefined instruction, unmapped memory) stops the run with the faulting function named,
instead of running the firmware's fault handler: unicorn does not take exceptions."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import capstone
import numpy as np
from elftools.elf.elffile import ELFFile

from codegen.errors import ArielError, FirmwareError
from codegen.target.boards import Board, Region
from codegen.target.elf import function_at

try:
    import unicorn
    from unicorn import arm_const as arm
except ImportError:  # checked where a machine is made, with the way to install it
    unicorn = None

PAGE = 0x1000  # unicorn maps memory in 4 KiB pages
SCS = Region(0xE000E000, 0x1000)  # System Control Space: SysTick, NVIC, SCB (CPACR)
BKPT_SEMIHOSTING = 0xBEAB  # Thumb `bkpt 0xab`
NEVER = 0xFFFFFFFE  # an address no firmware runs: emu_start's `until`
ENDLESS = 1 << 62  # a count no run reaches

# unicorn's own exception numbers (qemu/target/arm/internals.h), as its interrupt hook gets them
EXCEPTIONS = {1: "an undefined instruction", 2: "a supervisor call (SVC)", 3: "a prefetch abort",
              4: "a data abort", 7: "a breakpoint", 17: "a coprocessor instruction with the "
              "coprocessor off", 18: "an invalid state (an ARM-mode branch on a Thumb core)",
              19: "an unaligned access", 20: "a stack overflow"}
EXCP_BKPT = 7

SYS_OPEN, SYS_CLOSE, SYS_WRITEC, SYS_WRITE0 = 0x01, 0x02, 0x03, 0x04
SYS_WRITE, SYS_READ, SYS_SEEK, SYS_FLEN = 0x05, 0x06, 0x0A, 0x0C
SYS_EXIT, SYS_EXIT_EXTENDED = 0x18, 0x20
ADP_STOPPED_APPLICATION_EXIT = 0x20026
CONSOLE = ":tt"


def require_unicorn() -> None:
    if unicorn is None:
        raise ArielError("the unicorn package is missing: power-cut runs need it; install "
                         "ariel's dependencies again (`make setup`, or `pip install "
                         "unicorn==2.1.4`)")


def core_model(core: str) -> int:
    """unicorn's CPU model for a board's core."""
    models = {"cortex-m0": arm.UC_CPU_ARM_CORTEX_M0, "cortex-m0plus": arm.UC_CPU_ARM_CORTEX_M0,
              "cortex-m3": arm.UC_CPU_ARM_CORTEX_M3, "cortex-m4": arm.UC_CPU_ARM_CORTEX_M4,
              "cortex-m7": arm.UC_CPU_ARM_CORTEX_M7, "cortex-m33": arm.UC_CPU_ARM_CORTEX_M33}
    if core not in models:
        raise ArielError(f"the power-cut emulator has no model of {core}; it runs "
                         f"{', '.join(sorted(models))}")
    return models[core]


@dataclass
class HostFiles:
    """The files the firmware reaches through semihosting, kept in memory: they are the
    host's, so a power cut closes the firmware's handles but keeps their contents. Modes are
    ISO C's fopen modes in semihosting's order: 0-3 read ("r", "rb", "r+", "r+b"; the file
    must exist), 4-7 write ("w"...: emptied or made), 8-11 append."""

    files: dict[str, bytearray] = field(default_factory=dict)
    console: list[str] = field(default_factory=list)  # what each power cycle printed
    _handles: dict[int, list] = field(default_factory=dict)  # handle -> [name, position]
    _last_handle: int = 0

    def power_cut(self) -> None:
        self._handles.clear()
        self.console.append("")

    def snapshot(self) -> tuple[dict[str, bytes], int]:
        return {name: bytes(data) for name, data in self.files.items()}, len(self.console)

    def restore(self, snapshot: tuple[dict[str, bytes], int]) -> None:
        files, consoles = snapshot
        self.files = {name: bytearray(data) for name, data in files.items()}
        del self.console[consoles:]
        self._handles.clear()

    def open(self, name: str, mode: int) -> int:
        if name != CONSOLE:
            if mode < 4 and name not in self.files:
                return -1
            if 4 <= mode < 8 or name not in self.files:
                self.files[name] = bytearray()
        position = len(self.files[name]) if name != CONSOLE and mode >= 8 else 0
        self._last_handle += 1
        self._handles[self._last_handle] = [name, position]
        return self._last_handle

    def write(self, handle: int, data: bytes) -> int:
        """Bytes not written (semihosting's convention)."""
        if handle not in self._handles:
            return len(data)
        name, position = self._handles[handle]
        if name == CONSOLE:
            self.write_console(data.decode(errors="replace"))
            return 0
        content = self.files[name]
        if position > len(content):
            content.extend(bytes(position - len(content)))
        content[position:position + len(data)] = data
        self._handles[handle][1] = position + len(data)
        return 0

    def write_console(self, text: str) -> None:
        if not self.console:
            self.console.append("")
        self.console[-1] += text

    def read(self, handle: int, length: int) -> bytes:
        if handle not in self._handles or self._handles[handle][0] == CONSOLE:
            return b""
        name, position = self._handles[handle]
        chunk = bytes(self.files[name][position:position + length])
        self._handles[handle][1] += len(chunk)
        return chunk

    def seek(self, handle: int, position: int) -> int:
        if handle not in self._handles or self._handles[handle][0] == CONSOLE:
            return -1
        self._handles[handle][1] = position
        return 0

    def length(self, handle: int) -> int:
        if handle not in self._handles or self._handles[handle][0] == CONSOLE:
            return -1
        return len(self.files[self._handles[handle][0]])

    def close(self, handle: int) -> int:
        return 0 if self._handles.pop(handle, None) is not None else -1

    @property
    def last_console(self) -> str:
        return self.console[-1] if self.console else ""


@dataclass
class Stop:
    """Why and where a run stopped."""

    executed: int | None  # instructions executed in this run (None: not counted)
    exited: bool  # the firmware exited (else the instruction limit was reached)
    status: int | None = None  # its exit status
    pc: int = 0
    interrupted: bool = False  # a hook stopped it (Machine.interrupt)


class Machine:
    """A board's core and memory in unicorn, loaded with one firmware ELF. `nvm`: the
    region that keeps its contents across power cuts (else only the code does)."""

    def __init__(self, board: Board, elf: Path, files: HostFiles, nvm: Region | None = None):
        require_unicorn()
        self.board, self.elf, self.files, self.nvm = board, Path(elf), files, nvm
        self.uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(core_model(board.core))
        self.regions = [board.flash, board.ram, SCS]
        if nvm is not None and not any(_inside(nvm, r) for r in self.regions):
            self.regions.append(nvm)
        for region in self.regions:
            start = region.origin & ~(PAGE - 1)
            self.uc.mem_map(start, _round_up(region.end, PAGE) - start)
        self._load(elf)
        self._reset_context = self.uc.context_save()
        self._disassembler = capstone.Cs(capstone.CS_ARCH_ARM,
                                         capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        self._lengths: dict[tuple[int, int], int] = {}  # (address, bytes) -> instructions
        self._addresses: dict[tuple[int, int], list[int]] = {}  # -> each instruction's
        self._entered = 0  # instructions in the blocks entered so far in a counting run
        self._block = (0, 0)  # the block entered last
        self._stopped: Stop | None = None
        self._interrupted = False
        self._limit: int | None = None
        self._cut_block: tuple[int, int] | None = None
        self._stepping = False
        self._translated_counting = False
        self._fault: str | None = None
        # Called before each store into the NVM: (instruction index in the run, or None when
        # not counting; address; bytes). It may call interrupt().
        self.on_nvm_store: Callable[[int | None, int, int], None] | None = None
        self._counting = False
        self.uc.hook_add(unicorn.UC_HOOK_INTR, self._on_exception)
        self.uc.hook_add(unicorn.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        if nvm is not None:
            self.uc.hook_add(unicorn.UC_HOOK_MEM_WRITE, self._on_nvm_store,
                             begin=nvm.origin, end=nvm.end - 1)

    def _load(self, elf: Path) -> None:
        with open(elf, "rb") as handle:
            for segment in ELFFile(handle).iter_segments():
                if segment["p_type"] != "PT_LOAD" or not segment["p_filesz"]:
                    continue
                address = segment["p_paddr"]
                if not any(r.contains(address) for r in self.regions):
                    raise ArielError(f"'{elf}' loads {segment['p_filesz']} B at {address:#010x}, "
                                     f"outside {self.board.name}'s memory as linked")
                self.uc.mem_write(address, segment.data())
        self.vector_table = self.board.flash.origin
        self.initial_sp, self.reset_handler = struct.unpack(
            "<II", bytes(self.uc.mem_read(self.vector_table, 8)))

    # ------------------------------------------------------------------ power

    def power_up(self, rng: np.random.Generator | None) -> None:
        """Reset the core; RAM (and the SCS) hold what `rng` gives, as RAM does at power-up,
        or zeros without one. The code and the NVM keep theirs."""
        self.uc.context_restore(self._reset_context)
        self._fill(self.board.ram, rng)
        self._fill(SCS, None)  # its registers reset to zero
        self.uc.reg_write(arm.UC_ARM_REG_MSP, self.initial_sp)
        self.uc.reg_write(arm.UC_ARM_REG_SP, self.initial_sp)
        self.pc = self.reset_handler

    def _fill(self, region: Region, rng: np.random.Generator | None) -> None:
        kept = self.nvm if self.nvm is not None and _overlaps(self.nvm, region) else None
        data = (rng.integers(0, 256, region.size, dtype=np.uint8) if rng is not None
                else np.zeros(region.size, dtype=np.uint8))
        if kept is not None:
            start = max(kept.origin, region.origin) - region.origin
            end = min(kept.end, region.end) - region.origin
            data[start:end] = np.frombuffer(
                bytes(self.uc.mem_read(region.origin + start, end - start)), np.uint8)
        self.uc.mem_write(region.origin, data.tobytes())

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(address, size))

    def write(self, address: int, data: bytes) -> None:
        self.uc.mem_write(address, data)

    # ------------------------------------------------------------------ running

    def run(self, limit: int | None = None, counting: bool = True, native: bool = False
            ) -> Stop:
        """Run from where the core stands until the firmware exits, or until exactly `limit`
        instructions have run (Stop.exited False); raise FirmwareError if it faults.

        Instructions are counted as QEMU's counting plugin counts them: every instruction of
        every block entered, those of an IT block whose condition fails included. unicorn's
        own count (emu_start's `count`) leaves those out, so the limit is kept here: a block
        that would pass it is stopped at its start and stepped one instruction at a time to
        the limit (a skipped IT instruction changes nothing, so stopping before or after it
        is the same state). Counting costs a Python call per block entered, about 6 million
        instructions a second against 60 without; `counting=False` runs a firmware to its
        exit without it (Stop.executed None) and takes no limit. `native` takes the limit in
        unicorn's own count instead, without counting (ten times faster; the stop is as
        exact, but the instructions an IT block skips are not counted in it)."""
        if limit is not None and not counting and not native:
            raise ValueError("a limit needs counting")
        if native:
            counting = False
        self._stopped, self._fault, self._interrupted = None, None, False
        self._entered, self._block, self._counting = 0, (0, 0), counting
        self._limit, self._cut_block, self._stepping = (None if native else limit), None, False
        hook = self.uc.hook_add(unicorn.UC_HOOK_BLOCK, self._on_block) if counting else None
        if counting != self._translated_counting:
            # Blocks translated before take no notice of a hook added (or removed) since.
            self.uc.ctl_flush_tb()
            self._translated_counting = counting
        try:
            # In counting runs unicorn's own count stays on (a huge one), so that the single
            # steps below (count=1) do not make it drop every translated block.
            self._emulate(self.pc, limit if native else ENDLESS if counting else 0)
            if self._cut_block is not None and self._fault is None and self._stopped is None:
                self._step_to(self._cut_block, limit - self._entered)
        finally:
            if hook is not None:
                self.uc.hook_del(hook)
        self.pc = self.uc.reg_read(arm.UC_ARM_REG_PC)
        if self._fault is not None:
            where = function_at(self.elf, self.pc)
            raise FirmwareError(f"the firmware faulted at pc={self.pc:#010x}"
                                f"{f' in {where}' if where else ''}: {self._fault}")
        if self._stopped is not None:
            # A run that exits ends its last block at the bkpt: every block entered ran whole.
            self._stopped.executed = self._entered if counting else None
            return self._stopped
        if self._interrupted:
            return Stop(None, False, None, self.pc, interrupted=True)
        if limit is None:
            raise FirmwareError(f"the firmware stopped at pc={self.pc:#010x} without exiting")
        return Stop(limit, False, None, self.pc)

    def _emulate(self, pc: int, count: int) -> None:
        try:
            self.uc.emu_start(pc | 1, NEVER, count=count)
        except unicorn.UcError as exc:
            self._fault = self._fault or (
                "an undefined instruction" if exc.errno == unicorn.UC_ERR_INSN_INVALID
                else f"unicorn stopped: {exc}")

    def _step_to(self, block: tuple[int, int], wanted: int) -> None:
        """From the start of `block`, run its instructions one at a time until `wanted` of
        them have run (or passed, skipped by an IT block)."""
        addresses = self._instruction_addresses(block)
        self._stepping = True
        while self._fault is None and self._stopped is None and not self._interrupted:
            pc = self.uc.reg_read(arm.UC_ARM_REG_PC)
            if pc not in addresses or addresses.index(pc) >= wanted:
                break
            self._emulate(pc, 1)
        self._stepping = False

    def interrupt(self) -> None:
        """Stop the run from within a hook (Stop.interrupted; where it stops is not exact)."""
        self._interrupted = True
        self.uc.emu_stop()

    def _instructions(self, key: tuple[int, int]) -> int:
        if key not in self._lengths:
            self._lengths[key] = len(self._instruction_addresses(key))
        return self._lengths[key]

    def _instruction_addresses(self, key: tuple[int, int]) -> list[int]:
        if key not in self._addresses:
            address, size = key
            self._addresses[key] = [insn[0] for insn in self._disassembler.disasm_lite(
                self.read(address, size), address)]
        return self._addresses[key]

    def _on_block(self, uc, address, size, user_data) -> None:
        if self._stepping:
            return
        key = (address, size)
        length = self._lengths.get(key) or self._instructions(key)
        if self._limit is not None and self._entered + length > self._limit:
            self._cut_block = key  # the limit falls in this block: stop before it runs
            uc.emu_stop()
            return
        self._block = key
        self._entered += length

    def _on_nvm_store(self, uc, access, address, size, value, user_data) -> None:
        if self.on_nvm_store is None:
            return
        index = None
        if self._counting:  # the instructions run before this one
            pc = uc.reg_read(arm.UC_ARM_REG_PC)
            if self._stepping:
                index = self._entered + self._instruction_addresses(self._cut_block).index(pc)
            else:
                addresses = self._instruction_addresses(self._block)
                index = self._entered - len(addresses) + addresses.index(pc)
        self.on_nvm_store(index, address, size)

    def _on_unmapped(self, uc, access, address, size, value, user_data) -> bool:
        kind = {unicorn.UC_MEM_WRITE_UNMAPPED: "wrote", unicorn.UC_MEM_READ_UNMAPPED: "read",
                unicorn.UC_MEM_FETCH_UNMAPPED: "fetched code from"}.get(access, "touched")
        self._fault = f"it {kind} {address:#010x}, outside {self.board.name}'s memory as linked"
        return False

    def _on_exception(self, uc, number, user_data) -> None:
        pc = uc.reg_read(arm.UC_ARM_REG_PC)
        if number == EXCP_BKPT and self.read(pc, 2) == struct.pack("<H", BKPT_SEMIHOSTING):
            result = self._semihost(uc.reg_read(arm.UC_ARM_REG_R0),
                                    uc.reg_read(arm.UC_ARM_REG_R1))
            if self._stopped is None:
                uc.reg_write(arm.UC_ARM_REG_R0, result & 0xFFFFFFFF)
                uc.reg_write(arm.UC_ARM_REG_PC, (pc + 2) | 1)
                return
        else:
            self._fault = EXCEPTIONS.get(number, f"exception {number}")
        uc.emu_stop()

    def _semihost(self, operation: int, block: int) -> int:
        def words(n: int) -> tuple[int, ...]:
            return struct.unpack(f"<{n}I", self.read(block, 4 * n))

        files = self.files
        if operation == SYS_OPEN:
            path, mode, length = words(3)
            return files.open(self.read(path, length).decode(errors="replace"), mode)
        if operation == SYS_CLOSE:
            return files.close(words(1)[0])
        if operation == SYS_WRITE:
            handle, buffer, length = words(3)
            return files.write(handle, self.read(buffer, length))
        if operation == SYS_READ:
            handle, buffer, length = words(3)
            chunk = files.read(handle, length)
            self.write(buffer, chunk)
            return length - len(chunk)
        if operation == SYS_SEEK:
            handle, position = words(2)
            return files.seek(handle, position)
        if operation == SYS_FLEN:
            return files.length(words(1)[0])
        if operation == SYS_WRITEC:
            files.write_console(self.read(block, 1).decode(errors="replace"))
            return 0
        if operation == SYS_WRITE0:
            text = self.read(block, 4096).split(b"\0")[0]
            files.write_console(text.decode(errors="replace"))
            return 0
        if operation == SYS_EXIT_EXTENDED:
            reason, status = words(2)
            self._stopped = Stop(0, True, status if reason == ADP_STOPPED_APPLICATION_EXIT
                                 else 1, self.uc.reg_read(arm.UC_ARM_REG_PC))
            return 0
        if operation == SYS_EXIT:
            self._stopped = Stop(0, True, 0 if block == ADP_STOPPED_APPLICATION_EXIT else 1,
                                 self.uc.reg_read(arm.UC_ARM_REG_PC))
            return 0
        self._fault = f"semihosting call {operation:#x}, which the emulator does not provide"
        self.uc.emu_stop()
        return -1


def _round_up(value: int, step: int) -> int:
    return (value + step - 1) // step * step


def _inside(inner: Region, outer: Region) -> bool:
    return outer.origin <= inner.origin and inner.end <= outer.end


def _overlaps(a: Region, b: Region) -> bool:
    return a.origin < b.end and b.origin < a.end
