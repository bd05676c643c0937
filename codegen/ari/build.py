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
        prefixes = [model.info.prefix for model in self.compiled.models]
        islands = [f"stage {group.first}: {format_float_islands(model.float_islands)}"
                   for group, model in zip(self.compiled.groups, self.compiled.models,
                                           strict=True)
                   if model.float_islands is not None]
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
        float_bytes = sum(model.info.weights_bytes for group, model
                          in zip(compiled.groups, compiled.models, strict=True)
                          if group.precision == "float")
        memory = make_firmware(staging, compiled.info, target,
                               float_weights_hint(options.float_weights, float_bytes))
        described = metadata(compiled, target, command)
        described["ari"]["stage_costs"] = given_costs(options, board, progress)
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
        "notes": [note for model in compiled.models for note in model.source.notes],
        "model_info": compiled.info.to_dict(),
        "ari": {
            "stages": [{"model": str(s.model), "file": f"stage{i}.onnx",
                        "precision": s.precision, "output": s.output,
                        "prefix": c.info.prefix,
                        # which output of the compiled model answers, and the C function
                        # that runs the stage (a segment of it, for early exits)
                        "output_index": compiled.segment(i), "run": compiled.run_function(i),
                        "continues": compiled.continues(i),
                        "weights_bytes": c.info.weights_bytes,
                        "arena_size": c.info.arena_size,
                        "macs": stage_macs(compiled, i),
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


def given_costs(options: AriOptions, board: Board, progress: Callable[[str], None]
                ) -> dict | None:
    """The stage costs the options bring (a stages file's, estimated by `ariel optimize`) as
    ariel.json keeps them, if they were estimated for this board; those for another board
    would be wrong here, so they are dropped with a warning."""
    costs = options.costs
    if costs is None:
        return None
    if len(costs.cycles) != len(options.stages):
        raise ArielError(f"{costs.source} gives costs for {len(costs.cycles)} stages and "
                         f"{len(options.stages)} stages are built: give one per stage")
    if costs.board != board.name:
        progress(f"warning: the stage costs in {costs.source} were estimated for {costs.board}, "
                 f"not {board.name}: left out (`ariel calibrate` measures this build's)")
        return None
    energies = costs.energy_uj or (None,) * len(costs.cycles)
    return {"board": costs.board, "source": costs.source,
            "costs": [{"label": stage.label, "cycles": cycles, "energy_uj": energy}
                      for stage, cycles, energy in zip(options.stages, costs.cycles, energies,
                                                       strict=True)]}


def stage_macs(compiled: AriCompiled, stage: int) -> int:
    """What running stage `stage` adds: its model, or its segment when it continues the
    previous stage's model."""
    return sum(k["macs"] for k in compiled.info.kernels if k["stage"] == stage)


def stage_table(compiled: AriCompiled) -> str:
    """Each stage's MACs (a continuing stage's: its segment's), weights and arena, and what
    the stages after the first add."""
    lines = ["Stages (cheapest first; all share one arena and the input at offset 0)",
             f"  {'#':>3}  {'stage':<36}{'MACs':>12}{'weights B':>12}{'arena B':>10}"]
    for index, (stage, model) in enumerate(zip(compiled.options.stages, compiled.stages,
                                               strict=True)):
        shared = compiled.continues(index)
        weights = "shared" if shared else f"{model.info.weights_bytes:,}"
        arena = "shared" if shared else f"{model.info.arena_size:,}"
        lines.append(f"  {index:>3}  {stage.label:<36}{stage_macs(compiled, index):>12,}"
                     f"{weights:>12}{arena:>10}")
    extra = sum(m.info.weights_bytes for m in compiled.models[1:])
    arena_extra = compiled.info.arena_size - compiled.models[0].info.arena_size
    lines.append(f"  the later stages add {extra:,} B of weights and {max(arena_extra, 0):,} B "
                 f"of arena over stage 0's model alone")
    if any(compiled.continues(i) for i in range(len(compiled.options.stages))):
        lines.append("  a stage marked shared continues the previous stage's run: its MACs are "
                     "its segment's")
    return "\n".join(lines)
