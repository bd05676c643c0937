"""ONNX's backend node cases (what onnx.backend.test.case.node.collect_testcases() returns),
built once per test run.

collect_testcases() imports every module of onnx.backend.test.case.node, and importing one
runs its cases' reference computations: about 15 s of a core in all, most of it the 3-D
pooling modules. Every pytest-xdist worker must hold the same list. So the workers share the
work, module by module: a worker takes each module no other worker has taken yet, builds its
cases and pickles them into the run's temporary folder (tests/per_run.py), then loads every
module's cases in collect_testcases()'s order, waiting for those another worker is still
building. The run builds each case once, and the workers build at the same time. Each run
builds the cases afresh, as before: some draw unseeded random inputs. Without xdist the cases
are built in process, by collect_testcases() itself."""

from __future__ import annotations

import functools
import importlib
import pickle
import pkgutil
import warnings
from pathlib import Path

from tests.per_run import once_per_run, sharing


@functools.cache
def all_cases() -> list:
    """Every node case of the installed onnx, in collect_testcases()'s order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not sharing():
            from onnx.backend.test.case.node import collect_testcases

            return list(collect_testcases())
        names = _case_modules()
        for name in names:  # the modules no other worker has taken: built here
            once_per_run(f"onnx-node-cases/{name}", functools.partial(_store, name), wait=False)
        return [case for name in names  # every module's, waiting for another worker's
                for case in pickle.loads(once_per_run(
                    f"onnx-node-cases/{name}", functools.partial(_store, name)).read_bytes())]


def _case_modules() -> list[str]:
    """The modules collect_testcases() imports (onnx.backend.test.case.utils.import_recursive),
    in its order."""
    import onnx
    from onnx.backend.test.case import node

    names = []

    def walk(package) -> None:
        for _, name, is_package in pkgutil.iter_modules(package.__path__):
            name = f"{package.__name__}.{name}"
            if not onnx.ONNX_ML and name.startswith("onnx.backend.test.case.node.ai_onnx_ml"):
                continue
            names.append(name)
            if is_package:
                walk(importlib.import_module(name))

    walk(node)
    return names


def _store(module: str, path: Path) -> None:
    """Import `module` (which builds its cases) and pickle the cases it added."""
    from onnx.backend.test.case import node

    before = len(node._NodeTestCases)
    importlib.import_module(module)
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(pickle.dumps(node._NodeTestCases[before:],
                                  protocol=pickle.HIGHEST_PROTOCOL))
