"""Counting builds ariel's QEMU plugin with the host's gcc: without gcc, the tests here that
need the plugin are skipped (and say why), like those that need QEMU."""

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# These check what happens without gcc, or need no plugin at all.
WITHOUT_GCC = {"test_missing_gcc_is_a_clear_error", "test_cut_short_or_foreign_output_is_an_error",
               "test_the_wheel_carries_the_plugin_source"}


def pytest_collection_modifyitems(config, items):
    if shutil.which("gcc") is not None:
        return
    for item in items:
        if HERE in Path(item.path).parents and item.originalname not in WITHOUT_GCC:
            item.add_marker(pytest.mark.skip(reason="needs the host's gcc for the counting "
                                                    "plugin (sudo apt-get install gcc)"))
