"""QuantizeLinear and DequantizeLinear (the float boundary), in float builds of QDQ models and
in int8 builds with float I/O; and the helpers the int8 operator tests share: hand-made QDQ
models, ONNX Runtime on a QDQ model read at its int8 tensors, and `check_int8`, which holds a
compiled int8 model to its bit-exact reference and to ONNX Runtime."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.ops.quantize import Runs, contiguous_runs, dequantize, quantize
from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.support import (
    compile_for_cortex_m4,
    compile_onnx,
    compile_onnx_int8,
    host_model,
    run_reference,
    single_node_model,
)

# -- helpers shared by the int8 operator tests --------------------------------------------


def minmax_params(values: np.ndarray) -> tuple[float, int]:
    """int8 scale and zero point for the range of `values` (widened to hold 0), as ONNX
    Runtime's MinMax calibration chooses them."""
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = np.float32((high - low) / 255 if high > low else 1.0)
    return float(scale), int(np.clip(np.rint(-128 - low / scale), -128, 127))


def with_qdq(model: onnx.ModelProto, params: dict[str, tuple[float, int]]) -> onnx.ModelProto:
    """`model` with a QuantizeLinear -> DequantizeLinear pair (int8, the given scale and zero
    point) after each named tensor, as a quantizer would write it; a named initializer is
    stored quantized instead, behind a DequantizeLinear."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    outputs = {o.name for o in graph.output}
    initializers = {i.name: i for i in graph.initializer}
    nodes = list(graph.node)
    for name, (scale, zero_point) in params.items():
        quantized, restored = f"{name}_q", f"{name}_dq"
        graph.initializer.extend([
            numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
            numpy_helper.from_array(np.array(zero_point, np.int8), f"{name}_zero_point")])
        pair = [helper.make_node("QuantizeLinear", [name, f"{name}_scale", f"{name}_zero_point"],
                                 [quantized], name=f"{name}_quantize"),
                helper.make_node("DequantizeLinear", [quantized, f"{name}_scale",
                                                      f"{name}_zero_point"],
                                 [restored], name=f"{name}_dequantize")]
        if name in initializers:
            values = quantize(numpy_helper.to_array(initializers[name]), scale, zero_point,
                              "int8")
            initializers[name].CopyFrom(numpy_helper.from_array(values, quantized))
            pair = pair[1:]
        for node in nodes:
            node.input[:] = [restored if i == name else i for i in node.input]
        producer = next((k for k, n in enumerate(nodes) if name in n.output), -1)
        nodes[producer + 1:producer + 1] = pair
        if name in outputs:
            for value in graph.output:
                if value.name == name:
                    value.name = restored
    del graph.node[:]
    graph.node.extend(nodes)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def ort_session(model: onnx.ModelProto, extra_outputs: list[str] = ()
                ) -> onnxruntime.InferenceSession:
    """ONNX Runtime (default optimisations, as users run it) on `model`, also returning the
    named intermediate tensors."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(name, types[name], None)
                              for name in extra_outputs if name not in present)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def float_inputs(compiled, qdq_model: onnx.ModelProto) -> dict[str, str]:
    """For each int8 input of the compiled model, the float input of the QDQ model whose
    QuantizeLinear makes it (an input that is not quantized stands for itself)."""
    producers = {n.output[0]: n.input[0] for n in qdq_model.graph.node
                 if n.op_type == "QuantizeLinear"}
    return {name: producers.get(name, name) for name in compiled.graph.inputs}


@dataclass
class Agreement:
    """How an int8 model's outputs compare with ONNX Runtime's: the fraction of elements
    identical and the largest difference, in steps of the output's scale."""

    identical: float
    largest: int

    @property
    def summary(self) -> str:
        return f"{self.identical:.4f} identical, largest difference {self.largest}"


