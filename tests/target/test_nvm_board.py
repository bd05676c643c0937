"""A board's [nvm] table: ariel's two boards with one carry their datasheets' figures, an
intermittent build keeps its code out of internal-flash NVM, and a wrong table gets one line
per problem naming the field."""

import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.target.board_schema import check_board
from codegen.target.boards import get_board
from tests.target.test_board_files import MY_BOARD, _write

KIB = 1024

FRAM = """
[nvm]
kind = "fram"
interface = "spi"
origin = 0x00200000
size = 0x00020000
spi_clock_hz = 20_000_000
spi_command_bytes = 5
endurance_cycles = 1e14
"""


def _parsed(text: str) -> dict:
    import tomllib
    return tomllib.loads(text)


def test_l4r5_keeps_its_checkpoints_in_the_last_512_kib_of_bank_2():
    board = get_board("nucleo-l4r5zi")
    nvm = board.nvm
    assert (nvm.kind, nvm.interface, nvm.page_bytes, nvm.program_bytes) == \
        ("flash", "internal", 4 * KIB, 8)
    assert nvm.chip_origin == 0x08180000 and nvm.size == 512 * KIB
    assert nvm.endurance_cycles == 10_000
    # the emulated region is the same offset into the flash image as on the chip
    assert nvm.origin - board.flash.origin == nvm.chip_origin - board.chip.flash.origin
    # one page erased and 4 KiB programmed: 22.02 ms + 512 double words x 81.7 us
    assert nvm.write_seconds(4096, pages_erased=1) == pytest.approx(0.02202 + 512 * 81.7e-6)
    reserved = board.for_intermittent()
    assert reserved.flash.size == 1536 * KIB and reserved.flash.end == nvm.origin
    assert reserved.intermittent and not board.intermittent
    assert board.flash.size == 2048 * KIB  # a normal build keeps the whole flash


def test_fram_board_charges_the_spi_transfer():
    nvm = get_board("nucleo-l4r5zi-fram").nvm
    assert (nvm.kind, nvm.interface, nvm.spi_clock_hz) == ("fram", "spi", 30_000_000)
    assert nvm.endurance_cycles == 1e15 and not nvm.erases
    # 1,000 bytes in two writes: (1000 + 2 x 5 command bytes) x 8 clocks at 30 MHz
    assert nvm.write_seconds(1000, writes=2) == pytest.approx(1010 * 8 / 30e6)
    assert nvm.write_energy_j(1.0) == pytest.approx(7.92e-3)
    board = get_board("nucleo-l4r5zi-fram")
    assert board.for_intermittent().flash == board.flash  # external: the flash stays whole


def test_quad_spi_fram_board_sends_four_bits_a_clock():
    nvm = get_board("nucleo-l4r5zi-qspi-fram").nvm
    assert (nvm.spi_lines, nvm.spi_clock_hz, nvm.endurance_cycles) == (4, 60_000_000, 1e14)
    # 1,000 bytes in two writes: (1000 + 2 x 5 command bytes) x 2 clocks at 60 MHz, an eighth
    # of the single-line board's time for the same bytes
    assert nvm.write_seconds(1000, writes=2) == pytest.approx(1010 * 2 / 60e6)
    single = get_board("nucleo-l4r5zi-fram").nvm
    assert single.write_seconds(1000, writes=2) == pytest.approx(
        8 * nvm.write_seconds(1000, writes=2))
    assert "quad SPI at 60 MHz" in nvm.describe()


def test_boards_check_accepts_a_board_with_fram(tmp_path):
    path = _write(tmp_path, MY_BOARD + FRAM)
    result = CliRunner().invoke(main, ["boards", "--check", str(path)])
    assert result.exit_code == 0, result.output


BAD_TABLES = {
    "kind": ('kind = "fram"', 'kind = "tape"',
             ["nvm.kind: expected one of flash, fram, mram, got 'tape'"]),
    "spi-clock": ("spi_clock_hz = 20_000_000\n", "",
                  ["nvm.spi_clock_hz: missing; spi NVM needs it"]),
    "internal-fram": ('interface = "spi"', 'interface = "internal"', [
        "nvm.write_ns_per_byte: missing; internal fram needs its write time per byte",
        "nvm.chip_origin: missing; internal NVM has an address on the chip"]),
    "in-ram": ("origin = 0x00200000", "origin = 0x20008000", [
        "nvm: 0x20008000..0x20028000 overlaps the RAM the firmware is linked in; NVM must "
        "keep what RAM loses"]),
    "in-flash": ("origin = 0x00200000", "origin = 0x00010000", [
        "nvm: 0x00010000..0x00030000 overlaps the flash the firmware is linked in "
        "(0x00000000..0x00040000); an external memory needs a region of its own in the "
        "emulator's map"]),
    "outside-the-machine": ("origin = 0x00200000", "origin = 0x10000000", [
        "nvm: 0x10000000..0x10020000 is not inside QEMU mps2-an386's memory (code 4 MiB at "
        "0x00000000, data 4 MiB at 0x20000000), where the emulated NVM must be writable"]),
    "endurance": ("endurance_cycles = 1e14", "endurance_cycles = -3", [
        "nvm.endurance_cycles: expected the erase/write cycles it endures, a number above 0, "
        "got -3"]),
    "lines": ("spi_clock_hz = 20_000_000\n", "spi_clock_hz = 20_000_000\nspi_lines = 3\n", [
        "nvm.spi_lines: expected the data lines a write uses, 1 (SPI), 2 (dual) or 4 (quad), "
        "got 3"]),
    "page-on-fram": ("[nvm]\n", "[nvm]\npage_bytes = 4096\n", [
        "nvm.page_bytes: fram writes bytes in place; only flash has an erase page"]),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_nvm_tables_get_one_line_each(case):
    change, replacement, expected = BAD_TABLES[case]
    assert change in FRAM
    assert check_board(_parsed(MY_BOARD + FRAM.replace(change, replacement))) == expected


def test_internal_flash_nvm_must_end_the_flash_and_match_the_chip():
    flash = """
[nvm]
kind = "flash"
interface = "internal"
origin = 0x00030000
size = 0x00008000
chip_origin = 0x08030000
page_bytes = 2048
program_bytes = 8
program_us = 80.0
erase_us = 22000.0
endurance_cycles = 10000
"""
    assert check_board(_parsed(MY_BOARD + flash)) == [
        "nvm: internal flash NVM must be the last part of the flash (0x00000000..0x00040000 "
        "where the simulation build is linked), ending at 0x00040000; got "
        "0x00030000..0x00038000"]
    moved = flash.replace("0x00030000", "0x00038000").replace("0x08030000", "0x08000000")
    assert check_board(_parsed(MY_BOARD + moved)) == [
        "nvm.chip_origin: 0x08000000 is not the same place in the chip's flash as origin "
        "0x00038000 in the emulator's (expected 0x08038000)"]
    assert check_board(_parsed(MY_BOARD + moved.replace("0x08000000", "0x08038000"))) == []
    missing = flash.replace("erase_us = 22000.0\n", "")
    assert "nvm.erase_us: missing; flash NVM needs it" in check_board(_parsed(MY_BOARD + missing))
