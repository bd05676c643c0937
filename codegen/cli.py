"""The `ariel` command line: inspect, ops, boards, build, simulate, calibrate, augment, flash."""

from __future__ import annotations

import errno
import json
import math
import os
import shlex
import sys
import traceback
from pathlib import Path

import click
import numpy as np

from codegen import __version__
from codegen.compiler.frontend import parse_input_shapes
from codegen.errors import ArielError, FirmwareError, ToolError
from codegen.files import atomic_file, check_target, write_atomic
from codegen.target.boards import DEFAULT_BOARD, all_boards, get_board
from codegen.terminal import shown, shown_lines


class ArielGroup(click.Group):
    """Turns ariel's errors into one line on stderr and a non-zero exit, never a traceback
    (set ARIEL_DEBUG=1 to see the traceback of an internal error)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ToolError as exc:
            click.echo(f"error: {shown(exc.summary)}:", err=True)
            click.echo(shown_lines(exc.output), err=True)
            sys.exit(1)
        except ArielError as exc:
            click.echo(f"error: {shown(exc)}", err=True)
            sys.exit(1)
        except click.ClickException as exc:  # a bad option's value is quoted in its message
            exc.message = shown(exc.message)
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except OSError as exc:
            if exc.errno not in ENVIRONMENT_ERRNOS:
                raise
            where = f": '{exc.filename}'" if exc.filename else ""
            click.echo(f"error: {shown(exc.strerror)}{shown(where)}", err=True)
            sys.exit(1)
        except Exception as exc:
            if os.environ.get("ARIEL_DEBUG"):
                traceback.print_exc()
            click.echo(f"internal error: {type(exc).__name__}: {shown(exc)} (this is a bug in "
                       "ariel; rerun with ARIEL_DEBUG=1 for details)", err=True)
            sys.exit(70)


# Failures of the machine rather than of ariel (a full disk, a read-only or forbidden folder):
# the user's to fix, so one line like any other error.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                      errno.ENAMETOOLONG, errno.EMFILE, errno.ENFILE, errno.EIO}


class Number(click.ParamType):
    """A number option that must be finite and lie in a range: click's FloatRange lets NaN
    through, and infinity or a huge time limit ends in an overflow deep inside ariel."""

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None,
                 low_open: bool = False):
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value, param, ctx) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number", param, ctx)
        if self.low is not None and (number < self.low or self.low_open and number == self.low):
            self.fail(f"{value} must be {'above' if self.low_open else 'at least'} "
                      f"{self.low:.15g}", param, ctx)
        if self.high is not None and number > self.high:
            self.fail(f"{value} must be at most {self.high:.15g}", param, ctx)
        return number


SECONDS = Number(0, 1e6, low_open=True)  # a time limit: positive, at most ~11 days
FRACTION = Number(0, 1, low_open=True)


PROFILE_HTML = "profile.html"  # the reports ariel keeps in a build folder by default
CALIBRATION_HTML = "calibration.html"
HARVEST_HTML = "harvest.html"


def progress(message: str) -> None:
    click.echo(f"ariel: {shown(message)}", err=True)


def say(text: object, err: bool = False) -> None:
    """A report or a table: names in it are shown as data (codegen/terminal.py)."""
    click.echo(shown_lines(text), err=err)


input_shape_option = click.option(
    "--input-shape", "input_shapes", multiple=True, metavar="NAME=D0,D1,...",
    help="Fix the shape of an input whose dimensions are dynamic (repeatable).")


@click.group(cls=ArielGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ariel")
def main() -> None:
    """ariel: ONNX models to microcontroller firmware, measured before you buy a board."""


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@input_shape_option
def inspect(model: Path, input_shapes: tuple[str, ...]) -> None:
    """Show every node of MODEL: shapes, MACs, parameters, and whether ariel supports it."""
    from codegen.report.inspect import format_inspection
    from codegen.report.inspect import inspect as run_inspect

    say(format_inspection(run_inspect(model, parse_input_shapes(input_shapes))))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def ops(as_json: bool) -> None:
    """List the operators ariel compiles: float and int8 status, what each does not take."""
    from codegen.report.ops import format_ops, operator_rows

    rows = operator_rows()
    if as_json:
        click.echo(_json_text([row.to_dict() for row in rows]))
    else:
        click.echo(format_ops(rows))


@main.command()
@click.option("--check", "check_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Check a board file of your own (the schema of boards/*.toml): one line "
                   "per missing or wrong field.")
def boards(check_file: Path | None) -> None:
    """List the boards ariel can build for, or check a board file (--check)."""
    if check_file is not None:
        _check_board_file(check_file)
        return
    rows = [("board", "core", "FPU", "clock", "flash", "RAM", "emulator")]
    for b in all_boards():
        rows.append((b.name + (" (default)" if b.name == DEFAULT_BOARD else ""), b.core,
                     b.fpu, f"{b.clock_hz / 1e6:g} MHz", _size(b.flash.size),
                     _size(b.ram.size), b.emulator))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _check_board_file(path: Path) -> None:
    from codegen.target.board_schema import check_board_file
    from codegen.target.boards import invalid_board, load_board

    if not path.is_file():
        raise ArielError(f"board file '{path}' not found")
    problems = check_board_file(path)
    if problems:
        raise invalid_board(path, problems)
    board = load_board(path)
    say(f"{path}: a valid board file: {board.name}, {board.core} ({board.fpu}) at "
        f"{board.clock_hz / 1e6:g} MHz, flash {_size(board.chip.flash.size)}, RAM "
        f"{_size(board.chip.ram.size)}; " + (
            f"simulated on {board.emulator} ({board.map_summary})" if board.qemu_machine
            else "not simulated (no [emulator]), linked at its own map"))


def _board(board_name: str | None, board_file: Path | None):
    """The board given by --board NAME or --board-file FILE (the default board if neither)."""
    from codegen.target.boards import load_board

    if board_name is not None and board_file is not None:
        raise ArielError("give --board NAME or --board-file FILE, not both")
    if board_file is not None:
        return load_board(board_file)
    return get_board(board_name or DEFAULT_BOARD)


# How a model is compiled, shared by `build` and `export`.
MODEL_OPTIONS = [
    click.option("--precision", type=click.Choice(["float", "int8", "ari"]), default="float",
                 show_default=True,
                 help="Numeric precision of the generated kernels; ari: int8 first, the float "
                      "model only when the int8 margin is thin (adaptive resolution)."),
    click.option("--stage", "stages", multiple=True, metavar="MODEL.onnx:PRECISION[:OUTPUT]",
                 help="Adaptive builds: the stages, cheapest first (repeat; e.g. a little "
                      "network in int8, then the big one in int8, then in float), each "
                      "answering from OUTPUT (default: the model's first output; an early "
                      "exit, say). Consecutive stages of one model and precision run it "
                      "segment by segment. Replaces MODEL and --precision ari."),
    click.option("--stages", "stage_file", type=click.Path(path_type=Path), metavar="FILE.toml",
                 help="Adaptive builds: the stages (and optionally their thresholds) from a "
                      "config file of [[stage]] tables with model, precision, output and "
                      "threshold, instead of --stage."),
    click.option("--margin", type=click.Choice(["top2", "binary"]), default="top2",
                 show_default=True, help="Adaptive builds: top-1 minus top-2 score, or the "
                 "distance of a single score to --decision-threshold."),
    click.option("--scores", type=click.Choice(["model", "logits", "probabilities"]),
                 default="model", show_default=True,
                 help="Adaptive builds: take the margin on the model's outputs as they are, on "
                      "logits (a final Softmax dropped) or on probabilities (one added)."),
    click.option("--decision-threshold", type=Number(), default=0.0, show_default=True,
                 help="Adaptive builds with --margin binary: the score separating the classes."),
    click.option("--threshold", "thresholds", metavar="T[,T...]",
                 help="Adaptive builds: fixed thresholds, one per stage but the last (default: "
                      "calibrated on --threshold-data)."),
    click.option("--float-weights", type=click.Choice(["fp32", "fp16"]), default="fp32",
                 show_default=True,
                 help="How float models (and the float stages of an adaptive build) store their "
                      "filters and matrices: fp16 halves their flash, each weight widened to "
                      "float as it is loaded."),
    click.option("--calib", "calibration", metavar="DATA",
                 help="int8: calibration inputs (.npy, .npz with x and optional y) or a built-in "
                      "data set (digits, toycar). With an already quantized model they only "
                      "inform kernel choices (dense layers that skip their row's zeros)."),
    click.option("--calib-method", type=click.Choice(["minmax", "entropy", "percentile"]),
                 default="minmax", show_default=True, help="int8: how ranges are calibrated."),
    click.option("--name", help="C name prefix for the model (default: from the file name)."),
    input_shape_option,
]


# build and export: the kernels' time the same on every input (Options.fixed_timing).
FIXED_TIMING = click.option(
    "--fixed-timing", is_flag=True,
    help="int8: no kernel whose time depends on the input's values (dense layers that skip "
         "their row's zeros), so that every inference takes the same time (intermittent "
         "builds always do).")


def model_options(command):
    for option in reversed(MODEL_OPTIONS):
        command = option(command)
    return command


def capacitor_options(command):
    """The capacitor of the harvesting model (codegen/run/harvest.py): `simulate` runs on it,
    `build --power intermittent` sizes its checkpoints for the on-period it gives."""
    for option in reversed([
            click.option("--capacitance", type=Number(0, 1e9, low_open=True), default=100.0,
                         show_default=True, metavar="UF",
                         help="With harvesting: the capacitor, in uF."),
            click.option("--turn-on", type=Number(0, 100, low_open=True), default=3.3,
                         show_default=True, metavar="V",
                         help="With harvesting: the voltage the board switches on at."),
            click.option("--brown-out", type=Number(0, 100), default=1.8, show_default=True,
                         metavar="V", help="With harvesting: the voltage the board stops at.")]):
        command = option(command)
    return command


board_file_option = click.option(
    "--board-file", type=click.Path(path_type=Path), metavar="FILE.toml",
    help="Your own board, described in a TOML file with the schema of boards/*.toml (check "
         "it with `ariel boards --check FILE`).")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n // 1024} KiB"


@main.command()
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--board", "board_name", help=f"Target board (see `ariel boards`; default "
              f"{DEFAULT_BOARD}).")
@board_file_option
@click.option("-o", "--output", "outdir", required=True, type=click.Path(path_type=Path),
              help="Folder for the generated project and firmware.")
@model_options
@click.option("--threshold-data", metavar="DATA",
              help="Adaptive builds: held-out data to calibrate the thresholds on (default: "
                   "--calib).")
@click.option("--target-agreement", type=FRACTION,
              help="Adaptive builds: the agreement with the last stage the thresholds must "
                   "reach on the held-out data (default: every input).")
@click.option("--io", type=click.Choice(["float", "int8", "semihosting", "uart"]), multiple=True,
              help="What the firmware reads and writes (repeatable, e.g. --io int8 --io uart). "
                   "int8 builds: float tensors (quantized inside, the default) or the int8 "
                   "tensors themselves. And how it talks: semihosting with the emulator (the "
                   "default) or uart, for the real board: a console on the board's UART, "
                   "clocks set up, the chip's own memory map, a test input in flash.")
@click.option("--inputs", "test_inputs", type=click.Path(path_type=Path),
              help="--io uart: X.npy/.npz whose first sample is built into the firmware as "
                   "its test input (default: zeros).")
@click.option("--weights-in-ram", is_flag=True,
              help="Place the weights in RAM (copied from flash at reset): each is read "
                   "without the flash's wait states, at the cost of their size in RAM.")
@FIXED_TIMING
@click.option("--tune", is_flag=True,
              help="int8: where a layer has a choice of kernels (so far: whether a dense "
                   "layer skips its row's zero inputs), measure both in the emulator on the "
                   "calibration inputs and keep the faster, instead of ariel's cost model; "
                   "the measurements are cached by layer signature ($ARIEL_TUNE_CACHE, by "
                   "default ~/.cache/ariel/tune.json).")
@click.option("--show-plan", is_flag=True, help="Print the arena plan as a timeline.")
@click.option("--power", type=click.Choice(["continuous", "intermittent"]), default="continuous",
              show_default=True,
              help="intermittent: the firmware keeps its progress in the board's non-volatile "
                   "memory ([nvm]) and resumes after a power cut with the same result.")
@click.option("--checkpoints", "checkpoint_strategy",
              type=click.Choice(["live", "arena", "restart"]), default="live", show_default=True,
              help="--power intermittent: what a checkpoint saves: the live activations (live), "
                   "or, as baselines, the whole arena after every layer (arena) or nothing, "
                   "an inference cut short starting again (restart).")
@click.option("--on-period-cycles", type=click.IntRange(min=1), metavar="N",
              help="--power intermittent: the shortest stretch the board runs between two power "
                   "cuts, in cycles; no unit of work between checkpoints is longer.")
@click.option("--harvest-power", "build_harvest_power", type=Number(0, 1e6, low_open=True),
              metavar="MW",
              help="--power intermittent: the weakest harvested power the device sees, in mW; "
                   "with the capacitor (--capacitance, --turn-on, --brown-out) and the board's "
                   "run power it gives the on-period (instead of --on-period-cycles).")
@capacitor_options
@click.option("--inferences-per-hour", type=Number(0, low_open=True), metavar="R",
              help="--power intermittent: the rate the device runs at, for the NVM endurance "
                   "check (a warning if it wears out within a year).")
@click.option("--force", is_flag=True,
              help="Build into OUTDIR though it is not an ariel build, or though files ariel "
                   "wrote there were changed since: ariel's files are replaced, every other "
                   "file is kept (and one where the build writes its own stops it).")
def build(model: Path | None, board_name: str | None, board_file: Path | None, outdir: Path,
          precision: str,
          stages: tuple[str, ...], stage_file: Path | None, margin: str, scores: str,
          decision_threshold: float,
          thresholds: str | None, threshold_data: str | None, target_agreement: float | None,
          float_weights: str, calibration: str | None, calib_method: str, io: tuple[str, ...],
          test_inputs: Path | None, name: str | None, input_shapes: tuple[str, ...],
          weights_in_ram: bool, fixed_timing: bool, tune: bool, show_plan: bool, power: str,
          checkpoint_strategy: str,
          on_period_cycles: int | None, build_harvest_power: float | None,
          capacitance: float, turn_on: float, brown_out: float,
          inferences_per_hour: float | None, force: bool) -> None:
    """Compile MODEL to C and build firmware for a board into OUTDIR."""
    from codegen.build import build as run_build
    from codegen.compiler.compile import Options

    board = _board(board_name, board_file)
    ctx = click.get_current_context()
    _refuse_unused_build_options(ctx, precision, stages, stage_file, margin, thresholds, io)
    if power != "intermittent":
        refuse_unused(ctx, "without --power intermittent", "checkpoint_strategy",
                      "on_period_cycles", "build_harvest_power", "inferences_per_hour")
    if build_harvest_power is None:
        refuse_unused(ctx, "without --harvest-power (the capacitor gives the on-period with "
                      "the harvested power)", "capacitance", "turn_on", "brown_out")
    elif on_period_cycles is not None:
        raise ArielError("--on-period-cycles and --harvest-power each give the on-period; "
                         "give one")
    elif precision == "ari" or stages or stage_file:
        raise ArielError("--power intermittent builds one model; an adaptive build (--precision "
                         "ari, --stage) cannot keep checkpoints yet")
    io, uart = _io_modes(io, test_inputs)
    if fixed_timing or power == "intermittent":
        refuse_unused(ctx, "with --fixed-timing or --power intermittent (every dense layer "
                      "reads every word: nothing to choose)", "tune")
    if precision == "ari" or stages or stage_file:
        refuse_unused(ctx, "in an adaptive build (--precision ari, --stage)", "weights_in_ram",
                      "fixed_timing", "tune")
        _build_ari(model, board, outdir, stages, stage_file, margin, scores,
                   decision_threshold,
                   thresholds, threshold_data or calibration, target_agreement, calibration,
                   parse_input_shapes(input_shapes), float_weights, uart, force)
        return
    if model is None:
        raise ArielError("give the MODEL to build (or --stage for an adaptive build)")
    options = Options(precision, calibration, calib_method, io,
                      parse_input_shapes(input_shapes), name, float_weights=float_weights,
                      weights_in_ram=weights_in_ram, fixed_timing=fixed_timing,
                      power=_power_options(board, power, checkpoint_strategy, on_period_cycles,
                                           inferences_per_hour, build_harvest_power,
                                           (capacitance, turn_on, brown_out)))
    tuned = []
    if tune:
        from codegen.tune import tune as measure_choices

        options, tuned = measure_choices(model, board, options, progress)
    result = run_build(model, board, outdir, options, progress, uart, force)
    for note in [*result.compiled.source.notes, *tuned]:
        progress(f"note: {note}")
    if options.power is not None:
        _say_checkpoints(result.compiled.checkpoints, options.power)
    if show_plan:
        say(result.compiled.plan.timeline())
    say(result.report)
    say(f"firmware: {outdir / 'build' / 'firmware.elf'} (rebuild with "
        f"`make -C {shlex.quote(str(outdir))}`)")


def _power_options(board, power: str, strategy: str, on_period_cycles: int | None,
                   inferences_per_hour: float | None, harvest_mw: float | None,
                   capacitor: tuple[float, float, float]):
    """`--power intermittent`'s options; the on-period given, or the harvesting model's."""
    from codegen.compiler.checkpoint import PowerOptions

    if power != "intermittent":
        return None
    nvm = board.for_intermittent().nvm  # refuses a board without [nvm]
    source = ""
    if harvest_mw is not None:
        on_period_cycles = _harvested_on_period(board, harvest_mw, *capacitor)
        source = f"the on-period of {on_period_cycles or 0:,} cycles that --harvest-power gives"
    return PowerOptions(nvm, board.clock_hz, strategy, on_period_cycles, inferences_per_hour,
                        board.name, source)


def _harvested_on_period(board, harvest_mw: float | None, capacitance: float, turn_on: float,
                         brown_out: float) -> int | None:
    """The on-period the harvesting model gives a constant harvest (None: no --harvest-power,
    or a harvest that covers the run power, which never cuts it)."""
    from codegen.run.harvest import Capacitor, Load, on_period_cycles

    if harvest_mw is None:
        return None
    run_w = board.power.power_w(board.clock_hz)
    if run_w is None:
        raise ArielError(f"--harvest-power needs the board's run power, and board {board.name} "
                         "gives none ([power]); give --on-period-cycles instead")
    capacitor = Capacitor(capacitance * 1e-6, turn_on, brown_out)
    cycles = on_period_cycles(capacitor, harvest_mw * 1e-3, Load(run_w, board.clock_hz, 1.0))
    if math.isinf(cycles):
        progress(f"note: {harvest_mw:g} mW covers {board.name}'s run power "
                 f"({run_w * 1e3:g} mW): the power is never cut, a commit follows every layer")
        return None
    progress(f"on-period from the harvesting model: {int(cycles):,} cycles "
             f"({capacitance:g} uF from {turn_on:g} V to {brown_out:g} V, {harvest_mw:g} mW "
             f"harvested against {run_w * 1e3:g} mW run)")
    return int(cycles)


def _say_checkpoints(plan, power) -> None:
    """An intermittent build's checkpoints in two lines, and the endurance warning."""
    from codegen.compiler.checkpoint import endurance_warning, nvm_cost

    cost = nvm_cost(plan, power)
    say(f"checkpoints ({plan.strategy}): {cost.commits} commits per inference in "
        f"{power.nvm.describe()}, {plan.nvm_bytes:,} B used; per inference with continuous "
        f"power {cost.nbytes:,} B written in {cost.writes} writes"
        + (f", {cost.pages_erased} pages erased" if power.nvm.erases else "")
        + f", {cost.seconds * 1e3:.3g} ms of NVM time ({cost.cycles:,} cycles)")
    if plan.bands:
        bands = sum(len(edges) - 1 for edges in plan.bands.values())
        say(f"  {len(plan.bands)} layer(s) longer than the on-period run in {bands} bands of "
            "output rows, with a commit between two bands")
    warning = endurance_warning(cost, power)
    if warning:
        say(warning, err=True)


