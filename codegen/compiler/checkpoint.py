"""Checkpoints of an intermittent build (`--power intermittent`): where the run commits its
progress to non-volatile memory, what it writes there, and where in NVM each saved tensor
lives, so that a power cut at any instruction leaves a state the run resumes from with the
same result.

A commit at boundary b means: the kernels before step b have run, every buffer alive across
b is in NVM, and a progress record says so. The record is written last, after its data, in
one of two slots by turn (firmware/ariel_nvm.c), so a cut inside any write leaves the
previous record, and the data it points to, intact. Three strategies:

- live (ariel's): at each commit, write the buffers produced since the last commit that are
  still needed; resuming reads back the buffers alive at the commit. NVM slots are planned
  like the arena, by lifetime in commits: a slot being written never overlaps one that the
  last committed state still needs.
- arena (a baseline): after every kernel, the whole arena into one of two copies by turn.
- restart (a baseline): no checkpoint inside an inference; a cut starts it again.

Commits come after every kernel unless the user declares an on-period (the shortest time
the board runs between two cuts): then the commits are chosen to write the fewest bytes
while no stretch of work between two commits, with its restore and its checkpoint, is longer
than the on-period. A layer longer than that on its own is split into bands of output rows
with commits between them (codegen/compiler/tiles.py): a commit inside a layer saves the
rows done since the last commit, and a resume there reads back the rows done so far."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from codegen.compiler.ir import Graph
from codegen.compiler.nvm import YEAR_HOURS, Nvm
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.base import is_view_node
from codegen.compiler.plan import ALIGNMENT, Buffer, MemoryPlan, _first_fit, _Placed, align
from codegen.compiler.tiles import rows_of, split_rows, why_not_tiled
from codegen.errors import ArielError

# Where a run stands: (step, output rows of that step done); (b, 0) is the boundary before
# step b, where no row of it is done.
Position = tuple[int, int]

STRATEGIES = ("live", "arena", "restart")
RECORD_BYTES = 16  # sequence number, inference, commit index, check word
# A static estimate of a kernel's cycles, for the on-period check before any run: int8
# kernels on a Cortex-M4 spend 2.3 cycles per multiply-accumulate on ResNet-8 as measured
# (README, the profile of ResNet-8); 3 leaves a margin, and each output byte is charged 2
# cycles for its requantization and store. `ariel simulate --profile` measures the real ones.
CYCLES_PER_MAC = 3
CYCLES_PER_OUTPUT_BYTE = 2
# Booting and reading the progress records before a restore: startup, semihosting aside.
BOOT_CYCLES = 2_000


@dataclass(frozen=True)
class PowerOptions:
    """What `--power intermittent` builds for: the board's NVM and clock, the strategy, and
    what the user declares about the power."""

    nvm: Nvm
    clock_hz: int
    strategy: str = "live"
    on_period_cycles: int | None = None
    inferences_per_hour: float | None = None
    board: str = ""
    # Where the on-period comes from, as errors name it ("": --on-period-cycles)
    on_period_source: str = ""


@dataclass(frozen=True)
class Span:
    """Bytes copied between the arena and NVM: `nvm` is an offset into the NVM region."""

    arena: int
    nvm: int
    nbytes: int
    name: str


@dataclass
class CheckpointPlan:
    strategy: str
    boundaries: list[int]  # commit index -> boundary (the step the run continues at)
    saves: list[list[Span]]  # commit index -> what is written before its record
    restores: list[list[Span]]  # commit index -> what a resume there reads back
    records: tuple[int, int]  # the two record slots' NVM offsets
    copies: tuple[int, int] | None  # arena strategy: the two arena copies' NVM offsets
    nvm_bytes: int  # how much of the NVM region the plan uses
    arena_size: int
    steps: int
    kernel_commit: dict[int, int] = field(default_factory=dict)  # step -> commit after it
    erase_bytes: int = 1  # the NVM's erase page (1: none)
    nvm_description: str = ""
    tag: int = 0
    # commit index -> rows of step boundaries[i]'s output done there (0: none, the boundary)
    rows_done: list[int] = field(default_factory=list)
    # A layer split into bands: step -> its output rows' band edges (0, r1, ..., rows)
    bands: dict[int, list[int]] = field(default_factory=dict)
    band_commit: dict[tuple[int, int], int] = field(default_factory=dict)  # (step, rows) ->

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "commits": len(self.boundaries),
                "boundaries": self.boundaries, "rows_done": self.rows_done,
                "bands": {str(k): v for k, v in self.bands.items()},
                "nvm_bytes": self.nvm_bytes,
                "saved_bytes": [sum(s.nbytes for s in spans) for spans in self.saves]}


def plan_checkpoints(graph: Graph, plan: MemoryPlan, power: PowerOptions) -> CheckpointPlan:
    """Where an intermittent build commits and what it saves, checked against the NVM."""
    if power.strategy not in STRATEGIES:
        raise ArielError(f"--checkpoints {power.strategy}: choose one of "
                         f"{', '.join(STRATEGIES)}")
    steps = len(graph.nodes)
    kernels = [s for s, node in enumerate(graph.nodes) if not is_view_node(graph, node)]
    saved = _saved_buffers(plan)
    nvm = power.nvm
    unit = nvm.page_bytes if nvm.erases else ALIGNMENT
    record_slot = align(RECORD_BYTES, unit)
    records = (0, record_slot)
    if power.strategy == "restart":
        positions = [(0, 0)]
    elif power.strategy == "arena" or power.on_period_cycles is None:
        positions = [(0, 0)] + [(s + 1, 0) for s in kernels]
    else:
        positions = _chosen_positions(graph, plan, saved, kernels, power, unit)
    boundaries = [s for s, _ in positions]
    kernel_commit = {s - 1: i for i, (s, r) in enumerate(positions) if i > 0 and not r}
    band_commit = {(s, r): i for i, (s, r) in enumerate(positions) if r}
    bands: dict[int, list[int]] = {}
    for s, r in positions:
        if r:
            bands.setdefault(s, [0]).append(r)
    for s, edges in bands.items():
        edges.append(rows_of(graph, s)[0])
    copies = None
    if power.strategy == "arena":
        copy = align(plan.arena_size, unit)
        copies = (2 * record_slot, 2 * record_slot + copy)
        whole = [Span(0, 0, plan.arena_size, "(arena)")]
        saves, restores = [whole] * len(boundaries), [whole] * len(boundaries)
        nvm_bytes = 2 * record_slot + 2 * copy
    elif power.strategy == "restart":
        saves, restores, nvm_bytes = [[]], [[]], 2 * record_slot
    else:
        saves, restores, nvm_bytes = _live_spans(saved, positions, 2 * record_slot, unit,
                                                 _row_bytes(graph, bands))
    result = CheckpointPlan(power.strategy, boundaries, saves, restores, records, copies,
                            nvm_bytes, plan.arena_size, steps, kernel_commit,
                            nvm.page_bytes if nvm.erases else 1,
                            f"{power.board}'s {nvm.describe()}",
                            rows_done=[r for _, r in positions], bands=bands,
                            band_commit=band_commit)
    _check_fits(result, power)
    result.tag = zlib.crc32(repr((result.strategy, positions, result.saves,
                                  result.records, result.copies, result.arena_size)).encode())
    return result


def checkpoint_context(plan: CheckpointPlan) -> dict:
    """What templates/checkpoint.c.j2 needs: the spans flattened commit by commit, with
    each commit's first index (C has no empty arrays: an empty list gets one zero span)."""
    def flattened(per_commit: list[list[Span]]) -> tuple[list[Span], list[int]]:
        spans, first = [], [0]
        for group in per_commit:
            spans.extend(group)
            first.append(len(spans))
        return spans or [Span(0, 0, 0, "(none)")], first

    saves, save_first = flattened(plan.saves if plan.strategy == "live" else
                                  [[] for _ in plan.boundaries])
    restores, restore_first = flattened(plan.restores if plan.strategy == "live" else
                                        [[] for _ in plan.boundaries])
    return {"plan": plan, "saves": saves, "save_first": save_first, "restores": restores,
            "restore_first": restore_first, "copies": plan.copies or (0, 0),
            "erase_bytes": plan.erase_bytes, "nvm_description": plan.nvm_description,
            "strategy_constant": f"ARIEL_CHECKPOINT_{plan.strategy.upper()}"}


