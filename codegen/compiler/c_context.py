"""Escaping by position in the C text: every `{{ value }}` a C template substitutes inside a
comment or a string literal is escaped for that place, without the template asking for it.

The template's own text is read as C while it is compiled (code, `/* comment */`, `"string"`):
a value inside a comment gets the `c_comment` filter, inside a string `c_string_body`. So a
name that comes from a model is data wherever a template puts it, and a template cannot
forget the escape. Values in code (kernel bodies, index expressions, identifiers) are ariel's
own C and stay as they are.

One thing an escape cannot see is its neighbours: a value that is safe alone could still
complete a `*/` or a `??` with the template text beside it (or with the next value of a
loop). Values in comments are therefore marked while rendering, and where the characters on
the two sides of a mark could pair up, the mark becomes a space (CTemplate.render)."""

from __future__ import annotations

import re

import jinja2
from jinja2.ext import Extension
from jinja2.lexer import (
    TOKEN_DATA,
    TOKEN_LPAREN,
    TOKEN_NAME,
    TOKEN_PIPE,
    TOKEN_RPAREN,
    TOKEN_VARIABLE_BEGIN,
    TOKEN_VARIABLE_END,
    Token,
    TokenStream,
)

# Templates that are not C: their values are escaped by hand (`| one_line`).
NOT_C_TEMPLATES = frozenset({
    "firmware/Makefile.j2", "export/CMakeLists.txt.j2", "export/arm-none-eabi.cmake.j2",
    "export/zephyr_module.yml.j2", "export/zephyr_CMakeLists.txt.j2", "export/Kconfig.j2",
    "export/library.properties.j2"})

# Private-use characters around each value rendered into a comment; never in the output.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
# Characters that pair across a value's edge into a comment's end or start or a trigraph.
PAIRING = "*/?"
_MARKS = re.compile(f"[{MARK_OPEN}{MARK_CLOSE}]+")

CODE, COMMENT, LINE_COMMENT, STRING, CHAR = "code", "comment", "// comment", "string", "char"
# The filters a value gets in each place (code: none).
FILTERS = {COMMENT: ("unmark", "c_comment", "mark"), STRING: ("unmark", "c_string_body")}


class CLexer:
    """Where in C text we are after reading it: code, a comment, a string or a character
    literal (enough of C's lexical rules for template text; line splices are not followed)."""

    def __init__(self):
        self.place = CODE
        self._previous = ""

    def feed(self, text: str) -> None:
        for char in text:
            self._step(char)

    def _step(self, char: str) -> None:
        previous, self._previous = self._previous, char
        if self.place == CODE:
            if previous == "/" and char in "*/":
                self.place, self._previous = (COMMENT if char == "*" else LINE_COMMENT), ""
            elif char in "\"'":
                self.place = STRING if char == '"' else CHAR
        elif self.place == COMMENT:
            if previous == "*" and char == "/":
                self.place, self._previous = CODE, ""
        elif self.place == LINE_COMMENT:
            if char == "\n":
                self.place = CODE
        elif previous == "\\":
            self._previous = ""  # an escaped character, even a quote or a backslash
        elif char == ('"' if self.place == STRING else "'") or char == "\n":
            self.place = CODE


class EscapeByPlace(Extension):
    """Adds the escaping filters of its place to every value of a C template."""

    def filter_stream(self, stream: TokenStream):
        if stream.name in NOT_C_TEMPLATES:
            return stream
        return self._escaped(stream)

    def _escaped(self, stream: TokenStream):
        lexer = CLexer()
        for token in stream:
            if token.type == TOKEN_DATA:
                lexer.feed(token.value)
            if token.type != TOKEN_VARIABLE_BEGIN or lexer.place == CODE:
                yield token
                continue
            if lexer.place not in FILTERS:
                raise jinja2.TemplateSyntaxError(
                    f"a value inside a {lexer.place} cannot be escaped: put it in a /* */ "
                    "comment or a string", token.lineno, stream.name, stream.filename)
            line = token.lineno
            yield token
            yield Token(line, TOKEN_LPAREN, "(")
            for inner in stream:
                if inner.type == TOKEN_VARIABLE_END:
                    break
                yield inner
            yield Token(line, TOKEN_RPAREN, ")")
            for name in FILTERS[lexer.place]:
                yield Token(line, TOKEN_PIPE, "|")
                yield Token(line, TOKEN_NAME, name)
            yield inner


def mark(text: str) -> str:
    return f"{MARK_OPEN}{text}{MARK_CLOSE}"


def unmark(value) -> str:
    """A value without the marks of values rendered inside it (a macro's output)."""
    return str(value).replace(MARK_OPEN, "").replace(MARK_CLOSE, "")


def settle_marks(text: str) -> str:
    """`text` without marks; a space where the characters on the two sides of a mark could
    pair into `*/`, `/*` or a trigraph."""
    if MARK_OPEN not in text:
        return text

    def joint(match: re.Match) -> str:
        before = text[match.start() - 1] if match.start() else ""
        after = text[match.end()] if match.end() < len(text) else ""
        return " " if before and after and before in PAIRING and after in PAIRING else ""

    return _MARKS.sub(joint, text)


class CTemplate(jinja2.Template):
    """A template whose rendered text has its comment values' marks settled."""

    def render(self, *args, **kwargs) -> str:
        return settle_marks(super().render(*args, **kwargs))
