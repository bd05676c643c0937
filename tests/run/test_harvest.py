"""The energy-harvesting model against closed-form capacitor charge and discharge, and its
trace files."""

from __future__ import annotations

import math

import pytest

from codegen.errors import ArielError
from codegen.run.harvest import (
    Capacitor,
    Harvest,
    Load,
    Tank,
    charge_seconds,
    on_period_cycles,
)

CAP = Capacitor(100e-6, 3.3, 1.8)
LOAD = Load(run_w=78e-3, clock_hz=120e6, cycles_per_instruction=1.25, sleep_w=0.5e-3)


def test_charge_from_empty_and_from_brown_out_equal_the_closed_form():
    # A constant P into C from V0 to V1 drawing S meanwhile: C (V1^2 - V0^2) / 2 / (P - S).
    tank = Tank(Harvest.constant(5e-3), CAP)
    assert tank.charge(LOAD.sleep_w)
    first = 0.5 * 100e-6 * 3.3 ** 2 / (5e-3 - 0.5e-3)
    assert tank.time == pytest.approx(first, rel=1e-12)
    assert charge_seconds(CAP, 5e-3, LOAD, 0.0) == pytest.approx(first, rel=1e-12)
    assert tank.joules == pytest.approx(CAP.on_energy)

    lasted = tank.drain(1.0, LOAD.run_w)
    on = 0.5 * 100e-6 * (3.3 ** 2 - 1.8 ** 2) / (78e-3 - 5e-3)
    assert lasted == pytest.approx(on, rel=1e-12)
    assert CAP.volts(tank.joules) == pytest.approx(1.8)
    assert on_period_cycles(CAP, 5e-3, LOAD) == pytest.approx(on * 120e6, rel=1e-12)

    start = tank.time
    assert tank.charge(LOAD.sleep_w)
    again = 0.5 * 100e-6 * (3.3 ** 2 - 1.8 ** 2) / (5e-3 - 0.5e-3)
    assert tank.time - start == pytest.approx(again, rel=1e-12)
    assert charge_seconds(CAP, 5e-3, LOAD, 1.8) == pytest.approx(again, rel=1e-12)


def test_lasts_predicts_the_drain_without_running_it():
    tank = Tank(Harvest.constant(5e-3), CAP, 0.0, CAP.on_energy)
    predicted = tank.lasts(LOAD.run_w)
    assert (tank.time, tank.joules) == (0.0, CAP.on_energy)
    assert tank.drain(10.0, LOAD.run_w) == pytest.approx(predicted, rel=1e-12)


def test_a_harvest_that_covers_the_run_power_never_browns_out_and_clamps_at_turn_on():
    tank = Tank(Harvest.constant(0.1), CAP, 0.0, CAP.on_energy)
    assert tank.lasts(LOAD.run_w) == math.inf
    assert tank.drain(5.0, LOAD.run_w) is None
    assert tank.joules == pytest.approx(CAP.on_energy)  # the extra is lost
    assert on_period_cycles(CAP, 0.1, LOAD) == math.inf


def test_a_harvest_below_the_sleep_power_never_turns_the_board_on():
    assert not Tank(Harvest.constant(0.4e-3), CAP).charge(LOAD.sleep_w)


def test_a_trace_charges_only_while_it_gives_power(tmp_path):
    # 10 mW for 1 s, nothing for 1 s, repeated. 0.2 F charged from 0 to 3.3 V needs
    # 1.089 J = 108.9 s of 10 mW: 108 whole periods (216 s) and 0.9 s more.
    trace = tmp_path / "sun.csv"
    trace.write_text("time_s,power_w\n0,0.01\n1,0\n2,0\n")
    harvest = Harvest.from_csv(trace)
    assert (harvest.period, harvest.mean) == (2.0, 0.005)
    tank = Tank(harvest, Capacitor(0.2, 3.3, 1.8))
    assert tank.charge(0.0)
    assert tank.time == pytest.approx(108 * 2 + 0.9, rel=1e-9)
    # In the dark, the board runs on the capacitor alone: C (V1^2 - V0^2) / 2 / P.
    tank = Tank(harvest, Capacitor(0.2, 3.3, 1.8), 1.0, 0.5 * 0.2 * 3.3 ** 2)
    assert tank.lasts(1.0) == pytest.approx(0.5 * 0.2 * (3.3 ** 2 - 1.8 ** 2) / 1.0)
    # Periods that bring in less than the sleep power takes out: never on (4 mJ in the sun,
    # 6 mJ out in the dark). The same trace turns a small capacitor on in its first second.
    assert not Tank(harvest, Capacitor(0.2, 3.3, 1.8)).charge(0.006)
    small = Tank(harvest, CAP)
    assert small.charge(0.006)
    assert small.time == pytest.approx(CAP.on_energy / 0.004)


@pytest.mark.parametrize("text, message", [
    ("0,0.01\n", "needs at least two rows"),
    ("1,0.01\n2,0\n", "the first at time 0"),
    ("0,0.01\n0,0.02\n1,0\n", "times must increase"),
    ("0,-1\n1,0\n", "not negative"),
    ("0,0.01\n1,x\n", "expected `time_s,power_w`"),
    ("0,0.01,3\n1,0\n", "expected `time_s,power_w`")])
def test_bad_traces_are_one_line_errors(tmp_path, text, message):
    trace = tmp_path / "bad.csv"
    trace.write_text(text)
    with pytest.raises(ArielError, match=message):
        Harvest.from_csv(trace)


def test_bad_capacitors_are_errors():
    with pytest.raises(ArielError, match="brown-out voltage"):
        Capacitor(1e-4, 1.8, 3.3)
    with pytest.raises(ArielError, match="capacitance must be positive"):
        Capacitor(0, 3.3, 1.8)
