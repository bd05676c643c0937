"""int8 Add, Sub and Mul: two differently scaled inputs, broadcasting (per channel, scalar,
constant operands), a fused Relu, saturation. Host-compiled C equals the integer reference
exactly and ONNX Runtime on the QDQ model within one step."""

import numpy as np
import pytest

from codegen.compiler.ops.binary import Rescale, halves, halves_apply, high_word
from codegen.compiler.ops.quantize import dequantize, quantize
from codegen.compiler.reference import run_graph
from tests.compiler.ops.test_conv_s8 import emulated_dsp, host_model
from tests.compiler.ops.test_quantize import (
    assert_integer_only,
    calibration,
    check_int8,
    kernel_ops,
    minmax_params,
    with_qdq,
)
from tests.support import compile_onnx_int8, single_node_model

SHAPE = (1, 3, 4, 5)

# name: (op, shape of b, range of x, range of b); b is a second model input.
RUNTIME_CASES = {
    "add_same_shape": ("Add", SHAPE, 2.0, 6.0),
    "add_scales_100_apart": ("Add", SHAPE, 0.05, 5.0),
    "add_per_channel": ("Add", (1, 3, 1, 1), 1.0, 3.0),
    "add_row_broadcast": ("Add", (5,), 4.0, 1.0),
    "add_one_element_input": ("Add", (1,), 1.0, 2.0),
    "add_lower_rank_both_ways": ("Add", (1, 4, 1), 1.5, 0.5),
    "mul_same_shape": ("Mul", SHAPE, 2.0, 3.0),
    "mul_per_channel": ("Mul", (1, 3, 1, 1), 2.0, 0.5),
}


def samples_for(seed: int, b_shape, x_range: float, b_range: float, count: int = 8):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(-x_range, x_range * 0.7, SHAPE).astype(np.float32),
             "b": rng.uniform(-b_range * 0.4, b_range, b_shape).astype(np.float32)}
            for _ in range(count)]


@pytest.mark.parametrize("case", RUNTIME_CASES, ids=list(RUNTIME_CASES))
def test_binary_quantized_by_onnxruntime(case, tmp_path, record_property):
    op, b_shape, x_range, b_range = RUNTIME_CASES[case]
    samples = samples_for(sum(map(ord, case)), b_shape, x_range, b_range)
    model = single_node_model(op, {"x": samples[0]["x"], "b": samples[0]["b"]}, opset=17)
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == [op]
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


def qdq_binary(op: str, samples, x_params, b_params, y_params, constant=None):
    """A hand-made QDQ model of `x op b` (b a constant if given) with these parameters."""
    inputs = {"x": samples[0]["x"]}
    if constant is None:
        inputs["b"] = samples[0]["b"]
    model = single_node_model(op, inputs, {"b": constant} if constant is not None else None,
                              opset=17)
    return with_qdq(model, {"x": x_params, "b": b_params, "y0": y_params})


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
@pytest.mark.parametrize("b_shape", [SHAPE, (1, 3, 1, 1), ()], ids=["full", "channel", "scalar"])
def test_constant_operand(op, b_shape, tmp_path, record_property):
    """A constant b, stored int8 symmetric (as a quantizer stores weights), read in place."""
    rng = np.random.default_rng(11)
    constant = rng.uniform(-2, 2, b_shape).astype(np.float32)
    samples = [{"x": rng.uniform(-3, 1, SHAPE).astype(np.float32)} for _ in range(6)]
    outputs = np.stack([{"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](
        s["x"], constant) for s in samples])
    b_scale = float(np.float32(np.abs(constant).max() / 127))
    model = qdq_binary(op, samples, minmax_params(calibration(samples)["x"]), (b_scale, 0),
                       minmax_params(outputs), constant)
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == [op]
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)