def _given(ctx: click.Context, *names: str) -> list[str]:
    """The options among `names` (parameter names) that the user gave, as they are spelled."""
    from click.core import ParameterSource

    return [param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0]
            for param in ctx.command.params if param.name in names
            and ctx.get_parameter_source(param.name) not in (None, ParameterSource.DEFAULT)]


def refuse_unused(ctx: click.Context, why: str, *names: str) -> None:
    """Refuse options given for a run that would not use them: ignored in silence, an option
    given by mistake (--calib on a float build, --html without --profile) looks as if it
    had been applied."""
    given = _given(ctx, *names)
    if given:
        raise ArielError(f"{', '.join(given)} {'has' if len(given) == 1 else 'have'} no effect "
                         f"{why}; drop {'it' if len(given) == 1 else 'them'}")


def _refuse_unused_build_options(ctx: click.Context, precision: str, stages, stage_file,
                                 margin: str, thresholds: str | None,
                                 io: tuple[str, ...]) -> None:
    if precision == "ari" or stages or stage_file:
        refuse_unused(ctx, "on an adaptive build (each stage is compiled by its own rules)",
                      "name", "show_plan", "calib_method")
        if "int8" in io:
            raise ArielError("--io int8 has no effect on an adaptive build, whose stages read "
                             "float inputs; drop it")
        if stages or stage_file:
            refuse_unused(ctx, "with --stage or --stages, which give each stage its "
                          "precision", "precision")
        if margin != "binary":
            refuse_unused(ctx, "without --margin binary", "decision_threshold")
        if thresholds is not None:
            refuse_unused(ctx, "with fixed thresholds (--threshold): nothing is calibrated",
                          "threshold_data", "target_agreement")
        return
    refuse_unused(ctx, "without --precision ari or --stage (an adaptive build's options)",
                  "margin", "scores", "decision_threshold", "thresholds", "threshold_data",
                  "target_agreement")
    if precision == "float":
        refuse_unused(ctx, "on a float build (calibration is for --precision int8)", "calibration",
                      "calib_method")
        refuse_unused(ctx, "on a float build (its kernels' time never depends on the values)",
                      "fixed_timing")
        refuse_unused(ctx, "on a float build (its choices of kernels are not measured yet)",
                      "tune")


