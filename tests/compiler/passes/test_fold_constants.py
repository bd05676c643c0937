"""Constant folding after the QDQ lowering (a model that comes quantized, whose constants were
not folded first): an int8 constant keeps its scale, a node made integer folds through
ariel's integer reference, and a constant node that cannot be computed is named in one line."""

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.reference import run_graph
from codegen.errors import ArielError
from tests.support import compile_onnx, compile_onnx_int8, host_model


def qdq_with_constant_sum():
    """y = x + (c1 + c2), written as ONNX Runtime's QDQ form writes it when c1 and c2 are
    reached through nodes: each constant quantized by a QuantizeLinear node, their sum an
    int8 Add of two constants, then added to the run-time input."""
    rng = np.random.default_rng(2)
    constants = {"c1": rng.uniform(-1, 1, 8), "c2": rng.uniform(-0.5, 0.5, 8)}
    initializers = [numpy_helper.from_array(v.astype(np.float32), k)
                    for k, v in constants.items()]
    params = {"c1": (0.008, 3), "c2": (0.004, -2), "s": (0.012, 1), "x": (0.02, -5),
              "y": (0.03, 4)}
    for name, (scale, zero) in params.items():
        initializers += [numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
                         numpy_helper.from_array(np.array(zero, np.int8), f"{name}_zero")]
    nodes = []

    def qdq(source, name):
        nodes.append(helper.make_node("QuantizeLinear", [source, f"{name}_scale",
                                                         f"{name}_zero"], [f"{name}_q"],
                                      name=f"{name}_quantize"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_scale",
                                                           f"{name}_zero"], [f"{name}_dq"],
                                      name=f"{name}_dequantize"))
        return f"{name}_dq"

    total = "s_float"
    nodes.append(helper.make_node("Add", [qdq("c1", "c1"), qdq("c2", "c2")], [total],
                                  name="constant_sum"))
    summed = qdq(total, "s")
    nodes.append(helper.make_node("Add", [qdq("x_in", "x"), summed], ["y_float"], name="add"))
    output = qdq("y_float", "y")
    nodes.append(helper.make_node("Identity", [output], ["y"], name="out"))
    graph = helper.make_graph(
        nodes, "qdq", [helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_integer_constants_fold_with_their_scales(tmp_path):
    model = qdq_with_constant_sum()
    compiled = compile_onnx_int8(model, io="float")
    graph = compiled.graph
    adds = [node for node in graph.nodes if node.op == "Add"]
    assert len(adds) == 1  # the sum of the two constants was computed at compile time
    folded = next(graph.tensor(n) for n in adds[0].inputs if graph.tensor(n).is_const)
    assert folded.dtype == "int8" and float(folded.quant.scale) == pytest.approx(0.012)
    x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(1, 8)
    got = host_model(compiled, tmp_path).run(x)[0]
    np.testing.assert_array_equal(got, run_graph(graph, [x])[0])
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"],
        sess_options=_unoptimized())
    want = session.run(None, {"x_in": x})[0]
    assert np.abs(got - want).max() <= 0.03 * 1.001  # within one step of the output scale


def test_a_constant_node_that_cannot_be_computed_is_named():
    data = numpy_helper.from_array(np.arange(6, dtype=np.float32), "data")
    index = numpy_helper.from_array(np.array([9], np.int64), "index")
    nodes = [helper.make_node("Gather", ["data", "index"], ["picked"], name="pick"),
             helper.make_node("Add", ["x", "picked"], ["y"], name="add")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [data, index])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ArielError) as error:
        compile_onnx(model)
    message = str(error.value)
    assert message.startswith("node 'pick' (Gather): its inputs are all constants, which ariel "
                              "computes at compile time, and ONNX's reference implementation "
                              "could not compute them (")
    assert "\n" not in message


def _unoptimized():
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options
