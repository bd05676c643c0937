"""What a board file says about running on the real dev kit: the console UART wired to the
debug probe's virtual COM port, the clock tree that reaches the board's frequency, the pyOCD
target that flashes it and the Renode platform that emulates it. Parsed from the [console],
[clock_tree], [debug] and [renode] tables; every board may leave them out (then it has no
`--io uart` build)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The console drivers in firmware/board/ and the register layout each one writes.
UART_KINDS = ("stm32-usart-v1", "stm32-usart", "stm32-lpuart", "nrf-uarte")
# The families with a clock and console file firmware/board/<family>.c.
FAMILIES = ("stm32f4", "stm32f7", "stm32l4", "stm32h7", "stm32g0", "nrf52")
# [clock_tree] settings a family file reads, and the board_config.h macro each becomes.
SETTINGS = {
    "pll_q": "ARIEL_PLL_Q",  # STM32F4/F7: the 48 MHz divider
    "overdrive": "ARIEL_OVERDRIVE",  # STM32F7: over-drive, above 180 MHz
    "boost": "ARIEL_BOOST",  # STM32L4+: range 1 boost, above 80 MHz
    "wrhighfreq": "ARIEL_FLASH_WRHIGHFREQ",  # STM32H7: flash write delay
    "vos": "ARIEL_H7_VOS",  # STM32H7: voltage scale
    "supply_smps": "ARIEL_H7_SUPPLY_SMPS",  # STM32H7: 1 = direct SMPS, 0 = LDO
    "line_ab": "ARIEL_H7_LINE_AB",  # STM32H7: 1 = H7A3/7B3 register differences
}


@dataclass(frozen=True)
class Pin:
    """A pin as a board's user manual names it: PG7 (STM32 port G, pin 7) or P0.06 (nRF port
    0, pin 6)."""

    name: str
    port: int
    number: int


def parse_pin(name: str) -> Pin:
    stm32 = re.fullmatch(r"P([A-K])(\d{1,2})", name)
    if stm32:
        return Pin(name, ord(stm32.group(1)) - ord("A"), int(stm32.group(2)))
    nrf = re.fullmatch(r"P(\d)\.(\d{2})", name)
    if nrf:
        return Pin(name, int(nrf.group(1)), int(nrf.group(2)))
    raise ValueError(f"pin '{name}' is neither PXn (STM32) nor Pp.nn (nRF)")


@dataclass(frozen=True)
class Console:
    """The UART the firmware prints on. Only the TX pin is configured: the firmware never
    reads. `clock_enable` and `gpio_clock_enable` are (RCC register offset, bit)."""

    family: str
    peripheral: str  # as the reference manual names it: USART2, LPUART1, UARTE0
    kind: str  # one of UART_KINDS
    base: int
    baud: int
    tx: Pin
    rx: Pin
    bus: str = ""  # the bus clock that feeds it: apb1, apb2 ("" on the nRF52)
    alternate_function: int | None = None
    gpio_base: int | None = None  # the TX pin's port
    clock_enable: tuple[int, int] | None = None
    gpio_clock_enable: tuple[int, int] | None = None
    qemu_serial: int | None = None  # its -serial index on the QEMU machine, if it has it
    note: str = ""


@dataclass(frozen=True)
class ClockTree:
    """How the firmware reaches the board's clock: a PLL fed by `source` (source_hz / m * n /
    div), then the core divider (HPRE; D1CPRE on the STM32H7), the bus divider (the STM32H7's
    HPRE; 1 elsewhere) and the APB dividers. `settings` holds the family's other choices
    (voltage scale, supply, over-drive, write delay), each passed to the firmware as is."""

    source: str
    source_hz: int
    pll_m: int = 1
    pll_n: int = 1
    pll_div: int = 1
    core_div: int = 1
    ahb_div: int = 1
    apb_div: dict[str, int] = field(default_factory=dict)
    flash_latency: int = 0
    settings: dict[str, int] = field(default_factory=dict)

    @property
    def vco_hz(self) -> float:
        return self.source_hz / self.pll_m * self.pll_n

    @property
    def core_hz(self) -> float:
        return self.vco_hz / self.pll_div / self.core_div

    def bus_hz(self, bus: str) -> float:
        """The clock of an APB bus (what a UART on it counts baud from)."""
        if not bus:
            return self.core_hz
        return self.core_hz / self.ahb_div / self.apb_div.get(bus, 1)


@dataclass(frozen=True)
class Debug:
    """How pyOCD reaches the chip: its target name, and the CMSIS pack that defines it when
    it is not built into pyOCD."""

    pyocd_target: str
    pack: str = ""


@dataclass(frozen=True)
class RenodeInfo:
    """The chip in Renode: the CPU type and the console UART's model for ariel's own offline
    platform description, and the platform Renode ships for the chip, for reference (empty
    when it has none). A board whose console no Renode model fits has no `uart_model`, and
    `note` says why."""

    platform: str = ""
    cpu_type: str = ""
    uart_model: str = ""
    uart_name: str = ""
    uart_size: int | None = None  # the registration range, for models without a known size
    uart_properties: dict[str, str] = field(default_factory=dict)
    clock_model: str = ""  # Renode's model of the RCC/CLOCK block, if it has one
    clock_base: int | None = None
    note: str = ""

    @property
    def available(self) -> bool:
        return bool(self.uart_model)


def parse_console(table: dict) -> Console:
    kind = table["kind"]
    if kind not in UART_KINDS:
        raise ValueError(f"[console] kind '{kind}' is not one of {', '.join(UART_KINDS)}")
    family = table["family"]
    if family not in FAMILIES:
        raise ValueError(f"[console] family '{family}' is not one of {', '.join(FAMILIES)}")
    return Console(
        family=family, peripheral=table["peripheral"], kind=kind, base=int(table["base"]),
        baud=int(table.get("baud", 115200)), tx=parse_pin(table["tx"]),
        rx=parse_pin(table["rx"]), bus=str(table.get("bus", "")),
        alternate_function=_optional_int(table, "alternate_function"),
        gpio_base=_optional_int(table, "gpio_base"),
        clock_enable=_register_bit(table, "clock_enable"),
        gpio_clock_enable=_register_bit(table, "gpio_clock_enable"),
        qemu_serial=_optional_int(table, "qemu_serial"), note=str(table.get("note", "")))


def parse_clock_tree(table: dict) -> ClockTree:
    pll = table.get("pll", {})
    unknown = set(table.get("settings", {})) - set(SETTINGS)
    if unknown:
        raise ValueError(f"[clock_tree] settings {sorted(unknown)} are not among "
                         f"{', '.join(SETTINGS)}")
    return ClockTree(
        source=table["source"], source_hz=int(table["source_hz"]),
        pll_m=int(pll.get("m", 1)), pll_n=int(pll.get("n", 1)), pll_div=int(pll.get("div", 1)),
        core_div=int(table.get("core_div", 1)), ahb_div=int(table.get("ahb_div", 1)),
        apb_div={k: int(v) for k, v in table.get("apb_div", {}).items()},
        flash_latency=int(table.get("flash_latency", 0)),
        settings={k: int(v) for k, v in table.get("settings", {}).items()})


def parse_debug(table: dict) -> Debug:
    return Debug(pyocd_target=str(table["pyocd_target"]), pack=str(table.get("pack", "")))


def parse_renode(table: dict) -> RenodeInfo:
    info = RenodeInfo(
        platform=str(table.get("platform", "")), cpu_type=str(table.get("cpu_type", "")),
        uart_model=str(table.get("uart_model", "")), uart_name=str(table.get("uart_name", "")),
        uart_size=_optional_int(table, "uart_size"),
        uart_properties={k: str(v) for k, v in table.get("uart_properties", {}).items()},
        clock_model=str(table.get("clock_model", "")),
        clock_base=_optional_int(table, "clock_base"), note=str(table.get("note", "")))
    described = (info.cpu_type, info.uart_model, info.uart_name)
    if any(described) and not all(described):
        raise ValueError("[renode] needs cpu_type, uart_model and uart_name together")
    if not info.available and not info.note:
        raise ValueError("[renode] without a UART model must say why in `note`")
    return info


def _optional_int(table: dict, key: str) -> int | None:
    return int(table[key]) if key in table else None


def _register_bit(table: dict, key: str) -> tuple[int, int] | None:
    if key not in table:
        return None
    register, bit = table[key]
    if not 0 <= int(bit) < 32:
        raise ValueError(f"[console] {key} bit {bit} is not 0..31")
    return int(register), int(bit)