def _io_modes(choices: tuple[str, ...], test_inputs: Path | None):
    """--io's values split into the tensor type (float/int8) and the console (semihosting
    or uart: UartOptions)."""
    from codegen.devkit.uart import UartOptions

    tensors = [c for c in choices if c in ("float", "int8")]
    consoles = [c for c in choices if c in ("semihosting", "uart")]
    for kind, given in (("tensor type (float, int8)", tensors),
                        ("console (semihosting, uart)", consoles)):
        if len(set(given)) > 1:
            raise ArielError(f"--io gives two of the same kind, {' and '.join(given)}: choose "
                             f"one {kind}")
    uart = UartOptions(test_inputs) if consoles[:1] == ["uart"] else None
    if test_inputs is not None and uart is None:
        raise ArielError("--inputs builds a test input into a --io uart build; the emulator "
                         "takes its inputs at run time (`ariel simulate OUTDIR --inputs X.npy`)")
    return (tensors[0] if tensors else "float"), uart


@main.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--board-file", type=click.Path(path_type=Path), metavar="FILE.toml",
              help="Builds for your own board: its file (by default the copy the build "
                   "keeps, board.toml).")
@click.option("--inputs", "inputs_path", type=click.Path(path_type=Path),
              help="X.npy with N inputs (N, *input shape), or .npz keyed by input name "
                   "(needed but for --io uart builds, which carry their own).")