def _saved_buffers(plan: MemoryPlan) -> list[Buffer]:
    """The buffers a checkpoint may need: every one but kernels' scratch."""
    scratch = set(plan.scratch.values())
    return [b for b in plan.buffers.values() if b.name not in scratch]


def _alive(buffer: Buffer, at: Position) -> bool:
    """Whether `buffer` holds what the run still needs at `at`: written before it and read
    at or after it, or a banded layer's output partly written."""
    step, rows = at
    return buffer.first < step <= buffer.last or (rows > 0 and buffer.first == step)


def _row_bytes(graph: Graph, steps) -> dict[int, int]:
    return {s: rows_of(graph, s)[1] for s in steps}


def _done(buffer: Buffer, at: Position, row_bytes: dict[int, int]) -> int:
    """The bytes of `buffer` written at `at` (a banded layer's output: its rows done)."""
    step, rows = at
    return rows * row_bytes[step] if rows and buffer.first == step else buffer.size


def _live_spans(buffers: list[Buffer], positions: list[Position], start: int, unit: int,
                row_bytes: dict[int, int]) -> tuple[list[list[Span]], list[list[Span]], int]:
    """The live strategy's writes and reads per commit, and the NVM they take. A buffer is
    written at the commits it is alive at, each writing what was made since the previous
    one (all of it at once, but for a banded layer's output), and its slot stays taken from
    the commit before its first write (while it is written, that commit's state must
    survive) to the last commit it is alive at."""
    lifetimes = []
    for buffer in buffers:
        alive = [i for i, p in enumerate(positions) if _alive(buffer, p)]
        if alive:
            lifetimes.append((buffer, Buffer(buffer.name, align(buffer.size, unit),
                                             alive[0] - 1, alive[-1])))
    placed = _Placed()
    for _, slot in sorted(lifetimes, key=lambda p: (-p[1].size, p[1].first, p[1].name)):
        slot.offset = _first_fit(slot, placed.overlapping(slot), unit)
        placed.add(slot)
    saves: list[list[Span]] = [[] for _ in positions]
    restores: list[list[Span]] = [[] for _ in positions]
    for buffer, slot in sorted(lifetimes, key=lambda p: p[0].offset):
        nvm = start + slot.offset
        before = 0
        for i in range(slot.first + 1, slot.last + 1):
            done = _done(buffer, positions[i], row_bytes)
            if done > before:
                saves[i].append(Span(buffer.offset + before, nvm + before, done - before,
                                     buffer.name))
            restores[i].append(Span(buffer.offset, nvm, done, buffer.name))
            before = done
    end = max((start + s.offset + s.size for _, s in lifetimes), default=start)
    return saves, restores, end


