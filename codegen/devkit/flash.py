"""`ariel flash OUTDIR`: write a --io uart build to its dev kit through pyOCD's Python API.
The ELF is checked against the chip's flash first (a build linked for an emulator's addresses
would write the wrong place); `--dry-run` stops there and says what would be written where.
The board file names the pyOCD target; targets not built into pyOCD come from a CMSIS pack
that must be installed once (`pyocd pack install TARGET`)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

from codegen.errors import ArielError
from codegen.target.boards import Board


@dataclass
class Segment:
    address: int  # where it is written (the load address)
    data: bytes
    sections: list[str] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.address + len(self.data)


@dataclass
class FlashPlan:
    board: Board
    elf: Path
    target: str
    segments: list[Segment]
    uart: bool  # a --io uart build (a semihosting build stops at its first output)

    @property
    def size(self) -> int:
        return sum(len(s.data) for s in self.segments)


def flash_plan(build) -> FlashPlan:
    """What writing `build` (codegen.run.simulate.Build) to its board means, checked against the
    board's chip: every loaded segment inside its flash."""
    board = build.board
    if board.debug is None:
        raise ArielError(f"board {board.name} names no pyOCD target in its board file "
                         "([debug]): it is an emulated board and cannot be flashed")
    segments = elf_segments(build.elf)
    flash = board.chip.flash
    for segment in segments:
        if not (flash.contains(segment.address) and segment.end <= flash.end):
            linked = build.metadata.get("memory_map", {}).get("linked_for", {}).get("name", "")
            hint = (f"this build is linked for {linked.replace('qemu ', 'QEMU ')}'s "
                    "addresses; rebuild it with --io uart to flash the board"
                    if linked.startswith("qemu") else "rebuild it for this board")
            raise ArielError(
                f"the ELF's segment at 0x{segment.address:08X}..0x{segment.end:08X} "
                f"({len(segment.data):,} B) lies outside {board.name}'s flash "
                f"(0x{flash.origin:08X}..0x{flash.end:08X}): {hint}")
    return FlashPlan(board, build.elf, board.debug.pyocd_target, segments,
                     uart="console" in build.metadata)


def elf_segments(elf_path: Path) -> list[Segment]:
    """The bytes an ELF stores, by load address (initialised data is loaded from flash),
    with the sections each segment carries."""
    with open(elf_path, "rb") as handle:
        elf = ELFFile(handle)
        segments = []
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or seg["p_filesz"] == 0:
                continue
            names = [s.name for s in elf.iter_sections()
                     if s["sh_size"] and s["sh_type"] != "SHT_NOBITS" and seg.section_in_segment(s)]
            segments.append(Segment(seg["p_paddr"], seg.data(), names))
    return sorted(segments, key=lambda s: s.address)


def target_status(target: str) -> str:
    """'built in', 'pack' (an installed CMSIS pack defines it) or 'missing'."""
    from pyocd.target import TARGET

    if target.lower() in TARGET:
        return "built in"
    try:
        from pyocd.target.pack.pack_target import ManagedPacks

        installed = ManagedPacks.get_installed_targets()
    except Exception:  # no pack index yet: nothing installed
        installed = []
    if any(dev.part_number.lower() == target.lower() for dev in installed):
        return "pack"
    return "missing"


def format_plan(plan: FlashPlan, status: str) -> list[str]:
    board, flash = plan.board, plan.board.chip.flash
    where = {"built in": "built into pyOCD", "pack": "from an installed CMSIS pack",
             "missing": f"its pack is not installed: `pyocd pack install {plan.target}`"}[status]
    lines = [f"{plan.elf} -> {board.name} (pyOCD target {plan.target}, {where}):"]
    for segment in plan.segments:
        lines.append(f"  0x{segment.address:08X}..0x{segment.end - 1:08X}  "
                     f"{len(segment.data):>9,} B  {' '.join(segment.sections)}")
    lines.append(f"  {plan.size:,} B of {board.name}'s {flash.size:,} B flash at "
                 f"0x{flash.origin:08X} ({100 * plan.size / flash.size:.1f}%), erased by "
                 "sector, then the core is reset")
    if not plan.uart:
        lines.append("  note: a semihosting build stops at its first output on a board "
                     "without a debugger attached; build with --io uart for the board")
    return lines


def flash(plan: FlashPlan, probe: str | None,
          progress: Callable[[str], None] = lambda message: None) -> None:
    """Erase, program and reset through pyOCD. Clear errors when the build is not for a
    board, the target's pack is missing, or no probe is connected."""
    if not plan.uart:
        raise ArielError(f"'{plan.elf}' talks through semihosting, which halts on a board "
                         "without a debugger attached; rebuild with --io uart to flash it")
    status = target_status(plan.target)
    if status == "missing":
        raise ArielError(_pack_missing(plan))
    from pyocd.core import exceptions
    from pyocd.core.helpers import ConnectHelper
    from pyocd.flash.loader import MemoryLoader

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pyOCD prints its probe search
            session = ConnectHelper.session_with_chosen_probe(
                blocking=False, return_first=True, unique_id=probe,
                target_override=plan.target,
                options={"hide_programming_progress": True, "smart_flash": False})
        if session is None:
            which = f" whose unique ID contains '{probe}'" if probe else ""
            raise ArielError(f"no debug probe{which} is connected: plug the board's debug USB "
                             f"port (ST-LINK or J-Link) into this computer; `pyocd list` shows "
                             "the probes pyOCD sees")
        with session:
            progress(f"writing {plan.size:,} B to {plan.board.name} through "
                     f"{session.probe.description} ({session.probe.unique_id})")
            loader = MemoryLoader(session, chip_erase="sector", smart_flash=False,
                                  keep_unwritten=False)
            for segment in plan.segments:
                loader.add_data(segment.address, segment.data)
            loader.commit()
            session.target.reset()
    except exceptions.TargetSupportError as exc:
        raise ArielError(f"{_pack_missing(plan)} (pyOCD: {exc})") from None
    except exceptions.Error as exc:
        raise ArielError(f"pyOCD could not flash {plan.board.name}: {exc}") from None


def _pack_missing(plan: FlashPlan) -> str:
    pack = plan.board.debug.pack
    return (f"pyOCD does not know target '{plan.target}' ({plan.board.name}): install its "
            f"CMSIS pack once with `pyocd pack install {plan.target}`"
            + (f" (ST's {pack}; it needs the network)" if pack else ""))
