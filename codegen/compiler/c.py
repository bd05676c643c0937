"""Writing C text: literals that read back to the same value, index expressions, arrays of
constants, identifiers, the escaping of text that is data (names from a model, paths), and
the jinja2 environment whose filters the templates use. Every module that prints C takes its
pieces from here."""

from __future__ import annotations

import functools
import math
import re

import jinja2
import numpy as np

from codegen.compiler.c_context import CTemplate, EscapeByPlace, mark, unmark
from codegen.resources import data_dir

VALUES_PER_LINE = {"float": 6, "_Float16": 6, "default": 16}
# The standard headers of C11.
C_HEADERS = frozenset({
    "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits",
    "locale", "math", "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool",
    "stddef", "stdint", "stdio", "stdlib", "stdnoreturn", "string", "tgmath", "threads",
    "time", "uchar", "wchar", "wctype"})

# Longest model prefix: with "_weights.c" and the like it stays a legal file name.
MAX_PREFIX = 64
_NAMED_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@functools.cache
def environment() -> jinja2.Environment:
    """The environment every template renders in. In C templates, values inside comments
    and string literals are escaped for their place (c_context.py). One per process, so a
    template is compiled once (about 50 ms each) and not again for every model; the loader
    still reloads a template whose file changed."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=[EscapeByPlace],
    )
    env.template_class = CTemplate
    env.filters.update(c_float=c_float, c_index=c_index, c_literal=c_literal,
                       c_comment=c_comment, c_string=c_string, c_string_body=c_string_body,
                       one_line=one_line, mark=mark, unmark=unmark)
    return env


def one_line(value) -> str:
    """`value` as one line of printable ASCII that reads back unambiguously: a backslash
    doubled; newline, carriage return and tab as \\n, \\r, \\t; any other control or
    non-ASCII character as \\xHH, \\uHHHH or \\UHHHHHHHH (Python's notation). It never
    ends in a backslash (a final one is written \\x5c), so it cannot continue onto the next
    line, as a backslash-newline does in C and in make."""
    pieces = []
    for char in str(value):
        if char in _NAMED_ESCAPES:
            pieces.append(_NAMED_ESCAPES[char])
        elif " " <= char <= "~":
            pieces.append(char)
        else:
            pieces.append(_code_point(ord(char)))
    text = "".join(pieces)
    return text[:-2] + "\\x5c" if text.endswith("\\") else text


def _code_point(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def c_comment(value) -> str:
    """`value` as text inside a /* */ comment: one_line (no newline, no line splice), every
    `?` written \\x3f (no trigraph such as ??/ can form), and `*/` and `/*` broken by a
    backslash, so the comment can neither end early nor nest."""
    text = one_line(value).replace("?", "\\x3f")
    return re.sub(r"(?<=\*)(?=/)|(?<=/)(?=\*)", r"\\", text)


def c_string(value) -> str:
    """`value` as a C string literal holding exactly its UTF-8 bytes."""
    return f'"{c_string_body(value)}"'


def c_string_body(value) -> str:
    """The inside of a C string literal holding `value`'s UTF-8 bytes: printable ASCII as
    itself but for `"` and `\\` (escaped) and `?` (octal: no trigraph can form); newline,
    carriage return and tab by name; every other byte in three octal digits, which no
    following digit can extend (unlike a \\x escape)."""
    pieces = []
    for byte in str(value).encode("utf-8", "surrogateescape"):
        char = chr(byte)
        if char in _NAMED_ESCAPES:
            pieces.append(_NAMED_ESCAPES[char])
        elif char == '"':
            pieces.append('\\"')
        elif " " <= char <= "~" and char != "?":
            pieces.append(char)
        else:
            pieces.append(f"\\{byte:03o}")
    return "".join(pieces)


def c_identifier(text: str) -> str:
    """A C identifier made from `text` (a model's file name or --name), which names the
    model's files, functions, arrays and include guards: letters, digits and underscores
    only, lower case, at most MAX_PREFIX characters. "m_" goes in front of one that would
    start with a digit, start with "ariel" (ariel's own names) or take the name of a header
    the build can see (a C standard header, or a firmware file)."""
    ident = re.sub(r"[^0-9a-zA-Z_]", "_", text).strip("_").lower()[:MAX_PREFIX].strip("_")
    ident = ident or "model"
    if ident[0].isdigit() or ident.startswith("ariel") or ident in _taken_names():
        ident = f"m_{ident}"[:MAX_PREFIX]
    return ident


@functools.cache
def _taken_names() -> frozenset[str]:
    """Names a model's files may not have: the build's include path holds the model folder,
    which is searched before the system's for <math.h> too, and include guards follow the
    file names."""
    firmware = {path.name.split(".")[0] for path in data_dir("firmware").rglob("*")}
    return frozenset(C_HEADERS | firmware | {"ari"})


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


def c_index(strides: list[int], prefix: str = "i", base: int = 0) -> str:
    """The offset expression base + sum(i_k * stride_k) for a loop nest, skipping zero
    strides. A negative stride is subtracted (`7 - i0 * 2`): the loop counters are
    uint32_t, so the sum wraps modulo 2**32 and comes back to the true, non-negative
    offset."""
    text = str(base) if base else ""
    for k, stride in enumerate(strides):
        if not stride:
            continue
        term = f"{prefix}{k}" if abs(stride) == 1 else f"{prefix}{k} * {abs(stride)}"
        if stride < 0:
            text = f"{text} - {term}" if text else f"0 - {term}"
        else:
            text = f"{text} + {term}" if text else term
    return text or "0"


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
