"""int8 elementwise operators: every real unary function (Relu, Clip, LeakyRelu, Sigmoid,
Tanh, HardSwish, Gelu, Exp, ...) as a 256-entry table, one load per element; Where with its
branches moved to the output's scale; PRelu as a table (one slope) or two requantizations
(several). Host-compiled C equals the integer reference exactly and ONNX Runtime on the QDQ
model within one step (every int8 input value tried where the function allows)."""

import numpy as np
import pytest
from onnx import helper

from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.elementwise import UnaryOp
from codegen.compiler.ops.quantize import dequantize
from codegen.compiler.reference import run_graph
from tests.compiler.ops.test_elementwise_unary import model_of, side_by_side
from tests.compiler.ops.test_quantize import (
    assert_integer_only,
    calibration,
    check_int8,
    float_inputs,
    kernel_ops,
    minmax_params,
    with_qdq,
)
from tests.support import compile_onnx_int8, host_model, run_reference, single_node_model

SHAPE = (1, 4, 8, 8)  # 256 elements: one sample holds every int8 value


def every_value(compiled, name: str) -> dict[str, np.ndarray]:
    """A float sample that the model's input QuantizeLinear turns into -128..127, each once."""
    quant = compiled.graph.tensor(compiled.graph.inputs[0]).quant
    q = np.arange(-128, 128, dtype=np.int8)
    np.random.default_rng(0).shuffle(q)
    return {name: dequantize(q, quant.scale, quant.zero_point).reshape(SHAPE)}


def random_samples(seed: int, low: float, high: float, count: int = 4):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(low, high, SHAPE).astype(np.float32)} for _ in range(count)]


def check_table_kernel(compiled) -> None:
    assert_integer_only(compiled)
    (kernel,) = [k for k in compiled.info.kernels]
    source = compiled.files["m.c"]
    assert f"m_{kernel['fn']}_table[x0[i] + 128]" in source
    assert "int8_t m_" + kernel["fn"] + "_table[256]" in compiled.files["m_weights.c"]


# op: (attributes, calibration range); ONNX Runtime's quantizer takes these ops directly.
BY_ONNXRUNTIME = {
    "Sigmoid": ({}, (-6.0, 6.0)),
    "LeakyRelu": ({"alpha": 0.1}, (-4.0, 3.0)),
}


@pytest.mark.parametrize("op", BY_ONNXRUNTIME)
def test_table_op_quantized_by_onnxruntime(op, tmp_path, record_property):
    attrs, (low, high) = BY_ONNXRUNTIME[op]
    samples = random_samples(31, low, high)
    model = single_node_model(op, {"x": samples[0]["x"]}, opset=17, **attrs)
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == [op]
    check_table_kernel(compiled)
    agreement = check_int8(compiled, [*samples, every_value(compiled, "x")],
                               tmp_path)
    record_property("agreement", agreement.summary)


# name: (op, attributes, constants, input range, output params same as the input's)
BY_HAND = {
    "tanh": ("Tanh", {}, None, (-3.0, 2.0), False),
    "sigmoid_narrow_input": ("Sigmoid", {}, None, (-0.5, 0.3), False),
    "relu_own_params": ("Relu", {}, None, (-2.0, 3.0), False),
    "relu_same_params": ("Relu", {}, None, (-2.0, 3.0), True),
    "clip_inputs": ("Clip", {}, {"lo": np.array(-1.0, np.float32),
                                 "hi": np.array(1.5, np.float32)}, (-3.0, 3.0), False),
    "clip_min_only": ("Clip", {}, {"lo": np.array(0.5, np.float32)}, (-3.0, 3.0), True),
    "leaky_relu_default_alpha": ("LeakyRelu", {}, None, (-8.0, 2.0), False),
}


