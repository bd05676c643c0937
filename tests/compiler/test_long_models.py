"""Long models compile in time that grows with their length: the passes look nodes up in
maps built once per pass (not by a walk over the graph per node), and every kernel stays a
function of its own, so gcc never compiles one function as long as the model (its time on
one function grows faster than the function). bench/compile_time.py measures the times."""

import re

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.support import compile_onnx, host_model


def chain_model(length: int):
    """x -> Add -> Relu -> Mul -> Add -> ... on [1, 8] floats."""
    ops, nodes, previous = ("Add", "Relu", "Mul"), [], "x"
    for index in range(length):
        op = ops[index % 3]
        output = "y" if index == length - 1 else f"t{index}"
        nodes.append(helper.make_node(op, [previous, "b"] if op != "Relu" else [previous],
                                      [output], name=f"n{index}"))
        previous = output
    values = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 8]) for n in "xy"]
    graph = helper.make_graph(nodes, "chain", values[:1], values[1:], initializer=[
        numpy_helper.from_array(np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def reference(x: np.ndarray, length: int) -> np.ndarray:
    b = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    for index in range(length):
        x = [x + b, np.maximum(x, 0), x * b][index % 3]
    return x


def test_long_chain_fuses_every_relu_and_declares_every_kernel_apart(tmp_path):
    length = 301
    compiled = compile_onnx(chain_model(length))
    ops = [k["op"] for k in compiled.info.kernels]
    assert "Relu" not in ops and len(ops) == length - length // 3
    source = compiled.files["m.c"]
    declared = re.findall(r"^ARIEL_KERNEL void (\w+)\(", source, re.M)
    assert declared == [k["fn"] for k in compiled.info.kernels]
    x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(1, 8)
    (y,) = host_model(compiled, tmp_path).run(x)
    np.testing.assert_allclose(y, reference(x, length), rtol=1e-5, atol=1e-6)


def test_nodes_compare_by_identity():
    compiled = compile_onnx(chain_model(4))
    first, second = compiled.graph.nodes[:2]
    twin = type(first)(**{f: getattr(first, f) for f in first.__dataclass_fields__})
    assert first == first and first != twin and first != second
