"""`ariel inspect`: every node of a model with its shapes, work and whether ariel supports it.
The graph is first folded as a build folds it (passes/fold_constants.py): what folds is
computed at compile time, so it is neither listed nor counted as unsupported; and the line a
build would stop with comes from the build's own check (passes/resolve.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen.compiler.frontend import load_graph
from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops import REGISTRY
from codegen.compiler.passes.fold_constants import fold_constants
from codegen.compiler.passes.inline_if import known_branch
from codegen.compiler.passes.resolve import check_support, operator_problem
from codegen.errors import ArielError, UnsupportedError


@dataclass
class NodeRow:
    index: int
    name: str
    op: str
    inputs: list[str]  # shapes of the non-constant inputs, as text
    output: str
    macs: int
    params: int
    problem: str | None  # why ariel cannot compile it; None when it can


@dataclass
class Inspection:
    graph: Graph
    rows: list[NodeRow]
    build_error: str | None = None  # the one line `ariel build` stops with, if it does

    @property
    def supported(self) -> bool:
        return all(r.problem is None for r in self.rows)


def inspect(path: Path, input_shapes: dict | None = None) -> Inspection:
    graph, _ = load_graph(path, input_shapes)
    fold_constants(graph)
    build_error = _build_error(graph)
    rows = []
    for index, node in enumerate(graph.nodes):
        problem = _problem(graph, node)
        if problem is None:
            _fill_shapes(graph, node)
        rows.append(NodeRow(
            index, node.name, node.op,
            [_shape_text(graph, n) for n in node.inputs if n and not graph.tensor(n).is_const],
            ", ".join(_shape_text(graph, n) for n in node.outputs),
            REGISTRY[node.op].macs(node, graph) if problem is None and node.op in REGISTRY
            else 0,
            sum(graph.tensor(n).size for n in node.inputs if n and graph.tensor(n).is_const),
            problem))
    return Inspection(graph, rows, build_error)


def _build_error(graph: Graph) -> str | None:
    try:
        check_support(graph)
    except ArielError as exc:
        return str(exc)
    return None


def _problem(graph: Graph, node: Node) -> str | None:
    if known_branch(graph, node) is not None:
        return None  # compiled as the branch it takes
    problem = operator_problem(node)
    if problem is not None:
        return f"operator {node.op} is not supported"
    try:
        REGISTRY[node.op].check(node, graph)
    except UnsupportedError as exc:
        return str(exc).split(": ", 1)[-1]
    except Exception:  # checks can trip over shapes of earlier unsupported nodes
        return "cannot be checked: an earlier node is unsupported"
    return None


def _fill_shapes(graph: Graph, node: Node) -> None:
    """Shapes ONNX could not infer, from ariel's own rules (when the inputs are known)."""
    if node.op in REGISTRY and any(graph.tensor(n).shape is None for n in node.outputs):
        if all(graph.tensor(n).shape is not None for n in node.inputs if n):
            try:
                for name, (shape, dtype) in zip(
                        node.outputs, REGISTRY[node.op].infer(node, graph.input_tensors(node)),
                        strict=True):
                    graph.tensor(name).shape, graph.tensor(name).dtype = tuple(shape), dtype
            except (ArielError, ValueError):
                pass


def _shape_text(graph: Graph, name: str) -> str:
    tensor = graph.tensor(name)
    if tensor.shape is None:
        return "?"
    return f"{tensor.dtype or '?'}[{','.join(map(str, tensor.shape))}]"


def format_inspection(result: Inspection, name_width: int = 36) -> str:
    graph = result.graph
    lines = [f"model {graph.name} (opset {graph.opset})"]
    for label, names in (("input", graph.inputs), ("output", graph.outputs)):
        for n in names:
            lines.append(f"  {label:<7}{n}: {_shape_text(graph, n)}")
    lines.append("")
    cells = [("#", "node", "op", "input", "output", "MACs", "params", "supported")]
    for r in result.rows:
        name = r.name if len(r.name) <= name_width else "…" + r.name[-(name_width - 1):]
        cells.append((str(r.index), name, r.op, " ".join(r.inputs), r.output, f"{r.macs:,}",
                      f"{r.params:,}", "yes" if r.problem is None else f"NO: {r.problem}"))
    widths = [max(len(row[i]) for row in cells) for i in range(7)]
    right = {0, 5, 6}
    rows = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row[:7], widths, strict=True)))
            + "  " + row[7] for row in cells]
    rule = "-" * len(rows[0])
    lines += [rows[0], rule, *rows[1:], rule]
    total_macs = sum(r.macs for r in result.rows)
    total_params = sum(r.params for r in result.rows)
    unsupported = [r for r in result.rows if r.problem]
    lines.append(f"{len(result.rows)} nodes, {total_macs:,} MACs, {total_params:,} parameters "
                 f"({_bytes(graph)} of constants); "
                 + ("every node is supported" if not unsupported else
                    f"{len(unsupported)} unsupported: "
                    f"{', '.join(sorted({r.op for r in unsupported}))}"))
    if result.build_error:
        lines.append(f"a build stops with: {result.build_error}")
    return "\n".join(lines)


def _bytes(graph: Graph) -> str:
    total = sum(int(np.prod(t.data.shape)) * t.data.itemsize for t in graph.tensors.values()
                if t.is_const)
    return f"{total:,} bytes"
