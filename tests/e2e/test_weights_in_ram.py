"""--weights-in-ram: the constant arrays linked into .data, copied from flash at reset. The
oracle is the default build of the same model: only where the weights live changes, so the
outputs in QEMU must be identical, the weights' symbols must sit at RAM addresses in the
ELF, and the RAM the ELF uses must grow by the weights' size."""

import re

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile

from codegen.cli import main
from codegen.datasets import digits_split
from codegen.resources import data_dir
from codegen.run.simulate import open_build, simulate
from codegen.target.boards import get_board
from codegen.target.elf import memory_use
from tests.support import single_node_model

pytestmark = pytest.mark.qemu
MODEL = data_dir("examples") / "models" / "digits_cnn.onnx"
BOARD = "mps2-an386"


def build(folder, *options: str):
    result = CliRunner().invoke(main, ["build", str(MODEL), "--board", BOARD, "-o",
                                       str(folder), *options])
    assert result.exit_code == 0, result.output + result.stderr
    return open_build(folder)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights-in-ram")
    return build(folder / "flash"), build(folder / "ram", "--weights-in-ram")


def weight_symbols(built) -> list[str]:
    header = (built.folder / "model" / f"{built.info.prefix}_weights.h").read_text()
    return re.findall(r"^extern const \w+ (\w+)\[", header, flags=re.MULTILINE)


def symbol_addresses(elf_path, names: list[str]) -> dict[str, int]:
    with open(elf_path, "rb") as handle:
        table = ELFFile(handle).get_section_by_name(".symtab")
        return {name: table.get_symbol_by_name(name)[0]["st_value"] for name in names}


def test_the_weights_are_in_ram_only_with_the_option(builds):
    ram = get_board(BOARD).ram
    flash_build, ram_build = builds
    names = weight_symbols(ram_build)
    assert names and names == weight_symbols(flash_build)
    assert all(ram.contains(a) for a in symbol_addresses(ram_build.elf, names).values())
    assert not any(ram.contains(a) for a in symbol_addresses(flash_build.elf, names).values())


def test_the_ram_figure_counts_the_weights(builds):
    board = get_board(BOARD)
    flash_build, ram_build = builds
    grown = memory_use(ram_build.elf, board).ram - memory_use(flash_build.elf, board).ram
    weights = ram_build.info.weights_bytes
    assert weights <= grown <= weights + 16 * len(weight_symbols(ram_build)), (grown, weights)


def test_the_outputs_do_not_change(builds):
    x = digits_split()[2][:4].reshape(4, 1, 1, 8, 8).astype(np.float32)
    flash_build, ram_build = builds
    want, got = (simulate(b, [x]).outputs[0] for b in builds)
    assert np.array_equal(got, want)


def test_weights_that_do_not_fit_the_ram_fail_clearly(tmp_path):
    """A Gemm's 51,200 B of float weights fit the NUCLEO-G071RB's 128 KiB of flash but not
    its 36 KiB of RAM."""
    rng = np.random.default_rng(0)
    model = single_node_model("Gemm", {"x": np.zeros((1, 64), np.float32)},
                              {"w": rng.normal(size=(64, 200)).astype(np.float32)})
    onnx.save(model, tmp_path / "gemm.onnx")
    runner = CliRunner()
    result = runner.invoke(main, ["build", str(tmp_path / "gemm.onnx"), "--board",
                                  "nucleo-g071rb", "-o", str(tmp_path / "flash")])
    assert result.exit_code == 0, result.output + result.stderr
    result = runner.invoke(main, ["build", str(tmp_path / "gemm.onnx"), "--board",
                                  "nucleo-g071rb", "--weights-in-ram", "-o",
                                  str(tmp_path / "ram")])
    assert result.exit_code == 1
    assert "does not fit nucleo-g071rb" in result.stderr
    assert "--weights-in-ram puts its 51,200 B of weights in RAM too" in result.stderr
    assert not (tmp_path / "ram").exists()
