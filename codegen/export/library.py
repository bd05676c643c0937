"""`ariel export`: a model as a library for the user's own firmware. The model's C, its
weights and the runtime headers they include go to src/ beside one public header
(<prefix>_model.h: the run function, every input's and output's place, shape, type and int8
quantization, the arena's size and alignment, the stack the run needs); the build-system
files of the chosen format (formats.py) around them. Nothing of ariel's firmware (start-up,
semihosting, harness) is part of it.

The output folder follows the rules of every ariel output (codegen/target/outdir.py): it
appears whole when everything worked, and no file ariel did not write is replaced."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codegen import __version__
from codegen.compiler.c import c_float, environment
from codegen.compiler.compile import Options, compile_model, current_command
from codegen.compiler.emit import ModelInfo, TensorInfo
from codegen.compiler.ir import C_TYPES
from codegen.errors import ArielError
from codegen.export.formats import FORMATS, write_format
from codegen.resources import data_dir
from codegen.target.board_schema import CORE_FPUS
from codegen.target.boards import arch_flags
from codegen.target.library_stack import KERNEL_FLAGS, LibraryStack, library_stack
from codegen.target.outdir import check_output_folder, output_path, staged_output, write_manifest

SOURCES = "src"
ARENA_ALIGN = 16  # what the kernels' widest loads assume (the harness aligns its arena so)
# The runtime files a model's C includes (ariel_runtime.h includes the other two).
RUNTIME_FILES = ("ariel_runtime.h", "ariel_products_f32.inc", "ariel_ml.h")
# The FPU an exported library is compiled for when --fpu is not given: the one every chip
# with that core and an FPU has (single precision; a Cortex-M7 with a double-precision FPU
# runs it too).
DEFAULT_FPU = {"cortex-m0plus": "none", "cortex-m4": "fpv4-sp-d16",
               "cortex-m7": "fpv5-sp-d16", "cortex-m33": "fpv5-sp-d16"}


@dataclass(frozen=True)
class Target:
    """The core an export is compiled for, and its floating-point unit."""

    core: str
    fpu: str

    @property
    def arch_flags(self) -> list[str]:
        return arch_flags(self.core, self.fpu)


def export_target(core: str, fpu: str | None) -> Target:
    if core not in CORE_FPUS:
        raise ArielError(f"--core {core}: expected one of {', '.join(CORE_FPUS)}")
    fpu = fpu or DEFAULT_FPU[core]
    if fpu not in CORE_FPUS[core]:
        raise ArielError(f"--fpu {fpu}: a {core} has {' or '.join(CORE_FPUS[core])}")
    return Target(core, fpu)


@dataclass
class Library:
    """What the export wrote and measured."""

    outdir: Path
    info: ModelInfo
    run: str
    stack: LibraryStack
    files: list[str]


@dataclass(frozen=True)
class Exported:
    """A compiled model (or adaptive dispatcher) as the export takes it."""

    files: dict[str, str]  # generated C: file name -> text
    info: ModelInfo
    header: str  # the generated files' opening comment
    stages: list[dict]  # an adaptive build's stages (label, threshold); empty otherwise


def export_model(model: Path, options: Options, target: Target, fmt: str, outdir: Path,
                 force: bool = False, progress: Callable[[str], None] = lambda m: None,
                 static_arena: bool = False) -> Library:
    """Compile `model` with `options` and export it in format `fmt` into `outdir`."""
    check_output_folder(output_path(outdir), force)
    progress(f"compiling {model} ({options.precision})")
    compiled = compile_model(model, options, current_command())
    for note in compiled.source.notes:
        progress(f"note: {note}")
    header = compiled.files[f"{compiled.info.prefix}.h"].split("*/\n", 1)[0] + "*/\n"
    return export_compiled(Exported(compiled.files, compiled.info, header, []), target, fmt,
                           outdir, force, progress, options.precision, static_arena)


def export_compiled(exported: Exported, target: Target, fmt: str, outdir: Path,
                    force: bool = False, progress: Callable[[str], None] = lambda m: None,
                    precision: str = "float", static_arena: bool = False) -> Library:
    """Write an already compiled model (or dispatcher) as a library; `static_arena`: the
    library defines the arena (<prefix>_arena) instead of taking the caller's."""
    if fmt not in FORMATS:
        raise ArielError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    info = exported.info
    run = f"{info.prefix}_run"
    flags = target.arch_flags + KERNEL_FLAGS
    with staged_output(outdir, force) as staging:
        sources = staging / SOURCES
        sources.mkdir()
        for name, text in exported.files.items():
            (sources / name).write_text(text)
        for name in RUNTIME_FILES:
            (sources / name).write_bytes((data_dir("firmware") / name).read_bytes())
        progress(f"measuring the stack of {run} for {target.core}")
        stack = library_stack(sources, run, info.arena_size, target.arch_flags,
                              [k["fn"] for k in info.kernels])
        api = public_header(exported, run, stack, target, flags, static_arena)
        (sources / f"{info.prefix}_model.h").write_text(api)
        if static_arena:
            (sources / f"{info.prefix}_arena.c").write_text(
                environment().get_template("export/arena.c.j2").render(
                    header=exported.header, prefix=info.prefix, guard=info.prefix.upper(),
                    run=run))
        write_format(fmt, staging, info, sorted(p.name for p in sources.glob("*.c")), target)
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")
                       if p.is_file())
        write_manifest(staging, {
            "ariel_version": __version__, "command": current_command(),
            "export": {"format": fmt, "core": target.core, "fpu": target.fpu,
                       "precision": precision, "prefix": info.prefix, "run": run,
                       "public_header": f"{SOURCES}/{info.prefix}_model.h",
                       "arena_size": info.arena_size, "arena_align": ARENA_ALIGN,
                       "static_arena": static_arena,
                       "stack_bytes": stack.bytes, "stack_chain": stack.chain,
                       "flags": flags},
            "model_info": info.to_dict()})
    return Library(Path(outdir), info, run, stack, files)


