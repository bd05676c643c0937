"""int8 data movement (Slice, Split, Gather, Pad, Expand, Tile, DepthToSpace, SpaceToDepth,
Concat): the operators stay integer kernels or views, bit-exact against ariel's integer
reference and within one step of ONNX Runtime running the QDQ model as written.

Two sources of QDQ models: ONNX Runtime's quantizer on float models (what users get), and
hand-made ones (with_qdq) for the operators the quantizer leaves in float and for outputs
quantized unlike their inputs. Where the scales differ (a Pad by a constant outside the
data's range, a Relu that the quantizer folds into a move's output scale, Concat inputs) the
values are mapped through a 256-entry table on the way."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.compiler.ops.quantize import dequantize
from codegen.compiler.reference import run_graph
from tests.compiler.ops.test_gemm import chain
from tests.compiler.ops.test_quantize import (
    assert_integer_only,
    calibration,
    check_int8,
    kernel_ops,
    minmax_params,
    ort_session,
    with_qdq,
)
from tests.support import compile_onnx_int8, host_model, run_reference, single_node_model

SHAPE = (1, 4, 6, 6)


def i64(*values) -> np.ndarray:
    return np.array(values, np.int64)


def after_add(nodes: list, constants: dict, outputs: list[str]) -> onnx.ModelProto:
    """x + half -> `nodes` (reading "sum"): ONNX Runtime quantizes a move only after a
    quantized node."""
    return chain([helper.make_node("Add", ["x", "half"], ["sum"], name="add"), *nodes],
                 {"x": np.zeros(SHAPE, np.float32)},
                 {"half": np.array([0.5], np.float32), **constants}, outputs)


def samples_for(seed: int, count: int = 4, shape=SHAPE) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(-2, 2, shape).astype(np.float32)} for _ in range(count)]


# name: (nodes after the Add, constants, outputs, operators that run code)
ORT_CASES = {
    "slice": ([helper.make_node("Slice", ["sum", "st", "en", "ax", "sp"], ["y0"])],
              dict(st=i64(1, 5), en=i64(3, 0), ax=i64(1, 3), sp=i64(1, -2)),
              ["y0"], ["Add", "Slice"]),
    "slice_view": ([helper.make_node("Slice", ["sum", "st", "en", "ax"], ["y0"])],
                   dict(st=i64(1), en=i64(3), ax=i64(1)), ["y0"], ["Add"]),
    "split_views": ([helper.make_node("Split", ["sum", "sizes"], ["y0", "y1"], axis=1)],
                    dict(sizes=i64(1, 3)), ["y0", "y1"], ["Add"]),
    "split": ([helper.make_node("Split", ["sum", "sizes"], ["y0", "y1"], axis=3)],
              dict(sizes=i64(4, 2)), ["y0", "y1"], ["Add", "Split"]),
    "gather": ([helper.make_node("Gather", ["sum", "idx"], ["y0"], axis=1)],
               dict(idx=i64(3, 0, 2)), ["y0"], ["Add", "Gather"]),
    "gather_scalar": ([helper.make_node("Gather", ["sum", "idx"], ["y0"], axis=2)],
                      dict(idx=np.array(-2, np.int64)), ["y0"], ["Add", "Gather"]),
    "pad_zero": ([helper.make_node("Pad", ["sum", "pads"], ["y0"])],
                 dict(pads=i64(0, 0, 1, 2, 0, 0, 2, 1)), ["y0"], ["Add", "Pad"]),
    "pad_reflect": ([helper.make_node("Pad", ["sum", "pads"], ["y0"], mode="reflect")],
                    dict(pads=i64(0, 1, 2, 3, 0, 2, 1, 0)), ["y0"], ["Add", "Pad"]),
    "pad_edge": ([helper.make_node("Pad", ["sum", "pads"], ["y0"], mode="edge")],
                 dict(pads=i64(0, 0, 3, 1, 0, 0, 0, 2)), ["y0"], ["Add", "Pad"]),
    # x.chunk(2, dim=1) as PyTorch exports it: the Slice's end comes from the tensor's Shape,
    # which folds away, leaving no DequantizeLinear behind for it.
    "chunk": ([helper.make_node("Shape", ["sum"], ["shape"]),
               helper.make_node("Gather", ["shape", "one"], ["channels"], axis=0),
               helper.make_node("Div", ["channels", "two"], ["half_channels"]),
               helper.make_node("Slice", ["sum", "zero", "half_channels", "one"], ["y0"])],
              dict(one=i64(1), two=i64(2), zero=i64(0)), ["y0"], ["Add"]),
    # A pad by zeros (the zero point) folds into the Conv that reads it.
    "pad_conv": ([helper.make_node("Pad", ["sum", "pads"], ["padded"]),
                  helper.make_node("Conv", ["padded", "w"], ["y0"])],
                 dict(pads=i64(0, 0, 0, 2, 0, 0, 0, 0),
                      w=np.random.default_rng(1).uniform(-1, 1, (3, 4, 1, 3)).astype(
                          np.float32)), ["y0"], ["Add", "Conv"]),
    "maxpool": ([helper.make_node("MaxPool", ["sum"], ["y0"], kernel_shape=[3, 3],
                                  pads=[1, 1, 1, 1], strides=[2, 2])], {}, ["y0"],
                ["Add", "MaxPool"]),
}


@pytest.mark.parametrize("name", ORT_CASES)
def test_quantized_by_onnxruntime_stays_integer(name, tmp_path, record_property):
    nodes, constants, outputs, computing = ORT_CASES[name]
    samples = samples_for(sum(map(ord, name)))
    compiled = compile_onnx_int8(after_add(nodes, constants, outputs), calibration(samples))
    assert kernel_ops(compiled) == computing
    assert_integer_only(compiled)
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


# name: (nodes after the Add, constants, the node that must map through a table)
RESCALING = {
    # A pad value outside the data's range: the quantizer gives the output its own scale.
    "pad_constant": ([helper.make_node("Pad", ["sum", "pads", "value"], ["y0"])],
                     dict(pads=i64(0, 0, 1, 2, 0, 0, 2, 1),
                          value=np.array(7.0, np.float32)), "Pad"),
    # The quantizer drops a Relu after a move and quantizes the move's output as the Relu's.
    "slice_relu": ([helper.make_node("Slice", ["sum", "st", "en", "ax"], ["s"]),
                    helper.make_node("Relu", ["s"], ["y0"])],
                   dict(st=i64(1), en=i64(3), ax=i64(1)), "Slice"),
    "gather_relu": ([helper.make_node("Gather", ["sum", "idx"], ["g"], axis=3),
                     helper.make_node("Relu", ["g"], ["y0"])], dict(idx=i64(5, 0)), "Gather"),
}


@pytest.mark.parametrize("name", RESCALING)
def test_output_quantized_unlike_the_input_is_mapped_through_a_table(name, tmp_path,
                                                                       record_property):
    nodes, constants, op = RESCALING[name]
    samples = samples_for(sum(map(ord, name)))
    compiled = compile_onnx_int8(after_add(nodes, constants, ["y0"]), calibration(samples))
    assert kernel_ops(compiled) == ["Add", op]
    assert_integer_only(compiled)
    node = next(n for n in compiled.graph.nodes if n.op == op)
    x, y = (compiled.graph.tensor(n) for n in (node.inputs[0], node.outputs[0]))
    assert float(x.quant.scale) != float(y.quant.scale)
    assert "_table" in compiled.files["m.c"]
    agreement = check_int8(compiled, samples, tmp_path)
    record_property("agreement", agreement.summary)


# name: (op, constants, attributes, number of outputs, input shape)
HAND_MADE = {
    "expand": ("Expand", dict(shape=i64(2, 1, 1, 1, 1)), {}, 1, SHAPE),
    "tile": ("Tile", dict(repeats=i64(1, 2, 1, 3)), {}, 1, SHAPE),
    "depth_to_space": ("DepthToSpace", {}, dict(blocksize=2, mode="CRD"), 1, SHAPE),
    "space_to_depth": ("SpaceToDepth", {}, dict(blocksize=3), 1, SHAPE),
    "split": ("Split", dict(sizes=i64(1, 2, 3)), dict(axis=-1), 3, SHAPE),
    "pad_wrap": ("Pad", dict(pads=i64(0, 0, 2, 1, 0, 0, 0, 3)), dict(mode="wrap"), 1, SHAPE),
}


@pytest.mark.parametrize("rescale", [False, True], ids=["same_scale", "own_scale"])
@pytest.mark.parametrize("name", HAND_MADE)
def test_hand_made_qdq_moves(name, rescale, tmp_path, record_property):
    """Each output quantized as the input (the values move unchanged), or each with a
    scale of its own (the values go through a table)."""
    op, constants, attrs, count, shape = HAND_MADE[name]
    samples = samples_for(sum(map(ord, name)), shape=shape)
    model = single_node_model(op, {"x": samples[0]["x"]}, constants, n_outputs=count, **attrs)
    params = minmax_params(calibration(samples)["x"])
    outputs = {}
    for k in range(count):
        values = np.stack([run_reference(model, [s["x"]])[k] for s in samples])
        outputs[f"y{k}"] = minmax_params(values * (1.5 + k)) if rescale else params
    model = with_qdq(model, {"x": params, **outputs})
    compiled = compile_onnx_int8(model)
    assert kernel_ops(compiled) == [op]
    assert_integer_only(compiled)
    assert ("_table" in compiled.files["m.c"]) == rescale
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)


def test_concat_of_three_scales(tmp_path, record_property):
    """A Concat whose inputs and output all have their own parameters (hand-made): two
    inputs through tables, one copied as it is."""
    rng = np.random.default_rng(9)
    shapes = [(1, 2, 3, 4), (1, 3, 3, 4), (1, 1, 3, 4)]
    inputs = {name: rng.uniform(-1, 1, shape).astype(np.float32)
              for name, shape in zip("abc", shapes, strict=True)}
    model = chain([helper.make_node("Concat", ["a", "b", "c"], ["y0"], axis=1)], inputs, {},
                  ["y0"])
    params = {"a": (0.01, -5), "b": (0.02, 3), "c": (0.015, 0), "y0": (0.02, 3)}
    model = with_qdq(model, params)
    compiled = compile_onnx_int8(model)
    text = compiled.files["m.c"]
    assert kernel_ops(compiled) == ["Concat"]
    assert "table0[" in text and "table2[" in text and "table1[" not in text
    samples = [{k: rng.uniform(-1, 1, v.shape).astype(np.float32) for k, v in inputs.items()}
               for _ in range(3)]
    agreement = check_int8(compiled, samples, tmp_path, qdq_model=model)
    record_property("agreement", agreement.summary)


def test_embedding_table_looked_up_at_run_time(tmp_path):
    """An embedding table quantized by ONNX Runtime (int8 in flash) read at run-time token
    ids: equal to ariel's reference, within one step of ONNX Runtime; ids outside the table
    give the output's zero point (a real 0)."""
    rng = np.random.default_rng(10)
    table = rng.uniform(-2, 2, (10, 4)).astype(np.float32)
    ids = np.array([[1, 3, 5], [0, -1, 9]], np.int64)
    model = chain([helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
                  {"ids": ids}, {"table": table}, ["y"])
    compiled = compile_onnx_int8(model, {"ids": rng.integers(-10, 10, (8, 2, 3))})
    assert kernel_ops(compiled) == ["Gather"]
    host = host_model(compiled, tmp_path)
    out = compiled.graph.tensor(compiled.graph.outputs[0])
    session = ort_session(compiled.quantized_model, compiled.graph.outputs)
    for sample in (ids, np.array([[4, 11, -11], [2, 2, -10]], np.int64)):
        got = host.run(sample)[0]
        np.testing.assert_array_equal(got, run_graph(compiled.graph, [sample])[0])
        valid = (sample >= -10) & (sample < 10)
        assert (got[~valid] == int(out.quant.zero_point)).all()
        if valid.all():
            theirs = session.run(compiled.graph.outputs, {"ids": sample})[0]
            assert np.abs(got.astype(int) - theirs.astype(int)).max() <= 1
        real = dequantize(got, out.quant.scale, out.quant.zero_point)
        np.testing.assert_allclose(real[valid], table[sample[valid]],
                                   atol=float(out.quant.scale))


def test_pad_constant_is_stored_quantized():
    """0.0 pads with the zero point; another value is quantized to the output's scale."""
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (1, 2, 3, 3)).astype(np.float32)
    for value, expected in ((0.0, -7), (0.5, -7 + 25)):
        model = single_node_model("Pad", {"x": x}, {"pads": i64(0, 0, 1, 1, 0, 0, 1, 1),
                                                    "value": np.array(value, np.float32)})
        model = with_qdq(model, {"x": (0.02, -7), "y0": (0.02, -7)})
        compiled = compile_onnx_int8(model)
        y = run_graph(compiled.graph, [np.zeros(x.shape, np.int8)])[0]
        assert y[0, 0, 0, 0] == expected and "stored as" in compiled.files["m.c"]

