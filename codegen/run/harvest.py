"""The energy-harvesting model: a capacitor charged by a harvested power, switching the board
on at its turn-on voltage and off at its brown-out voltage, and drained while on by the
board's run power and its NVM writes. Pure Python; codegen/run/power_cuts.py couples it to
the emulator, which cuts the power at the instruction where the capacitor runs out.

The capacitor holds E = C V^2 / 2. Its energy changes at the harvested power less the load:
the sleep power while it charges (the chip held off or asleep), the run power while the
board runs, plus each NVM write's own energy. Harvested power is piecewise constant (a
constant, or a trace of time, power steps repeated for ever), so every stretch between two
changes is exact arithmetic: no time steps. While the board runs, the capacitor is kept
from rising above its turn-on voltage (what a harvester's regulator or clamp does); the
energy beyond is lost."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import ArielError


@dataclass(frozen=True)
class Capacitor:
    farads: float
    turn_on_v: float
    brown_out_v: float

    def __post_init__(self) -> None:
        if not self.farads > 0:
            raise ArielError(f"the capacitance must be positive, got {self.farads:g} F")
        if not 0 <= self.brown_out_v < self.turn_on_v:
            raise ArielError(f"the brown-out voltage ({self.brown_out_v:g} V) must be below the "
                             f"turn-on voltage ({self.turn_on_v:g} V) and not negative")

    def energy(self, volts: float) -> float:
        return 0.5 * self.farads * volts * volts

    def volts(self, joules: float) -> float:
        return math.sqrt(2 * max(joules, 0.0) / self.farads)

    @property
    def on_energy(self) -> float:
        return self.energy(self.turn_on_v)

    @property
    def off_energy(self) -> float:
        return self.energy(self.brown_out_v)

    @property
    def usable(self) -> float:
        """Energy between turn-on and brown-out: one on-period's worth, harvest aside."""
        return self.on_energy - self.off_energy


