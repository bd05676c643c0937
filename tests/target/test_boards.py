"""Board files: every one loads and carries every field; the dev kits carry their chips' real
figures; simulation builds are linked at the emulator's addresses with the chip's sizes."""

import re

import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.errors import ArielError
from codegen.target.boards import Region, all_boards, get_board, load_board
from codegen.target.firmware import linker_script

KIB, MIB = 1024, 1024 * 1024
DEV_KITS = ["nucleo-l4r5zi", "disco-f746ng", "nrf52840-dk"]

# name: (core, fpu, MHz, (flash origin, size), (RAM origin, size), QEMU machine, wait states)
EXPECTED = {
    "nucleo-l4r5zi": ("cortex-m4", "fpv4-sp-d16", 120, (0x08000000, 2 * MIB),
                      (0x20000000, 640 * KIB), "mps2-an386", 5),
    "nucleo-l4r5zi-fram": ("cortex-m4", "fpv4-sp-d16", 120, (0x08000000, 2 * MIB),
                           (0x20000000, 640 * KIB), "mps2-an386", 5),
    "nucleo-l4r5zi-qspi-fram": ("cortex-m4", "fpv4-sp-d16", 120, (0x08000000, 2 * MIB),
                                (0x20000000, 640 * KIB), "mps2-an386", 5),
    "disco-f746ng": ("cortex-m7", "fpv5-sp-d16", 216, (0x08000000, 1 * MIB),
                     (0x20000000, 320 * KIB), "mps2-an500", 7),
    "nrf52840-dk": ("cortex-m4", "fpv4-sp-d16", 64, (0x00000000, 1 * MIB),
                    (0x20000000, 256 * KIB), "mps2-an386", None),
    "mps2-an386": ("cortex-m4", "fpv4-sp-d16", 25, (0, 4 * MIB), (0x20000000, 4 * MIB),
                   "mps2-an386", 0),
    "mps2-an500": ("cortex-m7", "fpv5-d16", 25, (0, 4 * MIB), (0x20000000, 4 * MIB),
                   "mps2-an500", 0),
    "netduinoplus2": ("cortex-m4", "fpv4-sp-d16", 168, (0x08000000, 1 * MIB),
                      (0x20000000, 128 * KIB), "netduinoplus2", 5),
    "stm32f4-discovery": ("cortex-m4", "fpv4-sp-d16", 168, (0x08000000, 1 * MIB),
                          (0x20000000, 128 * KIB), "netduinoplus2", 5),
    "nucleo-h753zi": ("cortex-m7", "fpv5-d16", 400, (0x08000000, 2 * MIB),
                      (0x24000000, 512 * KIB), "mps2-an500", 2),
    "nucleo-h7a3zi-q": ("cortex-m7", "fpv5-d16", 280, (0x08000000, 2 * MIB),
                        (0x24000000, 1 * MIB), "mps2-an500", 6),
    "nucleo-g071rb": ("cortex-m0plus", "none", 64, (0x08000000, 128 * KIB),
                      (0x20000000, 36 * KIB), "microbit", 2),
}
SOURCE_KEYS = {"memory", "clock", "flash_timing", "power"}


