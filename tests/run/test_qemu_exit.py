"""A firmware run in QEMU succeeds only on exit status 0: the harness's status 1 (its input
file missing or not whole records) is an error that quotes the harness's own line."""

import pytest

from codegen.build import build
from codegen.errors import FirmwareError
from codegen.resources import data_dir
from codegen.run.emulate.qemu import run_qemu
from codegen.run.simulate import open_build
from codegen.target.boards import get_board

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exit") / "out"
    build(data_dir("examples") / "models" / "basic_motions_little.onnx",
          get_board("mps2-an386"), folder)
    return open_build(folder)


@pytest.mark.parametrize("input_bin, said", [
    (None, "cannot open input.bin"),
    (b"\x00\x01\x02", "input.bin is not a whole number of input records"),
])
def test_harness_status_1_is_an_error(firmware, tmp_path, input_bin, said):
    if input_bin is not None:
        (tmp_path / "input.bin").write_bytes(input_bin)
    with pytest.raises(FirmwareError, match=f"stopped with status 1 .*: ariel: {said}$"):
        run_qemu(firmware.board, firmware.elf, tmp_path, timeout=60)


def test_whole_records_exit_0(firmware, tmp_path):
    record = sum(t["nbytes"] for t in firmware.metadata["model_info"]["inputs"])
    (tmp_path / "input.bin").write_bytes(bytes(2 * record))
    run = run_qemu(firmware.board, firmware.elf, tmp_path, timeout=60)
    assert run.returncode == 0 and "ariel: 2 inferences done" in run.console
