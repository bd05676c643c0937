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


def pytest_terminal_summary(terminalreporter):
    """Print how many of ONNX's backend node cases ran, so the count is visible in CI."""
    stats = terminalreporter.stats
    reports = [r for outcome in ("passed", "failed") for r in stats.get(outcome, [])
               if ("test_onnx_node_case[" in r.nodeid or "test_onnx_qoperator_case[" in r.nodeid)
               and r.when == "call"]
    if not reports:
        return
    kinds: dict[str, int] = {}
    for report in reports:
        kind = dict(report.user_properties).get("conformance", "failed")
        kinds[kind] = kinds.get(kind, 0) + 1
    terminalreporter.write_line(
        f"ONNX backend node cases for the supported operators: {len(reports)}; "
        + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
