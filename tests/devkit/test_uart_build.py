"""`--io uart` builds for every dev kit: linked at the chip's own map, their ELF checked
statically (vector table, sections, the console's registers), their expected outputs and
Renode files written; the STM32F4 Discovery's build boots in QEMU netduinoplus2 and prints
its outputs on the emulated USART2."""

import json
import re
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile

from codegen.cli import main
from codegen.devkit.elfcheck import check_elf, expected_registers
from codegen.devkit.uart import parse_console
from codegen.target.boards import get_board
from tests.devkit.test_board_data import DEV_KITS, RENODE
from tests.e2e.test_models_qemu import MODELS, inputs_for, onnxruntime_outputs

pytestmark = pytest.mark.qemu
INT8 = ("--precision", "int8", "--calib", "digits", "--io", "int8")


def build(args):
    result = CliRunner().invoke(main, ["build", *[str(a) for a in args]])
    assert result.exit_code == 0, result.output + result.stderr
    return result


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    path = tmp_path_factory.mktemp("x") / "x.npy"
    np.save(path, inputs_for("digits_cnn"))
    return path


@pytest.fixture(scope="module", params=DEV_KITS)
def built(request, tmp_path_factory, digits):
    out = tmp_path_factory.mktemp(request.param) / "uart"
    result = build([MODELS / "digits_cnn.onnx", "--board", request.param, "--io", "uart",
                    "--inputs", digits, "-o", out])
    return request.param, out, result


def test_linked_at_the_chips_own_map(built):
    name, out, result = built
    board = get_board(name)
    metadata = json.loads((out / "ariel.json").read_text())
    assert metadata["memory_map"]["linked_for"] == board.chip.to_dict() | {"name": "chip"}
    assert metadata["console"]["peripheral"] == board.console.peripheral
    assert "linked for the board's own map" in result.stdout
    script = (out / "firmware" / "linker.ld").read_text()
    assert f"ORIGIN = 0x{board.chip.flash.origin:08X}, LENGTH = {board.chip.flash.size}" in script
    assert f"ORIGIN = 0x{board.chip.ram.origin:08X}, LENGTH = {board.chip.ram.size}" in script


def test_elf_matches_the_board_statically(built):
    name, out, result = built
    board = get_board(name)
    check = check_elf(out / "build" / "firmware.elf", board)
    assert check.ok, check.problems
    assert set(check.expected.values()) <= check.accessed
    assert check.vector_sp <= board.chip.ram.end and check.vector_reset & 1
    assert "ELF checked against" in result.stderr


@pytest.fixture(scope="module")
def f4_elf(tmp_path_factory):
    out = tmp_path_factory.mktemp("f4") / "uart"
    build([MODELS / "digits_mlp.onnx", "--board", "stm32f4-discovery", "--io", "uart",
           "-o", out])
    return out / "build" / "firmware.elf"


@pytest.mark.parametrize("offset, ok", [(0, True), (-4, False), (-8, True), (+4, False)])
def test_the_initial_stack_pointer_must_be_8_byte_aligned(f4_elf, tmp_path, offset, ok):
    """The AAPCS wants the stack 8-byte aligned at every public call: the check refuses an
    initial SP that is only 4-byte aligned."""
    elf = tmp_path / "firmware.elf"
    with open(f4_elf, "rb") as handle:
        vectors = ELFFile(handle).get_section_by_name(".isr_vector")
        at, sp = vectors["sh_offset"], int.from_bytes(vectors.data()[:4], "little")
    data = bytearray(f4_elf.read_bytes())
    data[at:at + 4] = (sp + offset).to_bytes(4, "little")
    elf.write_bytes(bytes(data))
    check = check_elf(elf, get_board("stm32f4-discovery"))
    assert check.ok == ok, check.problems
    assert ok or any("initial SP" in problem for problem in check.problems)


