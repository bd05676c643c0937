"""Integer Div is defined where C is not: x / 0 = 0 and MIN / -1 = MIN (codegen/compiler/ops/
binary.py), the same in the numpy reference, the host build of the C and (tests/e2e/
test_division.py) the firmware; the build notes each Div whose divisor can be zero. Away from
those divisors the quotient truncates toward zero, as onnx.reference (the oracle) computes."""

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

from codegen.compiler.ops import REGISTRY
from tests.support import compile_onnx, host_model, single_node_model

SIGNED = ["int8", "int16", "int32", "int64"]
UNSIGNED = ["uint8", "uint32", "uint64"]


def operands(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of a few dividends (the type's limits among them) and divisors (0 and -1
    among them)."""
    info = np.iinfo(dtype)
    values = sorted(v for v in {int(info.min), int(info.min) + 1, -7, -1, 0, 1, 3,
                                int(info.max)} if info.min <= v <= info.max)
    a, b = np.meshgrid(np.array(values, dtype), np.array(values, dtype), indexing="ij")
    return a.reshape(-1), b.reshape(-1)


def defined_quotient(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The kernel's definition, in Python integers: truncation toward zero, wrapped into the
    type, 0 for a zero divisor."""
    info = np.iinfo(a.dtype)
    out = []
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        if y == 0:
            out.append(0)
            continue
        q = abs(x) // abs(y) * (-1 if (x < 0) != (y < 0) else 1)
        out.append((q - int(info.min)) % (1 << info.bits) + int(info.min))
    return np.array(out, dtype=a.dtype)


@pytest.mark.parametrize("dtype", SIGNED + UNSIGNED)
def test_runtime_divisor_matches_the_definition_on_the_host(tmp_path, dtype):
    a, b = operands(dtype)
    model = single_node_model("Div", {"a": a, "b": b})
    compiled = compile_onnx(model)
    (y,) = host_model(compiled, tmp_path).run(a, b)
    expected = defined_quotient(a, b)
    np.testing.assert_array_equal(y, expected)
    node = compiled.graph.nodes[0]
    np.testing.assert_array_equal(REGISTRY["Div"].reference(node, a, b)[0], expected)
    # Where C itself defines the quotient, the oracle agrees.
    fine = (b != 0) & ~((a == np.iinfo(dtype).min) & (b == -1))
    (oracle,) = ReferenceEvaluator(model).run(None, {"a": a[fine], "b": b[fine]})
    np.testing.assert_array_equal(y[fine], oracle)
    assert compiled.source.notes == [
        f"Div 'div_node' ({dtype}): its divisor is read at run time; the kernel gives 0 for "
        "x / 0, which ONNX leaves undefined and onnxruntime refuses (and the type's minimum "
        "for MIN / -1)"]


def test_constant_divisor_with_a_zero_is_defined_and_noted(tmp_path):
    a = np.array([7, -7, 9, -2**31, 12], np.int32)
    divisor = np.array([2, 0, -1, -1, 5], np.int32)
    compiled = compile_onnx(single_node_model("Div", {"a": a}, {"b": divisor}))
    (y,) = host_model(compiled, tmp_path).run(a)
    np.testing.assert_array_equal(y, [3, 0, -9, -2**31, 2])
    assert "its divisor is a constant holding zeros" in compiled.source.notes[0]


def test_constant_divisor_without_zero_or_minus_one_divides_plainly(tmp_path):
    a = np.array([7, -7, 9, -2**31], np.int32)
    compiled = compile_onnx(single_node_model("Div", {"a": a},
                                              {"b": np.array([2, 3, -4, 7], np.int32)}))
    (y,) = host_model(compiled, tmp_path).run(a)
    np.testing.assert_array_equal(y, [3, -2, -2, -306783378])
    assert compiled.source.notes == []
    assert "defined where C leaves it undefined" not in compiled.files["m.c"]


def test_float_division_by_zero_is_ieee_and_needs_no_note(tmp_path):
    a = np.array([1, -1, 0], np.float32)
    b = np.zeros(3, np.float32)
    compiled = compile_onnx(single_node_model("Div", {"a": a, "b": b}))
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(host_model(compiled, tmp_path).run(a, b)[0], a / b)
    assert compiled.source.notes == []
