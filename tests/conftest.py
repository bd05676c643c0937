"""Shared fixtures: skip tests that need an external tool only when that tool is absent,
and say which tool."""

import shutil

import pytest

TOOLS = {"qemu": ["qemu-system-arm", "arm-none-eabi-gcc", "make"]}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker, tools in TOOLS.items():
            if marker in item.keywords:
                missing = [t for t in tools if shutil.which(t) is None]
                if missing:
                    item.add_marker(pytest.mark.skip(
                        reason=f"needs {', '.join(missing)} (run `make setup`)"))