def test_vector_table_read_directly(built):
    name, out, _ = built
    board = get_board(name)
    with open(out / "build" / "firmware.elf", "rb") as handle:
        elf = ELFFile(handle)
        vectors = elf.get_section_by_name(".isr_vector")
        sp, reset = np.frombuffer(vectors.data()[:8], "<u4")
        handler = elf.get_section_by_name(".symtab").get_symbol_by_name("Reset_Handler")[0]
    assert vectors["sh_addr"] == board.chip.flash.origin
    assert board.chip.ram.contains(int(sp) - 4)
    assert int(reset) == handler["st_value"] | 1 and board.chip.flash.contains(int(reset) & ~1)


def test_uart_register_addresses_are_the_board_files(built):
    name, out, _ = built
    board = get_board(name)
    registers = expected_registers(board)
    uart = {n: a for n, a in registers.items() if n.startswith(board.console.peripheral)}
    assert uart and all(board.console.base <= a < board.console.base + 0x1000
                        for a in uart.values())
    config = (out / "firmware" / "board_config.h").read_text()
    assert f"#define ARIEL_UART_BASE 0x{board.console.base:08X}u" in config


def test_expected_output_written_at_build_time(built):
    name, out, _ = built
    expected = json.loads((out / "expected_output.json").read_text())
    assert expected["input"] == "the first sample of 'x.npy'"
    assert expected["inputs"][0]["hex"] == inputs_for("digits_cnn")[0].tobytes().hex()
    logits = np.array(expected["outputs"][0]["values"], np.float32)
    want = onnxruntime_outputs(MODELS / "digits_cnn.onnx", inputs_for("digits_cnn")[:1])
    assert np.abs(logits - want.reshape(-1)).max() < 1e-4
    assert "ariel-check 3 pass" in expected["lines"]
    data = (out / "model" / "ariel_test_data.c").read_text()
    assert "the first sample of 'x.npy'" in data


def test_renode_files_next_to_the_elf(built):
    name, out, _ = built
    board = get_board(name)
    folder = out / "renode"
    uart = RENODE[name]
    repl = (folder / f"{name}.repl").read_text()
    # A model without a size of its own (Renode's STM32_UART) is registered with a range.
    where = (f"<0x{board.console.base:08X}, \\+0x{board.renode.uart_size:X}>"
             if board.renode.uart_size else f"0x{board.console.base:08X}")
    assert re.search(rf"^{uart}: {re.escape(board.renode.uart_model)} @ sysbus {where}$", repl,
                     re.M)
    assert f"flash: Memory.MappedMemory @ sysbus 0x{board.chip.flash.origin:08X}" in repl
    assert f"size: 0x{board.chip.flash.size:X}" in repl
    assert f"ram: Memory.MappedMemory @ sysbus 0x{board.chip.ram.origin:08X}" in repl
    assert f'cpuType: "{board.renode.cpu_type}"' in repl
    # Whole lines: "PerformanceInMips: 168" is also the start of a wrong 168000.
    assert re.search(rf"^\s*PerformanceInMips: {board.clock_hz // 1_000_000}$", repl, re.M)
    assert re.search(rf"^\s*systickFrequency: {board.clock_hz}$", repl, re.M)
    # DWT on Armv7-M (the Cortex-M0+ has none), the clock registers the firmware waits on.
    assert ("dwt: Miscellaneous.DWT @ sysbus 0xE0001000" in repl) == (board.core != "cortex-m0plus")
    if board.console.family.startswith("stm32"):
        assert "rcc: Python.PythonPeripheral" in repl and "flash_interface:" in repl
    assert "ApplySVD" not in repl and "http" not in repl
    resc = (folder / "firmware.resc").read_text()
    assert "sysbus LoadELF $ORIGIN/../build/firmware.elf" in resc
    assert f"showAnalyzer sysbus.{uart}" in resc
    robot = (folder / "firmware.robot").read_text()
    assert f"${{UART}}                       sysbus.{uart}" in robot
    assert "sysbus LoadELF @${here}/../build/${elf}" in robot
    assert "Wait For Line On Uart     ariel-check 3 pass" in robot
    # The closing line fails the test until every expected line has come.
    waits = robot.index("Wait For Line On Uart     ariel-check 3 pass")
    assert robot.index("Register Failing Uart String    ^ariel: done,") < waits
    assert waits < robot.index("Unregister Failing Uart String    ^ariel: done,") < \
        robot.index("ariel: done, 3 runs, all outputs as expected")