def check_int8(compiled, samples: list[dict[str, np.ndarray]], workdir, qdq_model=None,
               max_lsb: int = 1, min_identical: float = 0.9) -> Agreement:
    """Run an int8 model (io="int8") built from `qdq_model` (default: the one ONNX Runtime
    made) on float samples quantized as its input QuantizeLinear does. The host-compiled C
    must equal ariel's integer reference exactly, and ONNX Runtime on the QDQ model, read at
    the same int8 tensors, within `max_lsb` with at least `min_identical` of the elements
    identical."""
    qdq_model = qdq_model or compiled.quantized_model
    sources = float_inputs(compiled, qdq_model)
    host = host_model(compiled, workdir)
    session = ort_session(qdq_model, compiled.graph.outputs)
    diffs = []
    for sample in samples:
        ints = []
        for name in compiled.graph.inputs:
            quant = compiled.graph.tensor(name).quant
            ints.append(sample[name] if quant is None else  # a bool condition, say
                        quantize(sample[sources[name]], quant.scale, quant.zero_point, "int8"))
        got = host.run(*ints)
        want = run_graph(compiled.graph, ints)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == np.int8 and w.dtype == np.int8
            np.testing.assert_array_equal(g, w.reshape(g.shape))
        ort = session.run(compiled.graph.outputs, sample)
        diffs += [np.abs(g.astype(np.int32) - o.astype(np.int32)).reshape(-1)
                  for g, o in zip(got, ort, strict=True)]
    diff = np.concatenate(diffs)
    agreement = Agreement(float(np.mean(diff == 0)), int(diff.max()))
    assert agreement.largest <= max_lsb, agreement
    assert agreement.identical >= min_identical, agreement
    return agreement


def kernel_ops(compiled) -> list[str]:
    """The operators that run code in a compiled model, leaving out views and the copies
    between memory orders (ariel.Relayout) that the layout pass adds."""
    return [k["op"] for k in compiled.info.kernels if k["op"] != "ariel.Relayout"]


def assert_integer_only(compiled) -> None:
    """No QuantizeLinear/DequantizeLinear left and every tensor a kernel touches int8
    (besides constant parameters)."""
    ops = kernel_ops(compiled)
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops, ops
    graph = compiled.graph
    for node in graph.nodes:
        for name in [*node.inputs[:1], *node.outputs]:
            assert graph.tensor(name).dtype == "int8", (node.op, name)


def uniform_samples(rng, name: str, shape, count: int = 4, low=-3.0, high=3.0
                    ) -> list[dict[str, np.ndarray]]:
    return [{name: rng.uniform(low, high, size=shape).astype(np.float32)}
            for _ in range(count)]


