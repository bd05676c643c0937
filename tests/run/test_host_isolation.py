"""Generated C run on the host (codegen/run/hostrun.py) runs in a child process: C that traps
ends the child, and ariel says in one line which kernel was running, then carries on with a
new child. The trap here is made on purpose: the Div kernel's C with its divisor checks
taken out, so an integer division by zero raises SIGFPE as it does on x86."""

import re

import numpy as np
import pytest

from codegen.errors import ArielError
from codegen.run.hostrun import HostModel, build_host_library
from tests.support import compile_onnx, single_node_model


def unchecked_division(files: dict[str, str]) -> dict[str, str]:
    """The model's C with the Div kernel's quotient computed by C's bare division."""
    source = files["m.c"]
    unchecked, count = re.subn(r"int32_t v = .*;", "int32_t v = x0[i0] / x1[i0];", source)
    assert count == 1
    return {**files, "m.c": unchecked}


def test_a_trap_in_a_kernel_is_one_line_naming_the_kernel(tmp_path):
    a = np.array([7, -7, 5, 1], np.int32)
    compiled = compile_onnx(single_node_model("Div", {"a": a, "b": a}))
    host = HostModel(build_host_library(unchecked_division(compiled.files), tmp_path / "trap"),
                     compiled.info)
    np.testing.assert_array_equal(host.run(a, np.array([2, 2, 2, 2], np.int32))[0],
                                  [3, -3, 2, 0])
    with pytest.raises(ArielError) as caught:
        host.run(a, np.array([1, 0, 1, 1], np.int32))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the generated C of model m, run on the host, was killed by "
                              "SIGFPE (an arithmetic trap, such as an integer division by zero")
    assert "in kernel n00_div (Div 'div_node')" in message
    # The next run gets a new child process.
    np.testing.assert_array_equal(host.run(a, np.array([1, 1, 1, -1], np.int32))[0],
                                  [7, -7, 5, -1])


def test_the_checked_kernel_runs_where_the_bare_division_traps(tmp_path):
    a = np.array([7, -7, -2**31, 1], np.int32)
    b = np.array([0, 2, -1, 0], np.int32)
    compiled = compile_onnx(single_node_model("Div", {"a": a, "b": b}))
    host = HostModel(build_host_library(compiled.files, tmp_path / "checked"), compiled.info)
    np.testing.assert_array_equal(host.run(a, b)[0], [0, -3, -2**31, 0])
