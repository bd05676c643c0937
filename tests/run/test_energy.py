"""The energy model's arithmetic, against values worked out by hand:
E = cycles / f * I * V."""

from dataclasses import replace

import pytest

from codegen.run.energy import assumptions, estimate, seconds
from codegen.target.boards import Power, get_board


def board_with(power: Power, clock_hz: int):
    return replace(get_board("mps2-an386"), name="test-board", clock_hz=clock_hz, power=power)


def test_current_at_the_clock():
    # 2,000,000 cycles at 100 MHz = 20 ms; 10 mA x 3.0 V = 30 mW; 30 mW x 20 ms = 600 µJ.
    board = board_with(Power(supply_voltage_v=3.0, run_current_ma=10.0), 100_000_000)
    result = estimate(board, 2_000_000)
    assert result.seconds == pytest.approx(0.020)
    assert result.milliseconds == pytest.approx(20.0)
    assert result.current_a == pytest.approx(0.010)
    assert result.power_w == pytest.approx(0.030)
    assert result.microjoules == pytest.approx(600.0)


def test_current_per_mhz():
    # 100 µA/MHz at 80 MHz = 8 mA; 8,000,000 cycles at 80 MHz = 0.1 s;
    # 0.1 s x 8 mA x 3.3 V = 2.64 mJ = 2,640 µJ.
    board = board_with(Power(supply_voltage_v=3.3, run_current_ua_per_mhz=100.0), 80_000_000)
    result = estimate(board, 8_000_000)
    assert result.current_a == pytest.approx(0.008)
    assert result.seconds == pytest.approx(0.1)
    assert result.microjoules == pytest.approx(2640.0)
    assert any("100 µA/MHz x 80 MHz = 8 mA" in line for line in result.assumptions)


def test_a_figure_at_the_clock_wins_over_one_per_mhz():
    power = Power(supply_voltage_v=1.8, run_current_ma=5.0, run_current_ua_per_mhz=1000.0)
    # 64e6 cycles at 64 MHz = 1 s; 5 mA x 1.8 V = 9 mW -> 9,000 µJ.
    assert estimate(board_with(power, 64_000_000), 64_000_000).microjoules == pytest.approx(9e3)


def test_energy_is_linear_in_cycles():
    board = board_with(Power(supply_voltage_v=3.0, run_current_ma=12.0), 120_000_000)
    one, three = estimate(board, 1_000_000), estimate(board, 3_000_000)
    assert three.microjoules == pytest.approx(3 * one.microjoules)
    # 1,000,000 cycles at 120 MHz = 8.333 ms; 12 mA x 3 V = 36 mW; 8.333 ms x 36 mW = 300 µJ.
    assert one.microjoules == pytest.approx(300.0)


def test_no_figures_gives_time_but_no_energy():
    board = board_with(Power(note="no published figure: an FPGA image"), 25_000_000)
    result = estimate(board, 25_000_000)
    assert result.seconds == pytest.approx(1.0)
    assert result.microjoules is None and result.power_w is None
    assert any("no published figure: an FPGA image" in line for line in result.assumptions)


def test_assumptions_say_what_is_and_is_not_counted():
    board = board_with(Power(supply_voltage_v=3.3, run_current_ma=20.0,
                             condition="LDO, code in flash, caches on"), 100_000_000)
    text = "\n".join(assumptions(board))
    assert "20 mA at 100 MHz (LDO, code in flash, caches on)" in text
    assert "3.3 V" in text
    assert "not the board's other parts" in text
    assert "cycles / 100 MHz" in text


def test_shipped_dev_kits():
    """One millisecond of cycles on each kit: time always; energy from the board's figure."""
    expected_uj = {"nucleo-l4r5zi": 78.0,  # 78.0 mW measured by MLPerf Tiny, for 1 ms
                   "nrf52840-dk": 9.9,  # 3.3 mA x 3.0 V for 1 ms
                   "disco-f746ng": None}  # no figure could be sourced
    for name, microjoules in expected_uj.items():
        board = get_board(name)
        result = estimate(board, board.clock_hz // 1000)
        assert result.milliseconds == pytest.approx(1.0)
        if microjoules is None:
            assert result.microjoules is None
        else:
            assert result.microjoules == pytest.approx(microjoules)


def test_negative_cycles_are_refused():
    with pytest.raises(ValueError):
        seconds(get_board("mps2-an386"), -1)
