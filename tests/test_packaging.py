"""A non-editable install carries everything ariel reads at run time: the C templates,
firmware sources, board files, Renode templates and the example models and data."""

import zipfile

from codegen.resources import data_dir


def test_wheel_carries_the_data_folders(ariel_wheel):
    names = set(zipfile.ZipFile(ariel_wheel).namelist())
    for folder in ("templates", "firmware", "boards", "renode", "examples"):
        source = data_dir(folder)
        for path in source.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(source.parent).as_posix()
                assert f"codegen/_data/{relative}" in names, relative


def test_wheel_has_the_console_script(ariel_wheel):
    archive = zipfile.ZipFile(ariel_wheel)
    entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
    assert "ariel = codegen.cli:main" in archive.read(entry_points).decode()