@click.option("--emulator", type=click.Choice(["qemu", "renode"]), default="qemu",
              show_default=True,
              help="renode: run a --io uart build's Robot test with renode-test (with "
                   "--profile: count its instructions per layer in Renode and in QEMU).")
@click.option("--outputs", "outputs_path", type=click.Path(path_type=Path),
              help="Write the outputs here: .npy (N, *output shape), or .npz by output name.")
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Write a machine-readable report here.")
@click.option("--compare", is_flag=True,
              help="Also run the ONNX model in onnxruntime and report the largest difference.")
@click.option("--timeout", type=SECONDS, default=300.0, show_default=True,
              help="Seconds before a firmware run is stopped as hung.")
@click.option("--profile", "profile_run", is_flag=True,
              help="Count instructions per layer (exact) and estimate cycles, time and energy "
                   "on the board; --json then holds the profile, and an HTML report is "
                   "written (see --html).")
@click.option("--html", "html_path", type=click.Path(path_type=Path),
              help="With --profile: where to write the HTML report (default: "
                   "OUTDIR/profile.html).")
@click.option("--power-cuts", type=click.IntRange(min=1), metavar="N",
              help="Cut the power N times at random instructions within the length of an "
                   "uninterrupted run (in the unicorn machine: RAM lost, NVM kept), restart "
                   "until the firmware finishes, and compare its outputs with an "
                   "uninterrupted run's.")
@click.option("--cut-at", metavar="I1,I2,...",
              help="Cut the power after these numbers of instructions, counted from the first "
                   "power-up.")
