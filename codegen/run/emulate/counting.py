"""Exact instruction counts from QEMU: per segment between the profiling hooks, hence per
layer and per inference, plus the raw data a cycle model needs (translated blocks, their
execution counts and the edges between them, and with a board's flash model what its flash
caches did with every fetch and load from flash), measured by ariel's own TCG plugin
(codegen/run/emulate/plugin/ariel_count.c, which documents the plugin's output format).

The plugin is built with the host's gcc on first use into a cache folder keyed by the hash
of its source, so a changed plugin is rebuilt and an unchanged one is built once."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from elftools.elf.elffile import ELFFile

from codegen.errors import ArielError, FirmwareError, ToolError
from codegen.run.emulate.qemu import QemuRun, check_exit, last_line, qemu_command
from codegen.run.simulate import Build, read_outputs, write_inputs
from codegen.target.boards import Board

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
PLUGIN_FILES = ("ariel_count.c", "qemu_plugin_api.h")
PLUGIN_FLAGS = ("-shared", "-fPIC", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror",
                "-fvisibility=hidden")
BEGIN_HOOK, END_HOOK = "ariel_profile_begin", "ariel_profile_end"
PROFILE_ELF = Path("build") / "firmware-profile.elf"
COUNTS_FILE = "ariel-counts.txt"
DEFAULT_TIMEOUT = 300.0

CLOSERS = {"B": "begin", "E": "end", "X": "exit"}


# ----------------------------------------------------------------------------- the plugin


def plugin_cache_dir() -> Path:
    """$ARIEL_CACHE_DIR, else $XDG_CACHE_HOME/ariel, else ~/.cache/ariel."""
    if os.environ.get("ARIEL_CACHE_DIR"):
        return Path(os.environ["ARIEL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ariel"


def build_plugin(cache_dir: Path | None = None) -> Path:
    """The counting plugin as a shared library, built with the host's gcc if the cache does
    not hold this version of its source yet."""
    digest = hashlib.sha256(" ".join(PLUGIN_FLAGS).encode())
    for name in PLUGIN_FILES:
        digest.update(name.encode() + b"\0" + (PLUGIN_DIR / name).read_bytes())
    folder = Path(cache_dir or plugin_cache_dir()) / "qemu-plugin" / digest.hexdigest()[:16]
    library = folder / "ariel_count.so"
    if library.is_file():
        return library
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ArielError("gcc not found on PATH: counting instructions needs the host's C "
                         "compiler to build ariel's QEMU plugin; install it with "
                         "`sudo apt-get install gcc`")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArielError(f"cannot create the plugin cache folder '{folder}': {exc}; set "
                         "ARIEL_CACHE_DIR to a writable folder") from None
    # Build beside the target and rename: parallel runs never see a half-written library.
    handle, partial = tempfile.mkstemp(dir=folder, suffix=".so.partial")
    os.close(handle)
    result = subprocess.run([gcc, *PLUGIN_FLAGS, "-o", partial,
                             str(PLUGIN_DIR / "ariel_count.c")],
                            capture_output=True, text=True)
    if result.returncode != 0:
        os.unlink(partial)
        raise ToolError("building ariel's QEMU counting plugin with gcc failed",
                        result.stdout + result.stderr)
    os.replace(partial, library)
    return library


def hook_addresses(elf: Path) -> tuple[int, int] | None:
    """Addresses of the first instruction of ariel_profile_begin and ariel_profile_end, or
    None if the ELF has neither (a build without profiling)."""
    with open(elf, "rb") as handle:
        table = ELFFile(handle).get_section_by_name(".symtab")
        found = {}
        if table is not None:
            for name in (BEGIN_HOOK, END_HOOK):
                symbols = table.get_symbol_by_name(name) or []
                if symbols:
                    # Bit 0 of a Thumb function's address says "Thumb", it is not fetched.
                    found[name] = symbols[0]["st_value"] & ~1
    if not found:
        return None
    if len(found) == 1:
        missing = BEGIN_HOOK if BEGIN_HOOK not in found else END_HOOK
        raise ArielError(f"'{elf}' defines one profiling hook but not {missing}")
    return found[BEGIN_HOOK], found[END_HOOK]


# ----------------------------------------------------------------------------- the results


@dataclass(frozen=True)
class Block:
    """A block as QEMU translated it: instructions from `pc` that run from the first to the
    last once entered (barring faults). Not a basic block: QEMU also ends blocks at page
    boundaries and after a length limit, and blocks overlap (a branch into the middle of one
    starts another), so consecutive instructions need the edges between blocks."""

    id: int
    pc: int
    insns: tuple[bytes, ...]  # each instruction's bytes, as in memory (little-endian)

    @property
    def n_insns(self) -> int:
        return len(self.insns)

    @property
    def addresses(self) -> list[int]:
        """The address of each instruction."""
        addresses, address = [], self.pc
        for insn in self.insns:
            addresses.append(address)
            address += len(insn)
        return addresses


@dataclass(frozen=True)
class FlashCounts:
    """What the plugin's flash model counted in one segment (plugin/ariel_count.c, M line):
    instruction lines fetched from flash, those that missed the instruction side's cache and,
    of those, the ones that followed the line fetched before (a prefetch may have read them);
    data loads from flash, their misses, and the distinct data lines they touched."""

    lines: int = 0
    misses: int = 0
    sequential: int = 0
    loads: int = 0
    load_misses: int = 0
    load_lines: int = 0


@dataclass
class Segment:
    """The instructions between two consecutive hook calls (or start or exit)."""

    index: int
    closer: str  # what ended it: "begin", "end" (a hook ran) or "exit"
    instructions: int
    # Where the closing hook's first instruction lay in its block: 0 unless code ran into
    # the hook without a branch, in which case the block's runs stay in this segment.
    offset: int = 0
    executions: dict[int, int] = field(default_factory=dict)  # block id -> runs
    edges: dict[tuple[int | None, int], int] = field(default_factory=dict)  # (from, to) -> n
    flash: FlashCounts | None = None  # when counted with the board's flash model
    # Set by split_inferences: "startup", "layer", "between layers", "between inferences" or
    # "shutdown"; for layers and the gaps inside an inference, which inference and kernel.
    kind: str = ""
    inference: int | None = None
    layer: int | None = None  # the kernel's index, as in ariel.json model_info.kernels


@dataclass
class Counts:
    """Everything one counting run measured."""

    segments: list[Segment]
    total: int
    blocks: dict[int, Block]  # empty unless blocks or edges were asked for
    has_blocks: bool
    has_edges: bool
    has_flash: bool = False
    seconds: float = 0.0  # wall time of the QEMU run
    console: str = ""

    @property
    def instructions_per_second(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0


def parse_counts(text: str) -> Counts:
    """Read the plugin's output file (format in plugin/ariel_count.c)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("ariel-count 1 "):
        raise ArielError("the counting plugin's output has an unknown format "
                         f"(first line {lines[0] if lines else 'missing'!r})")
    header = dict(item.split("=") for item in lines[0].split()[2:])
    segments: list[Segment] = []
    blocks: dict[int, Block] = {}
    total = None
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        try:
            kind = fields[0]
            if kind == "S":
                segments.append(Segment(int(fields[1]), CLOSERS[fields[2]], int(fields[3]),
                                        int(fields[4])))
            elif kind == "C":
                segments[-1].executions[int(fields[1])] = int(fields[2])
            elif kind == "F":
                source = None if fields[1] == "-" else int(fields[1])
                segments[-1].edges[(source, int(fields[2]))] = int(fields[3])
            elif kind == "M":
                segments[-1].flash = FlashCounts(*(int(f) for f in fields[1:7]))
                if len(fields) != 7:
                    raise ValueError("a flash record has six numbers")
            elif kind == "B":
                code = tuple(bytes.fromhex(h) for h in fields[4].split(":")) if len(
                    fields) > 4 else ()
                blocks[int(fields[1])] = Block(int(fields[1]), int(fields[2], 16), code)
                if len(code) != int(fields[3]):
                    raise ValueError("instruction count and code disagree")
            elif kind == "T":
                total = int(fields[1])
            else:
                raise ValueError(f"unknown record {kind!r}")
        except (IndexError, KeyError, ValueError) as exc:
            raise ArielError(f"the counting plugin's output is malformed at line {number} "
                             f"({line!r}): {exc}") from None
    if total is None:
        raise ArielError("the counting plugin's output is incomplete (no total line): QEMU "
                         "stopped before its exit handler ran")
    if sum(s.instructions for s in segments) != total:
        raise ArielError("the counting plugin's segments do not add up to its total")
    return Counts(segments, total, blocks, header.get("blocks") == "1",
                  header.get("edges") == "1", header.get("flash") == "1")


