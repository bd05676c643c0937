"""codegen/files.py: a file written for the user appears whole or not at all, never through a
symlink someone planted, with the permissions the user's umask gives."""

import os
import stat

import pytest

from codegen.errors import ArielError
from codegen.files import atomic_file, check_target, write_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_writes_the_file_and_leaves_no_temporary(tmp_path, umask_022):
    write_atomic(tmp_path / "report.json", "{}\n")
    assert (tmp_path / "report.json").read_text() == "{}\n"
    assert os.listdir(tmp_path) == ["report.json"]
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644


def test_a_planted_symlink_at_the_old_temporary_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for planted in (".report.json.tmp", ".report.json"):
        os.symlink(victim, tmp_path / planted)
    write_atomic(tmp_path / "report.json", "report")
    assert victim.read_text() == "precious"
    assert (tmp_path / "report.json").read_text() == "report"
    assert sorted(os.listdir(tmp_path)) == [".report.json", ".report.json.tmp", "report.json",
                                            "victim.txt"]


def test_a_symlink_at_the_target_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / "out.npy")
    write_atomic(tmp_path / "out.npy", b"new")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "out.npy").is_symlink()
    assert (tmp_path / "out.npy").read_bytes() == b"new"


@pytest.mark.parametrize("mode", [0o600, 0o664, 0o640])
def test_an_existing_file_keeps_its_permissions(tmp_path, umask_022, mode):
    """Its own mode, also where the umask (022) would take a bit away (0o664)."""
    target = tmp_path / "private.json"
    target.write_text("old")
    target.chmod(mode)
    write_atomic(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.read_text() == "new"


def test_a_failure_while_writing_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "y.npy"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as handle:
        handle.write(b"half")
        raise RuntimeError("stopped")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["y.npy"]


def test_a_folder_at_the_target_is_one_line_and_leaves_nothing(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(ArielError, match="cannot write .*out"):
        write_atomic(tmp_path / "out", "x")
    assert os.listdir(tmp_path) == ["out"]
    assert os.listdir(tmp_path / "out") == []
    with pytest.raises(ArielError, match="--json '.*out' is a folder"):
        check_target(tmp_path / "out", "--json")


def test_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(ArielError, match="cannot write"):
        write_atomic(tmp_path / "missing" / "r.json", "x")
    with pytest.raises(ArielError, match="the folder .*missing' does not exist"):
        check_target(tmp_path / "missing" / "r.json", "--outputs")
    (tmp_path / "file").write_text("")
    with pytest.raises(ArielError, match="is not a folder"):
        check_target(tmp_path / "file" / "r.json", "--outputs")