def calibration(samples: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The samples as calibration batches (N, *shape) per input."""
    return {name: np.stack([s[name] for s in samples]) for name in samples[0]}


# -- QuantizeLinear / DequantizeLinear -----------------------------------------------------

SHAPE = (2, 3, 5)


def quantize_model(dtype, scale: float, zero_point: int, opset: int = 21):
    x = np.zeros(SHAPE, np.float32)
    return single_node_model("QuantizeLinear", {"x": x},
                             {"scale": np.array(scale, np.float32),
                              "zero_point": np.array(zero_point, dtype)}, opset=opset)


def edge_values(scale: float, zero_point: int, dtype) -> np.ndarray:
    """Exact halves (ties, both parities, both signs), the saturation edges and beyond, and
    infinities, as x values."""
    info = np.iinfo(dtype)
    q = np.array([0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49, -3.51,
                  info.max - zero_point, info.max - zero_point + 0.5,
                  info.max - zero_point + 1, info.min - zero_point - 0.5,
                  info.min - zero_point, info.min - zero_point - 7, 1e9, -1e9])
    values = np.concatenate([q * scale, [np.inf, -np.inf]]).astype(np.float32)
    rng = np.random.default_rng(3)
    rest = rng.uniform(-300, 300, size=int(np.prod(SHAPE)) - values.size) * scale
    return np.concatenate([values, rest.astype(np.float32)]).reshape(SHAPE)


@pytest.mark.parametrize("dtype,scale,zero_point", [
    (np.int8, 0.25, 0), (np.int8, 0.0392, -17), (np.uint8, 0.125, 128), (np.uint8, 0.02, 3),
    (np.int16, 0.001, 100), (np.uint16, 0.5, 30000)])
def test_quantize_linear_float_build(dtype, scale, zero_point, tmp_path):
    """A float build: the kernel equals onnx.reference and ONNX Runtime bit for bit, ties and
    saturation included."""
    model = quantize_model(dtype, scale, zero_point)
    x = edge_values(scale, zero_point, dtype)
    compiled = compile_onnx(model)
    (got,) = host_model(compiled, tmp_path).run(x)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, run_graph(compiled.graph, [x])[0])
    assert_as_onnx_quantizes(got, model, x)


def assert_as_onnx_quantizes(got: np.ndarray, model: onnx.ModelProto, x: np.ndarray) -> None:
    """`got` equals ONNX Runtime's QuantizeLinear, and onnx.reference's where x is finite
    (that one casts rint(x) to int32 before saturating, undefined for infinities)."""
    np.testing.assert_array_equal(got, ort_session(model).run(None, {"x": x})[0])
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(got[finite], run_reference(model, [x])[0][finite])


def test_quantize_linear_without_zero_point_is_uint8(tmp_path):
    x = edge_values(0.1, 0, np.uint8)
    model = single_node_model("QuantizeLinear", {"x": x}, {"scale": np.array(0.1, np.float32)},
                              opset=13)
    (got,) = host_model(compile_onnx(model), tmp_path).run(x)
    assert got.dtype == np.uint8
    assert_as_onnx_quantizes(got, model, x)


def test_quantize_nan_saturates_low(tmp_path):
    model = quantize_model(np.int8, 0.5, 3)
    x = np.full(SHAPE, np.nan, np.float32)
    (got,) = host_model(compile_onnx(model), tmp_path).run(x)
    np.testing.assert_array_equal(got, np.full(SHAPE, -128, np.int8))


@pytest.mark.parametrize("dtype,scale,zero_point", [
    (np.int8, 0.0392, -17), (np.uint8, 0.125, 128), (np.int16, 0.001, -100),
    (np.uint16, 3.5, 2), (np.int32, 1e-4, 0)])
def test_dequantize_linear_float_build(dtype, scale, zero_point, tmp_path):
    info = np.iinfo(dtype)
    q = np.random.default_rng(4).integers(info.min, info.max, size=SHAPE, endpoint=True,
                                          dtype=dtype)
    q.reshape(-1)[:2] = [info.min, info.max]
    model = single_node_model("DequantizeLinear", {"q": q},
                              {"scale": np.array(scale, np.float32),
                               "zero_point": np.array(zero_point, dtype)}, opset=21)
    compiled = compile_onnx(model)
    (got,) = host_model(compiled, tmp_path).run(q)
    np.testing.assert_array_equal(got, run_reference(model, [q])[0])
    np.testing.assert_array_equal(got, run_graph(compiled.graph, [q])[0])
    np.testing.assert_array_equal(got, dequantize(q, scale, zero_point))


@pytest.mark.parametrize("what,model", [
    ("per-axis", lambda: single_node_model(
        "QuantizeLinear", {"x": np.zeros((1, 3, 2), np.float32)},
        {"scale": np.array([0.1, 0.2, 0.3], np.float32),
         "zero_point": np.zeros(3, np.int8)}, opset=19, axis=1)),
    ("blocked", lambda: single_node_model(
        "DequantizeLinear", {"q": np.zeros((2, 4), np.int8)},
        {"scale": np.ones((2, 2), np.float32)}, opset=21, axis=1, block_size=2)),
])
def test_unsupported_quantization_is_rejected(what, model):
    with pytest.raises(UnsupportedError, match=what):
        compile_onnx(model())


def add_model(shape=(1, 3, 4, 4)) -> onnx.ModelProto:
    x = np.zeros(shape, np.float32)
    return single_node_model("Add", {"x": x, "b": x}, opset=17)


def add_samples(seed: int, count: int = 6):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(-2, 2, (1, 3, 4, 4)).astype(np.float32),
             "b": rng.uniform(-6, 3, (1, 3, 4, 4)).astype(np.float32)} for _ in range(count)]


def test_float_build_of_a_qdq_model_simulates_quantization(tmp_path):
    """ONNX Runtime's QDQ model of an Add, compiled as a float model: the Q/DQ kernels run
    between float kernels, and the output is ONNX Runtime's within one output step."""
    samples = add_samples(5)
    qdq = compile_onnx_int8(add_model(), calibration(samples)).quantized_model
    compiled = compile_onnx(qdq)
    ops = kernel_ops(compiled)
    assert ops.count("QuantizeLinear") == 3 and ops.count("DequantizeLinear") == 3, ops
    host = host_model(compiled, tmp_path)
    session = ort_session(qdq)
    step = float(numpy_helper.to_array(next(
        i for i in qdq.graph.initializer if i.name == qdq.graph.node[-1].input[1])))
    for sample in samples:
        (got,) = host.run(sample["x"], sample["b"])
        np.testing.assert_array_equal(got, run_graph(compiled.graph, [sample["x"],
                                                                      sample["b"]])[0])
        (want,) = session.run(None, sample)
        assert np.max(np.abs(got - want)) <= step * 1.0001


def test_int8_build_with_float_io(tmp_path):
    """io="float": a QuantizeLinear kernel per input and a DequantizeLinear on the output
    around the integer Add. The float output is exactly the dequantized int8 output of the
    io="int8" build, and ONNX Runtime's within one output step."""
    samples = add_samples(6)
    model = add_model()
    floats = compile_onnx_int8(model, calibration(samples), io="float")
    ints = compile_onnx_int8(model, calibration(samples), io="int8")
    assert kernel_ops(floats) == ["QuantizeLinear", "QuantizeLinear", "Add", "DequantizeLinear"]
    assert kernel_ops(ints) == ["Add"]
    assert [t.dtype for t in floats.info.inputs + floats.info.outputs] == ["float32"] * 3
    host_f, host_i = host_model(floats, tmp_path), host_model(ints, tmp_path)
    out = ints.graph.tensor(ints.graph.outputs[0]).quant
    session = ort_session(floats.quantized_model)
    for sample in samples:
        (got,) = host_f.run(sample["x"], sample["b"])
        np.testing.assert_array_equal(got, run_graph(floats.graph, [sample["x"],
                                                                    sample["b"]])[0])
        q = [quantize(sample[n], ints.graph.tensor(i).quant.scale,
                      ints.graph.tensor(i).quant.zero_point, "int8")
             for n, i in zip(("x", "b"), ints.graph.inputs, strict=True)]
        (as_int8,) = host_i.run(*q)
        np.testing.assert_array_equal(got, dequantize(as_int8, out.scale, out.zero_point))
        (want,) = session.run(None, sample)
        assert np.max(np.abs(got - want)) <= float(out.scale) * 1.0001


def test_uint8_qdq_model_with_float_io(tmp_path):
    """A hand-made uint8 QDQ model (Q and DQ of zero point 128 around an int8 kernel): the
    lowering shifts it to int8, and the boundary kernels follow."""
    x = np.zeros((1, 2, 3, 3), np.float32)
    model = single_node_model("Sigmoid", {"x": x}, opset=17)
    graph = model.graph
    graph.initializer.extend([numpy_helper.from_array(np.array(0.03, np.float32), "sx"),
                              numpy_helper.from_array(np.array(128, np.uint8), "zx"),
                              numpy_helper.from_array(np.array(1 / 256, np.float32), "sy"),
                              numpy_helper.from_array(np.array(0, np.uint8), "zy")])
    sigmoid = graph.node[0]
    sigmoid.input[0], sigmoid.output[0] = "x_dq", "y_f"
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["x_q"]),
             helper.make_node("DequantizeLinear", ["x_q", "sx", "zx"], ["x_dq"]),
             sigmoid,
             helper.make_node("QuantizeLinear", ["y_f", "sy", "zy"], ["y_q"]),
             helper.make_node("DequantizeLinear", ["y_q", "sy", "zy"], ["y0"])]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("y0", TensorProto.FLOAT, x.shape))
    compiled = compile_onnx_int8(model, io="float")
    assert kernel_ops(compiled) == ["QuantizeLinear", "Sigmoid", "DequantizeLinear"]
    values = np.random.default_rng(7).uniform(-5, 5, size=(4, *x.shape)).astype(np.float32)
    host = host_model(compiled, tmp_path)
    session = ort_session(model)
    for sample in values:
        (got,) = host.run(sample)
        np.testing.assert_array_equal(got, run_graph(compiled.graph, [sample])[0])
        (want,) = session.run(None, {"x": sample})
        assert np.max(np.abs(got - want)) <= 1 / 256 * 1.0001


