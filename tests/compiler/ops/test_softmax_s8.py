"""int8 Softmax, integer only: rows of 2, 10 and 12 and the other axis conventions, rows that
saturate, and the refusal of rows too long for the int32 sum. Host-compiled C equals the
integer reference exactly and ONNX Runtime on the QDQ model within one step."""

import numpy as np
import pytest

from codegen.compiler.ops.quantize import dequantize
from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_quantize import (
    assert_integer_only,
    calibration,
    check_int8,
    kernel_ops,
    minmax_params,
    with_qdq,
)
from tests.support import compile_onnx_int8, single_node_model

# name: (input shape, opset, attributes)
CASES = {
    "rows_of_2": ((6, 2), 13, {}),
    "rows_of_10": ((4, 10), 13, {}),
    "rows_of_12": ((1, 3, 12), 13, {}),
    "axis_1_of_3d_strided": ((2, 5, 3), 13, {"axis": 1}),
}


def samples_for(seed: int, shape, spread: float = 4.0, count: int = 8):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(0, spread, shape).astype(np.float32)} for _ in range(count)]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_softmax_quantized_by_onnxruntime(case, tmp_path, record_property):
    shape, opset, attrs = CASES[case]
    samples = samples_for(sum(map(ord, case)), shape)
    model = single_node_model("Softmax", {"x": samples[0]["x"]}, opset=opset, **attrs)
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == ["Softmax"]
    assert_integer_only(compiled)
    source = compiled.files["m.c"]
    assert "float" not in source.split("static void")[1] and "expf" not in source
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


def test_softmax_edges(tmp_path, record_property):
    """Equal rows (every probability 1/L), one dominant value (1 saturates to 127), the
    lowest values far below the maximum (0 -> -128), and ties with the maximum."""
    shape = (6, 10)
    samples = samples_for(50, shape)
    model = single_node_model("Softmax", {"x": samples[0]["x"]}, opset=13)
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    quant = compiled.graph.tensor(compiled.graph.inputs[0]).quant
    q = np.zeros(shape, np.int8)
    q[0] = 5
    q[1] = -128
    q[1, 3] = 127
    q[2] = 127
    q[2, :4] = -128
    q[3] = np.arange(-128, 127, 26)[:10]
    q[4] = 127
    q[5, ::2] = 100
    edges = {"x": dequantize(q, quant.scale, quant.zero_point)}
    agreement = check_int8(compiled, [*samples, edges], tmp_path)
    record_property("agreement", agreement.summary)
    (y,) = run_graph(compiled.graph, [q])
    out = compiled.graph.tensor(compiled.graph.outputs[0]).quant
    probabilities = dequantize(y, out.scale, out.zero_point)
    assert y[1, 3] == 127 and (np.delete(y[1], 3) == -128).all()
    assert len(set(y[0].tolist())) == 1 and abs(probabilities[0, 0] - 0.1) <= out.scale
    assert (y[2, :4] == y[2, 0]).all() and len(set(y[4].tolist())) == 1


@pytest.mark.parametrize("opset,attrs,y_params", [
    (13, {}, (0.5 / 127, 0)),
    (11, {"axis": 1}, (1 / 256, -128)),
], ids=["output_zero_point_0", "opset11_trailing_axes_together"])
def test_softmax_hand_made_qdq(opset, attrs, y_params, tmp_path, record_property):
    """An output scale other than ONNX Runtime's choice, and the opset 11 convention (ONNX
    Runtime's quantizer first converts such a model to opset 13, with a float Flatten in
    front)."""
    shape = (3, 4, 3)
    samples = samples_for(51, shape, spread=1.0)
    model = single_node_model("Softmax", {"x": samples[0]["x"]}, opset=opset, **attrs)
    model = with_qdq(model, {"x": minmax_params(calibration(samples)["x"]), "y0": y_params})
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == ["Softmax"]
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)


def test_softmax_rows_too_long_are_refused():
    shape = (1, 70000)
    samples = samples_for(52, shape, count=2)
    model = single_node_model("Softmax", {"x": samples[0]["x"]}, opset=13)
    model = with_qdq(model, {"x": (0.05, 0), "y0": (1 / 256, -128)})
    with pytest.raises(UnsupportedError, match="rows of 70000"):
        compile_onnx_int8(model, io="int8")