@dataclass(frozen=True)
class Harvest:
    """Harvested power: `powers[i]` watts from `starts[i]` seconds on, the whole trace
    repeating after `period` seconds (one step and no period: a constant)."""

    starts: tuple[float, ...]
    powers: tuple[float, ...]
    period: float = 0.0
    description: str = ""

    @classmethod
    def constant(cls, watts: float) -> Harvest:
        if not watts >= 0:
            raise ArielError(f"the harvested power must not be negative, got {watts:g} W")
        return cls((0.0,), (watts,), 0.0, f"a constant {watts * 1e3:g} mW")

    @classmethod
    def from_csv(cls, path: Path) -> Harvest:
        """A CSV file of rows `time_s,power_w` (a header row is allowed): each power holds
        from its time to the next row's; the last row's time ends the trace, which then
        repeats from the first."""
        path = Path(path)
        try:
            rows = list(csv.reader(path.read_text().splitlines()))
        except OSError as exc:
            raise ArielError(f"cannot read the harvest trace '{path}': {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ArielError(f"the harvest trace '{path}' is not a text (CSV) file") from None
        points = []
        for number, row in enumerate(rows, start=1):
            if not row or not "".join(row).strip():
                continue
            try:
                time, power = (float(field) for field in row[:2])
                if len(row) != 2:
                    raise ValueError
            except ValueError:
                if number == 1 and not _is_number(row[0]):
                    continue  # a header
                raise ArielError(f"{path}, line {number}: expected `time_s,power_w`, got "
                                 f"{','.join(row)!r}") from None
            if not (math.isfinite(time) and math.isfinite(power)) or power < 0:
                raise ArielError(f"{path}, line {number}: times must be finite and powers "
                                 f"finite and not negative, got {time:g}, {power:g}")
            if points and time <= points[-1][0]:
                raise ArielError(f"{path}, line {number}: times must increase ({time:g} s "
                                 f"after {points[-1][0]:g} s)")
            points.append((time, power))
        if len(points) < 2 or points[0][0] != 0:
            raise ArielError(f"the harvest trace '{path}' needs at least two rows, the first at "
                             "time 0 (the last row's time ends the trace, which repeats)")
        times = [t for t, _ in points]
        return cls(tuple(times[:-1]), tuple(p for _, p in points[:-1]), times[-1],
                   f"the trace {path.name} ({times[-1]:g} s, repeated)")

    def step(self, time: float) -> tuple[float, float]:
        """The power at `time` and when it next changes (inf: never)."""
        if self.period == 0:
            return self.powers[0], math.inf
        turns, within = divmod(time, self.period)
        index = max(i for i, start in enumerate(self.starts) if start <= within)
        end = self.starts[index + 1] if index + 1 < len(self.starts) else self.period
        return self.powers[index], turns * self.period + end

    @property
    def mean(self) -> float:
        if self.period == 0:
            return self.powers[0]
        ends = [*self.starts[1:], self.period]
        return sum(p * (e - s) for p, s, e in zip(self.powers, self.starts, ends,
                                                  strict=True)) / self.period


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class Tank:
    """The capacitor's energy at a time, under a harvest."""

    harvest: Harvest
    capacitor: Capacitor
    time: float = 0.0
    joules: float = 0.0

    def charge(self, load_w: float) -> bool:
        """Charge to the turn-on energy while drawing `load_w`; False (time left where it
        got) if it never gets there: a whole trace period, or a constant power, that leaves
        the energy no higher."""
        target = self.capacitor.on_energy
        period_start, energy_at_start = self.time, self.joules
        while self.joules < target:
            power, until = self.harvest.step(self.time)
            rate = power - load_w
            if rate > 0 and self.joules + rate * (until - self.time) >= target:
                self.time += (target - self.joules) / rate
                self.joules = target
                return True
            if math.isinf(until):
                return False
            self.joules = max(self.joules + rate * (until - self.time), 0.0)
            self.time = until
            if self.time - period_start >= self.harvest.period:
                if self.joules <= energy_at_start:
                    return False
                period_start, energy_at_start = self.time, self.joules
        return True

    def drain(self, seconds: float, load_w: float) -> float | None:
        """Run `seconds` drawing `load_w`; the time into them at which the energy fell to the
        brown-out energy (the tank stops there), or None if it lasted."""
        floor, ceiling = self.capacitor.off_energy, self.capacitor.on_energy
        start, end = self.time, self.time + seconds
        while self.time < end:
            power, until = self.harvest.step(self.time)
            stop = min(until, end)
            rate = power - load_w
            if rate < 0 and self.joules + rate * (stop - self.time) <= floor:
                self.time += (self.joules - floor) / -rate
                self.joules = floor
                return self.time - start
            if math.isinf(stop):  # for ever at a power that covers the load
                self.joules = ceiling if rate > 0 else self.joules
                return None
            self.joules = min(self.joules + rate * (stop - self.time), ceiling)
            self.time = stop
        return None

    def lasts(self, load_w: float) -> float:
        """Seconds until brown-out drawing `load_w` from now (inf: never), without running:
        a whole trace period that ends with no less energy than it began with repeats."""
        probe = Tank(self.harvest, self.capacitor, self.time, self.joules)
        if self.harvest.period == 0:
            spent = probe.drain(math.inf, load_w)
            return math.inf if spent is None else spent
        total = 0.0
        while True:
            before = probe.joules
            spent = probe.drain(self.harvest.period, load_w)
            if spent is not None:
                return total + spent
            total += self.harvest.period
            if probe.joules >= before:
                return math.inf


@dataclass(frozen=True)
class Load:
    """What the board draws: its run power at its clock, an average number of cycles per
    instruction (from the core's cycle model) and its sleep power while the capacitor
    charges."""

    run_w: float
    clock_hz: float
    cycles_per_instruction: float
    sleep_w: float = 0.0

    @property
    def seconds_per_instruction(self) -> float:
        return self.cycles_per_instruction / self.clock_hz

    @property
    def joules_per_instruction(self) -> float:
        return self.run_w * self.seconds_per_instruction

    def instructions_in(self, seconds: float) -> int:
        return int(seconds / self.seconds_per_instruction) if math.isfinite(seconds) else \
            1 << 62


def on_period_cycles(capacitor: Capacitor, harvested_w: float, load: Load) -> float:
    """Closed form for a constant harvest: cycles the board runs from turn-on to brown-out
    (inf if the harvest covers the run power)."""
    net = load.run_w - harvested_w
    return math.inf if net <= 0 else capacitor.usable / net * load.clock_hz


def charge_seconds(capacitor: Capacitor, harvested_w: float, load: Load,
                   from_volts: float) -> float:
    """Closed form for a constant harvest: seconds from `from_volts` to turn-on."""
    net = harvested_w - load.sleep_w
    need = capacitor.on_energy - capacitor.energy(from_volts)
    return math.inf if net <= 0 else need / net