@pytest.mark.parametrize("case", BY_HAND, ids=list(BY_HAND))
def test_table_op_hand_made_qdq(case, tmp_path, record_property):
    """Ops ONNX Runtime's quantizer leaves in float (Tanh, a Relu with nothing before it) or
    other parameters: a hand-made QDQ model. A Relu or Clip not after a requantizing
    kernel cannot fuse, so it is a table too."""
    op, attrs, constants, (low, high), same = BY_HAND[case]
    samples = random_samples(sum(map(ord, case)), low, high)
    model = single_node_model(op, {"x": samples[0]["x"]}, constants, opset=17, **attrs)
    x_params = minmax_params(calibration(samples)["x"])
    outputs = np.stack([run_reference(model, [s["x"]])[0] for s in samples])
    model = with_qdq(model, {"x": x_params, "y0": x_params if same else minmax_params(outputs)})
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == [op]
    check_table_kernel(compiled)
    agreement = check_int8(compiled, [*samples, every_value(compiled, "x")],
                               tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)


def test_table_is_quantize_of_function_rounding_half_to_even():
    """Built in float64 and rounded half to even: with scales that put f(x) exactly on
    halves, ties go to the even neighbour."""
    samples = random_samples(40, -1.0, 1.0)
    model = single_node_model("Relu", {"x": samples[0]["x"]}, opset=17)
    model = with_qdq(model, {"x": (0.5, 0), "y0": (1.0, 0)})
    compiled = compile_onnx_int8(model, io="int8")
    (node,) = compiled.graph.nodes
    values = REGISTRY["Relu"].table(node, compiled.graph)
    q = np.arange(-128, 128)
    expected = np.clip(np.rint(np.maximum(q * 0.5, 0)), -128, 127)  # 0.5 -> 0, 1.5 -> 2, ...
    np.testing.assert_array_equal(values, expected)
    assert values[128 + 1] == 0 and values[128 + 3] == 2 and values[128 + 5] == 2


# -- every real unary function is a table ---------------------------------------------------

# Input ranges for functions defined on part of the line; the rest take (-4, 4).
DOMAINS = {"Log": (0.05, 4.0), "Sqrt": (0.05, 4.0), "Reciprocal": (0.05, 4.0),
           "Asin": (-0.95, 0.95), "Acos": (-0.95, 0.95), "Atanh": (-0.95, 0.95),
           "Tan": (-0.95, 0.95), "Acosh": (1.05, 4.0)}


def table_ops() -> list[str]:
    """Every registered operator with an int8 kernel that is a unary real function."""
    return sorted(op for op, definition in REGISTRY.items()
                  if isinstance(definition, UnaryOp) and definition.int8)


def qdq_side_by_side(ops: list[str], low: float, high: float, seed: int):
    """Hand-made QDQ model of the ops side by side on one input (y_k = op_k(x)), each output
    with the MinMax parameters of its values on the samples."""
    samples = random_samples(seed, low, high)
    model = side_by_side([(op, {}, 1) for op in ops], {"x": samples[0]["x"]})
    outputs = [np.stack(values) for values in
               zip(*[run_reference(model, [s["x"]]) for s in samples], strict=True)]
    params = {"x": minmax_params(calibration(samples)["x"]),
              **{f"y{k}": minmax_params(values) for k, values in enumerate(outputs)}}
    return samples, with_qdq(model, params)


@pytest.mark.parametrize("domain", sorted({*DOMAINS.values(), (-4.0, 4.0)}),
                         ids=lambda d: f"x_in_{d}")
def test_every_real_unary_function_is_a_table(domain, tmp_path, record_property):
    """The QDQ lowering turns DequantizeLinear -> f -> QuantizeLinear into the 256-entry
    table for every registered real unary function, not only those ONNX Runtime's quantizer
    knows: the C equals the integer reference and ONNX Runtime on the QDQ model within one
    step (every int8 input value tried where the whole range is in f's domain)."""
    ops = [op for op in table_ops() if DOMAINS.get(op, (-4.0, 4.0)) == domain]
    samples, model = qdq_side_by_side(ops, *domain, seed=int(abs(domain[0]) * 100))
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == ops
    assert_integer_only(compiled)
    source = compiled.files["m.c"]
    for kernel in compiled.info.kernels:
        assert f"m_{kernel['fn']}_table[x0[i] + 128]" in source, kernel["op"]
    every = [every_value(compiled, "x")] if domain[0] < 0 < domain[1] or domain[0] < 0.1 else []
    agreement = check_int8(compiled, [*samples, *every], tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)