@click.option("--cut-every", type=click.IntRange(min=1), metavar="N",
              help="Cut the power after every N instructions (each on-period N long).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="With power cuts: the seed of the random cuts and of the RAM's garbage.")
@click.option("--harvest", "harvest_trace", type=click.Path(path_type=Path),
              metavar="TRACE.csv",
              help="Run on harvested energy: a CSV of time_s,power_w rows (repeated), into a "
                   "capacitor that switches the board on and off; the power is cut where the "
                   "capacitor runs out. Writes a plot (see --html).")
@click.option("--harvest-power", type=Number(0, 1e6), metavar="MW",
              help="Run on a constant harvested power, in mW (instead of --harvest).")
@capacitor_options
@click.option("--sleep-power", type=Number(0, 1e6), default=0.0, show_default=True,
              metavar="MW", help="With harvesting: what the board draws while the capacitor "
                                 "charges, in mW.")
@click.option("--cycles-per-instruction", type=Number(0, 1000, low_open=True), metavar="X",
              help="With harvesting: the core's average (default: from the board's cycle "
                   "model on a profiling run of the build in QEMU).")
def simulate(outdir: Path, board_file: Path | None, inputs_path: Path | None, emulator: str,
             outputs_path: Path | None, json_path: Path | None, compare: bool, timeout: float,
             profile_run: bool, html_path: Path | None, power_cuts: int | None,
             cut_at: str | None, cut_every: int | None, seed: int,
             harvest_trace: Path | None, harvest_power: float | None, capacitance: float,
             turn_on: float, brown_out: float, sleep_power: float,
             cycles_per_instruction: float | None) -> None:
    """Run the firmware in OUTDIR in QEMU on each input and collect its outputs."""
    from codegen.report.simulate import compare_with_onnxruntime, summary_json, summary_text
    from codegen.run.simulate import load_inputs, open_build
    from codegen.run.simulate import simulate as run_simulation

    build_folder = open_build(outdir, board_file)
    ctx = click.get_current_context()
    harvest_options = ("capacitance", "turn_on", "brown_out", "sleep_power",
                       "cycles_per_instruction")
    if _given(ctx, "harvest_trace", "harvest_power"):
        _simulate_harvested(ctx, build_folder, inputs_path, outputs_path, json_path, html_path,
                            harvest_trace, harvest_power, capacitance, turn_on, brown_out,
                            sleep_power, cycles_per_instruction, seed, timeout)
        return
    refuse_unused(ctx, "without harvesting (--harvest or --harvest-power)", *harvest_options)
    if _given(ctx, "power_cuts", "cut_at", "cut_every"):
        _simulate_with_cuts(ctx, build_folder, inputs_path, outputs_path, json_path,
                            power_cuts, cut_at, cut_every, seed)
        return
    refuse_unused(ctx, "without power cuts (--power-cuts, --cut-at, --cut-every) or "
                  "harvesting", "seed")
    if not profile_run:
        refuse_unused(ctx, "without --profile (it names the profile's HTML report)", "html_path")
    uart_run = "console" in build_folder.metadata or emulator == "renode"
    if uart_run:
        refuse_unused(ctx, "on a --io uart build or in Renode, where the firmware runs its "
                      "built-in test input and checks its own outputs",
                      "inputs_path", "outputs_path", "compare",
                      *(() if profile_run else ("json_path",)))
    elif profile_run:
        refuse_unused(ctx, "with --profile, which counts instructions (run without it for "
                      "outputs and a comparison)", "outputs_path", "compare")
    if profile_run and emulator == "renode":
        html_path = html_path or outdir / PROFILE_HTML
        _check_targets(build_folder, None, {"--json": json_path, "--html": html_path},
                       PROFILE_HTML)
        _profile_in_renode(build_folder, timeout, json_path, html_path)
        return
    if profile_run and "console" in build_folder.metadata:
        raise ArielError(f"'{outdir}' is a --io uart build: profile it with --emulator renode "
                         "(Renode counts the UART build, QEMU the same code beside it), or "
                         "profile a build without --io uart")
    if "console" in build_folder.metadata or emulator == "renode":
        from codegen.devkit.uart_run import simulate_uart

        for line in simulate_uart(build_folder, emulator, timeout, progress):
            say(line)
        return
    if inputs_path is None:
        raise ArielError("give the inputs to run on: --inputs X.npy")
    info = build_folder.info
    if outputs_path is not None and len(info.outputs) > 1 and outputs_path.suffix != ".npz":
        raise ArielError(f"the model has {len(info.outputs)} outputs; write them to an .npz")
    html_path = (html_path or outdir / PROFILE_HTML) if profile_run else None
    _check_targets(build_folder, inputs_path, {"--outputs": outputs_path, "--json": json_path,
                                               "--html": html_path}, PROFILE_HTML)
    inputs = load_inputs(inputs_path, info)
    if profile_run:
        _profile(build_folder, inputs, timeout, json_path, html_path)
        return
    progress(f"running {len(inputs[0])} inference(s) on {build_folder.board.name} "
             f"({build_folder.board.emulator})")
    result = run_simulation(build_folder, inputs, timeout)
    comparison = compare_with_onnxruntime(build_folder, inputs, result) if compare else None
    say(summary_text(build_folder, result, comparison))
    if outputs_path is not None:
        _save_outputs(outputs_path, info, result.outputs)
    if json_path is not None:
        write_atomic(json_path, _json_text(summary_json(build_folder, result, comparison)))


def _power_inputs(ctx, build_folder, inputs_path: Path | None, outputs_path: Path | None,
                  targets: dict[str, Path | None], html_name: str):
    """The inputs of a power-cut or harvesting run, its report files checked."""
    from codegen.run.simulate import load_inputs

    if "console" in build_folder.metadata:
        raise ArielError(f"'{build_folder.folder}' is a --io uart build; power cuts run a "
                         "semihosting build (one without --io uart)")
    if inputs_path is None:
        raise ArielError("give the inputs to run on: --inputs X.npy")
    info = build_folder.info
    if outputs_path is not None and len(info.outputs) > 1 and outputs_path.suffix != ".npz":
        raise ArielError(f"the model has {len(info.outputs)} outputs; write them to an .npz")
    _check_targets(build_folder, inputs_path, {"--outputs": outputs_path, **targets}, html_name)
    return load_inputs(inputs_path, info)


def _simulate_harvested(ctx, build_folder, inputs_path, outputs_path, json_path, html_path,
                        harvest_trace, harvest_power, capacitance, turn_on, brown_out,
                        sleep_power, cycles_per_instruction, seed, timeout) -> None:
    from codegen.report.power import harvest_html, harvest_json, harvest_summary
    from codegen.run.harvest import Capacitor, Harvest
    from codegen.run.harvested import load_for, run_harvested
    from codegen.run.power_cuts import nvm_region, run_uninterrupted

    given = _given(ctx, "harvest_trace", "harvest_power", "power_cuts", "cut_at", "cut_every")
    if len(given) > 1:
        raise ArielError(f"{' and '.join(given)} each choose when the power is cut; give one")
    refuse_unused(ctx, "with harvesting, which runs in the unicorn machine and compares with "
                  "an uninterrupted run there", "emulator", "compare", "profile_run")
    capacitor = Capacitor(capacitance * 1e-6, turn_on, brown_out)
    harvest = Harvest.from_csv(harvest_trace) if harvest_trace is not None else \
        Harvest.constant(harvest_power * 1e-3)
    html_path = html_path or build_folder.folder / HARVEST_HTML
    inputs = _power_inputs(ctx, build_folder, inputs_path, outputs_path,
                           {"--json": json_path, "--html": html_path}, HARVEST_HTML)
    if cycles_per_instruction is None:
        from codegen.run.profiling import run_profile

        progress("profiling the build in QEMU for its cycles per instruction")
        profile = run_profile(build_folder, inputs, timeout)
        if profile.total_cycles is None:
            raise ArielError(f"board {build_folder.board.name}'s core has no cycle model; give "
                             "--cycles-per-instruction")
        cycles_per_instruction = profile.total_cycles / profile.total_instructions
        cpi_source = "the core's cycle model on this build"
    else:
        cpi_source = "given"
    load = load_for(build_folder, cycles_per_instruction, sleep_power * 1e-3)
    progress(f"running {len(inputs[0])} inference(s) on {build_folder.board.name} without "
             "power cuts (unicorn machine)")
    reference = run_uninterrupted(build_folder, inputs, nvm_region(build_folder), seed)
    progress(f"running again on {harvest.description}")
    run = run_harvested(build_folder, inputs, harvest, capacitor, load, seed, reference)
    summary = harvest_summary(run, build_folder.board.name, cpi_source)
    say(summary)
    _write_report(build_folder, html_path, harvest_html(
        run, f"{build_folder.metadata['model']['file']} on {build_folder.board.name}", summary))
    progress(f"harvest plot: {html_path}")
    if json_path is not None:
        write_atomic(json_path, _json_text(harvest_json(run)))
    if not run.completed:
        raise FirmwareError(f"the firmware cannot finish on this harvest: {run.stuck}")
    if not run.equal:
        raise FirmwareError("on harvested power the firmware's outputs differ from an "
                            "uninterrupted run's: it is not safe to run intermittently")
    if outputs_path is not None:
        _save_outputs(outputs_path, build_folder.info, run.outputs)


def _simulate_with_cuts(ctx, build_folder, inputs_path: Path | None,
                        outputs_path: Path | None, json_path: Path | None,
                        power_cuts: int | None, cut_at: str | None, cut_every: int | None,
                        seed: int) -> None:
    from codegen.report.power import cut_json, cut_summary
    from codegen.run.power_cuts import (
        CutEvery,
        CutsAt,
        nvm_region,
        random_cuts,
        run_uninterrupted,
        run_with_cuts,
    )
    given = _given(ctx, "power_cuts", "cut_at", "cut_every")
    if len(given) > 1:
        raise ArielError(f"{' and '.join(given)} each choose where the power is cut; give one")
    refuse_unused(ctx, "with power cuts, which run in the unicorn machine and compare with an "
                  "uninterrupted run there", "emulator", "compare", "profile_run", "html_path",
                  "timeout")
    inputs = _power_inputs(ctx, build_folder, inputs_path, outputs_path, {"--json": json_path},
                           PROFILE_HTML)
    info = build_folder.info
    progress(f"running {len(inputs[0])} inference(s) on {build_folder.board.name} without "
             "power cuts (unicorn machine)")
    reference = run_uninterrupted(build_folder, inputs, nvm_region(build_folder), seed)
    if cut_every is not None:
        schedule = CutEvery(cut_every)
    elif cut_at is not None:
        try:
            positions = [int(part.replace("_", "")) for part in cut_at.split(",")]
        except ValueError:
            raise ArielError(f"--cut-at takes instruction counts separated by commas, got "
                             f"{cut_at!r}") from None
        schedule = CutsAt(positions)
    else:
        schedule = random_cuts(power_cuts, reference.instructions, seed)
    progress(f"running again with {schedule.description}")
    run = run_with_cuts(build_folder, inputs, schedule, seed, reference)
    say(cut_summary(run, build_folder.board.name))
    if json_path is not None:
        write_atomic(json_path, _json_text(cut_json(run)))
    if not run.completed:
        raise FirmwareError(f"the firmware cannot finish under these power cuts: {run.stuck}; "
                            "an intermittent build (`ariel build --power intermittent`) keeps "
                            "its progress in the board's NVM")
    if not run.equal:
        raise FirmwareError("with power cuts the firmware's outputs differ from an "
                            "uninterrupted run's: it is not safe to run intermittently")
    if outputs_path is not None:
        _save_outputs(outputs_path, info, run.outputs)


def _profile(build_folder, inputs, timeout: float, json_path: Path | None,
             html_path: Path) -> None:
    from codegen.report.profile import format_html, format_table
    from codegen.run.profiling import run_profile

    progress(f"profiling {len(inputs[0])} inference(s) on {build_folder.board.name} "
             f"({build_folder.board.emulator}, instruction counting)")
    report = run_profile(build_folder, inputs, timeout)
    say(format_table(report))
    _write_report(build_folder, html_path, format_html(report))
    progress(f"HTML report: {html_path}")
    if json_path is not None:
        write_atomic(json_path, _json_text(report.to_dict()))


def _profile_in_renode(build_folder, timeout: float, json_path: Path | None,
                       html_path: Path) -> None:
    from codegen.devkit.renode import require_platform
    from codegen.devkit.renode_profile import profile_uart_build
    from codegen.devkit.uart_run import require_uart_build
    from codegen.report.profile import format_comparison, format_html

    require_uart_build(build_folder)
    require_platform(build_folder.board)
    result = profile_uart_build(build_folder, timeout, progress)
    say(format_comparison(result.renode, result.qemu, result.differences,
                          result.firmware_cycles))
    _write_report(build_folder, html_path, format_html(result.renode))
    progress(f"HTML report: {html_path}")
    if json_path is not None:
        write_atomic(json_path, _json_text({"renode": result.renode.to_dict(),
                                            "qemu": result.qemu.to_dict(),
                                            "differences": result.differences,
                                            "firmware_cycles": result.firmware_cycles}))


def _build_ari(model: Path | None, board, outdir: Path, stages: tuple[str, ...],
               stage_file: Path | None, margin: str,
               scores: str, decision_threshold: float, thresholds: str | None,
               threshold_data: str | None, target_agreement: float | None,
               calibration: str | None, input_shapes: dict, float_weights: str,
               uart=None, force: bool = False) -> None:
    from codegen.ari.build import build_ari

    options = _ari_options(model, stages, stage_file, margin, scores, decision_threshold,
                           thresholds, calibration, input_shapes, float_weights)
    if options.thresholds is None and threshold_data is None and uart is None:
        raise ArielError("give --threshold, or data to calibrate thresholds on "
                         "(--threshold-data)")
    result = build_ari(options, board, outdir, progress, uart, force)
    say(result.report)
    if options.thresholds is None:
        _calibrate(outdir, threshold_data, target_agreement, None, 600.0, None, None)
    say(f"firmware: {outdir / 'build' / 'firmware.elf'} (rebuild with "
        f"`make -C {shlex.quote(str(outdir))}`)")


def _head_sizes(text: str) -> tuple[int, ...]:
    """--hidden H[,H...]: distinct whole numbers from 0 to 4096."""
    try:
        sizes = tuple(dict.fromkeys(int(part) for part in text.split(",")))
    except ValueError:
        sizes = ()
    if not sizes or any(not 0 <= size <= 4096 for size in sizes):
        raise ArielError(f"--hidden '{text}': give head sizes as whole numbers from 0 to 4096 "
                         "separated by commas (0: a head of one Gemm)")
    return sizes


def _ari_options(model: Path | None, stages: tuple[str, ...], stage_file: Path | None,
                 margin: str, scores: str, decision_threshold: float, thresholds: str | None,
                 calibration: str | None, input_shapes: dict, float_weights: str):
    """An adaptive build's stages and dispatcher settings from the command line."""
    from codegen.ari.spec import (
        AriOptions,
        ari_stages,
        load_stage_file,
        parse_stage,
        parse_thresholds,
    )

    if sum(bool(given) for given in (model, stages, stage_file)) > 1:
        raise ArielError("give one of MODEL with --precision ari, --stage ..., or --stages "
                         "FILE.toml")
    file_thresholds, costs = None, None
    if stage_file is not None:
        loaded = load_stage_file(stage_file)
        stage_list, file_thresholds, costs = loaded.stages, loaded.thresholds, loaded.costs
        if file_thresholds is not None and thresholds is not None:
            raise ArielError(f"thresholds come from both {stage_file} and --threshold: give "
                             "them in one place")
    else:
        stage_list = [parse_stage(s) for s in stages] if stages else \
            ari_stages(model) if model else []
    if len(stage_list) < 2:
        raise ArielError("an adaptive build needs at least two stages (MODEL with --precision "
                         "ari gives int8 then float)")
    if any(s.precision == "int8" for s in stage_list) and calibration is None:
        raise ArielError("the int8 stages need calibration data: --calib DATA")
    return AriOptions(stage_list, calibration, margin, scores, decision_threshold,
                      file_thresholds or parse_thresholds(thresholds, len(stage_list)),
                      float_weights=float_weights, input_shapes=input_shapes, costs=costs)


@main.command()
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--core", type=click.Choice(["cortex-m0plus", "cortex-m4", "cortex-m7",
                                           "cortex-m33"]),
              help="The core to compile for (default: the board's, else cortex-m4).")
