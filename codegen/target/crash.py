"""What a firmware crash means: the faulting PC and LR named by the ELF's functions, and
whether the stack ran past its end.

Two kinds of crash reach ariel. A fault the core could take runs firmware/startup.c's
handler, which prints `ariel: fault at pc=... lr=... sp=...` (and, on Armv7-M, the fault
status registers) and the stack's high-water mark. A fault the core could not take, because
pushing its exception frame faulted too (a stack pointer below RAM), locks the core up:
QEMU then stops with `qemu: fatal: Lockup: ...` and a register dump on stderr (R13 the SP,
R14 the LR, R15 the PC). A stack overflow is called likely when the SP lies at or below the
stack's bottom, the high-water mark reached it, the fault status says the core failed to
push its frame, or the code's deepest call chain needs more than the stack holds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from codegen.target.elf import function_at, symbol_address
from codegen.target.stack_depth import describe_need, need_of
from codegen.target.stack_usage import stack_use

# Configurable Fault Status Register bits for a fault while pushing the exception frame
# (Armv7-M ARM B3.2.15): MSTKERR (MemManage) and BSTKERR (BusFault).
CFSR_STACKING = (1 << 4) | (1 << 12)
# How close to the stack's bottom an SP counts as having reached it: a frame pushed there
# would have gone past it.
NEAR_BOTTOM = 64

_HEX = r"(?:0x)?([0-9A-Fa-f]{1,8})"
_FAULT = re.compile(rf"ariel: fault at pc={_HEX} lr={_HEX}(?: sp={_HEX})?(?: cfsr={_HEX})?")
_LOCKUP = re.compile(r"qemu: fatal: (Lockup[^\n]*)")
_REGISTER = re.compile(r"\bR(1[345])=([0-9a-fA-F]{8})")


@dataclass
class Crash:
    what: str  # what happened, in words
    pc: int | None = None
    lr: int | None = None
    sp: int | None = None
    cfsr: int | None = None


def fault_of(console: str) -> Crash | None:
    """The fault handler's report in a run's console output, if any."""
    match = _FAULT.search(console)
    if match is None:
        return None
    pc, lr, sp, cfsr = (int(g, 16) if g else None for g in match.groups())
    return Crash(match.group(0), pc, lr, sp, cfsr)


def lockup_of(stderr: str) -> Crash | None:
    """QEMU's lockup report (its fatal line and register dump), if any."""
    match = _LOCKUP.search(stderr)
    if match is None:
        return None
    registers = {int(n): int(v, 16) for n, v in _REGISTER.findall(stderr)}
    return Crash(f"the core locked up (QEMU: {match.group(1).strip()}), a fault while "
                 "taking a fault",
                 registers.get(15), registers.get(14), registers.get(13))


def explain(crash: Crash, elf: Path | None, console: str = "") -> str:
    """Where the crash happened, by function, and whether the stack overflowed."""
    parts = []
    for label, address in (("pc", crash.pc), ("lr", crash.lr)):
        if address is not None:
            name = function_at(elf, address) if elf else None
            parts.append(f"{label} 0x{address:08X}" + (f" in {name}" if name else ""))
    if crash.sp is not None:
        parts.append(f"sp 0x{crash.sp:08X}")
    text = ", ".join(parts)
    reason = overflow_reason(crash, elf, console)
    if reason:
        text += f"; stack overflow likely: {reason}"
    return text


def overflow_reason(crash: Crash, elf: Path | None, console: str) -> str:
    """Why the stack probably overflowed ("" when nothing says so)."""
    bottom = symbol_address(elf, "_sstack") if elf else None
    top = symbol_address(elf, "_estack") if elf else None
    need = need_of(elf)
    reasons = []
    if crash.sp is not None and bottom is not None and crash.sp < bottom + NEAR_BOTTOM:
        where = "below" if crash.sp < bottom else "at"
        reasons.append(f"the SP 0x{crash.sp:08X} is {where} the stack's bottom "
                       f"0x{bottom:08X}")
    use = stack_use(console)
    if use is not None and use.full:
        reasons.append(f"the high-water mark reached the end of the {use.size:,} B stack")
    if crash.cfsr is not None and crash.cfsr & CFSR_STACKING:
        reasons.append("the fault status says pushing an exception frame faulted")
    reserved = top - bottom if top is not None and bottom is not None else None
    if need is not None and (reasons or (reserved is not None and need.total > reserved)):
        reasons.append(describe_need(need, reserved))
    return "; ".join(r for r in reasons if r)
