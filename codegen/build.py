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
from codegen.compiler.c import environment
from codegen.compiler.compile import CompiledModel, Options, compile_model, current_command
from codegen.compiler.emit import ModelInfo
from codegen.compiler.quant.report import QuantReport, format_report, quantization_report
from codegen.devkit.elfcheck import check_elf
from codegen.devkit.renode import write_renode_files
from codegen.devkit.uart import (
    FirmwareFiles,
    UartOptions,
    load_test_input,
    require_console,
    uart_firmware,
    uart_metadata,
)
from codegen.errors import ArielError, DoesNotFitError
from codegen.report.memory import memory_table
from codegen.resources import data_dir
from codegen.target.boards import Board
from codegen.target.elf import MemoryUse, memory_use
from codegen.target.outdir import MARKER, staged_output
from codegen.target.toolchain import run_make

FIRMWARE_SOURCES = ["startup.c", "semihost.c", "console_numbers.c", "harness.c"]
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
          progress: Callable[[str], None] = lambda message: None,
          uart: UartOptions | None = None) -> BuildResult:
    """`uart` makes a `--io uart` build for the real board (codegen/devkit/uart.py)."""
    options = options or Options()
    if uart is not None:
        require_console(board)
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
    target, firmware = uart_target(board, uart, compiled.files, compiled.info,
                                   _header(compiled.files, compiled.info), progress)
    with staged_output(outdir) as staging:
        write_project(staging, compiled.files, compiled.info, target, command,
                      compiled.plan.timeline(), firmware)
        memory = make_firmware(staging, compiled.info, target,
                               float_weights_hint(options.float_weights,
                                                  compiled.info.weights_bytes)
                               if options.precision == "float" else "")
        metadata = _metadata(compiled, target, options, command, model)
        if uart is not None:
            metadata["console"] = uart_metadata(board, check_uart_elf(staging, board,
                                                                      progress))
            write_renode_files(staging, board, compiled.info)
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


def make_firmware(folder: Path, info: ModelInfo, board: Board, hint: str = "") -> MemoryUse:
    """Build the ELF with the project's Makefile and read its memory use; a link that does
    not fit says what the model needs and where to look (`hint`: what else could help)."""
    try:
        run_make(folder)
    except DoesNotFitError as exc:
        if "FLASH" not in exc.regions:
            hint = ""  # the float weights live in flash: their storage cannot help RAM
        raise DoesNotFitError(
            f"the firmware does not fit {board.name} (flash {board.flash.size:,} B, RAM "
            f"{board.ram.size:,} B): {exc}. The model needs {info.weights_bytes:,} B of "
            f"weights in flash and a {info.arena_size:,} B arena plus a "
            f"{board.stack_bytes:,} B stack in RAM; {hint}choose a board with more memory "
            "(see `ariel boards`)", exc.regions) from None
    return memory_use(folder / ELF_PATH, board)


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
    header = _header(files, info)
    (model_dir / "ariel_model.h").write_text(env.get_template("firmware/ariel_model.h.j2")
                                             .render(header=header, prefix=info.prefix,
                                                     guard=info.prefix.upper()))
    shutil.copytree(data_dir("firmware"), firmware_dir)
    (firmware_dir / "linker.ld").write_text(
        env.get_template("firmware/linker.ld.j2").render(board=board))
    sources = sorted(f"model/{f}" for f in files if f.endswith(".c"))
    if firmware is None:
        sources += [f"firmware/{f}" for f in FIRMWARE_SOURCES]
    else:
        sources += firmware.sources
        for relative, text in firmware.files.items():
            (folder / relative).write_text(text)
    (folder / "Makefile").write_text(env.get_template("firmware/Makefile.j2").render(
        version=__version__, board=board, command=command, sources=sources))
    (folder / "memory_plan.txt").write_text(plan_text + "\n")


def uart_target(board: Board, uart: UartOptions | None, files: dict[str, str],
                info: ModelInfo, header: str, progress: Callable[[str], None]
                ) -> tuple[Board, FirmwareFiles | None]:
    """The board a build is linked for (the chip's own map for a UART build) and, for a
    UART build, its firmware files."""
    if uart is None:
        return board, None
    progress(f"UART build: linked at {board.name}'s own memory map, console on "
             f"{board.console.peripheral}")
    firmware = uart_firmware(files, info, board, load_test_input(info, uart.inputs), header)
    return board.on_chip(), firmware


def check_uart_elf(folder: Path, board: Board, progress: Callable[[str], None]) -> str:
    """A UART build's ELF must match its chip: vector table, memory map, console registers
    (codegen/devkit/elfcheck.py). Returns the check's summary."""
    check = check_elf(folder / ELF_PATH, board)
    if not check.ok:
        raise ArielError(f"the UART build for {board.name} does not match its board file: "
                         + "; ".join(check.problems))
    progress(check.summary(board))
    return check.summary(board)


def _header(files: dict[str, str], info: ModelInfo) -> str:
    """The generated files' opening comment (version, model, command)."""
    return files[f"{info.prefix}.h"].split("*/\n", 1)[0] + "*/\n"


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
        "float_weights": options.float_weights,
        "io": options.io,
        "elf": str(ELF_PATH),
        "notes": compiled.source.notes,
        "model_info": compiled.info.to_dict(),
    }