@click.option("--fpu", type=click.Choice(["none", "fpv4-sp-d16", "fpv5-sp-d16", "fpv5-d16"]),
              help="Its floating-point unit (default: the board's, else the core's single-"
                   "precision FPU; none on a Cortex-M0+).")
@click.option("--board", "board_name", help="Take the core and FPU from a board (`ariel "
              "boards`).")
@board_file_option
@click.option("--format", "fmt", type=click.Choice(["c", "cmake", "zephyr", "platformio",
                                                    "arduino"]), default="c",
              show_default=True, help="The build-system files around the sources.")
@click.option("-o", "--output", "outdir", required=True, type=click.Path(path_type=Path),
              help="Folder for the library.")
@model_options
@click.option("--io", type=click.Choice(["float", "int8"]), default="float", show_default=True,
              help="int8 models: float tensors (quantized inside) or the int8 tensors "
                   "themselves.")
@click.option("--static-arena", is_flag=True,
              help="The library defines the arena (<model>_arena) instead of taking the "
                   "caller's.")
@FIXED_TIMING
@click.option("--force", is_flag=True,
              help="Export into OUTDIR though it is not ariel's, or though files ariel wrote "
                   "there were changed since: ariel's files are replaced, every other file is "
                   "kept.")
def export(model: Path | None, core: str | None, fpu: str | None, board_name: str | None,
           board_file: Path | None, fmt: str, outdir: Path, precision: str,
           stages: tuple[str, ...], stage_file: Path | None, margin: str, scores: str,
           decision_threshold: float, thresholds: str | None, float_weights: str,
           calibration: str | None, calib_method: str, name: str | None,
           input_shapes: tuple[str, ...], io: str, static_arena: bool, fixed_timing: bool,
           force: bool) -> None:
    """Export MODEL as a C library for your own firmware (sources, one public header and
    the build files of --format) into OUTDIR."""
    from codegen.compiler.compile import Options
    from codegen.export.library import ARENA_ALIGN, export_model, export_target

    _refuse_unused_build_options(click.get_current_context(), precision, stages, stage_file,
                                 margin, thresholds, (io,))
    board = _board(board_name, board_file) if board_name or board_file else None
    target = export_target(core or (board.core if board else "cortex-m4"),
                           fpu or (board.fpu if board and not core else None))
    if precision == "ari" or stages or stage_file:
        refuse_unused(click.get_current_context(), "in an adaptive export (--precision ari, "
                      "--stage)", "fixed_timing")
        library = _export_ari(model, stages, stage_file, margin, scores, decision_threshold,
                              thresholds, calibration, parse_input_shapes(input_shapes),
                              float_weights, board, target, fmt, outdir, force,
                              static_arena)
    else:
        if model is None:
            raise ArielError("give the MODEL to export (or --stage for an adaptive build)")
        from_board = {}
        if board:
            from_board["budget"] = board.budget
            if board.wait_states is not None:
                from_board["flash_wait_states"] = board.wait_states
        options = Options(precision, calibration, calib_method, io,
                          parse_input_shapes(input_shapes), name, float_weights=float_weights,
                          fixed_timing=fixed_timing, **from_board)
        library = export_model(model, options, target, fmt, outdir, force, progress,
                               static_arena)
    info = library.info
    say(f"exported {info.prefix} for {target.core} ({target.fpu}) as {fmt}: "
        f"{library.run}(arena), arena {info.arena_size:,} B aligned to {ARENA_ALIGN}, stack "
        f"{library.stack.bytes:,} B, weights {info.weights_bytes:,} B")
    say(f"public header: {outdir / 'src' / (info.prefix + '_model.h')}")


