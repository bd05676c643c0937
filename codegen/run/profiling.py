"""`ariel simulate --profile`: count a build's instructions per layer in QEMU, estimate each
layer's cycles with the board core's table and, where the board file describes its flash
caches, with every fetch and load from flash simulated through them; turn the result into a
ProfileReport with time and energy at the board's clock, and what keeping weights in RAM
would save."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from codegen.run.emulate.counting import PROFILE_ELF, Profile, profile
from codegen.run.emulate.cycles import Core, Memory, assumptions, estimate, load_core
from codegen.run.energy import assumptions as energy_assumptions
from codegen.run.energy import estimate as energy_estimate
from codegen.run.simulate import Build, simulate
from codegen.target.boards import Board
from codegen.target.elf import memory_use
from codegen.target.stack_usage import stack_use


@dataclass
class LayerRow:
    index: int  # the kernel's index in the generated run function
    name: str
    op: str
    macs: int
    instructions: float  # mean over the inferences profiled (exact per inference)
    cycles: float | None = None  # the estimate: with the board's flash model when it has one
    time_us: float | None = None
    energy_uj: float | None = None
    ram_cycles: float | None = None  # every fetch and load at RAM speed
    flash_data_bytes: float | None = None  # distinct flash bytes the layer's loads read
    data_stall_cycles: float | None = None  # of the flash's cost, the data loads' share

    @property
    def flash_cycles(self) -> float | None:
        """What the flash costs the layer: the estimate less the RAM-speed cycles."""
        if self.cycles is None or self.ram_cycles is None:
            return None
        return self.cycles - self.ram_cycles

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None

    @property
    def cycles_per_mac(self) -> float | None:
        return self.cycles / self.macs if self.macs and self.cycles is not None else None


@dataclass
class ProfileReport:
    model: str
    precision: str
    board: str
    core: str
    clock_hz: int
    inferences: int
    layers: list[LayerRow]
    between_layers: float  # the run function's own instructions (calls, hook overhead)
    per_inference_instructions: list[int]  # exact, one per inference
    arena_bytes: int
    stack_bytes: int | None = None  # high-water mark of the stack
    stack_reserved: int | None = None
    total_cycles: float | None = None
    time_ms: float | None = None
    energy_uj: float | None = None
    assumptions: list[str] = field(default_factory=list)
    total_ram_cycles: float | None = None  # the same kernels with every access at RAM speed
    flash_model: bool = False  # whether the board's flash caches were simulated
    ram_free_bytes: int | None = None  # RAM left beside arena, data, stack (for weights)
    weights_in_ram: list[int] = field(default_factory=list)  # layers whose weights would fit

    @property
    def weights_in_ram_saving(self) -> float:
        """Cycles saved per inference by keeping `weights_in_ram`'s constants in RAM."""
        chosen = set(self.weights_in_ram)
        return sum(row.data_stall_cycles or 0 for row in self.layers if row.index in chosen)

    @property
    def total_instructions(self) -> float:
        return sum(self.per_inference_instructions) / max(len(self.per_inference_instructions), 1)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["total_instructions"] = self.total_instructions
        data["total_macs"] = self.total_macs
        data["weights_in_ram_saving"] = self.weights_in_ram_saving
        for row, layer in zip(data["layers"], self.layers, strict=True):
            row["instructions_per_mac"] = layer.instructions_per_mac
            row["cycles_per_mac"] = layer.cycles_per_mac
            row["flash_cycles"] = layer.flash_cycles
        return data


def run_profile(build: Build, inputs: list[np.ndarray], timeout: float) -> ProfileReport:
    flash = build.board.flash_caches is not None and bool(build.board.wait_states)
    sequences = None
    if staged_kernels(build.info.kernels):
        # An adaptive build runs the stages up to the one that answers, which the firmware
        # reports: a first run finds it for each input, so the count knows its kernels.
        names = [output.name for output in build.info.outputs]
        answered = simulate(build, inputs, timeout).outputs[names.index("stage")]
        sequences = kernels_run(build.info.kernels, answered.reshape(-1))
    measured = profile(build, inputs, timeout=timeout, edges=True, flash=flash,
                       per_inference=sequences)
    return report_from(build, measured)


def staged_kernels(kernels: list[dict]) -> bool:
    """Whether the kernels belong to the stages of an adaptive build (ari/assemble.py tags
    each with the stage whose run it is part of)."""
    return bool(kernels) and all("stage" in kernel for kernel in kernels)


def kernels_run(kernels: list[dict], answered: np.ndarray) -> list[list[dict]]:
    """The kernels each inference of an adaptive build runs, in order: those of every stage
    up to the one that answered it."""
    return [[kernel for kernel in kernels if kernel["stage"] <= int(stage)]
            for stage in answered]


def board_memory(board: Board) -> Memory:
    """The flash timing the cycle model charges, from the board file (a figure the board
    file could not source counts as no wait states, which the assumptions say)."""
    return Memory(board.wait_states or 0, board.wait_states_hidden, board.flash_caches)