def public_header(exported: Exported, run: str, stack: LibraryStack, target: Target,
                  flags: list[str], static_arena: bool = False) -> str:
    info = exported.info
    guard = info.prefix.upper()
    tensors = [_tensor(t, "input", i, guard) for i, t in enumerate(info.inputs)] + \
        [_tensor(t, "output", i, guard) for i, t in enumerate(info.outputs)]
    return environment().get_template("export/model_api.h.j2").render(
        header=exported.header, prefix=info.prefix, guard=guard, info=info, run=run,
        align=ARENA_ALIGN, stack_bytes=stack.bytes, stack_chain=" > ".join(stack.chain),
        stack_kernel=stack.kernel, stack_kernel_frame=stack.kernel_frame,
        stack_unbounded="; ".join(stack.unbounded), core=target.core, fpu=target.fpu,
        flags=" ".join(flags), tensors=tensors, stages=exported.stages,
        static_arena=static_arena)


def _tensor(tensor: TensorInfo, kind: str, index: int, guard: str) -> dict:
    if tensor.dtype not in C_TYPES:
        raise ArielError(f"{kind} '{tensor.name}' is {tensor.dtype}, which an exported "
                         "header cannot describe")
    return {"kind": kind, "index": index, "name": tensor.name, "dtype": tensor.dtype,
            "shape": list(tensor.shape), "offset": tensor.offset, "nbytes": tensor.nbytes,
            "count": math.prod(tensor.shape), "ctype": C_TYPES[tensor.dtype],
            "macro": f"{guard}_{kind.upper()}{index}",
            "const": "const " if kind == "output" else "",
            "scale": None if tensor.scale is None else c_float(tensor.scale),
            "zero_point": tensor.zero_point}
