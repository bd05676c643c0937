"""`ariel flash`: --dry-run for every dev kit; a build linked for an emulator, a semihosting
build, a missing pack and a missing probe each stop with one clear line; and a real flash
through pyOCD's MemoryLoader and FlashBuilder, with only the probe side replaced: the session
pyOCD's ConnectHelper would return, whose target's flash stores what it is given in memory
instead of running a flash algorithm on a chip."""

import re

import pytest
from click.testing import CliRunner
from pyocd.core.memory_map import FlashRegion, MemoryMap, RamRegion
from pyocd.flash.flash import Flash

from codegen.cli import main
from codegen.devkit.flash import elf_segments, flash, flash_plan
from codegen.run.simulate import open_build
from codegen.target.boards import get_board
from tests.devkit.test_board_data import DEV_KITS
from tests.e2e.test_models_qemu import MODELS

pytestmark = pytest.mark.qemu


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module", params=DEV_KITS)
def uart_build(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "uart"
    code, _, err = run(["build", MODELS / "digits_mlp.onnx", "--board", request.param,
                        "--io", "uart", "-o", out])
    assert code == 0, err
    return request.param, out


def test_dry_run_says_what_goes_where(uart_build):
    name, out = uart_build
    board = get_board(name)
    code, text, err = run(["flash", out, "--dry-run"])
    assert code == 0, err
    assert f"-> {name} (pyOCD target {board.debug.pyocd_target}" in text
    rows = re.findall(r"^  0x([0-9A-F]{8})\.\.0x([0-9A-F]{8}) +([\d,]+) B  (.*)$", text, re.M)
    segments = elf_segments(out / "build" / "firmware.elf")
    assert [(int(a, 16), int(b, 16) + 1) for a, b, _, _ in rows] == \
        [(s.address, s.end) for s in segments]
    assert ".isr_vector" in rows[0][3] and ".data" in rows[-1][3]
    assert all(board.chip.flash.contains(s.address) and s.end <= board.chip.flash.end
               for s in segments)
    assert f"of {name}'s {board.chip.flash.size:,} B flash" in text


def test_emulator_build_is_refused(tmp_path):
    out = tmp_path / "sim"
    code, _, err = run(["build", MODELS / "digits_mlp.onnx", "--board", "nucleo-l4r5zi",
                        "-o", out])
    assert code == 0, err
    code, _, err = run(["flash", out, "--dry-run"])
    assert code == 1 and "Traceback" not in err
    assert re.search(r"error: the ELF's segment at 0x00000000\.\.0x[0-9A-F]+ \([\d,]+ B\) lies "
                     r"outside nucleo-l4r5zi's flash \(0x08000000\.\.0x08200000\): this build "
                     r"is linked for QEMU mps2-an386's addresses; rebuild it with --io uart", err)


def test_emulated_board_cannot_be_flashed(tmp_path):
    out = tmp_path / "mps2"
    assert run(["build", MODELS / "digits_mlp.onnx", "-o", out])[0] == 0
    code, _, err = run(["flash", out, "--dry-run"])
    assert code == 1 and "board mps2-an386 names no pyOCD target" in err


def test_semihosting_build_on_its_own_map_is_not_flashed(tmp_path):
    out = tmp_path / "f4"
    assert run(["build", MODELS / "digits_mlp.onnx", "--board", "stm32f4-discovery",
                "-o", out])[0] == 0
    code, text, _ = run(["flash", out, "--dry-run"])
    assert code == 0 and "a semihosting build stops at its first output" in text
    code, _, err = run(["flash", out])
    assert code == 1 and "talks through semihosting" in err


# The dev kits whose pyOCD target comes in a CMSIS pack (the others are built into pyOCD).
WITH_PACK = [name for name in DEV_KITS if get_board(name).debug.pack]


@pytest.mark.parametrize("uart_build", WITH_PACK, indirect=True)
def test_missing_pack_is_named_with_its_install_command(uart_build):
    name, out = uart_build
    board = get_board(name)
    code, _, err = run(["flash", out])
    assert code == 1
    assert (f"error: pyOCD does not know target '{board.debug.pyocd_target}' ({name}): "
            f"install its CMSIS pack once with `pyocd pack install "
            f"{board.debug.pyocd_target}`") in err


def test_no_probe_connected(uart_build, monkeypatch):
    name, out = uart_build
    if get_board(name).debug.pack:
        monkeypatch.setattr("codegen.devkit.flash.target_status", lambda target: "pack")
    monkeypatch.setattr("pyocd.core.helpers.ConnectHelper.session_with_chosen_probe",
                        lambda **kwargs: None)
    code, _, err = run(["flash", out, "--probe", "0670FF"])
    assert code == 1 and "Traceback" not in err
    assert "no debug probe whose unique ID contains '0670FF' is connected" in err


class MemoryFlash(Flash):
    """pyOCD's Flash with the flash algorithm replaced by a bytearray: erasing fills a sector
    with 0xFF, programming copies a page, as the chip's would."""

    def __init__(self, target, region):
        super().__init__(target, None)
        self.region = region
        self.memory = bytearray(b"\x00" * region.length)  # not erased yet
        self.erased, self.programmed = [], []

    @property
    def is_erase_all_supported(self):
        return False

    def init(self, operation, address=None, clock=0, reset=False):
        self._active_operation = operation

    def uninit(self):
        self._active_operation = None

    def cleanup(self):
        pass

    def erase_sector(self, address):
        offset = address - self.region.start
        self.memory[offset:offset + self.region.sector_size] = b"\xff" * self.region.sector_size
        self.erased.append(address)

    def program_page(self, address, data):
        offset = address - self.region.start
        assert all(b == 0xFF for b in self.memory[offset:offset + len(data)]), "not erased"
        self.memory[offset:offset + len(data)] = bytes(data)
        self.programmed.append(address)


class Target:
    """The session's target: a memory map with the board's flash, and a reset."""

    def __init__(self, session, board):
        self.session = session
        flash = board.chip.flash
        region = FlashRegion(start=flash.origin, length=flash.size, sector_size=0x800,
                             page_size=0x100, is_boot_memory=True)
        self.flash = MemoryFlash(self, region)
        region.flash = self.flash
        ram = board.chip.ram
        self.memory_map = MemoryMap(region, RamRegion(start=ram.origin, length=ram.size))
        self.debug_sequence_delegate = None
        self.selected_core = type("Core", (), {"node_name": "core0"})()
        self.resets = 0

    def read_memory_block8(self, address, size):
        offset = address - self.flash.region.start
        return list(self.flash.memory[offset:offset + size])

    def reset(self):
        self.resets += 1


class Probe:
    description = "STLINK-V3 (test double)"
    unique_id = "0670FF000000000000000000"


class Session:
    """What ConnectHelper.session_with_chosen_probe returns, opened by `with`."""

    def __init__(self, board):
        self.options = {"hide_programming_progress": True}
        self.probe = Probe()
        self.target = Target(self, board)
        self.board = type("Board", (), {"target": self.target})()
        self.opened = self.closed = False

    def notify(self, *args, **kwargs):
        pass

    def __enter__(self):
        self.opened = True
        return self

    def __exit__(self, *exc):
        self.closed = True
        return False


def test_flash_writes_every_segment_and_resets(uart_build, monkeypatch):
    name, out = uart_build
    board = get_board(name)
    session = Session(board)
    calls = []

    def chosen(**kwargs):
        calls.append(kwargs)
        return session

    monkeypatch.setattr("codegen.devkit.flash.target_status", lambda target: "pack")
    monkeypatch.setattr("pyocd.core.helpers.ConnectHelper.session_with_chosen_probe", chosen)
    plan = flash_plan(open_build(out))
    flash(plan, "0670FF")
    assert calls[0]["target_override"] == board.debug.pyocd_target
    assert calls[0]["unique_id"] == "0670FF"
    assert session.opened and session.closed and session.target.resets == 1
    memory, origin = session.target.flash.memory, board.chip.flash.origin
    for segment in plan.segments:
        start = segment.address - origin
        assert bytes(memory[start:start + len(segment.data)]) == segment.data
    assert session.target.flash.erased[0] == origin
