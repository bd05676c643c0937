"""Models whose names are hostile: tensor, node and graph names and doc strings holding `"`,
`\\`, `*/`, `??/`, newlines, `%`, `$`, non-ASCII text and pieces of C. A name is data: the
generated C must compile, run and match onnxruntime, and no name may become code (each
payload that closes a string or comment declares a symbol `fuzz_injected_N`; finding one in
the built library means the model's text was compiled). Some cases go through `ariel build`
as well (firmware, Makefile), the rest are checked on the host for speed."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import onnx

from codegen.run.hostrun import build_host_library
from tests.fuzz.command import Sentinels, ariel
from tests.fuzz.graph_cases import _check_float, _compile, _onnxruntime
from tests.fuzz.graphs import FLOAT, random_graph
from tests.fuzz.outcomes import CORRECT, WRONG, Verdict, one_line

PIECES = ['"', "\\", "*/", "/*", "??/", "\n", "%s", "%n", "$", "$(touch INJECTED)", "`id`",
          "'", ";", "#", "{", "}", "\t", "é", "名前", "\u202e", "\\n", "//", "\r\n", " "]
# Payloads that would declare a global variable if a name reached C unescaped.
PAYLOADS = ['"}; int fuzz_injected_{n} = 1; static const char *s_{n} = "',
            '*/ int fuzz_injected_{n} = 1; /*',
            '\nint fuzz_injected_{n} = 1;\n',
            '??/\nint fuzz_injected_{n} = 1; //',
            '\\\nint fuzz_injected_{n} = 1;']
BUILD_SHARE = 4  # one case in this many also runs `ariel build`


def hostile(rng: np.random.Generator, number: int) -> str:
    if rng.random() < 0.5:
        return PAYLOADS[int(rng.integers(len(PAYLOADS)))].replace("{n}", str(number))
    return "".join(str(rng.choice(PIECES)) if rng.random() < 0.6 else "a"
                   for _ in range(int(rng.integers(1, 12))))


def rename(model: onnx.ModelProto, rng: np.random.Generator) -> onnx.ModelProto:
    """Every name of `model` replaced by a distinct hostile one (references kept)."""
    graph = model.graph
    names = sorted({*(v.name for v in [*graph.input, *graph.output, *graph.value_info]),
                    *(i.name for i in graph.initializer),
                    *(n for node in graph.node for n in [*node.input, *node.output] if n)})
    mapping = {name: f"{hostile(rng, i)}#{i}" for i, name in enumerate(names)}
    for value in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        value.name = mapping[value.name]
    for index, node in enumerate(graph.node):
        node.input[:] = [mapping[n] if n else n for n in node.input]
        node.output[:] = [mapping[n] for n in node.output]
        node.name = f"{hostile(rng, 1000 + index)}#{index}"  # onnxruntime wants them distinct
        node.doc_string = hostile(rng, 2000 + index)
    graph.name = hostile(rng, 3000)
    graph.doc_string = hostile(rng, 3001)
    model.doc_string = hostile(rng, 3002)
    model.producer_name = hostile(rng, 3003)
    return model


def names_case(seed: int, folder: Path) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    case = random_graph(int(rng.integers(1 << 30)), FLOAT)
    model = rename(case.model, rng)
    onnx.checker.check_model(model)
    feeds = {model.graph.input[i].name: value
             for i, value in enumerate(case.inputs.values())}
    expected = _onnxruntime(model, feeds)
    compiled = _compile(lambda: _compile_named(model))
    try:
        library = build_host_library(compiled.files, folder / "host")
    except Exception as exc:
        raise Verdict(WRONG, f"generated C does not compile: {_first_error(exc)}") from None
    loaded = ctypes.CDLL(str(library))
    injected = [n for n in range(3100) if hasattr(loaded, f"fuzz_injected_{n}")]
    if injected:
        raise Verdict(WRONG, f"a name from the model became C code (fuzz_injected_"
                      f"{injected[0]} is defined)")
    from codegen.run.hostrun import HostModel

    host = HostModel(library, compiled.info)
    got = host.run(*[feeds[s.name] for s in compiled.info.inputs])
    for spec, mine, theirs in zip(compiled.info.outputs, got, expected, strict=True):
        _check_float(spec.name, mine, theirs)
    if seed % BUILD_SHARE == 0:
        return _build(model, folder)
    return CORRECT, f"host: {len(compiled.info.kernels)} kernels"


def _compile_named(model: onnx.ModelProto):
    from tests.support import compile_onnx

    return compile_onnx(model, "hostile")


def _build(model: onnx.ModelProto, folder: Path) -> tuple[str, str]:
    """`ariel build` of the hostile model (firmware with arm-none-eabi-gcc and make)."""
    path = folder / "model.onnx"
    onnx.save(model, path)
    sentinels = Sentinels()
    sentinels.guard(path)
    out = folder / "out"
    result = ariel(["build", path, "-o", out], cwd=folder)
    sentinels.check()
    if (folder / "INJECTED").exists():
        raise Verdict(WRONG, "a name from the model ran a shell command (INJECTED exists)")
    if result.code != 0:
        outcome, line = result.refusal()
        return (WRONG if outcome == "clean refusal" else outcome), f"build refused: {line}"
    return CORRECT, "host and firmware build"


def _first_error(exc: Exception) -> str:
    lines = str(exc).splitlines()
    return one_line(next((line for line in lines if "error" in line), lines[0] if lines else ""))


KINDS = {"names": names_case}
TIME_LIMITS = {"names": 120.0}
