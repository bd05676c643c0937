"""Small early-exit CNNs built with onnx.helper, in the form `ariel augment` writes: the
original output first, then one output per exit (ariel_exit1, ariel_exit2, ...) in backbone
order, each the logits of a small head on a backbone tensor."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 10
INPUT_SHAPE = (1, 1, 8, 8)


def two_exit_cnn(seed: int = 19, names: dict[str, str] | None = None) -> onnx.ModelProto:
    """Three conv blocks and a classifier; exit 1 (GlobalAveragePool, Flatten, Gemm) after
    the first block, exit 2 (GlobalAveragePool, Flatten, Gemm, Relu, Gemm) after the second.
    `names` renames tensors (the hostile-name tests)."""
    rng = np.random.default_rng(seed)
    names = names or {}

    def name(text: str) -> str:
        return names.get(text, text)

    initializers = []

    def weight(label: str, *shape: int, scale: float = 0.5) -> str:
        initializers.append(numpy_helper.from_array(
            (rng.normal(size=shape) * scale).astype(np.float32), name(label)))
        return name(label)

    def conv(label, x, cin, cout, stride):
        return [helper.make_node("Conv", [x, weight(f"{label}_w", cout, cin, 3, 3),
                                          weight(f"{label}_b", cout, scale=0.1)],
                                 [name(f"{label}_c")], name=name(label), pads=[1, 1, 1, 1],
                                 strides=[stride, stride]),
                helper.make_node("Relu", [name(f"{label}_c")], [name(f"{label}_r")],
                                 name=name(f"{label}_relu"))]

    def head(label, x, channels, hidden, output):
        nodes = [helper.make_node("GlobalAveragePool", [x], [name(f"{label}_gap")],
                                  name=name(f"{label}_pool")),
                 helper.make_node("Flatten", [name(f"{label}_gap")], [name(f"{label}_flat")],
                                  name=name(f"{label}_flatten"))]
        features = name(f"{label}_flat")
        if hidden:
            nodes += [helper.make_node("Gemm", [features, weight(f"{label}_w1", hidden, channels),
                                                weight(f"{label}_b1", hidden, scale=0.1)],
                                       [name(f"{label}_h")], name=name(f"{label}_gemm1"),
                                       transB=1),
                      helper.make_node("Relu", [name(f"{label}_h")], [name(f"{label}_hr")],
                                       name=name(f"{label}_relu1"))]
            features, channels = name(f"{label}_hr"), hidden
        nodes.append(helper.make_node(
            "Gemm", [features, weight(f"{label}_w", CLASSES, channels, scale=1.0),
                     weight(f"{label}_b", CLASSES, scale=0.1)], [output],
            name=name(f"{label}_gemm"), transB=1))
        return nodes

    x = name("input")
    nodes = (conv("block1", x, 1, 4, 1) + conv("block2", name("block1_r"), 4, 8, 2)
             + conv("block3", name("block2_r"), 8, 8, 1)
             + head("final", name("block3_r"), 8, 0, name("logits"))
             + head("exit1", name("block1_r"), 4, 0, name("ariel_exit1"))
             + head("exit2", name("block2_r"), 8, 16, name("ariel_exit2")))
    outputs = [helper.make_tensor_value_info(name(n), TensorProto.FLOAT, [1, CLASSES])
               for n in ("logits", "ariel_exit1", "ariel_exit2")]
    graph = helper.make_graph(nodes, name("two_exits"),
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT,
                                                             list(INPUT_SHAPE))],
                              outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def inputs(count: int, seed: int = 0) -> np.ndarray:
    """`count` inputs shaped (count, *INPUT_SHAPE)."""
    return np.random.default_rng(seed).normal(size=(count, *INPUT_SHAPE)).astype(np.float32)
