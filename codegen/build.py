"""`ariel build`: compile a model, write a firmware project for a board, build its ELF and
report its memory, all into one output folder that appears only if everything worked."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from codegen import __version__
from codegen.compiler.checkpoint import CheckpointPlan, PowerOptions, nvm_cost
from codegen.compiler.compile import CompiledModel, Options, compile_model, current_command
from codegen.compiler.emit import ModelInfo
from codegen.compiler.quant.islands import format_float_islands
from codegen.compiler.quant.report import QuantReport, format_report, quantization_report
from codegen.devkit.elfcheck import check_uart_elf
from codegen.devkit.renode import write_renode_files
from codegen.devkit.uart import (
    UartOptions,
    require_console,
    uart_metadata,
    uart_target,
)
from codegen.errors import ArielError
from codegen.report.memory import memory_table
from codegen.target.boards import Board, keep_board_file
from codegen.target.elf import MemoryUse
from codegen.target.firmware import (
    ELF_PATH,
    INTERMITTENT_SOURCES,
    FirmwareFiles,
    float_weights_hint,
    generated_header,
    make_firmware,
    write_project,
)
from codegen.target.outdir import check_output_folder, output_path, staged_output, write_manifest

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
        return "\n".join([format_report(self.quantization),
                          format_float_islands(self.compiled.float_islands or []), table])


def build(model: Path, board: Board, outdir: Path, options: Options | None = None,
          progress: Callable[[str], None] = lambda message: None,
          uart: UartOptions | None = None, force: bool = False) -> BuildResult:
    """`uart` makes a `--io uart` build for the real board (codegen/devkit/uart.py); `force`
    builds into a folder that is not an ariel build, or over changed files of one
    (codegen/target/outdir.py)."""
    options = options or Options()
    if options.power is not None:
        if uart is not None:
            raise ArielError("--power intermittent builds run in the emulator (--io "
                             "semihosting): on the board itself the NVM needs a flash-"
                             "controller or SPI driver, which ariel does not generate yet")
        board = board.for_intermittent()
    options = replace(options, budget=board.budget,
                      flash_wait_states=board.wait_states if board.wait_states is not None
                      else options.flash_wait_states)
    check_output_folder(output_path(outdir), force)
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
                                   generated_header(compiled.files, compiled.info), progress)
    if compiled.checkpoints is not None:
        firmware = FirmwareFiles(INTERMITTENT_SOURCES)
    with staged_output(outdir, force) as staging:
        write_project(staging, compiled.files, compiled.info, target, command,
                      compiled.plan.timeline(), firmware)
        memory = make_firmware(staging, compiled.info, target,
                               float_weights_hint(options.float_weights,
                                                  compiled.info.weights_bytes)
                               if options.precision == "float" else "",
                               _weights_in_ram_hint(options, compiled.info.weights_bytes))
        metadata = _metadata(compiled, target, options, command, model)
        metadata["stack"] = memory.stack.to_dict()
        if compiled.checkpoints is not None:
            metadata["power"] = power_metadata(compiled.checkpoints, options.power)
        keep_board_file(staging, board, metadata)
        if uart is not None:
            metadata["console"] = uart_metadata(board, check_uart_elf(staging, board,
                                                                      progress))
            write_renode_files(staging, board, compiled.info)
        shutil.copyfile(model, staging / "model.onnx")
        if compiled.quantized_model is not None:
            onnx.save(compiled.quantized_model, staging / QUANTIZED_MODEL)
        write_manifest(staging, metadata)
    return BuildResult(Path(outdir), compiled, memory, float_info, quantization)


def power_metadata(plan: CheckpointPlan, power: PowerOptions) -> dict:
    """What ariel.json records about an intermittent build: its checkpoints and what they
    cost per inference with continuous power."""
    return {"mode": "intermittent", "nvm": power.nvm.describe(),
            "on_period_cycles": power.on_period_cycles,
            "inferences_per_hour": power.inferences_per_hour,
            "checkpoints": plan.to_dict(), "cost_per_inference": nvm_cost(plan, power).to_dict()}


def _quantization_report(model: Path, compiled: CompiledModel) -> QuantReport:
    calibration = compiled.calibration
    return quantization_report(compiled.graph, onnx.load(str(model)) if calibration else None,
                               compiled.quantized_model,
                               calibration.inputs if calibration else None)


def _weights_in_ram_hint(options: Options, weights_bytes: int) -> str:
    """What to try when a --weights-in-ram build overflows the RAM."""
    if not options.weights_in_ram:
        return ""
    return (f"--weights-in-ram puts its {weights_bytes:,} B of weights in RAM too: build "
            "without it to keep them in flash only; ")


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
        "weights_in_ram": options.weights_in_ram,
        "io": options.io,
        "elf": str(ELF_PATH),
        "notes": compiled.source.notes,
        # int8: every kernel that computes in float32 (none: an empty list); float: null
        "float_islands": None if compiled.float_islands is None else [
            island.to_dict() for island in compiled.float_islands],
        "model_info": compiled.info.to_dict(),
    }
