"""The memory report's flash and RAM totals against binutils' own count (`arm-none-eabi-size`,
Berkeley format: flash is text + data, the initial values of .data stored in flash; RAM is
data + bss), on a real firmware build for boards whose flash and RAM lie apart; the printed
table's rows add up to those totals."""

import re
import shutil
import subprocess

import pytest

from codegen.build import build
from codegen.report.memory import memory_table
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


def table_rows(text: str) -> dict[str, int]:
    """label -> bytes of each row of the printed memory table (a label, two spaces or more,
    the byte count)."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\s+(\S.*?)\s{2,}([\d,]+)(\s|$)", line)
        if match:
            rows[match.group(1)] = int(match.group(2).replace(",", ""))
    return rows


def test_the_printed_table_adds_up_to_arm_none_eabi_size(tmp_path):
    model = data_dir("examples") / "models" / "basic_motions_little.onnx"
    result = build(model, get_board("mps2-an386"), tmp_path / "out")
    sizes = berkeley_sizes(tmp_path / "out" / "build" / "firmware.elf")
    rows = table_rows(memory_table(result.memory, result.compiled.info))
    assert rows["flash"] == sizes["text"] + sizes["data"]
    assert rows["flash"] == (rows["code"] + rows["weights"] + rows["other constants"]
                             + rows["initial .data"])
    assert rows["initial .data"] == sizes["data"]
    assert rows["RAM"] == sizes["data"] + sizes["bss"]
    assert rows["RAM"] == rows["arena (activations)"] + rows["stack"] + rows["other .data/.bss"]
    assert rows["weights"] == result.compiled.info.weights_bytes