def test_nothing_to_load_has_a_flash_load_address(built):
    """.bss and the stack are zero-filled at their own addresses: a loader that writes every
    segment at its load address (Renode's LoadELF) must not clear flash for them."""
    name, out, _ = built
    board = get_board(name)
    with open(out / "build" / "firmware.elf", "rb") as handle:
        for segment in ELFFile(handle).iter_segments():
            if segment["p_type"] == "PT_LOAD" and segment["p_memsz"] > segment["p_filesz"]:
                assert not board.chip.flash.contains(segment["p_paddr"] + segment["p_filesz"])


def test_stm32f4_discovery_boots_in_qemu_on_its_usart(tmp_path, digits):
    out = tmp_path / "f4"
    build([MODELS / "digits_cnn.onnx", "--board", "stm32f4-discovery", "--io", "uart",
           "--inputs", digits, "-o", out])
    result = CliRunner().invoke(main, ["simulate", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    console = parse_console(result.stdout)
    assert console.passed and len(console.runs) == 3
    assert console.counter.startswith("dwt")
    # QEMU models no RCC: the firmware says so and runs at the 16 MHz reset clock.
    assert console.core_hz == 16_000_000 and "HSE" in console.clock_problem
    assert "every output as computed on the host" in result.stdout
    expected = json.loads((out / "expected_output.json").read_text())
    assert console.runs[0].outputs[0].hex() == expected["outputs"][0]["hex"]


def with_wrong_first_byte(folder, float32: bool):
    """The build in `folder` re-made with its first expected output wrong from byte 0 on:
    for int8 that byte flipped, for float32 the first value's sign flipped (byte 3 of the
    value at byte 0), far outside the tolerance either way."""
    path = folder / "model" / "ariel_test_data.c"
    lines = path.read_text().splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines) if "expected0[" in line) + 1
    values = [int(v, 16) for v in lines[row].strip().rstrip(",").split(", ")]
    if float32:
        values[3] ^= 0x80
    else:
        values[0] ^= 0x40
    lines[row] = "    " + ", ".join(f"0x{v:02x}" for v in values) + ",\n"
    path.write_text("".join(lines))
    subprocess.run(["make", "-C", str(folder)], check=True, capture_output=True)


@pytest.mark.parametrize("precision", ["float", "int8"])
def test_the_firmwares_own_check_fails_a_wrong_byte_0(precision, tmp_path, digits):
    """The UART firmware compares every byte of each output with what the host computed,
    the first included: a build whose expected output is wrong at byte 0 says so itself."""
    out = tmp_path / "f4"
    options = ["--inputs", digits] if precision == "float" else [*INT8]
    build([MODELS / "digits_cnn.onnx", "--board", "stm32f4-discovery", "--io", "uart",
           *options, "-o", out])
    with_wrong_first_byte(out, precision == "float")
    result = CliRunner().invoke(main, ["simulate", str(out)])
    assert result.exit_code == 1
    for run in (1, 2, 3):
        assert f"run {run}: the firmware's own check says 'fail output 0 byte 0'" in \
            result.stderr


