"""LSTM, GRU and RNN: host-compiled generated C and ariel's numpy reference of the compiled
graph against onnx.reference (directions, layouts, initial states, biases, peepholes,
linear_before_reset, output subsets) and against onnxruntime where onnx.reference ignores
the attribute (activations, clip, input_forget); with int8 weights (int8 builds), against
onnxruntime running the model with the same weights, on the plain and the DSP path; the
scratch the planner gives the kernel; the runtime's e^x, logistic and tanh; a warning-free
build for the Cortex-M4; and the one-line refusals."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from codegen.compiler.quant.recurrent import quantize_recurrent_weights
from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from codegen.run.hostrun import HostModel, build_host_library
from tests.support import (
    compile_for_cortex_m4,
    compile_onnx,
    compile_onnx_int8,
    run_on_host,
    run_reference,
)

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
OUTPUTS = {"LSTM": ("Y", "Y_h", "Y_c"), "GRU": ("Y", "Y_h"), "RNN": ("Y", "Y_h")}


def recurrent_model(op: str, *, hidden: int = 5, inputs: int = 3, steps: int = 4,
                    batch: int = 1, direction: str | None = "forward", layout: int = 0,
                    bias: bool = True, initial: str | None = None, peepholes: bool = False,
                    outputs: tuple[str, ...] | None = None, lengths: list[int] | None = None,
                    seed: int = 0, **attrs) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """A one-node model and its inputs. `initial`: None, "input" (initial states as graph
    inputs) or "constant" (initializers); `outputs`: which outputs the node names (the
    others left empty); `lengths`: a constant sequence_lens; `direction` None leaves the
    attribute out (ONNX's default, forward)."""
    rng = np.random.default_rng(seed)
    count = 2 if direction == "bidirectional" else 1
    gates = GATES[op]
    x_shape = (batch, steps, inputs) if layout else (steps, batch, inputs)
    state = (batch, count, hidden) if layout else (count, batch, hidden)
    x = rng.uniform(-1, 1, x_shape).astype(np.float32)
    graph_inputs = {"x": x}
    constants = {
        "W": rng.uniform(-0.6, 0.6, (count, gates * hidden, inputs)).astype(np.float32),
        "R": rng.uniform(-0.6, 0.6, (count, gates * hidden, hidden)).astype(np.float32)}
    if bias:
        constants["B"] = rng.uniform(-0.5, 0.5, (count, 2 * gates * hidden)).astype(np.float32)
    if lengths is not None:
        constants["sequence_lens"] = np.array(lengths, np.int32)
    states = ["initial_h", "initial_c"] if op == "LSTM" else ["initial_h"]
    if initial is not None:
        target = graph_inputs if initial == "input" else constants
        for name in states:
            target[name] = rng.uniform(-1, 1, state).astype(np.float32)
    if peepholes:
        constants["P"] = rng.uniform(-0.5, 0.5, (count, 3 * hidden)).astype(np.float32)
    order = ["x", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    present = set(graph_inputs) | set(constants)
    last = max(i for i, name in enumerate(order) if name in present)
    node_inputs = [name if name in present else "" for name in order[:last + 1]]
    wanted = outputs or OUTPUTS[op]
    names = [name if name in wanted else "" for name in OUTPUTS[op]]
    while not names[-1]:
        names.pop()
    if direction is not None:
        attrs = {"direction": direction, **attrs}
    node = helper.make_node(op, node_inputs, names, name=f"{op.lower()}_node",
                            hidden_size=hidden, **attrs)
    if layout:
        node.attribute.append(helper.make_attribute("layout", 1))
    graph = helper.make_graph(
        [node], "recurrent",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, v.shape)
         for n, v in graph_inputs.items()],
        [helper.make_empty_tensor_value_info(n) for n in names if n],
        [numpy_helper.from_array(v, n) for n, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True), list(graph_inputs.values())


def check(model: onnx.ModelProto, inputs: list[np.ndarray], tmp_path, oracle: str = "onnx",
          tol: float = 2e-5) -> None:
    """Generated C (host build) and ariel's numpy reference of the compiled graph against
    onnx.reference, or onnxruntime."""
    if oracle == "onnx":
        expected = run_reference(model, inputs)
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(model.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        names = [i.name for i in model.graph.input]
        expected = session.run(None, dict(zip(names, inputs, strict=True)))
    compiled = run_graph(compile_onnx(model).graph, inputs)
    for results in (run_on_host(model, inputs, tmp_path), compiled):
        assert len(results) == len(expected)
        for got, want in zip(results, expected, strict=True):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


CASES = {
    # hidden 16: the gate rows in blocks of eight only; 9: blocks and rows left over
    "lstm_forward_blocks": ("LSTM", dict(hidden=16, inputs=10, steps=6)),
    "lstm_batch_constant_states": ("LSTM", dict(hidden=9, batch=3, initial="constant")),
    "lstm_default_direction": ("LSTM", dict(direction=None, initial="input")),
    "gru_default_direction": ("GRU", dict(direction=None)),
    "lstm_reverse_peepholes_states": ("LSTM", dict(direction="reverse", peepholes=True,
                                                   initial="input", batch=2)),
    "lstm_bidirectional_layout1": ("LSTM", dict(direction="bidirectional", layout=1,
                                                batch=2, initial="input", peepholes=True)),
    "lstm_no_bias_one_step_one_unit": ("LSTM", dict(hidden=1, inputs=1, steps=1,
                                                    bias=False)),
    "lstm_Y_c_only": ("LSTM", dict(outputs=("Y_c",), direction="bidirectional")),
    "lstm_Y_only": ("LSTM", dict(outputs=("Y",), batch=2)),
    "lstm_Y_h_only_full_lengths": ("LSTM", dict(outputs=("Y_h",), batch=2,
                                                lengths=[4, 4])),
    "gru_forward": ("GRU", dict(hidden=12, inputs=7, steps=5)),
    "gru_linear_before_reset": ("GRU", dict(hidden=9, linear_before_reset=1,
                                            initial="input", batch=2)),
    "gru_bidirectional_layout1_lbr": ("GRU", dict(direction="bidirectional", layout=1,
                                                  linear_before_reset=1, batch=2)),
    "gru_reverse_constant_state": ("GRU", dict(direction="reverse", initial="constant")),
    "gru_Y_only_no_bias": ("GRU", dict(outputs=("Y",), bias=False)),
    "rnn_forward": ("RNN", dict(hidden=8, inputs=4)),
    "rnn_bidirectional_layout1_state": ("RNN", dict(direction="bidirectional", layout=1,
                                                    initial="input", batch=3)),
    "rnn_Y_h_only_one_unit": ("RNN", dict(outputs=("Y_h",), hidden=1)),
}


@pytest.mark.parametrize("name", CASES)
def test_against_onnx_reference(name, tmp_path):
    op, options = CASES[name]
    model, inputs = recurrent_model(op, **options)
    check(model, inputs, tmp_path)


# What onnx.reference ignores: checked against onnxruntime (layout 0, which it requires).
ORT_CASES = {
    "lstm_alternative_activations": ("LSTM", dict(
        activations=["LeakyRelu", "HardSigmoid", "Elu"], activation_alpha=[0.3, 0.1, 0.7],
        activation_beta=[0.4])),
    "lstm_defaults_of_parameters": ("LSTM", dict(
        activations=["LeakyRelu", "HardSigmoid", "Elu"])),
    "lstm_thresholded_softsign_softplus": ("LSTM", dict(
        activations=["ThresholdedRelu", "Softsign", "Softplus"], activation_alpha=[0.2])),
    "lstm_affine_scaled_tanh": ("LSTM", dict(
        activations=["Affine", "ScaledTanh", "Relu"], activation_alpha=[0.5, 0.6],
        activation_beta=[0.1, 0.9])),
    "lstm_clip_peepholes": ("LSTM", dict(clip=0.5, peepholes=True)),
    "lstm_input_forget": ("LSTM", dict(input_forget=1, hidden=9)),
    "lstm_lower_case_names": ("LSTM", dict(activations=["sigmoid", "tanh", "tanh"])),
    "gru_clip_lbr_activations": ("GRU", dict(clip=0.4, linear_before_reset=1,
                                             activations=["HardSigmoid", "Softsign"])),
    "gru_clip": ("GRU", dict(clip=0.6)),
    "rnn_relu_clip": ("RNN", dict(activations=["Relu"], clip=0.7)),
    "rnn_two_directions_two_functions": ("RNN", dict(
        direction="bidirectional", activations=["LeakyRelu", "Elu"],
        activation_alpha=[0.2, 0.5])),
}


@pytest.mark.parametrize("name", ORT_CASES)
def test_against_onnxruntime(name, tmp_path):
    op, options = ORT_CASES[name]
    model, inputs = recurrent_model(op, batch=2, **options)
    check(model, inputs, tmp_path, oracle="onnxruntime")


def onnxruntime_outputs(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in model.graph.input]
    return session.run(None, dict(zip(names, inputs, strict=True)))


# hidden 5: gate rows in blocks of four, a pair and one left over on the DSP path
INT8_CASES = {
    "lstm_long": ("LSTM", dict(hidden=16, inputs=10, steps=20)),
    "lstm_bidirectional_peepholes": ("LSTM", dict(direction="bidirectional", peepholes=True,
                                                  batch=2, hidden=5)),
    "gru": ("GRU", dict(hidden=9, steps=12)),
    "gru_linear_before_reset": ("GRU", dict(hidden=9, linear_before_reset=1, steps=12,
                                            initial="input")),
    "rnn_reverse": ("RNN", dict(hidden=7, steps=12, direction="reverse")),
}


@pytest.mark.parametrize("path", ["plain", "dsp"])
@pytest.mark.parametrize("name", INT8_CASES)
def test_int8_weights_against_onnxruntime(name, path, tmp_path):
    """int8 builds store W and R as int8 (quant/recurrent.py) and the kernel quantizes its
    vector to int16 at each step: within 1e-4 of the output range of onnxruntime running the
    model with the same int8 weights (measured: at most 1e-5), and within 1e-5 of ariel's
    numpy model of that product."""
    op, options = INT8_CASES[name]
    model, inputs = recurrent_model(op, **options)
    quantized = quantize_recurrent_weights(model)
    compiled = compile_onnx_int8(quantized, None, io="float")
    files = dict(compiled.files)
    assert "ariel_column_s16" in files["m.c"]
    if path == "dsp":  # the SMLAD path, on C twins of the instructions
        files["m.c"] = "#define ARIEL_EMULATE_DSP 1\n" + files["m.c"]
    got = HostModel(build_host_library(files, tmp_path), compiled.info).run(*inputs)
    ours = run_graph(compiled.graph, inputs)
    for value, model_value, want in zip(got, ours, onnxruntime_outputs(quantized, inputs),
                                        strict=True):
        np.testing.assert_allclose(value, model_value, rtol=0, atol=1e-5)
        assert np.abs(value - want).max() <= 1e-4 * (want.max() - want.min())


def test_recurrent_weights_quantized_per_gate_row():
    """One symmetric scale per gate row, shared by W and R and the directions; the largest
    |weight| of each row becomes 127; every weight within half a step; the input model left
    as it was."""
    model, _ = recurrent_model("GRU", direction="bidirectional", hidden=6)
    before = model.SerializeToString()
    quantized = quantize_recurrent_weights(model)
    assert model.SerializeToString() == before
    values = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    dequantize = [n for n in quantized.graph.node if n.op_type == "DequantizeLinear"]
    assert len(dequantize) == 2 and all(n.attribute[0].i == 1 for n in dequantize)
    original = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    (w_q, scale, zero), (r_q, scale_r, _) = ([values[name] for name in n.input]
                                             for n in dequantize)
    assert w_q.dtype == np.int8 and scale.shape == (18,) and not zero.any()
    assert np.array_equal(scale, scale_r)
    assert (np.maximum(np.abs(w_q).max(axis=(0, 2)), np.abs(r_q).max(axis=(0, 2))) == 127).all()
    for q, name in ((w_q, "W"), (r_q, "R")):
        error = np.abs(q * scale[None, :, None] - original[name])
        assert (error <= scale[None, :, None] / 2 * (1 + 1e-6)).all()
    assert "W" not in values and "R" not in values


def test_scratch_lives_in_the_arena():
    """The state is planned as an arena buffer alive only at the node's step, beside (never
    over) the node's inputs and outputs, and reaches the kernel as its last argument."""
    model, _ = recurrent_model("LSTM", hidden=9, batch=2, outputs=("Y", "Y_c"))
    compiled = compile_onnx(model)
    plan = compiled.plan
    step = next(i for i, n in enumerate(compiled.graph.nodes) if n.op == "LSTM")
    scratch = plan.buffers[plan.scratch[step]]
    assert scratch.size >= 4 * (4 * 9 + 2 * 9)  # pre-activations, h and c
    assert scratch.first == scratch.last == step
    for name in (*compiled.graph.inputs, *compiled.graph.outputs):
        other = plan.buffers[plan.storage[name]]
        assert (scratch.offset + scratch.size <= other.offset
                or other.offset + other.size <= scratch.offset)
    assert plan.arena_size >= scratch.offset + scratch.size
    assert f"arena + {scratch.offset})" in compiled.files["m.c"]


def test_builds_for_cortex_m4(tmp_path):
    model, _ = recurrent_model("GRU", hidden=12, direction="bidirectional", peepholes=False,
                               initial="input", clip=2.0)
    compile_for_cortex_m4(compile_onnx(model), tmp_path)
    model, _ = recurrent_model("LSTM", hidden=10, direction="bidirectional", peepholes=True)
    compile_for_cortex_m4(compile_onnx(model), tmp_path / "lstm")
    for op, flag in (("LSTM", {}), ("GRU", {"linear_before_reset": 1}), ("GRU", {})):
        model, _ = recurrent_model(op, hidden=7, **flag)
        compiled = compile_onnx_int8(quantize_recurrent_weights(model), None, io="float")
        compile_for_cortex_m4(compiled, tmp_path / f"{op}{len(flag)}_int8")


def test_int8_weights_need_one_scale_per_row_for_w_and_r():
    model, _ = recurrent_model("LSTM")
    quantized = quantize_recurrent_weights(model)
    scale = next(i for i in quantized.graph.initializer if i.name == "R_int8_scale")
    values = numpy_helper.to_array(scale) * 2
    scale.CopyFrom(numpy_helper.from_array(values, "R_int8_scale"))
    with pytest.raises(UnsupportedError, match="node 'lstm_node' \\(LSTM\\): int8 W and R with "
                       "different scales for a gate row is not supported; supported: one "
                       "scale per gate row shared by W and R"):
        compile_onnx_int8(quantized, None, io="float")


def _with_run_time(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """`model` with initializer `name` turned into a graph input."""
    init = next(i for i in model.graph.initializer if i.name == name)
    model.graph.input.append(helper.make_tensor_value_info(name, init.data_type, init.dims))
    model.graph.initializer.remove(init)
    return model


REFUSED = {
    "shorter_sequences": (dict(lengths=[4, 2], batch=2), None,
                          "sequence_lens [4, 2] (sequences shorter than 4 steps) is not "
                          "supported; supported: every sequence of the full length 4"),
    "run_time_lengths": (dict(lengths=[4]), "sequence_lens",
                         "sequence_lens 'sequence_lens' computed at run time"),
    "run_time_weights": (dict(), "R", "R 'R' computed at run time is not supported; "
                         "supported: constant weights, biases and peepholes"),
    "unknown_activation": (dict(activations=["Gelu", "Tanh", "Tanh"]), None,
                           "activation Gelu is not supported; supported: activations "
                           "Sigmoid, Tanh, Relu"),
    "affine_without_parameters": (dict(activations=["Affine", "Tanh", "Tanh"]), None,
                                  "activation Affine without activation_alpha and "
                                  "activation_beta"),
    "thresholded_relu_without_alpha": (dict(activations=["ThresholdedRelu", "Tanh", "Tanh"]),
                                       None, "activation ThresholdedRelu without "
                                       "activation_alpha"),
    "too_few_activations": (dict(activations=["Sigmoid", "Tanh"]), None,
                            "2 activations for 1 direction(s) is not supported; supported: "
                            "3 per direction (Sigmoid, Tanh, Tanh)"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refusals_name_node_and_what_works(name):
    options, run_time, message = REFUSED[name]
    model, _ = recurrent_model("LSTM", **options)
    if run_time:
        model = _with_run_time(model, run_time)
    with pytest.raises(UnsupportedError) as error:
        compile_onnx(model)
    assert str(error.value).startswith("node 'lstm_node' (LSTM): ")
    assert message in str(error.value)


ACTIVATION_SOURCE = r"""
#include <stdint.h>
#include "ariel_runtime.h"

void activations(const float *x, int32_t count, float *e, float *s, float *t)
{
    for (int32_t i = 0; i < count; ++i) {
        e[i] = ariel_expf(x[i]);
        s[i] = ariel_sigmoidf(x[i]);
        t[i] = ariel_tanhf(x[i]);
    }
}
"""


def test_runtime_exp_sigmoid_tanh_are_accurate(tmp_path):
    """The kernels' e^x within 2 units in the last place of float over [-87, 88] (beyond,
    confined to it); the logistic function within 1.5e-7 and tanh within 2.5e-7 absolute,
    tanh within 2e-6 relative near 0 (measured: 0.84 units, 8.9e-8, 1.7e-7, 1.6e-6)."""
    import ctypes
    import subprocess

    from codegen.resources import data_dir
    from codegen.run.hostrun import HOST_CFLAGS

    (tmp_path / "act.c").write_text(ACTIVATION_SOURCE)
    library = tmp_path / "libact.so"
    subprocess.run(["gcc", *HOST_CFLAGS, f"-I{data_dir('firmware')}", str(tmp_path / "act.c"),
                    "-o", str(library)], check=True)
    x = np.concatenate([np.linspace(-87, 88, 400_001), np.linspace(-0.1, 0.1, 20_001),
                        [1e-30, -1e-30, -1000.0, 1000.0]]).astype(np.float32)
    e, s, t = (np.zeros_like(x) for _ in range(3))
    pointer = ctypes.POINTER(ctypes.c_float)
    ctypes.CDLL(str(library)).activations(
        x.ctypes.data_as(pointer), ctypes.c_int32(len(x)), *(a.ctypes.data_as(pointer)
                                                            for a in (e, s, t)))
    exact = x.astype(np.float64)
    inside = np.abs(exact) < 87
    want = np.exp(exact[inside])
    assert (np.abs(e[inside] - want) / want).max() < 2 * 2.0**-23
    assert np.abs(s - 0.5 * (1 + np.tanh(exact / 2))).max() < 1.5e-7
    assert np.abs(t - np.tanh(exact)).max() < 2.5e-7
    nonzero = exact != 0
    assert (np.abs(t - np.tanh(exact))[nonzero] / np.abs(np.tanh(exact[nonzero]))).max() < 2e-6
    assert np.all(t[~nonzero] == 0)
    assert t[-2] == -1.0 and t[-1] == 1.0 and s[-2] < 1e-30 and s[-1] == 1.0


def test_constant_node_with_an_omitted_output_folds(tmp_path):
    """A GRU of constants with Y omitted and Y_h named folds at compile time (onnx.reference
    returns a value for the omitted output too, which once failed the fold)."""
    model, _ = recurrent_model("GRU", outputs=("Y_h",), hidden=3)
    x = model.graph.input.pop()
    rng = np.random.default_rng(3)
    value = rng.uniform(-1, 1, [d.dim_value for d in x.type.tensor_type.shape.dim])
    model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), "x"))
    model.graph.node.append(helper.make_node("Add", ["Y_h", "z"], ["out"]))
    model.graph.input.append(helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT,
                                                           [1, 1, 3]))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT,
                                                            [1, 1, 3]))
    z = rng.uniform(-1, 1, (1, 1, 3)).astype(np.float32)
    assert [n.op for n in compile_onnx(model).graph.nodes] == ["Add"]
    check(model, [z], tmp_path)


