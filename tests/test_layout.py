"""The package's layering: each sub-package of codegen/ imports only the ones below it, so the
tree reads as the pipeline (compiler -> target -> run -> devkit -> report -> build -> ari ->
export) and no import circle can form between packages."""

import ast
from pathlib import Path

import codegen

PACKAGE = Path(codegen.__file__).parent
# Lowest first; a module may import its own package and anything earlier in this list. The
# top-level helpers come first. build.py (one model's firmware) sits below ari, whose adaptive
# builds and `optimize` build single models too; tune.py (--tune) builds and profiles variants
# of one model; cli.py sits above everything.
LAYERS = ["codegen.errors", "codegen.terminal", "codegen.files", "codegen.resources",
          "codegen.arrays", "codegen.datasets", "codegen.compiler", "codegen.target",
          "codegen.run", "codegen.devkit", "codegen.report", "codegen.build", "codegen.tune",
          "codegen.ari",
          "codegen.export", "codegen.cli"]


def _layer(module: str) -> int:
    top = ".".join(module.split(".")[:2])
    return LAYERS.index(top)


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.startswith("codegen.")]


def test_every_module_belongs_to_a_layer():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        module = ".".join(("codegen",) + path.relative_to(PACKAGE).with_suffix("").parts)
        assert ".".join(module.split(".")[:2]) in LAYERS, f"{module} is in no layer of LAYERS"


def test_no_package_imports_a_later_one():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        module = ".".join(("codegen",) + path.relative_to(PACKAGE).with_suffix("").parts)
        for imported in _imports(path):
            if _layer(imported) > _layer(module):
                upward.append(f"{module} imports {imported}")
    assert upward == []
