"""`ariel simulate --harvest`: the firmware run in the power-cut emulator on harvested energy
(codegen/run/harvest.py), the power cut at the instruction where the capacitor reaches its
brown-out voltage.

Each power cycle charges the capacitor to turn-on, then runs the firmware for as many
instructions as the capacitor lasts at the board's run power (the core's cycles per
instruction from its cycle model, the harvest still flowing in). NVM writes cost more:
ariel_nvm_write's call (its destination and length, read at its first instruction) is
priced by the board's [nvm] figures (erase and program times, SPI transfer, the memory's
own power), spread evenly over its word stores, during which the core waits at its run
power. The emulator sees each store before it happens, with its instruction's index, and
the capacitor is drained store by store; when it runs out before the budget's end, the
power cycle is run again from its power-up (the same RAM garbage, the same NVM) to that
exact instruction. Time to result, power cycles, and the energy spent on checkpoints (the
NVM writes) and on re-execution (instructions beyond an uninterrupted run's) follow."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import unicorn
from unicorn import arm_const as arm

from codegen.errors import ArielError, FirmwareError
from codegen.run.harvest import Capacitor, Harvest, Load, Tank
from codegen.run.power_cuts import (
    HANG_FACTOR,
    NVM_WRITE,
    Emulation,
    Uninterrupted,
    nvm_region,
    run_uninterrupted,
)
from codegen.run.simulate import Build
from codegen.target.elf import function_range

MAX_POWER_CYCLES = 100_000
_RESUMED = re.compile(r"ariel: resumed at inference (\d+)(?:, commit (\d+))?")


@dataclass
class Sample:
    """The capacitor and the work at one moment of the run, for the plot."""

    seconds: float
    volts: float
    instructions: int  # executed so far, in all power cycles
    progress: float  # the firmware's committed share of the work, 0..1


@dataclass
class HarvestedRun:
    harvest: Harvest
    capacitor: Capacitor
    load: Load
    uninterrupted: Uninterrupted
    power_cycles: int = 0
    seconds: float = 0.0  # time to result (or until the run was given up)
    on_seconds: float = 0.0
    instructions: int = 0
    nvm_bytes: int = 0
    run_joules: float = 0.0  # used while on: the run power, and the NVM's own while writing
    checkpoint_joules: float = 0.0  # NVM writes: the core waiting and the memory's own
    outputs: list[np.ndarray] | None = None
    stuck: str | None = None
    samples: list[Sample] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.outputs is not None

    @property
    def equal(self) -> bool:
        return self.completed and all(a.tobytes() == b.tobytes() for a, b in zip(
            self.outputs, self.uninterrupted.outputs, strict=True))

    @property
    def reexecuted(self) -> int:
        """Instructions beyond an uninterrupted run's: work lost to cuts, and restarts."""
        return max(self.instructions - self.uninterrupted.instructions, 0)

    @property
    def reexecution_joules(self) -> float:
        return self.reexecuted * self.load.joules_per_instruction


