"""int8 models where an operator stays in float between QuantizeLinear and DequantizeLinear
(a BatchNormalization with no Conv before it, which has no int8 kernel): the quantization
report still runs, and --io int8 still tells the scale and zero point of each int8 input and
output. Both were found by the fuzzing suite (on a Concat of inputs of different scales,
which has had an int8 kernel since)."""

import numpy as np
import onnxruntime
from onnx import TensorProto, helper

from codegen.compiler.quant.islands import format_float_islands
from codegen.compiler.quant.report import quantization_report, quantize_inputs
from codegen.compiler.reference import run_graph
from tests.support import compile_onnx_int8, host_model


def batch_normalization():
    """A BatchNormalization that follows no Conv (nothing to fold it into): ONNX Runtime's
    quantizer puts QDQ around it, ariel has no int8 kernel for it, so it stays float."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3])
    rng = np.random.default_rng(3)
    params = [helper.make_tensor(name, TensorProto.FLOAT, [2], values)
              for name, values in (("gamma", [1.5, -0.5]), ("beta", [0.1, 0.2]),
                                   ("mean", [0.3, -0.2]), ("var", [2.0, 0.5]))]
    node = helper.make_node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"],
                            ["y"], name="normalise")
    graph = helper.make_graph([node], "islands", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=params)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model, {"x": rng.uniform(-1, 1, (8, 1, 2, 3)).astype(np.float32)}


def test_int8_io_of_a_float_island_has_scales(tmp_path):
    model, calibration = batch_normalization()
    compiled = compile_onnx_int8(model, calibration, io="int8")
    assert [n.op for n in compiled.graph.nodes].count("BatchNormalization") == 1
    for spec in [*compiled.info.inputs, *compiled.info.outputs]:
        assert spec.dtype == "int8" and spec.scale is not None and spec.zero_point is not None
    # The scales are the QDQ model's: ariel's int8 output equals ONNX Runtime's int8 tensor.
    floats = [calibration["x"][0]]
    ints = quantize_inputs(compiled.graph, floats)
    got = host_model(compiled, tmp_path).run(*ints)[0]
    np.testing.assert_array_equal(got, run_graph(compiled.graph, ints)[0])
    qdq = compiled.quantized_model
    name = compiled.info.outputs[0].name
    qdq.graph.output.append(helper.make_empty_tensor_value_info(name))
    session = onnxruntime.InferenceSession(qdq.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    theirs = session.run([name], {"x": floats[0]})[0]
    np.testing.assert_array_equal(got, theirs)


def test_report_without_integer_layers():
    """No layer of the graph has an int8 kernel, so there are no layer tensors to ask ONNX
    Runtime for (it reads an empty list as every output; the report crashed on that)."""
    model, calibration = batch_normalization()
    compiled = compile_onnx_int8(model, calibration, io="float")
    report = quantization_report(compiled.graph, None, compiled.quantized_model, calibration)
    assert report.samples == 8
    assert all(row.ort_max_lsb is None for row in report.layers)


def test_a_float_operator_in_an_int8_build_is_an_island():
    model, calibration = batch_normalization()
    compiled = compile_onnx_int8(model, calibration, io="float")
    assert [island.to_dict() for island in compiled.float_islands] == [
        {"node": "normalise", "op": "BatchNormalization", "macs": 0, "share": 0.0,
         "why": "ariel has no int8 kernel for BatchNormalization"}]
    text = format_float_islands(compiled.float_islands)
    assert text.splitlines()[0] == ("Float islands: 1 kernel(s) compute in float32, 0.0% of "
                                    "the model's MACs")
    assert "normalise" in text.splitlines()[2]


def test_an_int8_build_without_islands_says_so():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3],
                                np.linspace(-1, 1, 12).astype(np.float32))
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="dense")
    graph = helper.make_graph([node], "dense", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    calibration = {"x": np.random.default_rng(1).uniform(-1, 1, (8, 1, 4)).astype(np.float32)}
    compiled = compile_onnx_int8(model, calibration, io="float")
    assert compiled.float_islands == []
    assert format_float_islands([]) == "Float islands: none (every kernel computes on int8)"
