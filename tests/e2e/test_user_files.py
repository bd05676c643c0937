"""The user's files through the `ariel` command: a folder that is not an ariel build is never
replaced, a rebuild keeps the outputs and reports saved in the build folder, output folders
get the umask's permissions, and no report is written through a planted symlink."""

import os
import stat

import numpy as np
import pytest

from tests.e2e.test_cli_errors import assert_clean_error, run, tiny_model

pytestmark = pytest.mark.qemu


def test_a_project_folder_holding_an_ariel_json_is_not_replaced(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    files = {"notes.txt": "keep me", "src/main.c": "int main(void) { return 0; }\n",
             "ariel.json": '{"name": "my project"}\n'}
    for relative, text in files.items():
        (project / relative).write_text(text)
    for force in ([], ["--force"]):
        code, _, err = run(["build", model, "-o", project, *force])
        assert_clean_error(code, err, "project")
    assert {p.relative_to(project).as_posix(): p.read_text()
            for p in project.rglob("*") if p.is_file()} == files


def test_a_rebuild_keeps_the_outputs_and_reports_saved_in_the_build(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    out = tmp_path / "out"
    code, _, err = run(["build", model, "-o", out])
    assert code == 0, err
    np.save(tmp_path / "x.npy", np.ones((2, 1, 3, 8, 8), np.float32))
    code, _, err = run(["simulate", out, "--inputs", tmp_path / "x.npy", "--outputs",
                        out / "Y.npy", "--json", out / "report.json"])
    assert code == 0, err
    saved = {name: (out / name).read_bytes() for name in ("Y.npy", "report.json")}
    (out / "model" / "notes.txt").write_text("why this model")
    code, _, err = run(["build", model, "-o", out])
    assert code == 0, err
    assert {name: (out / name).read_bytes() for name in saved} == saved
    assert (out / "model" / "notes.txt").read_text() == "why this model"
    assert (out / "build" / "firmware.elf").is_file()


def test_an_edited_source_stops_the_rebuild_until_force(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    out = tmp_path / "out"
    assert run(["build", model, "-o", out])[0] == 0
    source = out / "model" / "m.c"
    source.write_text(source.read_text() + "/* tuned by hand */\n")
    code, _, err = run(["build", model, "-o", out])
    assert_clean_error(code, err, "'model/m.c'", "changed since", "--force")
    assert source.read_text().endswith("/* tuned by hand */\n")
    code, _, err = run(["build", model, "-o", out, "--force"])
    assert code == 0, err
    assert "tuned by hand" not in source.read_text()


def test_folders_get_the_umask_s_permissions_and_reports_ignore_planted_symlinks(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    out = tmp_path / "new" / "out"
    old = os.umask(0o022)
    try:
        code, _, err = run(["build", model, "-o", out])
    finally:
        os.umask(old)
    assert code == 0, err
    for folder in (tmp_path / "new", out):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
    np.save(tmp_path / "x.npy", np.ones((1, 3, 8, 8), np.float32))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("y.npy", "r.json"):
        os.symlink(victim, tmp_path / f".{name}.tmp")
    code, _, err = run(["simulate", out, "--inputs", tmp_path / "x.npy", "--outputs",
                        tmp_path / "y.npy", "--json", tmp_path / "r.json"])
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert np.load(tmp_path / "y.npy").shape == (1, 1, 2, 8, 8)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [
        ".r.json.tmp", ".y.npy.tmp"]