def kernel_zoo() -> tuple[onnx.ModelProto, dict[str, tuple[float, int]]]:
    """x, b -> Add -> Relu -> AveragePool (borders) -> Sigmoid -> Mul -> MaxPool ->
    GlobalAveragePool -> Flatten -> Softmax, with the parameters of every tensor: one model
    that uses each int8 kernel of this module family."""
    shape = (1, 4, 7, 7)
    nodes = [
        helper.make_node("Add", ["x", "b"], ["sum"]),
        helper.make_node("Relu", ["sum"], ["relu"]),
        helper.make_node("AveragePool", ["relu"], ["avg"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["avg"], ["sig"]),
        helper.make_node("Mul", ["sig", "b"], ["prod"]),
        helper.make_node("MaxPool", ["prod"], ["max"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["max"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Softmax", ["flat"], ["y0"]),
    ]
    graph = helper.make_graph(nodes, "zoo", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
        helper.make_tensor_value_info("b", TensorProto.FLOAT, shape)],
        [helper.make_empty_tensor_value_info("y0")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    params = {"x": (0.02, 3), "b": (0.015, -10), "sum": (0.03, -20), "relu": (0.03, -20),
              "avg": (0.02, -128), "sig": (1 / 256, -128), "prod": (0.004, -5),
              "max": (0.004, -5), "gap": (0.002, -30), "flat": (0.002, -30),
              "y0": (1 / 256, -128)}
    return model, params


@pytest.mark.parametrize("io", ["int8", "float"])
def test_int8_model_compiles_for_cortex_m4(io, tmp_path):
    """The generated C of an int8 model builds for the Cortex-M4 with every warning an
    error, and uses no double."""
    model, params = kernel_zoo()
    compiled = compile_onnx_int8(with_qdq(model, params), io=io)
    ops = kernel_ops(compiled)
    assert ops == [*(["QuantizeLinear"] * 2 if io == "float" else []), "Add", "AveragePool",
                   "Sigmoid", "Mul", "MaxPool", "GlobalAveragePool", "Softmax",
                   *(["DequantizeLinear"] if io == "float" else [])]
    assert "double" not in compiled.files[f"{compiled.info.prefix}.c"]
    compile_for_cortex_m4(compiled, tmp_path)


def test_kernel_zoo_on_host(tmp_path):
    """The same model on the host: C equals the integer reference, ONNX Runtime within one
    step."""
    model, params = kernel_zoo()
    qdq = with_qdq(model, params)
    compiled = compile_onnx_int8(qdq, io="int8")
    rng = np.random.default_rng(70)
    samples = [{"x": rng.uniform(-2, 2, (1, 4, 7, 7)).astype(np.float32),
                "b": rng.uniform(-1.5, 2, (1, 4, 7, 7)).astype(np.float32)} for _ in range(6)]
    check_int8(compiled, samples, tmp_path, qdq_model=qdq, min_identical=0.75)


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["mps2-an386", "nucleo-g071rb"])
@pytest.mark.parametrize("dtype,scale,zero_point", [
    (np.int8, 0.0392, -17), (np.uint8, 0.125, 128), (np.int16, 0.001, 100)])
def test_quantize_linear_on_the_cores(board, dtype, scale, zero_point, tmp_path):
    """On the Cortex-M4F the kernel multiplies by 65536 / scale for 8-bit outputs, four
    values at a time (5431 of them: 1357 groups and 3 left over, done one at a time by
    4096 / scale), dividing only where that cannot tell the integer, rounds with VCVTR and
    saturates in integers;
    on the Cortex-M0+ (no FPU) it divides, confines in float and rounds by adding
    1.5 * 2^23: both equal the reference bit for bit on ties and near-ties, saturation
    edges, infinities and NaN, and ONNX Runtime where x is a number."""
    from tests.compiler.ops.test_s8_dsp_qemu import firmware, run_firmware, uses

    x = tie_values(scale, zero_point, dtype, 5431)[None]
    model = single_node_model("QuantizeLinear", {"x": x},
                              {"scale": np.array(scale, np.float32),
                               "zero_point": np.array(zero_point, dtype)}, opset=21)
    compiled = compile_onnx(model)
    elf = firmware(compiled, tmp_path / "build", board=board)
    # The same values with the NaN, the infinities and those beyond 2^18 steps set to 0:
    # on the Cortex-M4F, an input its fast pass takes alone (FPSCR's IOC flag stays clear);
    # the first, with them, is redone the exact way.
    tame = np.where(np.isfinite(x) & (np.abs(x / np.float32(scale)) < 2**18), x,
                    np.float32(0))
    for k, sample in enumerate([x, tame]):
        got = run_firmware(compiled, elf, [[sample]], tmp_path / f"run{k}", board=board)[0]
        np.testing.assert_array_equal(got, run_graph(compiled.graph, [sample])[0])
        number = ~np.isnan(sample)
        np.testing.assert_array_equal(got[number],
                                      ort_session(model).run(None, {"x": sample})[0][number])
    assert uses(elf, "vcvtr.s32.f32") == (board == "mps2-an386")
    assert uses(elf, "vmul.f32") == (board == "mps2-an386" and dtype != np.int16)


def tie_values(scale: float, zero_point: int, dtype, size: int) -> np.ndarray:
    """The first `size` of: the edges, then quotients at and around half-integers of the
    range, a few units of 2^-14 apart (where the Cortex-M4F's multiplication cannot tell the
    integer and divides, and just outside that window, where it must not need to); the last
    value a NaN."""
    edges = edge_values(scale, zero_point, dtype).reshape(-1)
    halves = np.arange(-300, 300) + 0.5
    near = (halves[:, None] + np.arange(-4, 5) * 2.0 ** -14).reshape(-1) * scale
    body = np.concatenate([edges, np.resize(near, max(size - edges.size - 1, 0))])
    return np.append(body[:size - 1], np.nan).astype(np.float32)


@pytest.mark.qemu
@pytest.mark.parametrize("shape", [(1, 3, 41, 49), (1, 3, 1, 4), (1, 3, 2, 3), (1, 3, 1, 8),
                                   (1, 3, 3, 5), (1, 2, 1, 3)])
def test_quantize_linear_writing_nhwc_on_the_cortex_m4(shape, tmp_path):
    """The int8 build's input QuantizeLinear turning an NCHW float input into NHWC, as VWW's
    and ResNet-8's does. On the Cortex-M4F its fast pass reads the three channels of an RGB
    input eight floats each at a time, then four, and writes the pixels' bytes as words
    (runs of 2009: 251 steps of eight and one pixel left over; of 4: one step of four; of 6:
    one of four and two pixels left over, one value at a time; of 8: one of eight; of 15:
    one of each and three pixels left over); two channels' runs of 3 hold no step. A 1x1
    Conv with identity weights and the input's own scales passes the quantized values
    through, so the output equals the reference bit for bit only where the quantization
    does: on ties, near-ties, saturation edges, infinities and NaN (steps redone
    the exact way), on the same values without those the fast pass cannot take (then it runs
    alone), and on values spread over the range and beyond it (steps the fast pass tells)
    with a lone tie in each step (one compare of 24 must send it the exact way)."""
    from tests.compiler.ops.test_s8_dsp_qemu import firmware, run_firmware, uses

    scale, zero_point = 0.0392, -17
    channels = shape[1]
    w = np.eye(channels, dtype=np.float32).reshape(channels, channels, 1, 1)
    model = single_node_model("Conv", {"x": np.zeros(shape, np.float32)}, {"w": w})
    qdq = with_qdq(model, {"x": (scale, zero_point), "w": (1.0, 0), "y0": (scale, zero_point)})
    compiled = compile_onnx_int8(qdq, io="float")
    assert kernel_ops(compiled)[:2] == ["QuantizeLinear", "Conv"]
    assert compiled.graph.tensor(compiled.graph.nodes[0].outputs[0]).memory_order == (0, 2, 3, 1)
    elf = firmware(compiled, tmp_path / "build")
    x = tie_values(scale, zero_point, np.int8, int(np.prod(shape))).reshape(shape)
    tame = np.where(np.isfinite(x) & (np.abs(x / np.float32(scale)) < 2**14), x,
                    np.float32(0))
    # Values spread over the range and beyond, with one tie (n + 1/2, n even, where rounding
    # half up would be wrong) in each step of eight pixels, in turn at each of the twelve
    # places of its first four pixels and of its second four.
    spread = (np.random.default_rng(18).uniform(-200, 200, shape) * scale).astype(np.float32)
    eights = np.arange(shape[2] * shape[3] // 8)
    place = eights // 2 % 12
    spread.reshape(channels, -1)[place // 4 % channels, 8 * eights + 4 * (eights % 2)
                                 + place % 4] = (2 * (eights % 50) - 49.5) * scale
    samples = [[x], [tame], [spread]]
    got = run_firmware(compiled, elf, samples, tmp_path / "run")
    for k, (sample,) in enumerate(samples):
        want = run_graph(compiled.graph, [sample])[0]
        np.testing.assert_array_equal(got[k], want.reshape(got[k].shape))
    assert uses(elf, "vldmia") and uses(elf, "vcvtr.s32.f32")


@pytest.mark.qemu
@pytest.mark.parametrize("dtype,scale,zero_point", [
    (np.int8, 0.0392, -17), (np.int8, 0.245209292, 127), (np.uint8, 1e-3, 200)])
def test_dequantize_linear_on_the_cortex_m4(dtype, scale, zero_point, tmp_path):
    """On the Cortex-M4F an 8-bit DequantizeLinear takes four values per step (a word load,
    SXTAB or UXTAB against -zero point, VCVT, VMUL, VSTM): every value of the type, in a
    tensor of 259 (64 groups and 3 left over), equals the reference and ONNX bit for bit."""
    from tests.compiler.ops.test_s8_dsp_qemu import firmware, run_firmware, uses

    info = np.iinfo(dtype)
    q = np.resize(np.arange(info.min, info.max + 1, dtype=dtype)[::-1], (1, 259))
    model = single_node_model("DequantizeLinear", {"q": q},
                              {"scale": np.array(scale, np.float32),
                               "zero_point": np.array(zero_point, dtype)}, opset=21)
    compiled = compile_onnx(model)
    elf = firmware(compiled, tmp_path / "build")
    got = run_firmware(compiled, elf, [[q]], tmp_path / "run")[0]
    np.testing.assert_array_equal(got, run_graph(compiled.graph, [q])[0])
    np.testing.assert_array_equal(got, run_reference(model, [q])[0])
    assert uses(elf, "sxtab" if dtype == np.int8 else "uxtab") and uses(elf, "vstmia")


@pytest.mark.parametrize("bounds,in_strides,out_strides,interleave,want", [
    # VWW's input: NCHW floats to NHWC, a run per channel plane, a channel count apart; for
    # an int8 output the three planes go together.
    ([9216, 3], [1, 9216], [3, 1], False, Runs([3], [9216], [1], 2304, 0, 3)),
    ([9216, 3], [1, 9216], [3, 1], True, Runs([], [], [], 2304, 0, 3, 3, 9216)),
    ([2, 35, 3], [105, 1, 35], [105, 3, 1], True, Runs([2], [105], [105], 8, 3, 3, 3, 35)),
    ([640], [1], [1], True, Runs([], [], [], 160, 0, 1)),
    ([35, 3], [1, 35], [3, 1], False, Runs([3], [35], [1], 8, 3, 3)),
    ([35, 2], [1, 35], [2, 1], True, Runs([2], [35], [1], 8, 3, 2)),  # two planes: apart
    ([3, 35], [1, 3], [35, 1], True, None),  # runs of 3: the scalar pass
    ([4, 5], [7, 20], [5, 1], True, None),  # no contiguous input
])
def test_contiguous_runs(bounds, in_strides, out_strides, interleave, want):
    """The fast pass's plan: the loop whose input stride is 1 becomes the run, the others
    stay around it with both strides, in the output's order, but for three channels of an
    int8 output that the pass writes together."""
    assert contiguous_runs(bounds, in_strides, out_strides, interleave) == want


def test_relayout_of_the_quantized_input_is_folded(tmp_path):
    """A float NCHW input quantized for a channels-last Conv: the QuantizeLinear writes NHWC
    itself (no Relayout kernel runs before the Conv), and the output still equals the integer
    reference and the io="int8" build's, dequantized."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (1, 3, 6, 5)).astype(np.float32)
    w = rng.uniform(-0.5, 0.5, (4, 3, 3, 3)).astype(np.float32)
    model = single_node_model("Conv", {"x": x}, {"w": w}, pads=[1, 1, 1, 1])
    samples = {"x": rng.uniform(-1, 1, (16, 1, 3, 6, 5)).astype(np.float32)}
    floats = compile_onnx_int8(model, samples, io="float")
    ints = compile_onnx_int8(model, samples, io="int8")
    assert kernel_ops(floats)[:2] == ["QuantizeLinear", "Conv"]
    quantize_node = floats.graph.nodes[0]
    assert floats.graph.tensor(quantize_node.outputs[0]).memory_order == (0, 2, 3, 1)
    host_f, host_i = host_model(floats, tmp_path), host_model(ints, tmp_path)
    scale = ints.graph.tensor(ints.graph.inputs[0]).quant
    out = ints.graph.tensor(ints.graph.outputs[0]).quant
    for sample in samples["x"][:4]:
        (got,) = host_f.run(sample)
        np.testing.assert_array_equal(got, run_graph(floats.graph, [sample])[0])
        (as_int8,) = host_i.run(quantize(sample, scale.scale, scale.zero_point, "int8"))
        np.testing.assert_array_equal(got, dequantize(as_int8, out.scale, out.zero_point))
