"""`ariel build --precision ari` (or --stage ...): every stage compiled, the dispatcher, and
one firmware holding them all, reported stage by stage."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codegen import __version__
from codegen.ari.assemble import AriCompiled, compile_stages
from codegen.ari.spec import AriOptions
from codegen.compiler.compile import current_command
from codegen.compiler.quant.islands import format_float_islands
from codegen.devkit.elfcheck import check_uart_elf
from codegen.devkit.renode import write_renode_files
from codegen.devkit.uart import UartOptions, require_console, uart_metadata, uart_target
from codegen.errors import ArielError
from codegen.report.memory import memory_table
from codegen.target.boards import Board, keep_board_file
from codegen.target.elf import MemoryUse
from codegen.target.firmware import ELF_PATH, float_weights_hint, make_firmware, write_project
from codegen.target.outdir import check_output_folder, output_path, staged_output, write_manifest


@dataclass
class AriBuild:
    outdir: Path
    compiled: AriCompiled
    memory: MemoryUse

    @property
    def report(self) -> str:
        prefixes = [stage.info.prefix for stage in self.compiled.stages]
        islands = [f"stage {index}: {format_float_islands(stage.float_islands)}"
                   for index, stage in enumerate(self.compiled.stages)
                   if stage.float_islands is not None]
        return "\n".join([stage_table(self.compiled), *islands, memory_table(
            self.memory, self.compiled.info, weight_prefixes=prefixes)])


def build_ari(options: AriOptions, board: Board, outdir: Path,
              progress: Callable[[str], None] = lambda message: None,
              uart: UartOptions | None = None, force: bool = False) -> AriBuild:
    """`uart`: the firmware for the real board (codegen/devkit/uart.py), which runs the dispatcher
    on a test input in flash and checks the scores, stage and margin the host computed; its
    thresholds must be fixed, since calibrating them needs the emulator. `force`: as for
    codegen.build.build."""
    check_output_folder(output_path(outdir), force)
    if uart is not None:
        require_console(board)
        if options.thresholds is None:
            raise ArielError("an adaptive --io uart build needs fixed thresholds (--threshold, "
                             "or the ones `ariel calibrate` chose on an emulator build of the "
                             "same stages): calibrating them runs the stages in QEMU")
    command = current_command()
    progress("compiling " + ", then ".join(s.label for s in options.stages))
    compiled = compile_stages(options, command, board.budget)
    progress(f"{len(compiled.info.kernels)} kernels in {len(options.stages)} stages, arena "
             f"{compiled.info.arena_size:,} bytes; building firmware for {board.name}")
    target, firmware = uart_target(board, uart, compiled.files, compiled.info,
                                   compiled.header, progress)
    with staged_output(outdir, force) as staging:
        write_project(staging, compiled.files, compiled.info, target, command,
                      compiled.plan_text, firmware)
        float_bytes = sum(model.info.weights_bytes for stage, model
                          in zip(options.stages, compiled.stages, strict=True)
                          if stage.precision == "float")
        memory = make_firmware(staging, compiled.info, target,
                               float_weights_hint(options.float_weights, float_bytes))
        described = metadata(compiled, target, command)
        described["stack"] = memory.stack.to_dict()
        keep_board_file(staging, board, described)
        if uart is not None:
            described["console"] = uart_metadata(board, check_uart_elf(staging, board,
                                                                       progress))
            write_renode_files(staging, board, compiled.info)
        for index, stage in enumerate(options.stages):
            shutil.copyfile(stage.model, staging / f"stage{index}.onnx")
        write_manifest(staging, described)
    return AriBuild(Path(outdir), compiled, memory)


def metadata(compiled: AriCompiled, board: Board, command: str) -> dict:
    options = compiled.options
    first = options.stages[0]
    return {
        "ariel_version": __version__,
        "command": command,
        "model": {"file": "stage0.onnx", "source": str(first.model),
                  "sha256": compiled.stages[0].source.sha256, "quantized_file": None},
        "board": board.name,
        "memory_map": board.memory_map_dict(),
        "precision": "ari",
        "io": "float",
        "elf": str(ELF_PATH),
        "notes": [note for stage in compiled.stages for note in stage.source.notes],
        "model_info": compiled.info.to_dict(),
        "ari": {
            "stages": [{"model": str(s.model), "file": f"stage{i}.onnx",
                        "precision": s.precision, "prefix": c.info.prefix,
                        "weights_bytes": c.info.weights_bytes,
                        "arena_size": c.info.arena_size,
                        "macs": sum(k["macs"] for k in c.info.kernels),
                        "kernels": len(c.info.kernels),
                        "model_info": c.info.to_dict(),
                        # int8 stages: the kernels computing in float32 (float: null)
                        "float_islands": None if c.float_islands is None else [
                            island.to_dict() for island in c.float_islands]}
                       for i, (s, c) in enumerate(zip(options.stages, compiled.stages,
                                                      strict=True))],
            "float_weights": options.float_weights,
            "margin": options.margin,
            "scores": options.scores,
            "decision_threshold": options.decision_threshold,
            "thresholds": options.thresholds,
            "calibration": options.calibration,
        },
    }


def stage_table(compiled: AriCompiled) -> str:
    """Each stage's weights and arena, and what the stages after the first add."""
    stages = compiled.stages
    lines = ["Stages (cheapest first; all share one arena and the input at offset 0)",
             f"  {'#':>3}  {'stage':<36}{'MACs':>12}{'weights B':>12}{'arena B':>10}"]
    for index, (stage, model) in enumerate(zip(compiled.options.stages, stages, strict=True)):
        macs = sum(k["macs"] for k in model.info.kernels)
        lines.append(f"  {index:>3}  {stage.label:<36}{macs:>12,}"
                     f"{model.info.weights_bytes:>12,}{model.info.arena_size:>10,}")
    extra = sum(m.info.weights_bytes for m in stages[1:])
    arena_extra = compiled.info.arena_size - stages[0].info.arena_size
    lines.append(f"  the later stages add {extra:,} B of weights and {max(arena_extra, 0):,} B "
                 f"of arena over stage 0 alone")
    return "\n".join(lines)
