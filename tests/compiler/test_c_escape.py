"""Text that is data in C and in Makefiles: string literals read back byte for byte, comments
neither end early nor swallow a line, Makefile comments stay one line, identifiers are plain
and never take a name the build already uses, and templates escape a value by where it
stands in the C text. Checked by compiling with gcc -Wall -Wextra -Werror (with trigraphs on,
as -std=c11 has them) and reading the result back."""

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import numpy as np
import pytest

from codegen.compiler.c import (
    C_HEADERS,
    MAX_PREFIX,
    c_comment,
    c_float,
    c_identifier,
    c_string,
    environment,
    one_line,
)
from codegen.compiler.c_context import COMMENT, LINE_COMMENT, STRING, CLexer
from codegen.target.boards import get_board
from tests.support import run_on_host, single_node_model

TEXTS = [
    "plain", "", 'x"}; int evil = 1; //', "*/ int evil = 2; /*", "/*", "*/", "*", "/",
    "tri??/", "??/", "???/", "??=??(??)??<??>??!??'??-", "end\\", "\\", "\\\\n", "\\x41",
    "new\nline", "cr\rlf\r\n", "tab\there", "\x01\x02\x1b[31m\x7f", "%s%n%%", "$(shell x)",
    "`cmd` ; #", "\u00fcn\u00ef\u20ac\U0001f600", "\u202ebidi\u2066", "\udcff from a path",
    "\\\nsplice", "*\\\n/", "hex\xff1", "long" * 2000, "'single' \"double\"",
]
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs"]