# ----------------------------------------------------------------------------- running


def count_instructions(board: Board, elf: Path, workdir: Path, *,
                       timeout: float = DEFAULT_TIMEOUT, blocks: bool = False,
                       edges: bool = False, flash: bool = False,
                       qemu_args: list[str] | None = None,
                       plugin: Path | None = None) -> Counts:
    """Run `elf` on `board` in QEMU with the counting plugin, in `workdir` (which holds the
    firmware's input.bin and receives its output.bin, as for `ariel simulate`).

    The run is cut into segments at every call of the profiling hooks, if the ELF has them.
    `blocks` adds per-segment execution counts of every translated block, `edges` also
    per-segment counts of block-to-block transitions (several times slower). `flash` adds the
    board's flash model (implies edges): every fetch and load from the flash region as
    linked goes through the board's flash caches (board file [flash_timing]). `qemu_args`
    are appended to QEMU's command line (e.g. ["-icount", "shift=0"])."""
    plugin = plugin or build_plugin()
    options = [f"file={_escape(str(plugin))}", f"out={COUNTS_FILE}",
               f"blocks={'on' if blocks else 'off'}", f"edges={'on' if edges else 'off'}"]
    if flash:
        options += flash_options(board)
    hooks = hook_addresses(elf)
    if hooks is not None:
        options += [f"begin={hooks[0]:#x}", f"end={hooks[1]:#x}"]
    workdir = Path(workdir)
    output = workdir / COUNTS_FILE
    output.unlink(missing_ok=True)
    command = qemu_command(board, Path(elf).absolute(),
                           [*(qemu_args or []), "-plugin", ",".join(options)])
    start = time.monotonic()
    try:
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FirmwareError(
            f"the firmware did not finish within {timeout:g} s in QEMU {board.qemu_machine} "
            "with the counting plugin (stopped); it may hang, or need a longer timeout"
        ) from None
    seconds = time.monotonic() - start
    if "Could not load plugin" in result.stderr:
        said = "; ".join(line.strip() for line in result.stderr.splitlines() if line.strip())
        raise ArielError(f"QEMU refused ariel's counting plugin: {said}. It needs a QEMU with "
                         "TCG plugin support and plugin API version 1 (QEMU 7.2, Debian 12's "
                         "qemu-system-arm)")
    check_exit(board, QemuRun(result.returncode, result.stdout, result.stderr), Path(elf))
    if not output.is_file():
        raise ArielError("the counting plugin wrote no results; QEMU said: "
                         + (last_line(result.stderr) or "nothing"))
    counts = parse_counts(output.read_text())
    counts.seconds, counts.console = seconds, result.stdout
    return counts