def test_sub_runtime_inputs_saturating(tmp_path, record_property):
    """x - b with an output range narrower than the inputs' difference: both ends
    saturate, and the integer kernel still agrees."""
    samples = samples_for(12, SHAPE, 3.0, 3.0)
    values = calibration(samples)
    model = qdq_binary("Sub", samples, minmax_params(values["x"]), minmax_params(values["b"]),
                       minmax_params(np.array([-1.5, 1.0])))
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == ["Sub"]
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)
    ints = [np.full(SHAPE, v, np.int8) for v in (127, -128)]
    (y,) = run_graph(compiled.graph, ints)
    assert (y == 127).all()
    (y,) = run_graph(compiled.graph, ints[::-1])
    assert (y == -128).all()


def test_add_then_relu_from_onnxruntime(tmp_path, record_property):
    """ONNX Runtime folds a Relu after Add into the Add's output range (zero point -128):
    the int8 Add saturates there."""
    samples = samples_for(13, SHAPE, 2.0, 2.0)
    from onnx import helper
    model = single_node_model("Add", {"x": samples[0]["x"], "b": samples[0]["b"]}, opset=17)
    model.graph.node[0].output[0] = "sum"
    model.graph.node.append(helper.make_node("Relu", ["sum"], ["y0"], name="relu"))
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(compiled) == ["Add"]
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


@pytest.mark.parametrize("same_params", [True, False], ids=["relu_keeps_params",
                                                            "relu_own_params"])
@pytest.mark.parametrize("activation", ["Relu", "Clip"])
def test_add_relu_fused(activation, same_params, tmp_path, record_property):
    """A QDQ model that keeps the activation (Add -> Q/DQ -> Relu -> Q/DQ, as in ResNet): the
    int8 Relu (or Clip 0..6) fuses into the Add, which writes the activation's output with
    its scale and zero point and a narrowed clamp."""
    from onnx import helper, numpy_helper
    samples = samples_for(14, SHAPE, 4.0, 4.0)
    model = single_node_model("Add", {"x": samples[0]["x"], "b": samples[0]["b"]}, opset=17)
    model.graph.node[0].output[0] = "sum"
    bounds = []
    if activation == "Clip":
        model.graph.initializer.extend([numpy_helper.from_array(np.array(0, np.float32), "lo"),
                                        numpy_helper.from_array(np.array(6, np.float32), "hi")])
        bounds = ["lo", "hi"]
    model.graph.node.append(helper.make_node(activation, ["sum", *bounds], ["y0"], name="act"))
    values = calibration(samples)
    total = values["x"] + values["b"]
    sum_params = minmax_params(total)
    y_params = sum_params if same_params else minmax_params(np.clip(total, 0, 6))
    model = with_qdq(model, {"x": minmax_params(values["x"]), "b": minmax_params(values["b"]),
                             "sum": sum_params, "y0": y_params})
    compiled = compile_onnx_int8(model, io="int8")
    assert kernel_ops(compiled) == ["Add"]
    (add,) = compiled.graph.nodes
    assert add.clamp == ((0.0, np.inf) if activation == "Relu" else (0.0, 6.0))
    # With its own, finer output step ONNX Runtime rounds twice (to the Add's step, then the
    # Relu's); the fused kernel rounds once, so they agree less often, and the fused result
    # is the correctly rounded one.
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model,
                               min_identical=0.9 if same_params else 0.6)
    record_property("agreement", agreement.summary)
    graph = compiled.graph
    ints = [quantize(samples[0][n], graph.tensor(i).quant.scale, graph.tensor(i).quant.zero_point,
                     "int8") for n, i in zip(("x", "b"), graph.inputs, strict=True)]
    exact = sum(dequantize(q, graph.tensor(i).quant.scale, graph.tensor(i).quant.zero_point
                           ).astype(np.float64) for q, i in zip(ints, graph.inputs, strict=True))
    scale, zero_point = y_params
    exact = np.clip(exact, 0, 6 if activation == "Clip" else np.inf) / scale + zero_point
    (got,) = run_graph(graph, ints)
    assert np.max(np.abs(got - np.clip(exact, -128, 127))) <= 0.5 + 1e-6


