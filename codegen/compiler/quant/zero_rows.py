"""Where the calibration data puts the rows of dense layers at their zero point: the
statistics by which codegen/compiler/ops/zero_words.py pairs a row's inputs into column
words and decides whether listing the nonzero ones pays. Gathered with ariel's own integer
reference on the lowered graph, on the first SAMPLES calibration inputs, for the layers
whose weights are large enough to matter (zero_words.MIN_WEIGHT_BYTES) and only for them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.zero_words import MIN_WEIGHT_BYTES, plan_zero_words
from codegen.compiler.quant.output_stage import zero_point_of
from codegen.compiler.quant.report import calibration_inputs
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
    if not nodes:
        return
    macs = sum(REGISTRY[node.op].macs(node, graph) for node in graph.nodes)
    count = min(calibration.count, SAMPLES, max(MIN_SAMPLES, REFERENCE_MACS // max(macs, 1)))
    inputs = calibration_inputs(graph, calibration.inputs, count)
    if inputs is None:
        return
    masks: dict[str, list[np.ndarray]] = {node.inputs[0]: [] for node in nodes}
    for index in range(count):
        values = run_graph_values(graph, [x[index] for x in inputs])
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


def plan_listing(graph: Graph, wait_states: int, choices: dict[str, bool] | None = None
                 ) -> None:
    """Decide which dense layers list their row's nonzero words (`Node.listing`, from the
    statistics record_row_zeros gathered and the board's flash `wait_states`), and where
    such a layer reads the output of another dense layer and nothing else does, have the
    producer write its outputs in the order the listing pairs them (its filters, bias and
    scales permuted at compile time): the consumer then widens its row as it lies instead
    of gathering each input through a table. The tensor's `channel_order` records the
    permutation; the consumer's weights follow it, so the model's outputs are the same bit
    for bit. `choices` (node name: list or not, measured by --tune) overrule the cost model
    where given."""
    choices = choices or {}
    for node in graph.nodes:
        if not _listable(node, graph) or choices.get(node.name) is False:
            continue
        row = graph.tensor(node.inputs[0])
        if row.zeros is None or row.zeros.shape[1] != row.shape[-1]:
            continue
        outputs = graph.tensor(node.outputs[0]).shape[-1]
        decided = bool(choices.get(node.name))
        node.listing = plan_zero_words(row.zeros, outputs, wait_states, decided=decided)
        if node.listing is None or not _reorderable(node, row, graph):
            continue
        order = node.listing.order
        in_order = plan_zero_words(row.zeros[:, order], outputs, wait_states, in_order=True,
                                   decided=decided)
        if in_order is None:
            continue
        _permute_product(graph.producer(row.name), graph, order, output_axis=True)
        _permute_product(node, graph, order, output_axis=False)
        row.zeros = row.zeros[:, order]
        row.channel_order = order
        node.listing = in_order


def _reorderable(node: Node, row, graph: Graph) -> bool:
    """Whether `row`, `node`'s input, may be stored in another order: written by a dense
    layer, read by `node` alone (no view of it either), not a graph output, and no padding
    in the pairing (K a multiple of four)."""
    producer = graph.producer(row.name)
    return (row.shape[-1] % 4 == 0 and producer is not None
            and _permutable_product(producer, graph) and _permutable_product(node, graph)
            and row.name not in graph.outputs and row.buffer is None
            and graph.consumers(row.name) == [node]
            and not any(t.buffer == row.name for t in graph.tensors.values()))


def _permutable_product(node: Node, graph: Graph) -> bool:
    """A Gemm (A not transposed) or 2-D MatMul of a constant B that no other node reads, its
    bias (if any) constant and read by it alone."""
    if node.op not in ("Gemm", "MatMul") or (node.op == "Gemm" and node.attrs.get("transA")):
        return False
    b = graph.tensor(node.inputs[1])
    if not b.is_const or b.rank != 2 or graph.consumers(b.name) != [node]:
        return False
    if len(node.inputs) > 2 and node.inputs[2]:
        c = graph.tensor(node.inputs[2])
        return c.is_const and graph.consumers(c.name) == [node]
    return True


def _permute_product(node: Node, graph: Graph, order: np.ndarray, output_axis: bool) -> None:
    """Reorder a product's output channels (B's n axis, the bias and per-channel scales with
    it) or its inputs (B's k axis) by `order`."""
    b = graph.tensor(node.inputs[1])
    n_axis = 0 if node.op == "Gemm" and node.attrs.get("transB") else 1
    axis = n_axis if output_axis else 1 - n_axis
    b.data = np.take(b.data, order, axis=axis)
    if output_axis:
        _permute_channels(b, order, axis)
        if len(node.inputs) > 2 and node.inputs[2]:
            c = graph.tensor(node.inputs[2])
            if c.size == len(order):
                c.data = np.take(c.data, order, axis=-1)
                _permute_channels(c, order, c.rank - 1)


def _permute_channels(tensor, order: np.ndarray, axis: int) -> None:
    """A tensor's per-channel quantization along `axis`, reordered with its data."""
    quant = tensor.quant
    if quant is not None and np.size(quant.scale) > 1 and quant.axis in (axis, axis - tensor.rank):
        tensor.quant = replace(quant, scale=np.asarray(quant.scale)[order],
                               zero_point=np.asarray(quant.zero_point)[order])
