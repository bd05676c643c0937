"""The memory report's flash and RAM totals against binutils' own count (`arm-none-eabi-size`,
Berkeley format: flash is text + data, the initial values of .data stored in flash; RAM is
data + bss), on a real firmware build for boards whose flash and RAM lie apart."""

import shutil
import subprocess

import pytest

from codegen.build import build
from codegen.resources import data_dir
from codegen.target.boards import get_board
from codegen.target.elf import memory_use

pytestmark = pytest.mark.qemu


def berkeley_sizes(elf) -> dict[str, int]:
    size = shutil.which("arm-none-eabi-size")
    assert size is not None, "arm-none-eabi-size comes with arm-none-eabi-gcc"
    lines = subprocess.run([size, "-B", str(elf)], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


@pytest.mark.parametrize("board", ["mps2-an386", "nucleo-l4r5zi"])
def test_flash_and_ram_equal_arm_none_eabi_size(board, tmp_path):
    model = data_dir("examples") / "models" / "basic_motions_little.onnx"
    result = build(model, get_board(board), tmp_path / "out")
    elf = tmp_path / "out" / "build" / "firmware.elf"
    sizes = berkeley_sizes(elf)
    assert sizes["data"] > 0  # the case this checks: .data runs in RAM, loads from flash
    memory = memory_use(elf, get_board(board))
    assert memory.flash == sizes["text"] + sizes["data"]
    assert memory.ram == sizes["data"] + sizes["bss"]
    assert result.memory.flash == memory.flash and result.memory.ram == memory.ram