def random_rescales(rng, shift: int, count: int = 3):
    """Rescales at `shift` with multipliers of both signs (Sub negates Mb), zero points at
    the ends of the range and, half the time, a fused Relu's narrower clamp."""
    for _ in range(count):
        m_a, m_b = (int(m) for m in rng.integers(1 << 28, 1 << 31, 2))
        m_b *= int(rng.choice([-1, 1]))
        z_a, z_b, z_y = (int(z) for z in rng.choice([-128, -5, 0, 17, 127], 3))
        low = int(rng.choice([-128, z_y]))
        yield Rescale(m_a, m_b, -(m_a * z_a + m_b * z_b), shift, z_y, low, 127)


EVERY_PAIR = tuple(v.astype(np.int64) for v in np.meshgrid(np.arange(-128, 128),
                                                           np.arange(-128, 128)))


def high_word_result(r: Rescale, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """What the kernel's high-word path computes, in Python integers (exact): the int64 sum,
    checked to stay within int64 at each step, its high word, the clamp."""
    path = high_word(r)
    scale, start = path["scale"], int(path["start"].removeprefix("INT64_C(").rstrip(")"))
    results = []
    for x, y in zip(a.reshape(-1).tolist(), b.reshape(-1).tolist(), strict=True):
        acc = start
        for partial in (acc := acc + r.mult_a * x * scale, acc + r.mult_b * y * scale):
            assert -(1 << 63) <= partial < (1 << 63)
        acc += r.mult_b * y * scale
        high = acc >> 32
        if r.shift > 32:
            high = (high >> (r.shift - 32)) + r.zero_point
        results.append(min(max(high, r.low), r.high))
    return np.array(results).reshape(a.shape)


@pytest.mark.parametrize("shift", [12, 20, 29, 30, 31, 32, 33, 36, 40])
def test_high_word_path_equals_the_int64_expression(shift):
    """The Add's SMLAL form (binary.high_word) against Rescale.apply, the numpy twin, on
    every pair of int8 inputs."""
    rng = np.random.default_rng(shift)
    for r in random_rescales(rng, shift):
        np.testing.assert_array_equal(high_word_result(r, *EVERY_PAIR), r.apply(*EVERY_PAIR))


def test_high_word_path_is_refused_where_a_times_2_to_k_leaves_int32():
    assert high_word(Rescale(1 << 30, 1 << 30, 0, 7, 0, -128, 127)) is None
    assert high_word(Rescale(1 << 30, 1 << 30, 0, 8, 0, -128, 127)) is not None


@pytest.mark.parametrize("shift", [17, 20, 29, 30, 31, 33, 36, 39])
def test_halves_path_equals_the_int64_expression(shift):
    """The Add's 32-bit form (binary.halves: multipliers split at bit 16, two SMLAD) against
    Rescale.apply on every pair of int8 inputs."""
    rng = np.random.default_rng(100 + shift)
    for r in random_rescales(rng, shift):
        assert halves(r) is not None
        np.testing.assert_array_equal(halves_apply(r, *EVERY_PAIR), r.apply(*EVERY_PAIR))


def test_halves_path_is_refused_where_its_numbers_do_not_fit():
    assert halves(Rescale(1 << 30, 1 << 30, 0, 16, 0, -128, 127)) is None  # shift < 17
    assert halves(Rescale(1 << 30, 1 << 30, 0, 48, 0, -128, 127)) is None  # shift > 47
    # a multiplier whose high half rounds to 2^15, beyond int16
    assert halves(Rescale((1 << 31) - 1, 1 << 30, 0, 31, 0, -128, 127)) is None
    assert halves(Rescale((1 << 31) - (1 << 15) - 1, 1 << 30, 0, 31, 0, -128, 127)) is not None


def test_add_with_a_shift_above_32(tmp_path):
    """An output scale ten times the inputs': a shift of 34, in 32-bit steps."""
    rng = np.random.default_rng(12)
    samples = [{"x": rng.uniform(-3, 1, SHAPE).astype(np.float32),
                "b": rng.uniform(-1, 3, SHAPE).astype(np.float32)} for _ in range(6)]
    model = qdq_binary("Add", samples, (0.016, -3), (0.014, 9), (0.16, 4))
    compiled = compile_onnx_int8(model, io="int8")
    source = compiled.files["m.c"]
    assert "ariel_add4_s8(" in source and "acc >> 32" not in source
    check_int8(compiled, samples, tmp_path, qdq_model=model)


def test_add_takes_the_high_word_path_where_halves_refuses(tmp_path):
    """Input a's scale a few float32 steps below the output's: its multiplier is within 2^15
    of 2^31, whose high half does not fit int16, so the kernel keeps the SMLAL form."""
    rng = np.random.default_rng(14)
    samples = [{"x": rng.uniform(-1, 1, SHAPE).astype(np.float32),
                "b": rng.uniform(-1, 1, SHAPE).astype(np.float32)} for _ in range(4)]
    y_scale = np.float32(0.016)
    for _ in range(3):
        y_scale = np.nextafter(y_scale, np.float32(1))
    model = qdq_binary("Add", samples, (0.016, -3), (0.014, 9), (float(y_scale), 4))
    compiled = compile_onnx_int8(model, io="int8")
    source = compiled.files["m.c"]
    assert "(int32_t)(acc >> 32)" in source and "ariel_add_s8" not in source
    check_int8(compiled, samples, tmp_path, qdq_model=model)


# name: (shape of x, shape of b): element counts that are not a multiple of four (the
# four-at-a-time loop's tail, or nothing but the tail), and broadcast operands.
DSP_CASES = {"tail_of_three": ((1, 3, 7), (1, 3, 7)), "three_elements": ((3,), (3,)),
             "per_channel": ((1, 3, 2, 5), (1, 3, 1, 1)), "row": ((2, 5), (5,))}


def dsp_case(case: str):
    """An int8 Add of two inputs for DSP_CASES[case]: the model compiled (int8 I/O) and a
    few int8 input lists, the extremes among them."""
    x_shape, b_shape = DSP_CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    samples = [{"x": rng.uniform(-2, 1.5, x_shape).astype(np.float32),
                "b": rng.uniform(-1, 3, b_shape).astype(np.float32)} for _ in range(4)]
    model = single_node_model("Add", {"x": samples[0]["x"], "b": samples[0]["b"]}, opset=17)
    compiled = compile_onnx_int8(model, calibration(samples), io="int8")
    inputs = [[rng.integers(-128, 128, x_shape).astype(np.int8),
               rng.integers(-128, 128, b_shape).astype(np.int8)] for _ in range(3)]
    inputs += [[np.full(x_shape, v, np.int8), np.full(b_shape, w, np.int8)]
               for v, w in ((127, 127), (-128, -128), (127, -128))]
    return compiled, inputs


@pytest.mark.parametrize("case", DSP_CASES, ids=list(DSP_CASES))
def test_add_halves_on_the_dsp_twins(case, tmp_path):
    """The host-built C, plain and with the DSP path on ariel_runtime.h's C twins of the
    instructions (PKHBT, SXTB16, SMLAD), equals the integer reference exactly."""
    compiled, inputs = dsp_case(case)
    source = compiled.files["m.c"]
    assert "ariel_add_s8(" in source
    assert ("ariel_add4_s8(" in source) == (case == "tail_of_three")
    plain, dsp = host_model(compiled, tmp_path), host_model(emulated_dsp(compiled), tmp_path)
    for xs in inputs:
        (want,) = run_graph(compiled.graph, xs)
        np.testing.assert_array_equal(plain.run(*xs)[0], want)
        np.testing.assert_array_equal(dsp.run(*xs)[0], want)
