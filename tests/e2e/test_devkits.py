"""The dev kits end to end: the digits CNN built for each, linked at its emulator's addresses
with the chip's own sizes (checked in the ELF), run in QEMU on the machine with the same
core, and compared with onnxruntime on real digits; a model that fits the MPS2 machine but
not a chip's RAM fails to link, naming the board and the overflow."""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from onnx import TensorProto, helper, numpy_helper

from codegen.cli import main
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board
from codegen.target.stack_usage import stack_use
from tests.e2e.test_models_qemu import MODELS, inputs_for, onnxruntime_outputs

pytestmark = pytest.mark.qemu

DEV_KITS = ["nucleo-l4r5zi", "disco-f746ng", "nrf52840-dk"]


@pytest.fixture(scope="module", params=DEV_KITS)
def built(request, tmp_path_factory):
    board = request.param
    out = tmp_path_factory.mktemp(board) / "build"
    result = CliRunner().invoke(main, ["build", str(MODELS / "digits_cnn.onnx"),
                                       "--board", board, "-o", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    return board, out, result.stdout


def test_digits_cnn_runs_on_the_emulating_machine(built, tmp_path):
    board, out, report = built
    assert f"Memory on {board}" in report
    assert f"with {board}'s sizes" in report
    x = inputs_for("digits_cnn")
    np.save(tmp_path / "x.npy", x)
    result = CliRunner().invoke(main, ["simulate", str(out), "--inputs", str(tmp_path / "x.npy"),
                                       "--outputs", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output + result.stderr
    assert f"QEMU {get_board(board).qemu_machine}" in result.stdout
    got = np.load(tmp_path / "y.npy")
    want = onnxruntime_outputs(MODELS / "digits_cnn.onnx", x)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_the_run_reports_its_stack_high_water(built):
    board, out, _ = built
    build = open_build(out)
    run = simulate(build, [inputs_for("digits_cnn")])
    use = stack_use(run.console)
    assert use is not None, run.console
    assert use.size == get_board(board).stack_bytes
    assert 0 < use.used < use.size
    assert run.console.rstrip().endswith("inferences done")


def test_elf_sits_in_the_emulators_memory_within_the_boards_sizes(built):
    name, out, _ = built
    board = get_board(name)
    emu = board.emulation
    metadata = json.loads((out / "ariel.json").read_text())
    assert metadata["memory_map"] == board.memory_map_dict()
    assert metadata["memory_map"]["linked_for"]["name"] == f"qemu {emu.qemu_machine}"
    flash_bytes = ram_bytes = 0
    with open(out / "build" / "firmware.elf", "rb") as handle:
        elf = ELFFile(handle)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        for section in elf.iter_sections():
            if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC or section["sh_size"] == 0:
                continue
            start, size = section["sh_addr"], section["sh_size"]
            if emu.code.contains(start):
                assert start + size <= emu.code.end
                flash_bytes += size
            else:
                assert emu.data.contains(start) and start + size <= emu.data.end, section.name
                ram_bytes += size
                # .data also occupies flash, where its initial values are loaded from.
                if section["sh_type"] != "SHT_NOBITS":
                    segment = next(s for s in loads if s["p_vaddr"] <= start < s["p_vaddr"]
                                   + s["p_memsz"])
                    assert emu.code.contains(segment["p_paddr"])
                    flash_bytes += size
    assert 0 < flash_bytes <= board.chip.flash.size
    assert 0 < ram_bytes <= board.chip.ram.size
    # The stack is in RAM and counted: the whole RAM total includes it.
    assert ram_bytes >= board.stack_bytes
    script = (out / "firmware" / "linker.ld").read_text()
    assert f"LENGTH = {board.chip.flash.size}" in script
    assert f"LENGTH = {board.chip.ram.size}" in script


def wide_conv_model(path):
    """A 3x3 convolution from 1 to 16 channels on 128x128: 1 MiB of output activations and
    a few hundred bytes of weights, too much RAM for the dev kits, little for the MPS2."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="wide")
    graph = helper.make_graph(
        [node], "wide_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 128, 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 128, 128])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("board", DEV_KITS)
def test_model_too_big_for_the_boards_ram_fails_to_link(board, tmp_path):
    model = wide_conv_model(tmp_path / "wide.onnx")
    runner = CliRunner()
    fits = runner.invoke(main, ["build", str(model), "--board", "mps2-an386",
                                "-o", str(tmp_path / "mps2")])
    assert fits.exit_code == 0, fits.output + fits.stderr
    result = runner.invoke(main, ["build", str(model), "--board", board,
                                  "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert f"does not fit {board}" in result.stderr
    assert f"RAM {get_board(board).chip.ram.size:,} B" in result.stderr
    assert "RAM overflowed by" in result.stderr
    assert not (tmp_path / "o").exists()
