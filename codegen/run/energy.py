"""Time and energy of a run on a board, from its cycle count and the board file's figures.

    t = cycles / f            E = t * P,  P = I * V

with f the board's clock and P the chip's power running at f: the datasheet's run-mode
supply current I (running from flash in the configuration it states) times the supply
voltage V it was given at, or, where the board file has one, a power measured on the board
itself. It is an estimate of the microcontroller alone, at a constant power: the figure was
measured on other code than this model's."""

from __future__ import annotations

from dataclasses import dataclass

from codegen.target.boards import Board


@dataclass(frozen=True)
class Estimate:
    board: str
    cycles: int
    clock_hz: int
    seconds: float
    current_a: float | None  # None when the board file gives no current figure
    voltage_v: float | None  # None when it gives no supply voltage
    assumptions: tuple[str, ...]
    measured_power_w: float | None = None  # a power measured on the board, if given

    @property
    def milliseconds(self) -> float:
        return self.seconds * 1e3

    @property
    def power_w(self) -> float | None:
        if self.measured_power_w is not None:
            return self.measured_power_w
        if self.current_a is None or self.voltage_v is None:
            return None
        return self.current_a * self.voltage_v

    @property
    def microjoules(self) -> float | None:
        """E = cycles / f * I * V, in µJ; None unless the board has both figures."""
        power = self.power_w
        return None if power is None else self.seconds * power * 1e6


def seconds(board: Board, cycles: int) -> float:
    """Time for `cycles` at the board's clock."""
    if cycles < 0:
        raise ValueError(f"a cycle count cannot be negative ({cycles})")
    return cycles / board.clock_hz


def estimate(board: Board, cycles: int) -> Estimate:
    """Time, and energy where the board file has the figures, for `cycles` on `board`."""
    power = board.power
    measured = power.run_power_mw * 1e-3 if power.run_power_mw is not None else None
    return Estimate(board.name, cycles, board.clock_hz, seconds(board, cycles),
                    power.run_current_a(board.clock_hz), power.supply_voltage_v,
                    tuple(assumptions(board)), measured)


def assumptions(board: Board) -> list[str]:
    """What an estimate for `board` rests on, one short sentence each, for printing."""
    power, mhz = board.power, board.clock_hz / 1e6
    lines = [f"time = cycles / {mhz:g} MHz ({board.name}'s clock)"]
    if power.run_power_mw is not None:
        return lines + [
            f"power: {power.run_power_mw:g} mW, measured on {board.name} ({power.condition})",
            "the same power for every instruction: it was measured on other code than this "
            "model's",
            "the microcontroller's supply as that measurement took it; not start-up, sleep or "
            "I/O between inferences"]
    current = power.run_current_a(board.clock_hz)
    if current is None or power.supply_voltage_v is None:
        lines.append(f"no energy: {board.name}'s board file has no run-current and voltage "
                     f"figures ({power.note})")
        return lines
    if power.run_current_ma is not None:
        figure = f"{power.run_current_ma:g} mA at {mhz:g} MHz"
    else:
        figure = (f"{power.run_current_ua_per_mhz:g} µA/MHz x {mhz:g} MHz = "
                  f"{current * 1e3:.4g} mA")
    lines += [
        f"current: the datasheet's run-mode figure, {figure}"
        + (f" ({power.condition})" if power.condition else ""),
        f"voltage: {power.supply_voltage_v:g} V, the supply that figure is given at",
        "the same current for every instruction: the datasheet measured its own benchmark "
        "code, not this model, whose flash and memory traffic differ",
        "the microcontroller's supply only: not the board's other parts (debugger, "
        "regulators, LEDs), not start-up, sleep or I/O between inferences",
    ]
    return lines
