"""The dev kits' board data for running on the real board: every one has a console UART, a
clock tree that gives its clock, a pyOCD target and a Renode table (a platform, or a note
saying there is none); the UART addresses are the reference manuals'; the generated
board_config.h carries them."""

import re

import pytest

from codegen.devkit.uart import board_config, require_console, uart_sources
from codegen.errors import ArielError
from codegen.target.board_kit import parse_pin
from codegen.target.boards import all_boards, get_board

DEV_KITS = ["nucleo-l4r5zi", "disco-f746ng", "nrf52840-dk", "stm32f4-discovery",
            "nucleo-h753zi", "nucleo-h7a3zi-q", "nucleo-g071rb"]
# board: (peripheral, base, TX pin, AF, pyOCD target), from the boards' user manuals and the
# chips' reference manuals (cited in each board file).
CONSOLES = {
    "nucleo-l4r5zi": ("LPUART1", 0x40008000, "PG7", 8, "stm32l4r5zitx"),
    "disco-f746ng": ("USART1", 0x40011000, "PA9", 7, "stm32f746nghx"),
    "nrf52840-dk": ("UARTE0", 0x40002000, "P0.06", None, "nrf52840"),
    "stm32f4-discovery": ("USART2", 0x40004400, "PA2", 7, "stm32f407vgtx"),
    "nucleo-h753zi": ("USART3", 0x40004800, "PD8", 7, "stm32h753zitx"),
    "nucleo-h7a3zi-q": ("USART3", 0x40004800, "PD8", 7, "stm32h7a3zitxq"),
    "nucleo-g071rb": ("USART2", 0x40004400, "PA2", 1, "stm32g071rbtx"),
}
# Boards with a Renode platform of ariel's, and the console's name there. Renode 1.16
# describes the first five chips itself; for the STM32L4R5 and STM32H7A3 it has none, and
# ariel's own description uses its STM32F7_USART model for the console.
RENODE = {"disco-f746ng": "usart1", "nrf52840-dk": "uart0", "stm32f4-discovery": "usart2",
          "nucleo-h753zi": "usart3", "nucleo-g071rb": "usart2", "nucleo-l4r5zi": "lpuart1",
          "nucleo-h7a3zi-q": "usart3"}
RENODE_DESCRIBES_THE_CHIP = {"disco-f746ng", "nrf52840-dk", "stm32f4-discovery",
                             "nucleo-h753zi", "nucleo-g071rb"}


def test_the_dev_kits_are_the_boards_with_a_console():
    assert sorted(b.name for b in all_boards() if b.console) == sorted(DEV_KITS)


@pytest.mark.parametrize("name", DEV_KITS)
def test_console_is_the_manuals(name):
    board = get_board(name)
    peripheral, base, tx, af, target = CONSOLES[name]
    console = board.console
    assert (console.peripheral, console.base, console.tx.name) == (peripheral, base, tx)
    assert console.alternate_function == af
    assert console.baud == 115200
    assert board.debug.pyocd_target == target
    for key in ("console", "clock_tree", "debug", "renode"):
        assert board.sources.get(key, "").strip(), key


@pytest.mark.parametrize("name", DEV_KITS)
def test_clock_tree_reaches_the_boards_clock(name):
    board = get_board(name)
    tree = board.clock_tree
    assert round(tree.core_hz) == board.clock_hz
    uart_hz = tree.bus_hz(board.console.bus)
    # The baud rate divider must be representable: at least 16 kernel clocks per bit.
    assert uart_hz >= 16 * board.console.baud
    if tree.pll_n > 1:
        assert tree.flash_latency == board.wait_states


@pytest.mark.parametrize("name", DEV_KITS)
def test_renode_platform_or_the_reason_there_is_none(name):
    board = get_board(name)
    renode = board.renode
    assert renode.available and renode.uart_name == RENODE[name]
    if name in RENODE_DESCRIBES_THE_CHIP:
        assert renode.platform.startswith("platforms/")
    else:
        assert not renode.platform
        assert "no" in renode.note and "Renode" in renode.note
    # A UART model's clock is the console's kernel clock, the bus it sits on.
    if "frequency" in renode.uart_properties:
        bus_hz = board.clock_tree.bus_hz(board.console.bus)
        assert int(renode.uart_properties["frequency"]) == round(bus_hz)