def _export_ari(model, stages, stage_file, margin, scores, decision_threshold, thresholds,
                calibration, input_shapes, float_weights, board, target, fmt, outdir, force,
                static_arena):
    from codegen.ari.assemble import compile_stages
    from codegen.compiler.compile import current_command
    from codegen.export.library import Exported, export_compiled

    options = _ari_options(model, stages, stage_file, margin, scores, decision_threshold,
                           thresholds, calibration, input_shapes, float_weights)
    if options.thresholds is None:
        raise ArielError("an exported adaptive model needs its thresholds (--threshold, or "
                         "thresholds in the --stages file): calibrate them on an emulator "
                         "build first (`ariel build ... --threshold-data`)")
    progress("compiling " + ", then ".join(s.label for s in options.stages))
    compiled = compile_stages(options, current_command(),
                              *([board.budget] if board else []))
    stage_list = [{"label": s.label, "threshold": t} for s, t in
                  zip(options.stages, [*options.thresholds, None], strict=True)]
    return export_compiled(Exported(compiled.files, compiled.info, compiled.header,
                                    stage_list), target, fmt, outdir, force, progress, "ari",
                           static_arena)


@main.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--data", "data_spec", required=True, metavar="DATA",
              help="Held-out inputs: .npy, .npz with x (and y labels), or a built-in data set.")
@click.option("--target-agreement", type=FRACTION,
              help="Agreement with the last stage to reach (default: every input).")
@click.option("--energy-budget", type=Number(0, low_open=True), metavar="UJ",
              help="Pick the most agreeing threshold within this expected energy per "
                   "inference.")
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Write the curve and the choice here.")
@click.option("--html", "html_path", type=click.Path(path_type=Path),
              help="Where to write the plot (default: OUTDIR/calibration.html).")
@click.option("--timeout", type=SECONDS, default=600.0, show_default=True,
              help="Seconds before a firmware run is stopped as hung.")
def calibrate(outdir: Path, data_spec: str, target_agreement: float | None,
              energy_budget: float | None, json_path: Path | None, html_path: Path | None,
              timeout: float) -> None:
    """Choose an adaptive build's thresholds on held-out data and rebuild its firmware."""
    if energy_budget is not None:
        refuse_unused(click.get_current_context(), "with --energy-budget, which picks the most "
                      "agreeing threshold within it", "target_agreement")
    _calibrate(outdir, data_spec, target_agreement, energy_budget, timeout, json_path,
               html_path)


def _calibrate(outdir: Path, data_spec: str, target_agreement: float | None,
               energy_budget: float | None, timeout: float, json_path: Path | None,
               html_path: Path | None) -> None:
    from codegen.ari.calibrate import calibrate as run_calibration
    from codegen.ari.calibrate import format_html, format_table, to_dict
    from codegen.compiler.quant.calibrate import load_calibration
    from codegen.run.simulate import open_build

    build_folder = open_build(outdir)
    if "ari" not in build_folder.metadata:
        raise ArielError(f"'{outdir}' is not an adaptive build (build it with --precision ari "
                         "or --stage)")
    if "console" in build_folder.metadata:
        raise ArielError(f"'{outdir}' is a --io uart build, which runs on the board, not in "
                         "the emulator: calibrate an emulator build of the same stages and "
                         "build the UART firmware with the thresholds it chose (--threshold)")
    html_path = html_path or outdir / CALIBRATION_HTML
    data_file = Path(data_spec) if Path(data_spec).is_file() else None
    _check_targets(build_folder, data_file, {"--json": json_path, "--html": html_path},
                   CALIBRATION_HTML)
    spec = build_folder.info.inputs[0]
    data = load_calibration(data_spec, [(spec.name, tuple(spec.shape), spec.dtype)])
    progress(f"calibrating thresholds on {data.count} inputs from {data.source} (stage costs "
             "measured in QEMU)")
    if data_spec == build_folder.metadata["ari"].get("calibration"):
        progress("note: these are the inputs the int8 stages were quantized on; thresholds "
                 "calibrated on held-out inputs (--threshold-data, or `ariel calibrate "
                 "OUTDIR --data`) are the honest estimate for unseen ones")
    result = run_calibration(build_folder, data, target_agreement, energy_budget, timeout)
    say(format_table(result))
    _write_report(build_folder, html_path, format_html(result, f"thresholds of {outdir}"))
    progress(f"calibration plot: {html_path}")
    if json_path is not None:
        write_atomic(json_path, _json_text(to_dict(result)))


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", "data_spec", metavar="DATA",
              help="Training inputs for the heads: .npy, .npz with x (and y labels), or a "
                   "built-in data set (digits, toycar).")
@click.option("--heldout", "heldout_spec", metavar="DATA",
              help="Held-out inputs (with labels) to measure the exits on (default: 20% of "
                   "--data, carved out stratified with a fixed seed).")
@click.option("--exits", "exits_spec", default="auto", show_default=True,
              metavar="auto|N1,N2,...",
              help="Where to put exits: auto, or candidate numbers (see --list) and tensor "
                   "names, separated by commas.")
@click.option("--list", "list_only", is_flag=True,
              help="Only list the candidate exit points with the MACs before each.")
@click.option("--pool", type=click.Choice(["auto", "global", "grid"]), default="auto",
              show_default=True, help="Each head's pooling: a mean per channel, or per "
              "channel and grid cell (--grid-cells per spatial axis); auto: per exit, the "
              "cheapest of global, 2 and 4 cells whose loss on a validation part of the "
              "training data is within 5% of the best.")
@click.option("--grid-cells", type=click.IntRange(1, 64), default=2, show_default=True,
              help="--pool grid: cells per spatial axis (2: a 2x2 grid on images).")
@click.option("--hidden", type=click.IntRange(0, 4096), default=0, show_default=True,
              help="Units of a ReLU layer before each head's logits (0: one Gemm).")
@click.option("--fit", type=click.Choice(["labels", "final"]),
              help="What the heads learn: the labels, or the final output's answers "
                   "(default: labels when the data has them).")
@click.option("--final-output", metavar="NAME",
              help="The output that is the final answer (default: the first of shape [1, K]).")
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="EE.onnx",
              help="The augmented model; its exits file goes beside it (EE.exits.json).")
