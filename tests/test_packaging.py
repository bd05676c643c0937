"""A non-editable install carries everything ariel reads at run time: the C templates,
firmware sources, board files, Renode templates and the example models and data."""

import subprocess
import sys
import zipfile

import pytest

from codegen.resources import data_dir


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheel")
    root = data_dir("templates").parent
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "-w", str(folder), str(root)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return next(folder.glob("ariel-*.whl"))


def test_wheel_carries_the_data_folders(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("templates", "firmware", "boards", "renode", "examples"):
        source = data_dir(folder)
        for path in source.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(source.parent).as_posix()
                assert f"codegen/_data/{relative}" in names, relative


def test_wheel_has_the_console_script(wheel):
    archive = zipfile.ZipFile(wheel)
    entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
    assert "ariel = codegen.cli:main" in archive.read(entry_points).decode()
