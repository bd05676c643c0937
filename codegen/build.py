"""`ariel build`: compile a model, write a firmware project for a board, build its ELF and
report its memory, all into one output folder that appears only if everything worked."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx

from codegen import __version__
from codegen.boards import Board
from codegen.compile import CompiledModel, Options, compile_model, current_command
from codegen.elf import MemoryUse, memory_use
from codegen.emit import ModelInfo, environment
from codegen.errors import DoesNotFitError
from codegen.outdir import MARKER, staged_output
from codegen.quant.report import QuantReport, format_report, quantization_report
from codegen.report import memory_table
from codegen.resources import data_dir
from codegen.toolchain import run_make

FIRMWARE_SOURCES = ["startup.c", "semihost.c", "harness.c"]
ELF_PATH = Path("build") / "firmware.elf"
QUANTIZED_MODEL = "model_qdq.onnx"


@dataclass
class BuildResult:
    outdir: Path
    compiled: CompiledModel
    memory: MemoryUse
    float_info: ModelInfo | None = None  # the same model in float32, for comparison
    quantization: QuantReport | None = None

    @property
    def report(self) -> str:
        table = memory_table(self.memory, self.compiled.info, self.float_info)
        if self.quantization is None:
            return table
        return format_report(self.quantization) + "\n" + table


def build(model: Path, board: Board, outdir: Path, options: Options | None = None,
          progress: Callable[[str], None] = lambda message: None) -> BuildResult:
    options = options or Options()
    progress(f"compiling {model} ({options.precision})")
    command = current_command()
    compiled = compile_model(model, options, command)
    float_info, quantization = None, None
    if options.precision == "int8":
        progress("measuring quantization against the float model")
        float_info = compile_model(model, Options(input_shapes=options.input_shapes,
                                                  name=options.name), command).info
        quantization = _quantization_report(model, compiled)
    progress(f"{len(compiled.info.kernels)} kernels, arena "
             f"{compiled.plan.arena_size:,} bytes; building firmware for {board.name}")
    with staged_output(outdir) as staging:
        write_project(staging, compiled.files, compiled.info, board, command,
                      compiled.plan.timeline())
        memory = make_firmware(staging, compiled.info, board)
        metadata = _metadata(compiled, board, options, command, model)
        (staging / MARKER).write_text(json.dumps(metadata, indent=2) + "\n")
        shutil.copyfile(model, staging / "model.onnx")
        if compiled.quantized_model is not None:
            onnx.save(compiled.quantized_model, staging / QUANTIZED_MODEL)
    return BuildResult(Path(outdir), compiled, memory, float_info, quantization)


def _quantization_report(model: Path, compiled: CompiledModel) -> QuantReport:
    calibration = compiled.calibration
    return quantization_report(compiled.graph, onnx.load(str(model)) if calibration else None,
                               compiled.quantized_model,
                               calibration.inputs if calibration else None)


def make_firmware(folder: Path, info: ModelInfo, board: Board) -> MemoryUse:
    """Build the ELF with the project's Makefile and read its memory use; a link that does
    not fit says what the model needs and where to look."""
    try:
        run_make(folder)
    except DoesNotFitError as exc:
        raise DoesNotFitError(
            f"the firmware does not fit {board.name} (flash {board.flash.size:,} B, RAM "
            f"{board.ram.size:,} B): {exc}. The model needs {info.weights_bytes:,} B of "
            f"weights in flash and a {info.arena_size:,} B arena plus a "
            f"{board.stack_bytes:,} B stack in RAM; choose a board with more memory "
            "(see `ariel boards`)") from None
    return memory_use(folder / ELF_PATH, board)


def write_project(folder: Path, files: dict[str, str], info: ModelInfo, board: Board,
                  command: str, plan_text: str) -> None:
    """The generated C (`files`, driven through `info.prefix`'s API), the firmware sources,
    the linker script and a Makefile."""
    env = environment()
    model_dir, firmware_dir = folder / "model", folder / "firmware"
    model_dir.mkdir()
    for filename, text in files.items():
        (model_dir / filename).write_text(text)
    header = files[f"{info.prefix}.h"].split("*/\n", 1)[0] + "*/\n"
    (model_dir / "ariel_model.h").write_text(env.get_template("firmware/ariel_model.h.j2")
                                             .render(header=header, prefix=info.prefix,
                                                     guard=info.prefix.upper()))
    shutil.copytree(data_dir("firmware"), firmware_dir)
    (firmware_dir / "linker.ld").write_text(
        env.get_template("firmware/linker.ld.j2").render(board=board))
    sources = sorted(f"model/{f}" for f in files if f.endswith(".c"))
    sources += [f"firmware/{f}" for f in FIRMWARE_SOURCES]
    (folder / "Makefile").write_text(env.get_template("firmware/Makefile.j2").render(
        version=__version__, board=board, command=command, sources=sources))
    (folder / "memory_plan.txt").write_text(plan_text + "\n")


def _metadata(compiled: CompiledModel, board: Board, options: Options, command: str,
              model: Path) -> dict:
    return {
        "ariel_version": __version__,
        "command": command,
        "model": {"file": "model.onnx", "source": str(model), "sha256": compiled.source.sha256,
                  "quantized_file": QUANTIZED_MODEL if compiled.quantized_model else None},
        "board": board.name,
        # Which addresses the ELF is linked at (the emulator's or the chip's own) and the
        # chip's real map beside them.
        "memory_map": board.memory_map_dict(),
        "precision": options.precision,
        "io": options.io,
        "elf": str(ELF_PATH),
        "notes": compiled.source.notes,
        "model_info": compiled.info.to_dict(),
    }
