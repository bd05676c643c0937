"""The stack an exported model needs from the caller: its run function's frame and its deepest
call chain, measured on the exported sources themselves.

The sources are compiled as the exported build files compile them (the core's flags, -O2,
-fstack-usage) and linked into a throw-away ELF whose only vector is a stub calling the run
function; the stack analysis of firmware builds (stack_depth.py: gcc's frames over the call
graph read from the machine code, library code such as memset and expf by its prologue) then
gives the depth below the run function's entry. An interrupt taken during an inference adds
its own frame on top, which is the caller's to budget (as for any library call)."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import ArielError
from codegen.target.stack_depth import analyse_stack, stack_usage_files
from codegen.target.toolchain import require_tool

# The flags the exported build files give the kernels (beside the core's): what the stack
# figure is measured at, and what ariel's own firmware builds use.
KERNEL_FLAGS = ["-std=c11", "-O2", "-ffp-contract=off", "-mfp16-format=ieee",
                "-ffunction-sections", "-fdata-sections"]

_STUB = """\
#include <stdint.h>
void {run}(uint8_t *arena);
static uint8_t arena[{arena}] __attribute__((aligned(16)));
void stack_entry(void) {{ {run}(arena); }}
__attribute__((section(".isr_vector"), used)) static void (*const vectors[2])(void) = {{
    0, stack_entry}};
"""


@dataclass(frozen=True)
class LibraryStack:
    """Bytes of stack below `run`'s entry at its deepest, the chain that reaches it, and the
    deepest kernel on that chain (its name and own frame); `unbounded`: what the figure
    cannot include (then a lower bound)."""

    bytes: int
    chain: list[str]
    kernel: str | None
    kernel_frame: int
    unbounded: list[str]


def library_stack(sources: Path, run: str, arena_size: int, arch_flags: list[str],
                  kernels: list[str]) -> LibraryStack:
    """The stack `run` (a model's or the dispatcher's run function) needs, the .c files in
    `sources` compiled with `arch_flags` and KERNEL_FLAGS."""
    gcc = require_tool("arm-none-eabi-gcc")
    with tempfile.TemporaryDirectory(prefix="ariel-stack-") as work:
        work = Path(work)
        stub = work / "stack_entry.c"
        stub.write_text(_STUB.format(run=run, arena=max(arena_size, 1)))
        objects = []
        (work / "build").mkdir()
        # Compiled from inside their folder by relative names: the folder's path (the
        # user's, which may hold anything) never reaches the assembler's `.file` lines.
        for source in [*sorted(Path(sources).glob("*.c")), stub]:
            obj = work / "build" / f"{source.stem}.o"
            _run([gcc, *arch_flags, *KERNEL_FLAGS, "-fstack-usage", "-I.", "-c", source.name,
                  "-o", str(obj)], f"compiling {source.name}", source.parent)
            objects.append(str(obj))
        elf = work / "stack.elf"
        _run([gcc, *arch_flags, "-nostartfiles", "--specs=nano.specs",
              "-Wl,--entry=stack_entry", *objects, "-lm", "-o", str(elf)], "linking", work)
        need = analyse_stack(elf, stack_usage_files(work / "build"), fpu=False,
                             kernels=kernels)
    names = [f.name for f in need.chain]
    if run not in names:
        raise ArielError(f"internal: the stack analysis did not reach {run}")
    below = need.chain[names.index(run)]
    kernel = need.deepest_kernel
    return LibraryStack(below.depth, names[names.index(run):],
                        kernel.name if kernel else None, kernel.frame if kernel else 0,
                        need.unbounded)


def _run(command: list[str], what: str, folder: Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    if result.returncode != 0:
        raise ArielError(f"measuring the exported model's stack failed {what}:\n"
                         f"{(result.stdout + result.stderr).strip()}")
