"""The preparation before ONNX Runtime's quantizer (quant/prepare.py): constant sub-graphs are
folded first, so that a convolution whose bias the exporter routes through Identity (as
PyTorch does for identical zero biases: SqueezeNet kept 18 of its 26 convolutions in float)
is quantized like any other; and ariel's support check runs first, so that an int8 build
names an unsupported operator, or refuses an ai.onnx.ml model, in ariel's own words."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.quant.prepare import prepare_for_quantization
from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.support import compile_onnx_int8, host_model


def squeezenet_style() -> onnx.ModelProto:
    """Two fire modules (1x1 squeeze, then 1x1 and 3x3 expands concatenated) and a 1x1
    classifier, as PyTorch exports SqueezeNet: every bias is zero, stored once, and every
    convolution but the first reads it through an Identity node of its own."""
    rng = np.random.default_rng(14)
    nodes, initializers = [], []
    stored = {}  # bias width -> the one zero initializer of that width

    def conv(name, x, cin, cout, kernel):
        weight = numpy_helper.from_array(
            rng.normal(0, 0.3, (cout, cin, kernel, kernel)).astype(np.float32), f"{name}.w")
        initializers.append(weight)
        bias = f"{name}.bias"
        if cout in stored:
            nodes.append(helper.make_node("Identity", [stored[cout]], [bias],
                                          name=f"Identity_{name}"))
        else:
            stored[cout] = bias
            initializers.append(numpy_helper.from_array(np.zeros(cout, np.float32), bias))
        out = f"{name}.out"
        nodes.append(helper.make_node("Conv", [x, weight.name, bias], [f"{name}.pre"],
                                      name=name, pads=[kernel // 2] * 4))
        nodes.append(helper.make_node("Relu", [f"{name}.pre"], [out], name=f"{name}_relu"))
        return out

    def fire(name, x, cin, squeeze, expand):
        s = conv(f"{name}_squeeze", x, cin, squeeze, 1)
        e1 = conv(f"{name}_expand1", s, squeeze, expand, 1)
        e3 = conv(f"{name}_expand3", s, squeeze, expand, 3)
        out = f"{name}.out"
        nodes.append(helper.make_node("Concat", [e1, e3], [out], name=f"{name}_cat", axis=1))
        return out

    x = conv("stem", "image", 3, 8, 3)
    nodes.append(helper.make_node("MaxPool", [x], ["pooled"], name="pool", kernel_shape=[2, 2],
                                  strides=[2, 2]))
    x = fire("fire2", "pooled", 8, 4, 8)
    x = fire("fire3", x, 16, 4, 8)
    x = conv("classifier", x, 16, 10, 1)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["logits"], name="gap"))
    graph = helper.make_graph(
        nodes, "squeezenet_style",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10, 1, 1])],
        initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_identity_biases_are_folded_into_initializers():
    model = squeezenet_style()
    prepared = prepare_for_quantization(model, "m", _budget())
    assert {n.op_type for n in prepared.graph.node} == {"Conv", "Relu", "Concat", "MaxPool",
                                                        "GlobalAveragePool"}
    biases = {n.input[2] for n in prepared.graph.node if n.op_type == "Conv"}
    assert biases <= {i.name for i in prepared.graph.initializer}


def test_every_convolution_of_a_squeezenet_style_export_is_int8(tmp_path):
    model = squeezenet_style()
    rng = np.random.default_rng(0)
    calibration = {"image": rng.uniform(0, 1, (8, 1, 3, 16, 16)).astype(np.float32)}
    compiled = compile_onnx_int8(model, calibration, io="float")
    graph = compiled.graph
    convs = [node for node in graph.nodes if node.op == "Conv"]
    assert len(convs) == 8
    for node in convs:
        x, w = graph.tensor(node.inputs[0]), graph.tensor(node.inputs[1])
        assert (x.dtype, w.dtype, graph.tensor(node.outputs[0]).dtype) == ("int8",) * 3, node
        assert graph.tensor(node.inputs[2]).dtype == "int32", node
    # The only float work is the model's boundary.
    floats = {node.op for node in graph.nodes
              if any(graph.tensor(n).dtype == "float32" for n in node.outputs)}
    assert floats == {"DequantizeLinear"}
    sample = calibration["image"][0]
    np.testing.assert_array_equal(host_model(compiled, tmp_path).run(sample)[0],
                                  run_graph(graph, [sample])[0])


def test_an_ml_model_on_float_data_is_refused_for_int8():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    node = helper.make_node("LinearRegressor", ["x"], ["y"], name="regress",
                            domain="ai.onnx.ml", coefficients=[0.5, -1.0, 2.0],
                            intercepts=[0.25])
    graph = helper.make_graph([node], "ml", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 1),
                                                    helper.make_opsetid("", 17)])
    calibration = {"x": np.ones((2, 1, 3), np.float32)}
    with pytest.raises(UnsupportedError) as error:
        compile_onnx_int8(model, calibration, io="float")
    assert str(error.value) == (
        "node 'regress' (ai.onnx.ml.LinearRegressor): --precision int8 is not supported for "
        "ai.onnx.ml operators on float data ('x'), which ONNX Runtime's quantizer leaves in "
        "float; supported: --precision float")


def _budget():
    from codegen.compiler.budget import CEILING

    return CEILING


@pytest.mark.parametrize("model, node", [("sklearn_logreg_digits", "Scaler"),
                                         ("sklearn_forest_digits", "TreeEnsembleClassifier")])
def test_scikit_learn_examples_are_refused_for_int8(model, node):
    """They compiled in int8 with every operator in float (ONNX Runtime's quantizer had
    nothing to quantize), or stopped inside it: now ariel's line, before any calibration."""
    from codegen.compiler.compile import Options, compile_model
    from codegen.resources import data_dir

    path = data_dir("examples") / "models" / f"{model}.onnx"
    with pytest.raises(UnsupportedError, match=f"^node '{node}' \\(ai.onnx.ml.{node}\\): "
                                               "--precision int8 is not supported"):
        compile_model(path, Options(precision="int8", calibration="digits"))
