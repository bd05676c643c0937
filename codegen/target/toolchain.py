"""The external tools ariel drives (arm-none-eabi-gcc through make, QEMU), found or reported
missing with the command that installs them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from codegen.errors import ArielError, DoesNotFitError, ToolError

INSTALL_HINT = {
    "arm-none-eabi-gcc": "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "make": "sudo apt-get install make",
    "qemu-system-arm": "sudo apt-get install qemu-system-arm",
}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ArielError(f"{name} not found on PATH; install it with `{INSTALL_HINT[name]}` "
                         "(or run `make setup` in the ariel repository)")
    return path


def run_make(directory: Path) -> None:
    """Build the firmware with the generated Makefile; a link that overflows a memory region
    becomes a DoesNotFitError saying which region and by how much."""
    require_tool("make")
    require_tool("arm-none-eabi-gcc")
    result = subprocess.run(["make", "-s", "-C", str(directory)], capture_output=True,
                            text=True)
    if result.returncode == 0:
        return
    output = result.stdout + result.stderr
    overflows = re.findall(r"region `(\w+)' overflowed by (\d+) bytes", output)
    if overflows:
        raise DoesNotFitError("; ".join(f"{region} overflowed by {int(n):,} bytes"
                                        for region, n in overflows),
                              tuple(region for region, _ in overflows))
    raise ToolError("firmware build failed", output)
