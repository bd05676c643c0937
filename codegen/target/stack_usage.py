"""The stack's high-water mark of a run, as the firmware reports it.

At reset, firmware/startup.c fills the stack section with a known word; after the last
inference the harness (firmware/harness.c) finds the lowest word that no longer holds it and
prints, on the console, before its final line:

    ariel: stack high-water 1736 bytes of 8192

the deepest the stack went (counted from its top, the firmware's start-up and semihosting
calls included) and the stack's size. A figure equal to the size means the stack was used
to its end and has probably overflowed into the data below it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import FirmwareError
from codegen.target.stack_depth import describe_need, need_of

_LINE = re.compile(r"^ariel: stack high-water (\d+) bytes of (\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class StackUse:
    used: int  # bytes, deepest point reached
    size: int  # bytes in the stack section

    @property
    def full(self) -> bool:
        """Used to its end: the stack may have overflowed."""
        return self.used >= self.size


def stack_use(console: str) -> StackUse | None:
    """The high-water line of a run's console output, or None if the firmware printed none
    (a run that failed, or a firmware built before the harness reported it)."""
    found = _LINE.findall(console)
    if not found:
        return None
    used, size = found[-1]
    return StackUse(int(used), int(size))


def stack_high_water(console: str) -> int | None:
    """Bytes of stack a run used at its deepest, from its console output (None if absent).
    For `ariel simulate`: stack_high_water(simulation.console)."""
    use = stack_use(console)
    return None if use is None else use.used


def check_stack_use(console: str, elf: Path | None = None) -> StackUse | None:
    """The run's high-water mark; a FirmwareError if the run used the stack to its end
    (the paint at its bottom is gone), naming the deepest kernel of `elf` where it can."""
    use = stack_use(console)
    if use is not None and use.full:
        need = need_of(elf)
        raise FirmwareError(
            f"the stack overflowed: the run used all {use.size:,} B of stack (the paint at "
            "its bottom is gone), so it wrote into the memory below and its outputs cannot "
            "be trusted"
            + (f"; {describe_need(need, use.size)}" if need is not None else "")
            + "; build it again with `ariel build`, which sizes the stack from the code")
    return use