def board_core(board: Board) -> Core:
    """The board core's cycle table with the options its chip maker chose."""
    return load_core(board.core, tuple(sorted(board.core_options.items())))


def report_from(build: Build, measured: Profile) -> ProfileReport:
    info, board = build.info, build.board
    memory = board_memory(board)
    core = board_core(board)
    inferences = measured.inferences
    rows, upper, simulated = [], 0.0, False
    total_cycles = total_ram_cycles = 0.0
    for kernel in info.kernels:
        # Every inference runs every kernel, but an adaptive build's run only its stages'.
        layers = [layer for inference in inferences for layer in inference.layers
                  if layer.kernel is kernel]
        if not layers:
            continue
        share = len(layers) / len(inferences)
        estimates = [estimate(measured.counts, layer.segment, core, memory)
                     for layer in layers]
        simulated = estimates[0].simulated
        cycles = float(np.mean([e.cycles for e in estimates]))
        upper += share * float(np.mean([e.cycles_upper for e in estimates]))
        energy = energy_estimate(board, round(cycles))
        row = LayerRow(kernel["index"], kernel["name"], kernel["op"], kernel["macs"],
                       float(np.mean([layer.instructions for layer in layers])),
                       cycles, energy.seconds * 1e6, energy.microjoules,
                       ram_cycles=float(np.mean([e.ram_cycles for e in estimates])))
        if simulated:
            line = memory.caches.data.entry_bytes
            row.flash_data_bytes = float(np.mean([e.flash.load_lines * line
                                                  for e in estimates]))
            row.data_stall_cycles = float(np.mean([e.flash_stalls["data"]
                                                   for e in estimates]))
        rows.append(row)
        total_cycles += share * cycles
        total_ram_cycles += share * row.ram_cycles
    energy = energy_estimate(board, round(total_cycles))
    stack = stack_use(measured.counts.console)
    notes = [*assumptions(core, memory), *energy_assumptions(board)]
    if upper > total_cycles:
        what = ("every divide at its worst case" if simulated else
                "every divide at its worst case and every weight load waiting on flash")
        notes.append(f"with {what}: {upper:,.0f} cycles, "
                     f"{upper / board.clock_hz * 1e3:.3f} ms (an upper bound)")
    notes.append("cycles, time and energy cover the model's kernels, not the harness's "
                 "input and output")
    if any(len(i.layers) != len(info.kernels) for i in inferences):
        notes.append("an adaptive build: each input ran the stages up to the one that "
                     "answered it; a layer's figures are the mean over the inferences that "
                     "ran it, the totals the mean per inference")
    varying = [str(k["index"]) for k in info.kernels if k.get("input_dependent")]
    if varying:
        notes.append(f"layer(s) {', '.join(varying)}: their time depends on the input (dense "
                     "layers that leave out the zero inputs of their row), so these figures "
                     "are those of the inputs run; a build with --fixed-timing takes the same "
                     "time on every input")
    free = ram_free(build)
    chosen = weights_that_fit(rows, free) if simulated and free is not None else []
    return ProfileReport(
        model=build.metadata["model"]["source"],
        precision=build.metadata["precision"],
        board=board.name,
        core=board.core,
        clock_hz=board.clock_hz,
        inferences=len(inferences),
        layers=rows,
        between_layers=float(np.mean([i.between_layers for i in inferences])),
        per_inference_instructions=[i.total for i in inferences],
        arena_bytes=info.arena_size,
        stack_bytes=stack.used if stack else None,
        stack_reserved=stack.size if stack else None,
        total_cycles=total_cycles,
        time_ms=energy.milliseconds,
        energy_uj=energy.microjoules,
        assumptions=notes,
        total_ram_cycles=total_ram_cycles,
        flash_model=simulated,
        ram_free_bytes=free,
        weights_in_ram=chosen,
    )


def ram_free(build: Build) -> int | None:
    """RAM the profiled firmware leaves unused (the board's RAM less its RAM sections: data,
    arena, stack), or None when its ELF is not there."""
    elf = build.folder / PROFILE_ELF
    if not elf.is_file():
        return None
    return build.board.ram.size - memory_use(elf, build.board).ram


def weights_that_fit(rows: list[LayerRow], free: int) -> list[int]:
    """The layers whose flash constants, copied to RAM at start-up, would save the most
    cycles per byte within `free` bytes (greedy): what `--weights-in-ram` would choose."""
    chosen, room = [], free
    worth = [row for row in rows if row.data_stall_cycles and row.flash_data_bytes]
    for row in sorted(worth, key=lambda r: r.data_stall_cycles / r.flash_data_bytes,
                      reverse=True):
        if row.flash_data_bytes <= room:
            chosen.append(row.index)
            room -= int(row.flash_data_bytes)
    return sorted(chosen)
