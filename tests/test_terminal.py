"""codegen/terminal.py: what ariel prints shows names as data."""

import pytest

from codegen.terminal import shown, shown_lines


@pytest.mark.parametrize("text, expected", [
    ("conv1/Conv", "conv1/Conv"),
    ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
    ("a\rb\x08c\x7fd\x9be", "a\\rb\\x08c\\x7fd\\x9be"),
    ("two\nlines", "two\\nlines"),
    ("\u202eevil\u2066\u200b", "\\u202eevil\\u2066\\u200b"),
    ("tab\tkept, üñï €, 名前 \U0001f600", "tab\tkept, üñï €, 名前 \U0001f600"),
    (b"bad\xffname".decode(errors="surrogateescape"), "bad\\xffname"),
])
def test_shown_escapes_what_is_not_visible_text(text, expected):
    assert shown(text) == expected


def test_shown_lines_keeps_line_breaks_only():
    assert shown_lines("a\x1b[1m\nb\r\n") == "a\\x1b[1m\nb\\r\n"
    assert shown(ValueError("x\ny")) == "x\\ny"
