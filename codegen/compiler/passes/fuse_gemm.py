"""Turn a 2-D MatMul by a constant matrix followed by the Add of a constant bias into one
Gemm, so the bias is added in the accumulator instead of by a second pass over memory."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node


def fuse_gemm(graph: Graph) -> None:
    # A fused Add's output keeps its name (the Gemm writes it), so its readers stay right.
    consumers = graph.consumer_lists()
    fused: set[Node] = set()
    for matmul in [n for n in graph.nodes if n.op == "MatMul"]:
        a, b = graph.tensor(matmul.inputs[0]), graph.tensor(matmul.inputs[1])
        out = matmul.outputs[0]
        readers = consumers.get(out, [])
        if a.rank != 2 or b.rank != 2 or not b.is_const or a.dtype != "float32":
            continue
        if len(readers) != 1 or readers[0].op != "Add" or out in graph.outputs:
            continue
        add = readers[0]
        bias_name = add.inputs[1] if add.inputs[0] == out else add.inputs[0]
        bias = graph.tensor(bias_name)
        rows, cols = graph.tensor(out).shape
        if not bias.is_const or bias.rank > 2 or not _broadcasts(bias.shape, (rows, cols)):
            continue
        if bias.dtype != "float32" or add.clamp is not None:
            continue
        matmul.op, matmul.attrs = "Gemm", {}
        matmul.inputs = [matmul.inputs[0], matmul.inputs[1], bias_name]
        matmul.outputs = list(add.outputs)
        fused.add(add)
        del graph.tensors[out]
    graph.remove_nodes(fused)
    graph.remove_unused()


def _broadcasts(shape: tuple[int, ...], target: tuple[int, int]) -> bool:
    """Unidirectional broadcast of `shape` to `target`, as Gemm's C input allows."""
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False