def _compile(source: str, folder: Path, compiler: str = "gcc") -> Path:
    path = folder / "t.c"
    path.write_text(source)
    library = folder / f"t-{compiler}.so"
    flags = ["-shared", "-fPIC"] if compiler == "gcc" else ["-mcpu=cortex-m4", "-mthumb", "-c"]
    result = subprocess.run([compiler, *CFLAGS, *flags, str(path), "-o", str(library)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return library


def _with_cross_compiler(source: str, folder: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (run `make setup`)")
    _compile(source, folder, "arm-none-eabi-gcc")


def test_string_literals_hold_exactly_the_texts_bytes(tmp_path):
    literals = ",\n".join(f"    {c_string(text)}" for text in TEXTS)
    source = f"const char *const texts[{len(TEXTS)}] = {{\n{literals}\n}};\n"
    assert source.isascii()
    library = ctypes.CDLL(str(_compile(source, tmp_path)))
    texts = (ctypes.c_char_p * len(TEXTS)).in_dll(library, "texts")
    assert [t.decode("utf-8", "surrogateescape") for t in texts] == TEXTS
    _with_cross_compiler(source, tmp_path)


def test_a_string_literal_may_touch_digits_and_question_marks(tmp_path):
    """Octal escapes end after three digits, and no `?` is left to pair with a neighbour."""
    source = ("const char a[] = " + c_string("\x01") + '"7";\n'
              "const char b[] = " + c_string("?") + '"?/";\n')
    library = ctypes.CDLL(str(_compile(source, tmp_path)))
    assert (ctypes.c_char * 3).in_dll(library, "a").raw == b"\x017\0"
    assert (ctypes.c_char * 4).in_dll(library, "b").raw == b"??/\0"


def test_comments_neither_end_early_nor_swallow_the_next_line(tmp_path):
    """Each text inside a one-line comment, and at the end of a line of a block comment,
    then a definition: every definition is there and nothing else."""
    parts = []
    for i, text in enumerate(TEXTS):
        parts.append(f"/* {c_comment(text)} */ int after_one_line_{i} = {i};\n"
                     f"/*\n * {c_comment(text)}\n * {c_comment(text)}\n */\n"
                     f"int after_block_{i} = {i};\n")
    source = "".join(parts)
    assert source.isascii()
    library = ctypes.CDLL(str(_compile(source, tmp_path)))
    for i in range(len(TEXTS)):
        assert ctypes.c_int.in_dll(library, f"after_one_line_{i}").value == i
        assert ctypes.c_int.in_dll(library, f"after_block_{i}").value == i
    with pytest.raises(ValueError):
        ctypes.c_int.in_dll(library, "evil")
    _with_cross_compiler(source, tmp_path)


def test_comment_text_stays_readable():
    assert c_comment("/conv1/Conv_output_0") == "/conv1/Conv_output_0"
    assert c_comment("a */ b /* c") == "a *\\/ b /\\* c"
    assert c_comment("why?") == "why\\x3f"
    assert c_comment("two\nlines\\") == "two\\nlines\\x5c"
    assert c_comment("caf\u00e9 \U0001f600") == "caf\\xe9 \\U0001f600"


def test_one_line_is_one_printable_line_that_never_continues():
    for text in TEXTS:
        line = one_line(text)
        assert line.isascii() and line.isprintable() and not line.endswith("\\")
    assert one_line("a\\b\n") == "a\\\\b\\n"


def test_makefile_comments_stay_comments(tmp_path):
    """A comment per text, each followed by a rule: make sees every rule and runs nothing
    the texts hold."""
    lines = []
    for i, text in enumerate([*TEXTS, "\\", "x\\", "$(shell touch PWNED)\\"]):
        lines += [f"# {one_line(text)}", f"rule{i}:", f"\t@echo rule{i}"]
    (tmp_path / "Makefile").write_text("\n".join(lines) + "\n")
    rules = [f"rule{i}" for i in range(len(TEXTS) + 3)]
    result = subprocess.run(["make", "-s", "-C", str(tmp_path), *rules], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == rules
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("text,ident", [
    ("digits_cnn", "digits_cnn"), ("My Net-v2.1", "my_net_v2_1"), ("9lives", "m_9lives"),
    ("__x__", "x"), ("", "model"), ("\u043c\u043e\u0434\u0435\u043b\u044c", "model"),
    ("x\"; int evil; /*", "x___int_evil"),
    # Names the build already uses: C's headers (the model folder is on the include path,
    # searched before the system's for <math.h> too) and ariel's own files and names.
    ("math", "m_math"), ("stdint", "m_stdint"), ("ariel_runtime", "m_ariel_runtime"),
    ("ariel_model", "m_ariel_model"), ("semihost", "m_semihost"), ("board", "m_board"),
    ("ari", "m_ari"), ("Ariel", "m_ariel"),
])
def test_identifiers_are_plain_and_take_no_name_in_use(text, ident):
    assert c_identifier(text) == ident


def test_identifiers_are_short_enough_to_name_files():
    ident = c_identifier("a" * 300)
    assert len(ident) == MAX_PREFIX and len(f"{ident}_weights.c") < 255
    assert c_identifier("1" * 300).startswith("m_") and len(c_identifier("1" * 300)) <= 64
    assert all(c_identifier(h) != h for h in C_HEADERS)


def test_kernel_function_names_are_identifiers():
    """Kernels are named n<index>_<op type>: every registered op type gives an identifier."""
    from codegen.compiler.emit import _snake
    from codegen.compiler.ops import REGISTRY

    for op in REGISTRY:
        assert re.fullmatch(r"n00_[a-z][a-z0-9_]*", f"n00_{_snake(op)}"), op


@pytest.mark.parametrize("name", ["math", "stdint", "ariel_runtime"])
def test_a_model_named_after_a_header_builds(tmp_path, name):
    """A model file named math.onnx (whose Sigmoid needs <math.h>), stdint.onnx or
    ariel_runtime.onnx: its header would hide the real one."""
    model = single_node_model("Sigmoid", {"x": np.zeros((1, 4), np.float32)})
    got = run_on_host(model, [np.zeros((1, 4), np.float32)], tmp_path, name=name)
    assert got[0].tolist() == [[0.5] * 4]


# ---------------------------------------------------------------------------- templates

def render(source: str, **values) -> str:
    return environment().from_string(source).render(**values)


def test_values_are_escaped_by_where_they_stand():
    name = 'a */ "b" ??/\n'
    text = render('/* {{ n }} */ const char *s = "{{ n }}"; int {{ code }};\n',
                  n=name, code="x = 1")
    assert text == ('/* a *\\/ "b" \\x3f\\x3f/\\n */ const char *s = '
                    '"a */ \\"b\\" \\077\\077/\\n"; int x = 1;\n')


def test_values_in_loops_and_beside_template_text_cannot_pair_into_a_comment_end():
    """A value is escaped alone; where its neighbour could complete `*/`, `/*` or `??`,
    rendering puts a space between them."""
    assert render("/* a*{{ v }} */", v="/b") == "/* a* /b */"
    assert render("/* {{ v }}/ */", v="a*") == "/* a* / */"
    assert render("/* {% for v in vs %}{{ v }}{% endfor %} */", vs=["a*", "/b/", "*c"]) == (
        "/* a* /b/ *c */")
    assert render("/* {{ v }}{{ w }} */", v="x", w="y") == "/* xy */"


@pytest.mark.parametrize("source", ["// {{ v }}\n", "char c = '{{ v }}';\n"])
def test_a_value_where_it_cannot_be_escaped_is_refused(source):
    with pytest.raises(jinja2.TemplateSyntaxError, match="cannot be escaped"):
        environment().from_string(source)


def test_every_template_compiles_with_its_values_escaped():
    """No template puts a value in a // comment or a character literal."""
    env = environment()
    for name in env.list_templates():
        env.get_template(name)


def test_the_makefile_is_not_read_as_c():
    template = environment().get_template("firmware/Makefile.j2")
    text = template.render(version="0", board=get_board("mps2-an386"),
                           command="ariel build 'a */ b?\n$(shell x)'", sources=[])
    assert "#   command: ariel build 'a */ b?\\n$(shell x)'\n" in text


def test_the_lexer_follows_cs_places():
    lexer = CLexer()
    for text, place in [("int a = 1 / 2; /* x ", COMMENT), ("*/ s = \"a\\\"", STRING),
                        ("\\\\\" + 1; //", LINE_COMMENT), (" c\n", "code"),
                        ("/*/", COMMENT), ("*/'\"'", "code")]:
        lexer.feed(text)
        assert lexer.place == place, text


def test_float_literals_read_back_to_the_same_float32(tmp_path):
    """Nine significant digits tell every float32 apart (eight do not): the host's C
    compiler reads each literal c_float writes back to the very bits it came from."""
    rng = np.random.default_rng(12)
    values = np.concatenate([rng.standard_normal(200).astype(np.float32),
                             np.float32(1) + np.arange(1, 60, dtype=np.float32) * 2**-23,
                             np.array([np.finfo(np.float32).tiny, np.finfo(np.float32).max,
                                       -np.finfo(np.float32).eps, 1e-40], np.float32)])
    source = ("#include <stdint.h>\nconst float values[] = {"
              + ", ".join(c_float(v) for v in values) + "};\n")
    (tmp_path / "f.c").write_text(source)
    library = tmp_path / "libf.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-std=c11", str(tmp_path / "f.c"), "-o",
                    str(library)], check=True)
    read = (ctypes.c_float * len(values)).in_dll(ctypes.CDLL(str(library)), "values")
    np.testing.assert_array_equal(np.frombuffer(bytes(read), np.float32).view(np.uint32),
                                  values.view(np.uint32))
