"""The counting plugin: built once per source version with the host's gcc, warning-free;
clear errors when gcc is missing, when QEMU refuses the plugin, when the plugin refuses its
arguments, and when its output is cut short; shipped in the wheel."""

import subprocess
import zipfile

import pytest

from codegen.errors import ArielError
from codegen.run.emulate import counting
from codegen.run.emulate.counting import (
    build_plugin,
    count_instructions,
    hook_addresses,
    parse_counts,
)
from codegen.run.emulate.qemu import qemu_command
from codegen.target.boards import get_board
from tests.run.support import build_firmware

MAIN = "int main(void) { return 0; }\n"


def test_plugin_builds_warning_free_and_once(tmp_path):
    # PLUGIN_FLAGS hold -Wall -Wextra -Werror: a warning would fail the build.
    assert {"-Wall", "-Wextra", "-Werror"} <= set(counting.PLUGIN_FLAGS)
    library = build_plugin(tmp_path)
    assert library.is_file() and library.parent.parent == tmp_path / "qemu-plugin"
    built = library.stat().st_mtime_ns
    assert build_plugin(tmp_path) == library
    assert library.stat().st_mtime_ns == built, "an unchanged source is not rebuilt"
    exported = subprocess.run(["nm", "-D", "--defined-only", str(library)],
                              capture_output=True, text=True).stdout
    assert "qemu_plugin_install" in exported and "qemu_plugin_version" in exported


def test_missing_gcc_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ArielError, match="gcc not found.*apt-get install gcc"):
        build_plugin(tmp_path / "cache")


@pytest.mark.qemu
def test_a_firmware_without_hooks_is_one_segment(tmp_path):
    board = get_board("mps2-an386")
    elf = build_firmware(tmp_path / "fw", board, MAIN, hooks=False)
    assert hook_addresses(elf) is None
    counts = count_instructions(board, elf, tmp_path)
    assert [s.closer for s in counts.segments] == ["exit"]
    assert counts.segments[0].instructions == counts.total > 0
    assert counts.instructions_per_second > 0


@pytest.mark.qemu
def test_qemu_refusing_the_plugin_is_a_clear_error(tmp_path):
    board = get_board("mps2-an386")
    elf = build_firmware(tmp_path / "fw", board, MAIN)
    # A plugin that asks for an API version no QEMU 7.2 has.
    source = tmp_path / "future.c"
    source.write_text('__attribute__((visibility("default"))) int qemu_plugin_version = 99;\n'
                      '__attribute__((visibility("default"))) int qemu_plugin_install(void)\n'
                      "{\n    return 0;\n}\n")
    future = tmp_path / "future.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(future), str(source)], check=True)
    with pytest.raises(ArielError, match="QEMU refused ariel's counting plugin.*version"):
        count_instructions(board, elf, tmp_path, plugin=future)


@pytest.mark.qemu
def test_the_plugin_refuses_unknown_arguments_with_a_message(tmp_path):
    board = get_board("mps2-an386")
    elf = build_firmware(tmp_path / "fw", board, MAIN)
    command = qemu_command(board, elf, ["-plugin", f"file={build_plugin()},out=x,colour=blue"])
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ariel_count: unknown argument" in result.stderr and "colour=blue" in result.stderr


@pytest.mark.qemu
def test_a_path_with_a_comma_reaches_qemu_intact(tmp_path):
    board = get_board("mps2-an386")
    elf = build_firmware(tmp_path / "fw", board, MAIN)
    cache = tmp_path / "a,b"
    counts = count_instructions(board, elf, tmp_path, plugin=build_plugin(cache))
    assert counts.total > 0


def test_cut_short_or_foreign_output_is_an_error():
    with pytest.raises(ArielError, match="incomplete"):
        parse_counts("ariel-count 1 blocks=0 edges=0\nS 0 X 100 0\n")
    with pytest.raises(ArielError, match="unknown format"):
        parse_counts("something else\n")
    with pytest.raises(ArielError, match="malformed at line 2"):
        parse_counts("ariel-count 1 blocks=0 edges=0\nS 0 Q 100 0\nT 100 0 1\n")
    counts = parse_counts("ariel-count 1 blocks=1 edges=1\nS 0 X 5 0\nC 0 1\nF - 0 1\n"
                          "B 0 1f0 3 4ff00000:2000:4770\nT 5 1 1\n")
    block = counts.blocks[0]
    assert (block.pc, block.n_insns, block.addresses) == (0x1F0, 3, [0x1F0, 0x1F4, 0x1F6])
    assert counts.segments[0].edges == {(None, 0): 1}


def test_the_wheel_carries_the_plugin_source(ariel_wheel):
    names = set(zipfile.ZipFile(ariel_wheel).namelist())
    for name in counting.PLUGIN_FILES:
        assert f"codegen/run/emulate/plugin/{name}" in names
    assert "codegen/_data/firmware/profile.c" in names