def test_unread_sequence_output_gets_no_memory(tmp_path):
    """Y named but read by nothing (PyTorch names it whether used or not): dropped before
    planning, so the arena holds only what is read, and the rest still computes right."""
    model, inputs = recurrent_model("LSTM", steps=30, hidden=8, direction="bidirectional")
    model.graph.node.append(helper.make_node("Add", ["Y_h", "Y_c"], ["out"]))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT,
                                                            [2, 1, 8]))
    compiled = compile_onnx(model)
    lstm = next(n for n in compiled.graph.nodes if n.op == "LSTM")
    assert lstm.outputs == ["Y_h", "Y_c"] and lstm.output_slots == (1, 2)
    assert "Y" not in compiled.graph.tensors
    assert compiled.plan.arena_size < 30 * 2 * 8 * 4  # less than Y alone would take
    check(model, inputs, tmp_path)


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_half_precision_weights(op, tmp_path):
    """--float-weights fp16 stores every gate matrix at half precision: the outputs are those
    of the model with W and R rounded to float16."""
    from codegen.compiler.compile import compile_graph
    from codegen.compiler.frontend import ModelSource, to_graph

    model, inputs = recurrent_model(op, hidden=9, batch=2, linear_before_reset=1) \
        if op == "GRU" else recurrent_model(op, hidden=9, direction="bidirectional")
    compiled = compile_graph(to_graph(model, "m"), ModelSource("m.onnx", "0" * 64, []),
                             "tests", half_weights=True)
    assert "ariel_dot_f32h" in compiled.files["m.c"]
    rounded = onnx.ModelProto.FromString(model.SerializeToString())
    for init in rounded.graph.initializer:
        if init.name in ("W", "R"):
            value = numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(value, init.name))
    got = HostModel(build_host_library(compiled.files, tmp_path), compiled.info).run(*inputs)
    for value, want in zip(got, run_reference(rounded, inputs), strict=True):
        np.testing.assert_allclose(value, want, rtol=2e-5, atol=2e-5)