def test_the_table_list_covers_the_activations_of_the_issue():
    assert {"HardSwish", "HardSigmoid", "Gelu", "Erf", "Exp", "Log", "Sqrt", "Softplus",
            "Elu", "Selu", "Mish", "Neg", "Abs", "Sigmoid", "Tanh"} <= set(table_ops())


# -- Where ----------------------------------------------------------------------------------

WHERE_SHAPE = (1, 3, 4, 5)


def where_samples(seed: int, count: int = 6):
    rng = np.random.default_rng(seed)
    return [{"c": rng.random((3, 1, 5)) > 0.4,
             "x": rng.uniform(-2, 3, WHERE_SHAPE).astype(np.float32),
             "b": rng.uniform(-6, 1, (5,)).astype(np.float32)} for _ in range(count)]


@pytest.mark.parametrize("case", ["own_scales", "x_at_output_scale", "constant_fill"])
def test_where_int8_hand_made(case, tmp_path, record_property):
    """Branches of their own scales, each read through a table of its values at the
    output's (broadcast three ways); a branch already at the output's parameters copied as
    it is; a constant fill branch rescaled at compile time."""
    samples = where_samples(sum(map(ord, case)))
    constants = None
    inputs = {"c": samples[0]["c"], "x": samples[0]["x"], "b": samples[0]["b"]}
    if case == "constant_fill":
        constants = {"b": np.array(-5.0, np.float32)}
        del inputs["b"]
        for sample in samples:
            del sample["b"]
    model = single_node_model("Where", inputs, constants, opset=17)
    values = calibration(samples)
    outputs = np.stack([run_reference(model, list(s.values()))[0] for s in samples])
    y_params = minmax_params(outputs)
    x_params = y_params if case == "x_at_output_scale" else minmax_params(values["x"])
    b_params = minmax_params(values["b"] if "b" in values else constants["b"])
    model = with_qdq(model, {"x": x_params, "b": b_params, "y0": y_params})
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == ["Where"]
    (where,) = compiled.graph.nodes
    assert [compiled.graph.tensor(n).dtype for n in where.inputs] == ["bool", "int8", "int8"]
    tables = compiled.files["m_weights.c"].count("_table[256]")
    assert tables == {"own_scales": 2, "x_at_output_scale": 1, "constant_fill": 1}[case]
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)


def test_where_quantized_by_onnxruntime(tmp_path, record_property):
    """ONNX Runtime's quantizer quantizes a Where whose branches it quantized (here the
    outputs of an Add and a Mul): all three are int8 kernels."""
    samples = where_samples(21, count=8)
    nodes = [helper.make_node("Add", ["x", "b"], ["sum"]),
             helper.make_node("Mul", ["x", "b"], ["product"]),
             helper.make_node("Where", ["c", "sum", "product"], ["y0"])]
    model = model_of(nodes, samples[0], opset=17)
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == ["Add", "Mul", "Where"]
    assert all(compiled.graph.tensor(n.outputs[0]).dtype == "int8"
               for n in compiled.graph.nodes)
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


# -- PRelu ----------------------------------------------------------------------------------

PRELU_SLOPES = {"per_channel": np.array([0.25, -0.5, 0.0, 1.7], np.float32).reshape(4, 1, 1),
                "one": np.array([0.2], np.float32),
                "per_column": np.linspace(-1, 1, 8, dtype=np.float32)}