@input_shape_option
def augment(model: Path, data_spec: str | None, heldout_spec: str | None, exits_spec: str,
            list_only: bool, pool: str, grid_cells: int, hidden: int, fit: str | None,
            final_output: str | None, output: Path | None,
            input_shapes: tuple[str, ...]) -> None:
    """Add early exits to MODEL: small heads trained on the backbone's features at cut
    points, as extra outputs ariel_exit1, ariel_exit2, ... (the backbone untouched)."""
    from codegen.ari.augment.heads import HeadShape
    from codegen.ari.augment.pipeline import (
        AugmentRequest,
        analyse,
        check_outputs,
        format_candidates,
        format_result,
        write_augmented,
    )

    shapes = parse_input_shapes(input_shapes)
    if list_only:
        refuse_unused(click.get_current_context(), "with --list, which only lists the "
                      "candidates", "data_spec", "heldout_spec", "exits_spec", "pool",
                      "grid_cells", "hidden", "fit", "final_output", "output")
        say(format_candidates(analyse(model, shapes)))
        return
    if data_spec is None or output is None:
        raise ArielError("give the training data (--data) and the output (-o EE.onnx), or "
                         "--list to see the candidate exits")
    if pool != "grid":
        refuse_unused(click.get_current_context(), "without --pool grid", "grid_cells")
    request = AugmentRequest(model, data_spec, output, heldout_spec, exits_spec,
                             HeadShape(pool, hidden, grid_cells), fit, final_output, shapes)
    check_outputs(request)
    from codegen.ari.augment.pipeline import augment as run_augment

    result = run_augment(request, progress)
    sidecar = write_augmented(result, output)
    say(format_result(result, result.sidecar["macs_total"]))
    outputs = [value.name for value in result.model.graph.output]
    say(f"augmented model: {output} (outputs: {', '.join(outputs)}); exits file: {sidecar}")


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", "data_spec", required=True, metavar="TRAIN",
              help="Training inputs: the exits' heads learn on them and the int8 stages are "
                   "quantized on them (.npy, .npz with x and y, or a built-in data set).")
@click.option("--heldout", "heldout_spec", required=True, metavar="HELD",
              help="Held-out inputs: the thresholds are chosen on every other one (the "
                   "calibration split), the figures reported on the rest.")
@click.option("--board", "board_name", help=f"Target board (see `ariel boards`; default "
              f"{DEFAULT_BOARD}).")
@board_file_option
@click.option("--target-agreement", type=FRACTION, default=0.995, show_default=True,
              help="Agreement with the float model to reach on the calibration split.")
@click.option("--exits", "exits_spec", default="auto", show_default=True,
              metavar="auto|N1,N2,...", help="Where `ariel augment` puts exits (when MODEL "
                                             "has none yet).")
@click.option("--max-stages", type=click.IntRange(2, 8), default=5, show_default=True,
              help="The most stages a configuration may have.")
@click.option("--hidden", "hidden_spec", default="0,64", show_default=True, metavar="H[,H...]",
              help="Head sizes to try: units of a ReLU layer before each head's logits (0: "
                   "one Gemm); the model is augmented once per size.")
@click.option("--precisions", type=click.Choice(["int8,float", "int8", "float"]),
              default="int8,float", show_default=True,
              help="The precisions stages may run at (float alone: early exits without int8).")
@click.option("--little", "littles", multiple=True, type=click.Path(path_type=Path),
              metavar="LITTLE.onnx",
              help="A smaller network trained for the same task and input, which a stage "
                   "list may run first, as a big-little cascade does (repeatable, cheapest "
                   "first; its exits too if an exits file is beside it). Lists still end in "
                   "MODEL.")
@click.option("--timeout", type=SECONDS, default=900.0, show_default=True,
              help="Seconds before a firmware run is stopped as hung.")
@click.option("-o", "--output", "outdir", required=True, type=click.Path(path_type=Path),
              help="Folder for the early-exit model, the chosen stages file and the front.")
@click.option("--force", is_flag=True,
              help="Write into a folder holding other files, or replace an earlier result.")
@input_shape_option
def optimize(model: Path, data_spec: str, heldout_spec: str, board_name: str | None,
             board_file: Path | None, target_agreement: float, exits_spec: str,
             max_stages: int, hidden_spec: str, precisions: str, littles: tuple[Path, ...],
             timeout: float, outdir: Path, force: bool, input_shapes: tuple[str, ...]
             ) -> None:
    """Find the stage list (early exits, precisions, thresholds) with the least expected
    energy that agrees with the float model on the target share of held-out inputs."""
    from codegen.ari.front import write_optimized
    from codegen.ari.optimize import OptimizeRequest

    request = OptimizeRequest(model, data_spec, heldout_spec, _board(board_name, board_file),
                              outdir, target_agreement, exits_spec, max_stages, timeout,
                              parse_input_shapes(input_shapes), tuple(precisions.split(",")),
                              _head_sizes(hidden_spec), little=littles)
    for line in write_optimized(request, force, progress):
        say(line)


@main.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--probe", metavar="ID", help="The debug probe to use: part of its unique ID "
              "(`pyocd list` shows them; default: the first one connected).")
@click.option("--dry-run", is_flag=True,
              help="Check the ELF against the board's memory map and print what would be "
                   "written where, without a probe.")
def flash(outdir: Path, probe: str | None, dry_run: bool) -> None:
    """Write the --io uart firmware in OUTDIR to its dev kit with pyOCD."""
    from codegen.devkit.flash import flash as run_flash
    from codegen.devkit.flash import flash_plan, format_plan, target_status
    from codegen.run.simulate import open_build

    plan = flash_plan(open_build(outdir))
    if dry_run:
        for line in format_plan(plan, target_status(plan.target)):
            say(line)
        return
    run_flash(plan, probe, progress)
    say(f"flashed {plan.size:,} B to {plan.board.name} and reset it; its console is "
        f"{plan.board.console.peripheral} at {plan.board.console.baud} baud on the "
        "probe's virtual COM port")


def _check_targets(build_folder, inputs_path: Path | None, targets: dict[str, Path | None],
                   report_name: str) -> None:
    """Refuse, before any work, files ariel could not write or must not replace: a missing
    folder, a folder, one of the build's own files, the inputs file, or one file named by
    two options. `report_name`: the --html report ariel itself keeps in the build folder."""
    from codegen.target.outdir import is_build_file

    own_report = _resolved(build_folder.folder / report_name)
    given = {option: path for option, path in targets.items() if path is not None}
    seen: dict[Path, str] = {}
    for option, path in given.items():
        check_target(path, option)
        resolved = _resolved(path)
        own = option == "--html" and resolved == own_report
        if not own and is_build_file(build_folder.folder, path):
            raise ArielError(f"{option} '{path}' is among the build's own files, which a "
                             "rebuild replaces; write it elsewhere (a new name at the build "
                             "folder's top level is kept when it is rebuilt)")
        if inputs_path is not None and resolved == _resolved(inputs_path):
            raise ArielError(f"{option} '{path}' is the input data file; write it elsewhere")
        if resolved in seen:
            raise ArielError(f"{seen[resolved]} and {option} name the same file '{path}'")
        seen[resolved] = option


def _resolved(path: Path) -> Path:
    """`path` with its folder resolved (the file itself, even a symlink, is what gets
    replaced)."""
    return Path(path).parent.resolve() / Path(path).name


def _write_report(build_folder, path: Path, text: str) -> None:
    """A report; in the build folder under ariel's own name, listed among the build's
    files (a rebuild then replaces it, as it no longer describes the firmware)."""
    from codegen.target.outdir import rewrite_build_file

    folder = build_folder.folder.resolve()
    if _resolved(path).parent == folder and path.name in (PROFILE_HTML, CALIBRATION_HTML,
                                                          HARVEST_HTML):
        rewrite_build_file(folder, path.name, text)
    else:
        write_atomic(path, text)


def _json_text(data) -> str:
    """JSON for other programs: NaN and infinities, which strict JSON has no words for,
    become null."""
    return json.dumps(_finite(data), indent=2, allow_nan=False) + "\n"


def _finite(data):
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def _save_outputs(path: Path, info, outputs: list[np.ndarray]) -> None:
    with atomic_file(path) as handle:
        if path.suffix == ".npz":
            np.savez(handle, **{o.name: a for o, a in zip(info.outputs, outputs, strict=True)})
        else:
            np.save(handle, outputs[0])


if __name__ == "__main__":
    main()