def flash_options(board: Board) -> list[str]:
    """The plugin's arguments for `board`'s flash model."""
    caches = getattr(board, "flash_caches", None)
    if caches is None:
        raise ArielError(f"board {board.name} describes no flash caches ([flash_timing] "
                         "instruction_side and data_side): its flash cannot be simulated")
    region = board.flash
    return [f"flash={region.origin:#x}:{region.size:#x}",
            f"icache={caches.instruction.argument}", f"dcache={caches.data.argument}"]


def _escape(value: str) -> str:
    """QEMU's option syntax splits at commas; a doubled comma is a literal one."""
    return value.replace(",", ",,")


# ----------------------------------------------------------------------------- layers


@dataclass
class LayerCount:
    kernel: dict  # the kernel's entry in ariel.json model_info.kernels (index, name, op, fn)
    instructions: int
    segment: Segment


@dataclass
class InferenceCount:
    """One inference: its kernels, and the run function's own instructions between them
    (the hook calls and kernel arguments), from the first hook call to the last."""

    index: int
    layers: list[LayerCount]
    between_layers: int

    @property
    def total(self) -> int:
        return sum(layer.instructions for layer in self.layers) + self.between_layers


@dataclass
class Split:
    """A run of N inferences, split by the marker order into what each part executed."""

    inferences: list[InferenceCount]
    startup: int  # reset until the first hook call, reading the first input included
    between_inferences: list[int]  # writing one inference's outputs, reading the next inputs
    shutdown: int  # after the last kernel: writing the outputs, closing files, exit