@dataclass
class _Writes:
    """Prices the stores of ariel_nvm_write calls from the board's [nvm] figures."""

    nvm: object  # codegen.target.nvm.Nvm
    seconds: float = 0.0  # per store of the current call
    joules: float = 0.0  # the memory's own, per store

    def call(self, destination: int, nbytes: int) -> None:
        nvm = self.nvm
        pages = 0
        stores = max(nbytes // 4, 1)
        if nvm.erases and nbytes:
            page = nvm.page_bytes
            pages = (destination + nbytes - 1) // page - destination // page + 1
            stores += pages * nvm.page_bytes // 4  # ariel_nvm_write erases by storing ones
        seconds = nvm.write_seconds(nbytes, pages_erased=pages, writes=1)
        self.seconds = seconds / stores
        self.joules = (nvm.write_energy_j(seconds) or 0.0) / stores


@dataclass
class _Period:
    """One on-period's capacitor, drained instruction by instruction and store by store."""

    tank: Tank
    load: Load
    position: int = 0  # instructions accounted for
    cut: int | None = None  # where the capacitor ran out
    store_joules: float = 0.0  # the core waiting for writes, and the memory's own
    memory_joules: float = 0.0  # the memory's own
    nvm_bytes: int = 0

    def advance_to(self, index: int) -> None:
        if self.cut is not None or index <= self.position:
            return
        seconds = (index - self.position) * self.load.seconds_per_instruction
        spent = self.tank.drain(seconds, self.load.run_w)
        if spent is None:
            self.position = index
        else:
            self.cut = self.position + int(spent / self.load.seconds_per_instruction)

    def store(self, index: int, seconds: float, joules: float) -> None:
        self.advance_to(index)
        if self.cut is not None or seconds <= 0:
            return
        extra = joules / seconds
        if self.tank.drain(seconds, self.load.run_w + extra) is not None:
            self.cut = index  # out of energy during the write: the store does not happen
        self.store_joules += seconds * self.load.run_w + joules
        self.memory_joules += joules


def run_harvested(build: Build, inputs: list[np.ndarray], harvest: Harvest,
                  capacitor: Capacitor, load: Load, seed: int = 0,
                  uninterrupted: Uninterrupted | None = None,
                  max_cycles: int = MAX_POWER_CYCLES) -> HarvestedRun:
    nvm = nvm_region(build)
    reference = uninterrupted or run_uninterrupted(build, inputs, nvm, seed)
    run = HarvestedRun(harvest, capacitor, load, reference)
    emulation = Emulation(build, inputs, nvm, seed)
    machine = emulation.machine
    writes = _Writes(build.board.nvm) if build.board.nvm is not None else None
    entry = function_range(build.elf, NVM_WRITE)
    if writes is not None and entry is not None:
        def on_call(uc, address, size, user_data) -> None:
            writes.call(uc.reg_read(arm.UC_ARM_REG_R0), uc.reg_read(arm.UC_ARM_REG_R2))

        machine.uc.hook_add(unicorn.UC_HOOK_CODE, on_call, begin=entry[0], end=entry[0])
    commits = (build.metadata.get("power") or {}).get("checkpoints", {}).get("commits")
    count = len(inputs[0])
    tank = Tank(harvest, capacitor)
    futile: dict[str, tuple[int, float]] = {}  # state -> (longest futile budget, since when)
    progress = 0.0
    run.samples.append(Sample(0.0, 0.0, 0, 0.0))
    for cycle in range(max_cycles):
        if not tank.charge(load.sleep_w):
            run.stuck = (f"the harvest ({harvest.description}, {harvest.mean * 1e3:.3g} mW on "
                         f"average) never charges the capacitor to its turn-on voltage "
                         f"({capacitor.turn_on_v:g} V) against the sleep power "
                         f"({load.sleep_w * 1e3:g} mW)")
            break
        run.samples.append(Sample(tank.time, capacitor.turn_on_v, run.instructions, progress))
        state = emulation.surviving_state()
        budget = load.instructions_in(tank.lasts(load.run_w))
        seen = futile.get(state)
        if seen is not None and budget <= seen[0] and tank.time - seen[1] >= harvest.period:
            run.stuck = _no_progress(budget, reference.instructions, capacitor, harvest, load)
            break
        snapshot = emulation.snapshot()
        started = tank.time
        limit = min(budget, reference.instructions * HANG_FACTOR)
        period, stop = _run_period(emulation, tank, load, writes, cycle, limit, None)
        if period.cut is None and not stop.exited and limit == budget:
            # The budget is where the capacitor runs out (to within an instruction).
            period.cut = budget
            tank.drain(load.seconds_per_instruction, load.run_w)
        if period.cut is not None and (stop.interrupted or period.cut < stop.executed):
            # The capacitor ran out before the run stopped: that power cycle again from its
            # power-up, to that exact instruction; the capacitor as it was at brown-out.
            browned_out = tank.time, tank.joules
            tank.time, tank.joules = started, capacitor.on_energy
            emulation.restore(snapshot)
            period, stop = _run_period(emulation, tank, load, writes, cycle, period.cut,
                                       period.cut)
            tank.time, tank.joules = browned_out
        elif period.cut is None and not stop.exited:
            raise FirmwareError(f"the firmware did not exit within {limit:,} instructions of "
                                "one on-period (it may hang)")
        run.power_cycles += 1
        executed = stop.executed
        run.instructions += executed
        run.checkpoint_joules += period.store_joules
        run.run_joules += (tank.time - started) * load.run_w + period.memory_joules
        run.on_seconds += tank.time - started
        run.nvm_bytes += period.nvm_bytes
        progress = max(progress, _progress(emulation.files.last_console, commits, count))
        if stop.exited and period.cut is None:
            emulation.check_exit(stop)
            run.outputs = emulation.outputs()
            run.seconds = tank.time
            run.samples.append(Sample(tank.time, capacitor.volts(tank.joules),
                                      run.instructions, 1.0))
            return run
        run.samples.append(Sample(tank.time, capacitor.brown_out_v, run.instructions, progress))
        if emulation.surviving_state() == state and (seen is None or budget > seen[0]):
            futile[state] = (budget, seen[1] if seen else started)
    else:
        run.stuck = f"the firmware did not finish within {max_cycles:,} power cycles"
    run.seconds = tank.time
    return run


def _run_period(emulation: Emulation, tank: Tank, load: Load, writes: _Writes | None,
                cycle: int, budget: int, exact: int | None):
    """Power up and run for at most `budget` instructions, draining `tank` as the firmware
    runs and stores; `exact`: the run is the repetition that stops at the cut."""
    machine = emulation.machine
    period = _Period(tank, load)

    def on_store(index: int | None, address: int, size: int) -> None:
        period.nvm_bytes += size
        if writes is not None:
            period.store(index, writes.seconds, writes.joules)
        if period.cut is not None and exact is None:
            machine.interrupt()

    machine.on_nvm_store = on_store
    emulation.power_up(cycle)
    stop = machine.run(limit=budget)
    if stop.interrupted:
        return period, stop
    period.advance_to(stop.executed)
    if exact is not None:
        period.cut = exact
    return period, stop


def _progress(console: str, commits: int | None, count: int) -> float:
    """The share of the work the firmware had committed when it last powered up, from its
    "resumed at inference N, commit K" line (0 without one)."""
    found = _RESUMED.search(console)
    if found is None or not commits:
        return 0.0
    inference, commit = int(found.group(1)), found.group(2)
    done = inference * commits + (int(commit) + 1 if commit is not None else 0)
    return min(done / (count * commits), 1.0)


def _no_progress(budget: int, needed: int, capacitor: Capacitor, harvest: Harvest,
                 load: Load) -> str:
    """Why the firmware cannot finish, with what it would need."""
    cycles = budget * load.cycles_per_instruction
    net = load.run_w - harvest.mean
    seconds = needed * load.seconds_per_instruction
    hold = ""
    if net > 0:
        farads = 2 * net * seconds / (capacitor.turn_on_v ** 2 - capacitor.brown_out_v ** 2)
        hold = f"; {farads * 1e6:,.0f} uF would hold that in one on-period at these voltages"
    return (f"the firmware makes no progress: each on-period gives at most {budget:,} "
            f"instructions ({cycles:,.0f} cycles, {cycles / load.clock_hz * 1e3:.3g} ms), and "
            "a power cycle left the NVM and the host's files as it found them, so the same "
            f"state repeats; an uninterrupted run takes {needed:,} instructions{hold}; an "
            "intermittent build (`ariel build --power intermittent --on-period-cycles N`, N "
            f"below {cycles:,.0f} less its restart) checkpoints in units that fit")


def load_for(build: Build, cycles_per_instruction: float, sleep_w: float) -> Load:
    """The board's load: its run power at its clock."""
    board = build.board
    run_w = board.power.power_w(board.clock_hz)
    if run_w is None:
        raise ArielError(f"board {board.name} gives no run power ([power]: run_power_mw, or a "
                         "run current and supply voltage): the harvest model needs it")
    if not (math.isfinite(cycles_per_instruction) and cycles_per_instruction > 0):
        raise ArielError(f"cycles per instruction must be positive, got "
                         f"{cycles_per_instruction}")
    return Load(run_w, board.clock_hz, cycles_per_instruction, sleep_w)