def test_bus_clocks_within_the_datasheets_limits():
    # STM32F4: APB1 <= 42 MHz, APB2 <= 84 MHz (DS8626); STM32F7: 54 and 108 MHz (DS10916).
    f4, f7 = get_board("stm32f4-discovery").clock_tree, get_board("disco-f746ng").clock_tree
    assert f4.bus_hz("apb1") == 42e6 and f4.bus_hz("apb2") == 84e6
    assert f7.bus_hz("apb1") == 54e6 and f7.bus_hz("apb2") == 108e6
    # STM32H753 in VOS1: AXI/AHB at most 240 MHz, APB at most 120 MHz (DS12117).
    h7 = get_board("nucleo-h753zi").clock_tree
    assert h7.core_hz / h7.ahb_div == 200e6 and h7.bus_hz("apb1") == 100e6


@pytest.mark.parametrize("name", DEV_KITS)
def test_board_config_header_carries_the_board_file(name):
    board = get_board(name)
    text = board_config(board)
    defines = dict(re.findall(r"#define (ARIEL_\w+) (\S+)", text))
    assert defines["ARIEL_UART_BASE"] == f"0x{board.console.base:08X}u"
    assert defines["ARIEL_CLOCK_HZ"] == f"{board.clock_hz}u"
    assert defines["ARIEL_UART_TX_PIN"] == f"{board.console.tx.number}u"
    assert defines["ARIEL_UART_KERNEL_HZ"] == \
        f"{round(board.clock_tree.bus_hz(board.console.bus))}u"
    assert defines["ARIEL_FLASH_LATENCY"] == f"{board.clock_tree.flash_latency}u"
    if board.console.clock_enable:
        register, bit = board.console.clock_enable
        assert defines["ARIEL_UART_RCC_ENR"] == f"0x{register:02X}u"
        assert defines["ARIEL_UART_RCC_BIT"] == f"{bit}u"


@pytest.mark.parametrize("name", DEV_KITS)
def test_sources_pick_the_familys_file(name):
    board = get_board(name)
    sources = uart_sources(board)
    assert f"firmware/board/{board.console.family}.c" in sources
    assert ("firmware/board/cortex_m7.c" in sources) == (board.core == "cortex-m7")
    assert "firmware/harness.c" not in sources and "firmware/semihost.c" not in sources


def test_boards_without_a_console_have_no_uart_build():
    with pytest.raises(ArielError, match=r"board mps2-an386 has no console UART .*boards with "
                                         r"one: .*nucleo-l4r5zi"):
        require_console(get_board("mps2-an386"))


def test_pins_parse_as_the_manuals_write_them():
    assert (parse_pin("PG7").port, parse_pin("PG7").number) == (6, 7)
    assert (parse_pin("P0.06").port, parse_pin("P0.06").number) == (0, 6)
    with pytest.raises(ValueError, match="neither"):
        parse_pin("GPIO7")


def test_m0plus_board_simulates_on_the_microbit_with_a_larger_sram():
    board = get_board("nucleo-g071rb")
    assert board.qemu_machine == "microbit" and board.fpu == "none"
    assert "-global" in board.emulation.qemu_args
    assert board.chip.ram.size <= board.emulation.data.size


def test_clock_tree_that_misses_the_clock_is_refused(tmp_path):
    from codegen.target.boards import load_board

    text = get_board("nucleo-g071rb").path.read_text().replace("n = 8, div = 2", "n = 9, div = 2")
    path = tmp_path / "wrong.toml"
    path.write_text(text)
    with pytest.raises(ArielError, match=r"clock tree gives 72,000,000 Hz .* not clock_hz "
                                         r"64,000,000"):
        load_board(path)