def split_inferences(counts: Counts, kernels: list[dict], count: int,
                     per_inference: list[list[dict]] | None = None) -> Split:
    """Give every segment its place: each inference calls begin and end once per kernel, in
    the order of `kernels` (ariel.json model_info.kernels), so the segments alternate
    between layers and the gaps between them. An adaptive build runs a different number of
    kernels per inference: `per_inference` then lists each inference's kernels."""
    sequences = per_inference if per_inference is not None else [kernels] * count
    closers = [s.closer for s in counts.segments]
    expected = ["begin", "end"] * sum(len(k) for k in sequences) + ["exit"]
    if closers != expected:
        got = closers.count("end")
        raise ArielError(f"the hook calls do not match the build: expected "
                         f"{sum(len(k) for k in sequences)} begin/end pairs over {count} "
                         f"inference(s), got {got} end call(s) in {len(closers)} segment(s); "
                         "is the ELF the profiling build of this model?")
    segments = counts.segments
    inferences = [InferenceCount(n, [], 0) for n in range(count)]
    segments[0].kind = "startup"
    if not any(sequences):  # every node is a view: one segment covers the whole run
        return Split(inferences, segments[0].instructions, [0] * max(count - 1, 0), 0)
    between, position = [], 1
    for n, sequence in enumerate(sequences):
        for step, kernel in enumerate(sequence):
            layer, gap = segments[position], segments[position + 1]
            position += 2
            layer.kind, layer.inference, layer.layer = "layer", n, kernel["index"]
            inferences[n].layers.append(LayerCount(kernel, layer.instructions, layer))
            if step + 1 < len(sequence):
                gap.kind, gap.inference = "between layers", n
                inferences[n].between_layers += gap.instructions
            elif n + 1 < count:
                gap.kind = "between inferences"
                between.append(gap.instructions)
    segments[-1].kind = "shutdown"
    return Split(inferences, segments[0].instructions, between, segments[-1].instructions)


# ----------------------------------------------------------------------------- builds


def build_profile_elf(folder: Path) -> Path:
    """Bring the build folder's profiling firmware up to date with `make profile`."""
    folder = Path(folder)
    if not (folder / "firmware" / "profile.c").is_file():
        raise ArielError(f"'{folder}' was built by an ariel without profiling; build it again "
                         "with `ariel build`")
    for tool in ("make", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            raise ArielError(f"{tool} not found on PATH; it builds the profiling firmware "
                             "(run `make setup` in the ariel repository)")
    result = subprocess.run(["make", "-s", "-C", str(folder), "profile"], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise ToolError("building the profiling firmware failed",
                        result.stdout + result.stderr)
    return folder / PROFILE_ELF


@dataclass
class Profile:
    """Instruction counts of a build's model on N inputs, per layer and per inference."""

    counts: Counts
    split: Split
    outputs: list[np.ndarray]  # per model output, shaped (N, *output shape)

    @property
    def inferences(self) -> list[InferenceCount]:
        return self.split.inferences


def profile(build: Build, inputs: list[np.ndarray], *, timeout: float = DEFAULT_TIMEOUT,
            blocks: bool = False, edges: bool = False, flash: bool = False,
            qemu_args: list[str] | None = None,
            per_inference: list[list[dict]] | None = None) -> Profile:
    """Count the instructions of `build` running `inputs` (per model input, arrays shaped
    (N, *shape), as codegen.run.simulate.load_inputs returns them)."""
    elf = build_profile_elf(build.folder)
    count = len(inputs[0])
    with tempfile.TemporaryDirectory(prefix="ariel-count-") as workdir:
        work = Path(workdir)
        write_inputs(work, inputs)
        counts = count_instructions(build.board, elf, work, timeout=timeout, blocks=blocks,
                                    edges=edges, flash=flash, qemu_args=qemu_args)
        outputs = read_outputs(work, build.info, count)
    split = split_inferences(counts, build.info.kernels, count, per_inference)
    return Profile(counts, split, outputs)
