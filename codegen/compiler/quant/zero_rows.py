"""Where the calibration data puts the rows of dense layers at their zero point: the
statistics by which codegen/compiler/ops/zero_words.py pairs a row's inputs into column
words and decides whether listing the nonzero ones pays. Gathered with ariel's own integer
reference on the lowered graph, on the first SAMPLES calibration inputs, for the layers
whose weights are large enough to matter (zero_words.MIN_WEIGHT_BYTES) and only for them."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.zero_words import MIN_WEIGHT_BYTES
from codegen.compiler.quant.output_stage import zero_point_of
from codegen.compiler.quant.report import quantize_inputs
from codegen.compiler.reference import run_graph_values

SAMPLES = 32  # enough to rank the inputs by how often they are zero; each is a full run
# Fewer (down to MIN_SAMPLES) where the model is big: the numpy reference runs some tens of
# millions of MACs a second, so this bounds the build's extra time to seconds.
REFERENCE_MACS = 100_000_000
MIN_SAMPLES = 4


def record_row_zeros(graph: Graph, calibration) -> None:
    """Set `zeros` ([rows, K] bool) on the row tensor of every dense layer that may list
    its zero words, from the calibration data (a CalibrationData)."""
    nodes = [node for node in graph.nodes if _listable(node, graph)]
    if not nodes or any(name not in calibration.inputs for name in graph.inputs):
        return
    macs = sum(REGISTRY[node.op].macs(node, graph) for node in graph.nodes)
    count = min(calibration.count, SAMPLES, max(MIN_SAMPLES, REFERENCE_MACS // max(macs, 1)))
    masks: dict[str, list[np.ndarray]] = {node.inputs[0]: [] for node in nodes}
    for index in range(count):
        sample = [np.asarray(calibration.inputs[name][index]).reshape(graph.tensor(name).shape)
                  for name in graph.inputs]
        # Float data is quantized as the firmware's input stage would; int8 data (a model
        # read as int8) is taken as it is.
        quantized = quantize_inputs(graph, [value.astype(np.float32) for value in sample])
        values = run_graph_values(graph, [value if value.dtype == np.int8 else scaled
                                          for value, scaled in zip(sample, quantized, strict=True)])
        for name, seen in masks.items():
            row = graph.tensor(name)
            seen.append(values[name].reshape(-1, row.shape[-1]) == zero_point_of(row))
    for name, seen in masks.items():
        graph.tensor(name).zeros = np.concatenate(seen)


def _listable(node: Node, graph: Graph) -> bool:
    """A dense layer of an int8 row (or a few) against constant weights worth reading."""
    if node.op not in ("Gemm", "MatMul") or len(node.inputs) < 2:
        return False
    a, b = graph.tensor(node.inputs[0]), graph.tensor(node.inputs[1])
    return (a.dtype == "int8" and a.quant is not None and not a.is_const and b.is_const
            and b.size >= MIN_WEIGHT_BYTES and a.size // a.shape[-1] <= 4)