def step_cycles(graph: Graph, step: int) -> int:
    """The static estimate of one kernel's cycles (CYCLES_PER_MAC)."""
    node = graph.nodes[step]
    if is_view_node(graph, node):
        return 0
    out = sum(graph.tensor(t).nbytes for t in node.outputs if t)
    return REGISTRY[node.op].macs(node, graph) * CYCLES_PER_MAC + out * CYCLES_PER_OUTPUT_BYTE


def write_cycles(nvm: Nvm, clock_hz: int, spans: list[Span], record_slot: int) -> int:
    """The cycles one commit takes: its spans and its record written to NVM."""
    nbytes = sum(s.nbytes for s in spans) + RECORD_BYTES
    pages = sum(-(-s.nbytes // nvm.page_bytes) for s in spans) + 1 if nvm.erases else 0
    return round(nvm.write_seconds(nbytes, pages, len(spans) + 1) * clock_hz)


def _chosen_positions(graph: Graph, plan: MemoryPlan, buffers: list[Buffer],
                      kernels: list[int], power: PowerOptions, unit: int) -> list[Position]:
    """The commits that write the fewest bytes while every stretch of work between two of
    them fits the on-period (dynamic programming over the kernel boundaries, and over the
    output rows of each layer too long to fit on its own that can be split into bands)."""
    work = [0] * (len(graph.nodes) + 1)
    for step in range(len(graph.nodes)):
        work[step + 1] = work[step] + step_cycles(graph, step)
    nvm, clock, limit = power.nvm, power.clock_hz, power.on_period_cycles
    banded: dict[int, int] = {}  # step -> its output rows, for the layers split into bands

    def at_work(at: Position) -> int:
        step, rows = at
        return work[step] + (step_cycles(graph, step) * rows // banded[step] if rows else 0)

    def done(x: Buffer, at: Position) -> int:
        return _done(x, at, row_bytes)

    def saves_between(a: Position, b: Position) -> list[Span]:
        spans = []
        for x in buffers:
            if _alive(x, b):
                before = done(x, a) if _alive(x, a) and a != (0, 0) else 0
                if done(x, b) > before:
                    spans.append(Span(x.offset, 0, done(x, b) - before, x.name))
        return spans

    def restore_cycles(a: Position) -> int:
        nbytes = sum(done(x, a) for x in buffers if _alive(x, a))
        return BOOT_CYCLES + nbytes  # a copy back at about a byte a cycle

    def cost(a: Position, b: Position) -> int:
        return (restore_cycles(a) + at_work(b) - at_work(a) +
                write_cycles(nvm, clock, saves_between(a, b), 0))

    candidates: list[Position] = [(0, 0)]
    row_bytes: dict[int, int] = {}
    for step in kernels:
        if cost((step, 0), (step + 1, 0)) > limit and why_not_tiled(graph, plan, step) is None:
            banded[step] = rows_of(graph, step)[0]
            row_bytes[step] = rows_of(graph, step)[1]
            candidates += [(step, r) for r in split_rows(graph, step, unit)]
        candidates.append((step + 1, 0))

    best: dict[int, tuple[int, int]] = {0: (0, -1)}  # candidate index -> (bytes, previous)
    for j in range(1, len(candidates)):
        for i in range(j):
            if i not in best:
                continue
            a, b = candidates[i], candidates[j]
            if cost(a, b) > limit:
                continue
            total = best[i][0] + sum(s.nbytes for s in saves_between(a, b))
            if j not in best or total < best[j][0]:
                best[j] = (total, i)
        if j not in best:
            a, b = candidates[j - 1], candidates[j]
            step = b[0] if b[1] else b[0] - 1
            _too_short(graph, plan, step, a, b, at_work(b) - at_work(a), cost(a, b), power,
                       step in banded)
    chosen, j = [], len(candidates) - 1
    while j >= 0:
        chosen.append(candidates[j])
        j = best[j][1]
    return chosen[::-1]


def _too_short(graph: Graph, plan: MemoryPlan, step: int, a: Position, b: Position,
               work: int, needed: int, power: PowerOptions, banded: bool) -> None:
    """The error for an on-period shorter than the smallest unit of work from `a` to `b`,
    which ends in the layer at `step`."""
    node = graph.nodes[step]
    source = power.on_period_source or f"--on-period-cycles {power.on_period_cycles:,}"
    if banded:
        first = a[1] if a[0] == step else 0
        last = b[1] if b[0] == step else rows_of(graph, step)[0]
        what = f" (rows {first}..{last} of its output)"
        unit = (f"the smallest unit of work ariel makes of this layer is a band of {last - first} "
                f"output rows (bands start where the rows done fill whole NVM write units and "
                f"hold {rows_of(graph, step)[1]:,} B a row)")
    else:
        what = ""
        unit = ("the smallest unit of work ariel makes is one layer, since "
                f"{why_not_tiled(graph, plan, step)}")
    raise ArielError(
        f"{source}: {node.op} '{node.name}'{what} needs about {work:,} cycles (static "
        f"estimate) plus {needed - work:,} to restore its inputs and checkpoint its output on "
        f"{power.board}'s {power.nvm.describe()}, {needed:,} in all; {unit}, so the on-period "
        f"must be at least {needed:,} cycles ({needed / power.clock_hz * 1e3:.3g} ms); give a "
        "larger capacitor or a longer on-period")


def _check_fits(plan: CheckpointPlan, power: PowerOptions) -> None:
    nvm = power.nvm
    if plan.nvm_bytes > nvm.size:
        what = {"live": "the records and the activations alive across commits",
                "arena": f"the records and two copies of the {plan.arena_size:,} B arena",
                "restart": "the progress records"}[plan.strategy]
        raise ArielError(
            f"the checkpoints need {plan.nvm_bytes:,} B of NVM ({what}), and "
            f"{power.board}'s [nvm] holds {nvm.size:,} B; choose a board with more NVM, "
            "or --checkpoints live (which keeps only the live activations)"
            if plan.strategy == "arena" else
            f"the checkpoints need {plan.nvm_bytes:,} B of NVM ({what}), and "
            f"{power.board}'s [nvm] holds {nvm.size:,} B; choose a board with more NVM")


@dataclass
class NvmCost:
    """What one inference's checkpoints cost with continuous power."""

    commits: int
    nbytes: int  # data and records written
    writes: int  # calls of ariel_nvm_write
    pages_erased: int
    seconds: float
    cycles: int
    energy_j: float | None  # the memory's own, where the board gives its write power
    wear_per_inference: int  # the most times one page (flash) or 16 bytes are written
    endurance_years: float | None  # at the declared inference rate

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def nvm_cost(plan: CheckpointPlan, power: PowerOptions) -> NvmCost:
    """The NVM traffic of one inference run without a cut: its commits, and the record
    that marks the inference done."""
    nvm = power.nvm
    granule = nvm.page_bytes if nvm.erases else ALIGNMENT  # what one write wears
    wear: dict[int, int] = {}
    nbytes = writes = pages = 0

    def write(offset: int, size: int) -> None:
        nonlocal nbytes, writes, pages
        nbytes, writes = nbytes + size, writes + 1
        first, last = offset // granule, (offset + size - 1) // granule
        if nvm.erases:
            pages += last - first + 1
        for unit in range(first, last + 1):
            wear[unit] = wear.get(unit, 0) + 1
    commits = len(plan.boundaries) if plan.strategy != "restart" else 0
    seq = 0
    for index in range(commits):
        seq += 1
        for span in plan.saves[index]:
            target = plan.copies[seq & 1] if plan.copies else span.nvm
            write(target, span.nbytes)
        write(plan.records[seq & 1], RECORD_BYTES)
    seq += 1
    write(plan.records[seq & 1], RECORD_BYTES)  # the inference done
    most = max(wear.values(), default=0)
    seconds = nvm.write_seconds(nbytes, pages, writes)
    years = None
    if power.inferences_per_hour and most:
        years = nvm.endurance_cycles / (most * power.inferences_per_hour * YEAR_HOURS)
    return NvmCost(commits, nbytes, writes, pages, seconds, round(seconds * power.clock_hz),
                   nvm.write_energy_j(seconds), most, years)


def endurance_warning(cost: NvmCost, power: PowerOptions) -> str | None:
    """A warning when the declared inference rate wears the NVM out within a year."""
    if cost.endurance_years is None or cost.endurance_years >= 1.0:
        return None
    unit = "page" if power.nvm.erases else "byte"
    return (f"warning: at {power.inferences_per_hour:g} inferences per hour the checkpoints "
            f"write one {unit} of {power.board}'s {power.nvm.kind} {cost.wear_per_inference} "
            f"times per inference, and its endurance ({power.nvm.endurance_cycles:,.0f} "
            f"cycles) is used up in {cost.endurance_years * 365.25:,.1f} days; lower the rate, "
            "declare an on-period (fewer commits), or use FRAM or MRAM")
