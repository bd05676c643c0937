"""Text for the terminal: names from a model or a command line shown as data. A node name may
hold an ANSI escape (clear the screen, retitle the window, rewrite the line before it), a
carriage return, a backspace or a right-to-left override, and a path that is not UTF-8
reaches Python as lone surrogates; printed as they are, they would let a model forge or
hide what ariel says. Every line ariel prints goes through `shown` (one line: messages) or
`shown_lines` (a report or a tool's output, line breaks kept)."""

from __future__ import annotations

import unicodedata

# Unicode categories that draw nothing and may steer the terminal: controls (C0, DEL, C1),
# formats (bidirectional overrides, zero-width characters), surrogates, unassigned.
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn"}
_SURROGATE_ESCAPES = range(0xDC80, 0xDD00)  # os.fsdecode's stand-ins for bytes 0x80-0xff


def shown(text: object) -> str:
    """`text` as one line: every character that is not visible text written as an escape
    (`\\x1b`, `\\n`, `\\u202e`; a byte of a non-UTF-8 path as `\\xff`)."""
    return "".join(_escape(c) for c in str(text))


def shown_lines(text: object) -> str:
    """`text` with its line breaks kept and every other invisible character escaped."""
    return "\n".join(shown(line) for line in str(text).split("\n"))


def _escape(char: str) -> str:
    if char == "\t" or unicodedata.category(char) not in _HIDDEN:
        return char
    code = ord(char)
    if code in _SURROGATE_ESCAPES:
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return {"\n": "\\n", "\r": "\\r"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
