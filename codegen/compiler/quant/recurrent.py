"""int8 weights for LSTM, GRU and RNN, which ONNX Runtime's quantize_static leaves in float,
weights and all (its QDQ quantizer has no rule for them).

ariel stores their W and R as int8, symmetric, one scale per gate row: the row of W and the
row of R that feed the same pre-activation share it (the kernel forms both in one inner
product), and the directions share it too (a per-axis DequantizeLinear has one scale per
index of its axis). The weights go into the model itself as DequantizeLinear (axis 1) of
int8 initializers, so the QDQ model that ONNX Runtime runs to check the build uses exactly
the weights the firmware does; the activations and the state stay float, as the quantizer
left them. (ops/recurrent_products.py describes the kernels' product.)"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

RECURRENT = ("LSTM", "GRU", "RNN")
W, R = 1, 2


def quantize_recurrent_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with the float W and R initializers of every LSTM, GRU and RNN
    replaced by DequantizeLinear of int8 ones; nodes whose weights are anything else stay
    as they are."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    taken = {*initializers, *(o for n in graph.node for o in n.output),
             *(i.name for i in graph.input)}
    added: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type not in RECURRENT or node.domain not in ("", "ai.onnx"):
            continue
        names = [node.input[i] if len(node.input) > i else "" for i in (W, R)]
        if not all(name in initializers for name in names):
            continue
        w, r = (numpy_helper.to_array(initializers[name]) for name in names)
        if w.dtype != np.float32 or r.dtype != np.float32 or w.ndim != 3 or r.ndim != 3:
            continue
        scale = row_scales(w, r)
        for index, (name, value) in zip((W, R), ((names[0], w), (names[1], r)), strict=True):
            stem = _fresh(f"{name}_int8", taken)
            quantized = np.clip(np.rint(value / scale[None, :, None]), -127, 127)
            graph.initializer.extend([
                numpy_helper.from_array(quantized.astype(np.int8), stem),
                numpy_helper.from_array(scale, _fresh(f"{stem}_scale", taken)),
                numpy_helper.from_array(np.zeros(scale.shape, np.int8),
                                        _fresh(f"{stem}_zero_point", taken))])
            output = _fresh(f"{stem}_dequantized", taken)
            added.append(helper.make_node(
                "DequantizeLinear", [stem, f"{stem}_scale", f"{stem}_zero_point"], [output],
                name=_fresh(f"{stem}_DequantizeLinear", taken), axis=1))
            node.input[index] = output
    if added:
        nodes = [*added, *graph.node]
        del graph.node[:]
        graph.node.extend(nodes)
        _drop_unused(graph)
    return model


def row_scales(w: np.ndarray, r: np.ndarray) -> np.ndarray:
    """One float32 scale per gate row: the largest |weight| of the row in W and R and every
    direction over 127 (1 for a row of zeros)."""
    peak = np.maximum(np.abs(w).max(axis=(0, 2)), np.abs(r).max(axis=(0, 2)))
    return np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)


def _fresh(base: str, taken: set[str]) -> str:
    name, count = base, 0
    while name in taken:
        count += 1
        name = f"{base}_{count}"
    taken.add(name)
    return name


def _drop_unused(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
