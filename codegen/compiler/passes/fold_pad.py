"""Fold a Pad by zeros into the convolutions that read it: a Conv pads its input with zeros
itself (asymmetrically if need be), so `Conv(Pad(x))` is `Conv(x)` with the Pad's spatial
pads added to its own. No kernel runs for the Pad and its output never exists; a causal
1-D convolution (PyTorch's F.pad on the left, then Conv1d) becomes one Conv.

On int8 the Pad must write the input's own zero point with the values unchanged (ONNX
Runtime quantizes a Pad by 0.0 so): the Conv's padded taps are that zero point too."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.moves import rescales
from codegen.compiler.ops.pad import Padding, padding
from codegen.compiler.ops.quantize import int8_quantized


def fold_pads(graph: Graph) -> None:
    for pad in [n for n in graph.nodes if n.op == "Pad"]:
        inputs = graph.input_tensors(pad)
        geometry = padding(pad, inputs[0].shape, [t.data if t is not None else None
                                                   for t in inputs])
        out = pad.outputs[0]
        convs = graph.consumers(out)
        if (out in graph.outputs or not convs or not _zeros(graph, pad, geometry)
                or not all(_takes(conv, out) for conv in convs)):
            continue
        spatial = geometry.axes[2:]
        for conv in convs:
            rank = len(spatial)
            own = list(conv.attrs.get("pads", [0] * 2 * rank))
            conv.attrs["pads"] = ([own[k] + spatial[k].begin for k in range(rank)]
                                  + [own[rank + k] + spatial[k].end for k in range(rank)])
            conv.inputs[0] = pad.inputs[0]
        graph.nodes.remove(pad)
        del graph.tensors[out]
    graph.remove_unused()


def _zeros(graph: Graph, pad: Node, geometry: Padding) -> bool:
    """True for a Pad that only adds zeros (real zeros on int8) around the spatial axes."""
    if geometry.mode != "constant" or any(a.begin < 0 or a.end < 0 for a in geometry.axes):
        return False
    if any(a.begin or a.end for a in geometry.axes[:2]) or len(geometry.axes) not in (3, 4):
        return False
    x = graph.tensor(pad.inputs[0])
    if int8_quantized(x):
        zero = int(np.asarray(x.quant.zero_point).reshape(-1)[0])
        stored = REGISTRY["Pad"].stored_value(pad, graph, geometry)
        return not rescales(pad, graph) and stored == zero
    return x.dtype == "float32" and geometry.value == 0


def _takes(conv: Node, name: str) -> bool:
    """True for a Conv that reads `name` as its data input only, padding explicitly."""
    return (conv.op == "Conv" and conv.inputs[0] == name and name not in conv.inputs[1:]
            and conv.attrs.get("auto_pad", "NOTSET") == "NOTSET")