@pytest.mark.parametrize("case", PRELU_SLOPES)
def test_prelu_int8_hand_made(case, tmp_path, record_property):
    """One slope: the table. Several (per channel, or along the last axis; negative, zero
    and above one): two requantizations with a signed multiplier per slope."""
    slope = PRELU_SLOPES[case]
    rng = np.random.default_rng(len(case))
    samples = [{"x": rng.uniform(-3, 2, SHAPE).astype(np.float32)} for _ in range(6)]
    model = single_node_model("PRelu", {"x": samples[0]["x"]}, {"s": slope}, opset=16)
    outputs = np.stack([run_reference(model, [s["x"]])[0] for s in samples])
    model = with_qdq(model, {"x": minmax_params(calibration(samples)["x"]),
                             "y0": minmax_params(outputs)})
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == ["PRelu"]
    assert_integer_only(compiled)
    weights = compiled.files["m_weights.c"]
    if case == "one":
        assert "_table[256]" in weights
    else:
        assert f"int32_t m_n00_p_relu_mult[{slope.size}]" in weights
        assert "float" not in weights  # the float slope is folded into the multipliers
    agreement = check_int8(compiled, [*samples, every_value(compiled, "x")], tmp_path,
                           qdq_model=model)
    record_property("agreement", agreement.summary)


def test_prelu_between_convolutions_quantized_by_onnxruntime(tmp_path):
    """ONNX Runtime's quantizer leaves PRelu in float between its neighbours' Q and DQ;
    ariel makes it an int8 kernel, so the whole model is integer. Compared with ONNX Runtime
    running the QDQ model as written, layer by layer (each fed ONNX Runtime's own int8
    inputs) and at the output. (With its default optimizations ONNX Runtime 1.32 runs this
    model's PRelu on a channels-last tensor and lands up to 32 steps away, about 1.0 off the
    float model where the model as written is within 0.08: not a reference to hold to.)"""
    rng = np.random.default_rng(8)
    samples = [{"x": rng.uniform(-1, 1, (1, 3, 6, 6)).astype(np.float32)} for _ in range(8)]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c1", "slope"], ["p"]),
             helper.make_node("Conv", ["p", "w2"], ["y0"])]
    constants = {"w1": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
                 "slope": rng.uniform(-0.3, 0.6, (4, 1, 1)).astype(np.float32),
                 "w2": rng.normal(size=(2, 4, 1, 1)).astype(np.float32)}
    compiled = compile_onnx_int8(model_of(nodes, samples[0], constants, opset=17),
                                 calibration(samples), io="int8")
    assert kernel_ops(compiled) == ["Conv", "PRelu", "Conv"]
    assert_integer_only(compiled)
    assert_as_written(compiled, samples, tmp_path)


def assert_as_written(compiled, samples, tmp_path, max_lsb: int = 1) -> None:
    """The host C equals the integer reference; every int8 layer, fed ONNX Runtime's own
    int8 inputs, and every output are within `max_lsb` of ONNX Runtime running the QDQ
    model as written (optimizations off)."""
    from codegen.compiler.quant.report import quantization_report, quantize_inputs

    batches = calibration(samples)
    report = quantization_report(compiled.graph, None, compiled.quantized_model, batches)
    compared = [row for row in report.layers if row.ort_max_lsb is not None]
    assert len(compared) == len(report.layers), report.layers
    for row in compared:
        assert row.ort_max_lsb <= max_lsb, row
    for row in report.agreement:
        if not row.optimized:
            assert row.max_lsb <= max_lsb, row
    host = host_model(compiled, tmp_path)
    for sample in samples:
        ints = quantize_inputs(compiled.graph, [sample[n] for n in
                                                float_inputs(compiled,
                                                             compiled.quantized_model).values()])
        for got, want in zip(host.run(*ints), run_graph(compiled.graph, ints), strict=True):
            np.testing.assert_array_equal(got, want.reshape(got.shape))


# -- chains of real functions: one table ----------------------------------------------------

def conv_between(nodes, rng):
    """A float model: Conv, then `nodes` (reading "c", writing "f"), then Conv."""
    return [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]), *nodes,
            helper.make_node("Conv", ["f", "w2"], ["y0"])], {
        "w1": rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32),
        "w2": rng.normal(0, 0.5, (2, 4, 1, 1)).astype(np.float32)}