def test_int8_uart_build_for_the_m0plus_board(tmp_path, digits):
    out = tmp_path / "g0"
    build([MODELS / "digits_cnn.onnx", "--board", "nucleo-g071rb", "--precision", "int8",
           "--calib", "digits", "--io", "int8", "--io", "uart", "-o", out])
    board = get_board("nucleo-g071rb")
    assert check_elf(out / "build" / "firmware.elf", board).ok
    expected = json.loads((out / "expected_output.json").read_text())
    assert expected["input"] == "zeros" and expected["outputs"][0]["dtype"] == "int8"
    robot = (out / "renode" / "firmware.robot").read_text()
    # int8 outputs are checked exactly in Renode.
    assert f"ariel-output 1 0 {expected['outputs'][0]['hex']}" in robot
    link_map = (out / "build" / "firmware.map").read_text()
    assert "firmware/board/cycles.o" in link_map and "firmware/board/stm32g0.o" in link_map


def test_int8_on_the_m0plus_board_runs_in_qemu_bit_exact(tmp_path):
    """The Cortex-M0+ has no DSP extension: the int8 kernels' plain C path runs on QEMU's
    micro:bit machine and gives the same bits as the generated C on the host."""
    from codegen.compiler.emit import ModelInfo
    from codegen.run.hostrun import HostModel, build_host_library
    from codegen.run.simulate import open_build, simulate

    out = tmp_path / "g0"
    build([MODELS / "digits_cnn.onnx", "--board", "nucleo-g071rb", "--precision", "int8",
           "--calib", "digits", "-o", out])
    folder = open_build(out)
    x = inputs_for("digits_cnn")
    run = simulate(folder, [x])
    info = ModelInfo.from_dict(json.loads((out / "ariel.json").read_text())["model_info"])
    files = {p.name: p.read_text() for p in (out / "model").iterdir()
             if p.suffix in (".c", ".h") and p.name != "ariel_model.h"}
    host = HostModel(build_host_library(files, tmp_path / "host"), info)
    want = np.stack([host.run(sample)[0] for sample in x])
    assert np.array_equal(run.outputs[0], want)


def test_adaptive_build_boots_in_qemu_on_the_stm32f4_discovery(tmp_path, digits):
    """The adaptive dispatcher on the real board's firmware: its scores, answering stage and
    margin on the test input in flash equal the host's (the dispatcher simulated on the same
    stages), printed on USART2; `ariel calibrate` refuses the build (it needs the emulator);
    the same build for NUCLEO-L4R5ZI passes the static ELF check."""
    from codegen.ari.host import stage_scores
    from codegen.ari.margins import simulate as simulate_dispatch
    from codegen.run.simulate import open_build

    out = tmp_path / "ari"
    build([MODELS / "digits_cnn.onnx", "--precision", "ari", "--calib", "digits",
           "--threshold", "6", "--board", "stm32f4-discovery", "--io", "uart",
           "--inputs", digits, "-o", out])
    result = CliRunner().invoke(main, ["simulate", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    console = parse_console(result.stdout)
    assert console.passed and len(console.runs) == 3
    expected = json.loads((out / "expected_output.json").read_text())
    scores, stage, margin = (bytes.fromhex(o["hex"]) for o in expected["outputs"])
    assert console.runs[0].outputs == {0: scores, 1: stage, 2: margin}
    x = np.load(digits)[:1].astype(np.float32)
    dispatch = simulate_dispatch(stage_scores(open_build(out), x), [6.0], "top2")
    assert int.from_bytes(stage, "little") == dispatch.stage[0]

    calibrate = CliRunner().invoke(main, ["calibrate", str(out), "--data", "digits"])
    assert calibrate.exit_code == 1 and "is a --io uart build" in calibrate.stderr

    build([MODELS / "digits_cnn.onnx", "--precision", "ari", "--calib", "digits",
           "--threshold", "6", "--board", "nucleo-l4r5zi", "--io", "uart", "-o",
           tmp_path / "l4"])
    assert check_elf(tmp_path / "l4" / "build" / "firmware.elf",
                     get_board("nucleo-l4r5zi")).ok
