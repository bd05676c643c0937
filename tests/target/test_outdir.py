"""codegen/target/outdir.py: an output folder is replaced only where ariel's own manifest says
ariel wrote the file; the user's files in it survive every rebuild, --force or not."""

import json
import os
import stat

import pytest

from codegen.errors import ArielError
from codegen.target.outdir import (
    MARKER,
    is_build_file,
    rewrite_build_file,
    save_metadata,
    staged_output,
    write_manifest,
)

FIRST = {"Makefile": "all:\n", "model/m.c": "int m;\n", "model/old.c": "int old;\n",
         "build/firmware.elf": "ELF"}
SECOND = {"Makefile": "all: new\n", "model/m.c": "int m2;\n", "build/firmware.elf": "ELF2"}


def fake_build(outdir, files: dict[str, str], force: bool = False) -> None:
    """What a build writes, through staged_output like `ariel build`."""
    with staged_output(outdir, force) as staging:
        for relative, text in files.items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).write_text(text)
        write_manifest(staging, {"ariel_version": "test", "board": "b"})


def tree(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MARKER}


def test_the_manifest_lists_what_ariel_wrote_but_make_s_folder(tmp_path):
    fake_build(tmp_path / "out", FIRST)
    metadata = json.loads((tmp_path / "out" / MARKER).read_text())
    assert sorted(metadata["files"]) == ["Makefile", "model/m.c", "model/old.c"]
    assert metadata["files"]["Makefile"]["bytes"] == len("all:\n")
    assert metadata["ariel_build"] == 1 and metadata["board"] == "b"


def test_a_rebuild_replaces_ariel_s_files_and_keeps_the_user_s(tmp_path):
    out = tmp_path / "out"
    fake_build(out, FIRST)
    (out / "Y.npy").write_text("outputs")
    (out / "model" / "notes.txt").write_text("mine")
    (out / "reports" / "2024").mkdir(parents=True)
    (out / "reports" / "2024" / "r.json").write_text("{}")
    fake_build(out, SECOND)
    assert tree(out) == {**SECOND, "Y.npy": "outputs", "model/notes.txt": "mine",
                         "reports/2024/r.json": "{}"}
    assert [p for p in os.listdir(tmp_path) if p != "out"] == [], "no staging folder left"


def test_a_project_folder_with_its_own_ariel_json_is_refused_even_with_force(tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    files = {"notes.txt": "notes", "src/main.c": "int main;", MARKER: '{"name": "mine"}'}
    for relative, text in files.items():
        (project / relative).write_text(text)
    with pytest.raises(ArielError, match="is not an ariel build.*--force"):
        fake_build(project, SECOND)
    with pytest.raises(ArielError, match=f"'{MARKER}'.* that ariel did not write"):
        fake_build(project, SECOND, force=True)
    assert {p.relative_to(project).as_posix(): p.read_text()
            for p in project.rglob("*") if p.is_file()} == files
    assert os.listdir(tmp_path) == ["project"]


def test_force_builds_beside_the_files_of_a_folder_that_is_not_a_build(tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.c").write_text("int main;")
    with pytest.raises(ArielError, match="it has no ariel.json.*--force"):
        fake_build(project, SECOND)
    fake_build(project, SECOND, force=True)
    assert tree(project) == {**SECOND, "src/main.c": "int main;"}
    fake_build(project, FIRST)  # now an ariel build: no --force needed
    assert tree(project) == {**FIRST, "src/main.c": "int main;"}


def test_force_never_replaces_a_file_ariel_did_not_write(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "Makefile").write_text("mine")
    with pytest.raises(ArielError, match="'Makefile'.* that ariel did not write"):
        fake_build(project, SECOND, force=True)
    assert tree(project) == {"Makefile": "mine"}
    assert os.listdir(tmp_path) == ["project"]


def test_an_edited_file_stops_the_rebuild_and_force_replaces_it(tmp_path):
    out = tmp_path / "out"
    fake_build(out, FIRST)
    (out / "model" / "m.c").write_text("int edited;\n")
    with pytest.raises(ArielError, match="'model/m.c'.* changed since.*--force"):
        fake_build(out, SECOND)
    assert (out / "model" / "m.c").read_text() == "int edited;\n"
    fake_build(out, SECOND, force=True)
    assert tree(out) == SECOND


def test_a_failed_rebuild_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    fake_build(out, FIRST)
    (out / "Y.npy").write_text("outputs")
    before = tree(out)
    with pytest.raises(RuntimeError), staged_output(out) as staging:
        (staging / "Makefile").write_text("half")
        raise RuntimeError("the compiler failed")
    assert tree(out) == before
    assert os.listdir(tmp_path) == ["out"]


def test_a_build_of_an_earlier_ariel_without_a_manifest_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text('{"ariel_version": "0.0.9"}')
    (out / "Makefile").write_text("all:\n")
    for force in (False, True):
        with pytest.raises(ArielError, match="earlier ariel.*remove the folder"):
            fake_build(out, SECOND, force)
    assert (out / "Makefile").read_text() == "all:\n"


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_folders_get_the_umask_s_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        fake_build(tmp_path / "new" / "out", FIRST)
        fake_build(tmp_path / "new" / "out", SECOND)
    finally:
        os.umask(old)
    for folder in (tmp_path / "new", tmp_path / "new" / "out", tmp_path / "new" / "out" / "model"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask, folder


def test_output_folders_that_cannot_be_made_are_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ArielError, match="'.*file' is a file, not a folder"):
        fake_build(tmp_path / "file" / "out", FIRST)
    with pytest.raises(ArielError, match="exists and is a file"):
        fake_build(tmp_path / "file", FIRST)
    with pytest.raises(ArielError, match="cannot create the output folder '/proc/out'"):
        fake_build("/proc/out", FIRST)


def test_files_ariel_writes_later_join_the_manifest(tmp_path):
    out = tmp_path / "out"
    fake_build(out, FIRST)
    rewrite_build_file(out, "profile.html", "<html>")
    rewrite_build_file(out, "model/m.c", "int calibrated;\n")
    metadata = json.loads((out / MARKER).read_text())
    save_metadata(out, {**metadata, "files": {}, "board": "c"})  # the manifest is kept
    (out / "Y.npy").write_text("mine")
    fake_build(out, SECOND)  # neither file counts as edited, and both are ariel's
    assert tree(out) == {**SECOND, "Y.npy": "mine"}


def test_the_build_s_own_files(tmp_path):
    out = tmp_path / "out"
    fake_build(out, FIRST)
    (out / "Y.npy").write_text("mine")
    for relative in ("Makefile", "model/m.c", MARKER, "build/firmware.elf", "build/new.npy"):
        assert is_build_file(out, out / relative), relative
    for relative in ("Y.npy", "new.npy", "model/new.c"):
        assert not is_build_file(out, out / relative), relative
    assert not is_build_file(out, tmp_path / "Makefile")
