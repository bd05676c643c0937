"""A firmware project for a board: the generated model C beside ariel's firmware sources, the
board's linker script and a Makefile; built with make into one ELF whose memory is read back
against the board."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from codegen import __version__
from codegen.compiler.c import environment
from codegen.compiler.emit import RAM_WEIGHTS_SECTION, ModelInfo
from codegen.errors import DoesNotFitError
from codegen.resources import data_dir
from codegen.target.boards import Board
from codegen.target.elf import MemoryUse, memory_use
from codegen.target.stack_depth import (
    StackNeed,
    StackPlan,
    analyse_stack,
    stack_to_reserve,
    stack_usage_files,
)
from codegen.target.toolchain import run_make
from codegen.terminal import shown_lines

FIRMWARE_SOURCES = ["startup.c", "semihost.c", "console_numbers.c", "harness.c"]
# An intermittent build's: the resumable harness and the checkpoint runtime.
INTERMITTENT_SOURCES = [f"firmware/{f}" for f in
                        ("startup.c", "semihost.c", "console_numbers.c",
                         "harness_intermittent.c", "ariel_nvm.c")]
ELF_PATH = Path("build") / "firmware.elf"


def make_firmware(folder: Path, info: ModelInfo, board: Board, hint: str = "",
                  ram_hint: str = "") -> MemoryUse:
    """Build the ELF with the project's Makefile and read its memory use; a link that does
    not fit says what the model needs and where to look (`hint`: what else could help when
    the flash overflows, `ram_hint` when the RAM does).

    The stack is sized from the code: after the first link, the deepest call chain (gcc's
    frame figures over the ELF's call graph, codegen/target/stack_depth.py) is compared with
    the board's stack, and where it needs more the linker script gets that much and the ELF
    is linked again; where the board's RAM cannot hold it, the build stops with the figures."""
    _link(folder, info, board, board.stack_bytes, hint, ram_hint)
    elf = folder / ELF_PATH
    need = analyse_stack(elf, stack_usage_files(folder / "build"), fpu=board.fpu != "none",
                         kernels=[k["fn"] for k in info.kernels])
    reserved = stack_to_reserve(need, board.stack_bytes)
    if reserved != board.stack_bytes:
        first = memory_use(elf, board)
        others = first.ram - first.section(".stack")
        if others + reserved > board.ram.size:
            raise DoesNotFitError(_stack_does_not_fit(board, info, need, reserved, others),
                                  ("RAM",))
        (folder / "firmware" / "linker.ld").write_text(linker_script(board, reserved))
        _link(folder, info, board, reserved, hint, ram_hint)
    memory = memory_use(elf, board)
    memory.stack = StackPlan(need, reserved, board.stack_bytes)
    return memory


def _link(folder: Path, info: ModelInfo, board: Board, stack_bytes: int, hint: str,
          ram_hint: str = "") -> None:
    try:
        run_make(folder)
    except DoesNotFitError as exc:
        if "FLASH" not in exc.regions:
            hint = ""  # the float weights live in flash: their storage cannot help RAM
        if "RAM" in exc.regions:
            hint += ram_hint
        raise DoesNotFitError(
            f"the firmware does not fit {board.name} (flash {board.flash.size:,} B, RAM "
            f"{board.ram.size:,} B): {exc}. The model needs {info.weights_bytes:,} B of "
            f"weights in flash and a {info.arena_size:,} B arena plus a "
            f"{stack_bytes:,} B stack in RAM; {hint}choose a board with more memory "
            "(see `ariel boards`)", exc.regions) from None


def _stack_does_not_fit(board: Board, info: ModelInfo, need: StackNeed, reserved: int,
                        others: int) -> str:
    """The refusal when the stack the code needs does not fit beside the arena and data."""
    kernel = need.deepest_kernel
    culprit = ""
    if kernel is not None:
        node = next((k for k in info.kernels if k["fn"] == kernel.name), None)
        described = f" ({node['op']} '{node['name']}')" if node else ""
        culprit = (f"kernel {kernel.name}{described} has a {kernel.frame:,} B stack frame; ")
    return (f"the firmware does not fit {board.name}'s RAM ({board.ram.size:,} B): "
            f"{culprit}the deepest call chain ({need.describe_chain()}) needs "
            f"{need.deepest:,} B of stack plus {need.exception:,} B for an exception, so the "
            f"stack must be {reserved:,} B (the board reserves {board.stack_bytes:,} B), but "
            f"the arena ({info.arena_size:,} B) and other data "
            f"({others - info.arena_size:,} B) leave {board.ram.size - others:,} B of RAM; "
            "choose a board with more RAM (see `ariel boards`)")


def linker_script(board: Board, stack_bytes: int) -> str:
    """The board's linker script with a stack of `stack_bytes`."""
    return environment().get_template("firmware/linker.ld.j2").render(
        board=board, stack_bytes=stack_bytes, ram_weights_section=RAM_WEIGHTS_SECTION)


def float_weights_hint(float_weights: str, float_bytes: int) -> str:
    """What a build that does not fit could try about its float weights (`float_bytes` of
    them), ending in '; ' or empty."""
    if float_bytes == 0:
        return ""
    if float_weights == "fp32":
        return (f"--float-weights fp16 would store the float weights ({float_bytes:,} B) in "
                "about half the flash, or ")
    return f"even with the float weights at half precision ({float_bytes:,} B), it does not; "


def write_project(folder: Path, files: dict[str, str], info: ModelInfo, board: Board,
                  command: str, plan_text: str, firmware: FirmwareFiles | None = None) -> None:
    """The generated C (`files`, driven through `info.prefix`'s API), the firmware sources,
    the linker script and a Makefile. `firmware` replaces the semihosting harness (a UART
    build's sources and generated files)."""
    env = environment()
    model_dir, firmware_dir = folder / "model", folder / "firmware"
    model_dir.mkdir()
    for filename, text in files.items():
        (model_dir / filename).write_text(text)
    header = generated_header(files, info)
    (model_dir / "ariel_model.h").write_text(env.get_template("firmware/ariel_model.h.j2")
                                             .render(header=header, prefix=info.prefix,
                                                     guard=info.prefix.upper(),
                                                     intermittent=info.checkpoints is not None))
    shutil.copytree(data_dir("firmware"), firmware_dir)
    (firmware_dir / "linker.ld").write_text(linker_script(board, board.stack_bytes))
    sources = sorted(f"model/{f}" for f in files if f.endswith(".c"))
    if firmware is None:
        sources += [f"firmware/{f}" for f in FIRMWARE_SOURCES]
    else:
        sources += firmware.sources
        for relative, text in firmware.files.items():
            (folder / relative).write_text(text)
    (folder / "Makefile").write_text(env.get_template("firmware/Makefile.j2").render(
        version=__version__, board=board, command=command, sources=sources))
    # A report for people: names in it (an adaptive build's stages are named after their
    # model files, whose names need not be UTF-8) shown as data.
    (folder / "memory_plan.txt").write_text(shown_lines(plan_text) + "\n")


def generated_header(files: dict[str, str], info: ModelInfo) -> str:
    """The generated files' opening comment (version, model, command)."""
    return files[f"{info.prefix}.h"].split("*/\n", 1)[0] + "*/\n"


@dataclass
class FirmwareFiles:
    """Files a build adds to its project (path relative to the build folder -> text) and
    the sources its Makefile compiles instead of the semihosting harness's."""

    sources: list[str]
    files: dict[str, str] = field(default_factory=dict)
