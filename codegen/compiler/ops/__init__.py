"""Operator implementations. Importing this package imports every module in it, and each
module registers its operators in REGISTRY (so adding an operator is adding one file)."""

import importlib
import pkgutil

from codegen.compiler.ops.base import REGISTRY, OpDef

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["REGISTRY", "OpDef"]