GELU_AS_PYTORCH_EXPORTS_IT = [  # opset 17: x * 0.5 * (1 + erf(x / sqrt(2)))
    helper.make_node("Div", ["c", "sqrt2"], ["scaled"]),
    helper.make_node("Erf", ["scaled"], ["erf"]),
    helper.make_node("Add", ["erf", "one"], ["shifted"]),
    helper.make_node("Mul", ["c", "shifted"], ["product"]),
    helper.make_node("Mul", ["product", "half"], ["f"])]
HARDSWISH_WRITTEN_OUT = [  # x * relu6(x + 3) / 6
    helper.make_node("Add", ["c", "three"], ["shifted"]),
    helper.make_node("Clip", ["shifted", "zero", "six"], ["clipped"]),
    helper.make_node("Mul", ["c", "clipped"], ["product"]),
    helper.make_node("Div", ["product", "six"], ["f"])]
CHAIN_CONSTANTS = {"sqrt2": np.array(np.sqrt(2), np.float32), "one": np.array(1, np.float32),
                   "half": np.array(0.5, np.float32), "three": np.array(3, np.float32),
                   "zero": np.array(0, np.float32), "six": np.array(6, np.float32)}


@pytest.mark.parametrize("nodes,tables,function", [
    (GELU_AS_PYTORCH_EXPORTS_IT, ["Div", "Erf"], "Div(x, 1.41421354) then Erf"),
    (HARDSWISH_WRITTEN_OUT, ["Div"], "Div(x, 6.0)")], ids=["gelu_erf", "hardswish_div"])
def test_float_chain_left_by_the_quantizer_is_one_table(nodes, tables, function, tmp_path):
    """ONNX Runtime's quantizer leaves Div -> Erf (and a lone Div by a constant) in float
    between a DequantizeLinear and a QuantizeLinear: ariel makes each chain one table, so the
    whole model is integer, and each layer agrees with ONNX Runtime running the QDQ model as
    written."""
    rng = np.random.default_rng(len(nodes))
    samples = [{"x": rng.uniform(-1, 1, (1, 3, 6, 6)).astype(np.float32)} for _ in range(8)]
    graph_nodes, constants = conv_between(nodes, rng)
    used = {i for n in nodes for i in n.input}
    constants.update({k: v for k, v in CHAIN_CONSTANTS.items() if k in used})
    compiled = compile_onnx_int8(model_of(graph_nodes, samples[0], constants, opset=17),
                                 calibration(samples), io="int8")
    ops = kernel_ops(compiled)
    assert "DequantizeLinear" not in ops and "QuantizeLinear" not in ops, ops
    (table,) = [n for n in compiled.graph.nodes if n.op == "ariel.Table"]
    assert [link.node.op for link in table.attrs["chain"]] == tables
    assert f"f = {function}" in compiled.files["m.c"]
    assert_integer_only(compiled)
    assert_as_written(compiled, samples, tmp_path)


def test_chain_is_not_absorbed_when_it_branches_or_reaches_an_output():
    """A link read by two nodes, or a graph output in the chain, keeps the float chain."""
    rng = np.random.default_rng(3)
    samples = [{"x": rng.uniform(-1, 1, (1, 3, 6, 6)).astype(np.float32)} for _ in range(4)]
    nodes = [helper.make_node("Div", ["c", "six"], ["d"]),
             helper.make_node("Erf", ["d"], ["f"]),
             helper.make_node("Exp", ["d"], ["y1"])]
    graph_nodes, constants = conv_between(nodes, rng)
    constants["six"] = CHAIN_CONSTANTS["six"]
    compiled = compile_onnx_int8(model_of(graph_nodes, samples[0], constants, opset=17),
                                 calibration(samples), io="float")
    assert "ariel.Table" not in kernel_ops(compiled)
    assert "Div" in kernel_ops(compiled)