def test_every_board_file_is_known_here():
    assert sorted(b.name for b in all_boards()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_carries_every_field(name):
    board = get_board(name)
    core, fpu, mhz, flash, ram, machine, wait_states = EXPECTED[name]
    assert (board.core, board.fpu, board.clock_hz) == (core, fpu, mhz * 1_000_000)
    assert (board.chip.flash.origin, board.chip.flash.size) == flash
    assert (board.chip.ram.origin, board.chip.ram.size) == ram
    assert board.qemu_machine == machine
    assert board.wait_states == wait_states
    assert board.description and board.stack_bytes % 8 == 0
    # A cache that hides wait states is named; where none is needed, that is said too.
    assert board.wait_states_hidden_by
    # Energy needs a current and a voltage; a board without them says why.
    power = board.power
    has_figures = (power.run_current_a(board.clock_hz) is not None
                   and power.supply_voltage_v is not None)
    assert has_figures or power.note
    assert SOURCE_KEYS <= set(board.sources), SOURCE_KEYS - set(board.sources)
    assert all(text.strip() for text in board.sources.values())


@pytest.mark.parametrize("name", DEV_KITS)
def test_dev_kit_links_at_the_emulators_addresses_with_its_own_sizes(name):
    board = get_board(name)
    emu = board.emulation
    assert not emu.own_map
    assert board.flash == Region(emu.code.origin, board.chip.flash.size)
    assert board.ram == Region(emu.data.origin, board.chip.ram.size)
    assert board.flash.end <= emu.code.end and board.ram.end <= emu.data.end
    recorded = board.memory_map_dict()
    assert recorded["linked_for"]["name"] == f"qemu {emu.qemu_machine}"
    assert recorded["linked_for"]["ram"]["size"] == board.chip.ram.size
    assert recorded["chip"]["flash"]["origin"] == f"0x{board.chip.flash.origin:08X}"


@pytest.mark.parametrize("name", ["mps2-an386", "mps2-an500", "netduinoplus2"])
def test_emulated_chips_link_at_their_own_map(name):
    board = get_board(name)
    assert board.emulation.own_map
    assert (board.flash, board.ram) == (board.chip.flash, board.chip.ram)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_linker_script_regions_are_the_boards(name):
    board = get_board(name)
    script = linker_script(board, board.stack_bytes)
    found = re.findall(r"(FLASH|RAM) \(\w+\)\s*: ORIGIN = (0x[0-9A-F]+), LENGTH = (\d+)", script)
    regions = {name: (int(origin, 16), int(size)) for name, origin, size in found}
    assert regions["FLASH"] == (board.flash.origin, board.chip.flash.size)
    assert regions["RAM"] == (board.ram.origin, board.chip.ram.size)
    assert board.map_summary in script


EMULATOR_REGIONS = ("code_origin = 0\ncode_size = 0x400000\ndata_origin = 0x20000000\n"
                    "data_size = 0x400000")


def _board_file(tmp_path, extra_emulator: str, ram_size: int = 0x00800000) -> str:
    path = tmp_path / "big.toml"
    path.write_text(f"""
name = "big"
description = "a chip with more RAM than its emulator"
core = "cortex-m4"
clock_hz = 10_000_000
[memory.flash]
origin = 0x08000000
size = 0x1000
[memory.ram]
origin = 0x20000000
size = {ram_size}
[emulator]
qemu_machine = "mps2-an386"
{extra_emulator}
""")
    return path


def test_chip_larger_than_its_emulator_is_refused(tmp_path):
    path = _board_file(tmp_path, EMULATOR_REGIONS)
    with pytest.raises(ArielError, match=r"big's RAM \(8,388,608 B\) is larger than QEMU "
                                         r"mps2-an386's memory for it \(4,194,304 B"):
        load_board(path)


def test_missing_figures_read_as_absent_not_zero(tmp_path):
    board = load_board(_board_file(tmp_path, EMULATOR_REGIONS, ram_size=0x10000))
    assert board.wait_states is None
    assert board.power.run_current_a(board.clock_hz) is None
    assert board.power.supply_voltage_v is None
    assert board.power.note == "no published figure"


def test_invalid_board_file_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "broken"\n')
    with pytest.raises(ArielError, match="broken.toml' is invalid"):
        load_board(path)


def test_ariel_boards_lists_the_dev_kits():
    result = CliRunner().invoke(main, ["boards"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert "cortex-m4" in rows["nucleo-l4r5zi"] and "120 MHz" in rows["nucleo-l4r5zi"]
    assert "2 MiB" in rows["nucleo-l4r5zi"] and "640 KiB" in rows["nucleo-l4r5zi"]
    assert "QEMU mps2-an386" in rows["nucleo-l4r5zi"]
    assert "216 MHz" in rows["disco-f746ng"] and "320 KiB" in rows["disco-f746ng"]
    assert "QEMU mps2-an500" in rows["disco-f746ng"]
    assert "64 MHz" in rows["nrf52840-dk"] and "256 KiB" in rows["nrf52840-dk"]


def test_a_region_holds_its_first_byte_and_not_the_byte_after_its_end():
    region = Region(0x0800_0000, 0x1000)
    assert region.contains(0x0800_0000) and region.contains(0x0800_0FFF)
    assert not region.contains(0x0800_1000) and not region.contains(0x07FF_FFFF)
