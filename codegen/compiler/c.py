"""Writing C text: literals that read back to the same value, index expressions, arrays of
constants, and the jinja2 environment whose filters the templates use. Every module that
prints C takes its pieces from here."""

from __future__ import annotations

import math

import jinja2
import numpy as np

from codegen.resources import data_dir

VALUES_PER_LINE = {"float": 6, "_Float16": 6, "default": 16}


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(c_float=c_float, c_index=c_index, c_literal=c_literal)
    return env


def c_float(value: float) -> str:
    """A float32 literal that reads back to the same bits."""
    value = float(np.float32(value))
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    text = f"{value:.9g}"
    if not any(ch in text for ch in ".e"):
        text += ".0"
    return text + "f"


def c_literal(value, ctype: str) -> str:
    """A C literal of type `ctype` for `value` (integer limits spelled as macros)."""
    if ctype == "float":
        return c_float(value)
    value = int(value)
    if ctype in ("int64_t", "uint64_t"):
        if value == -2**63:
            return "INT64_MIN"
        return f"{'UINT64_C' if ctype.startswith('u') else 'INT64_C'}({value})"
    if value == -2**31:
        return "INT32_MIN"
    return f"{value}u" if ctype.startswith("u") else str(value)


def c_index(strides: list[int], prefix: str = "i") -> str:
    """The offset expression sum(i_k * stride_k) for a loop nest, skipping zero strides."""
    terms = []
    for k, stride in enumerate(strides):
        if stride == 1:
            terms.append(f"{prefix}{k}")
        elif stride:
            terms.append(f"{prefix}{k} * {stride}")
    return " + ".join(terms) or "0"


def c_array_body(data: np.ndarray, ctype: str) -> str:
    flat = data.reshape(-1)
    per_line = VALUES_PER_LINE.get(ctype, VALUES_PER_LINE["default"])
    if ctype in ("float", "_Float16"):
        # Half-precision values are float32 values too: the literal converts exactly.
        items = [c_float(v) for v in flat.astype(np.float32)]
    else:
        items = [c_literal(v, ctype) for v in flat]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)


def c_term(expression: str) -> str:
    """`expression` safe to multiply (parenthesized unless a name or a number)."""
    return expression if expression.replace("_", "").isalnum() else f"({expression})"
