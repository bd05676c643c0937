"""The data-movement operators (Slice, Split, Gather, Pad, Expand, Tile, DepthToSpace,
SpaceToDepth) against onnx.reference, through host-compiled C and through ariel's numpy
reference of the compiled graph.

Each test compiles one model holding many cases (one node per case, all reading the same
tensor), so a single C build checks them all. Every battery runs twice: on a model input
(row-major) and on the output of a Conv, which ariel keeps channels-last, so the strided
copies are checked in both memory orders and the views only where memory allows them."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper, numpy_helper

from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_gemm import chain, check
from tests.support import compile_for_cortex_m4, compile_onnx, random_array, run_on_host

SHAPE = (2, 6, 5, 4)
INT_MAX = 2**63 - 1


def i64(*values) -> np.ndarray:
    return np.array(values, np.int64)


def battery(cases: dict[str, tuple], shape=SHAPE, channels_last: bool = False, opset: int = 17,
            dtype=np.float32, seed: int = 0) -> tuple[onnx.ModelProto, np.ndarray]:
    """One model with a node per case, each reading tensor "s" (the input, or a 1x1 Conv of
    it). A case is (op, {constant input name: value} in input order, attributes, number of
    outputs); a value of None leaves that optional input out."""
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype)
    nodes, constants, outputs = [], {}, []
    if channels_last:
        constants["w"] = random_array(rng, (shape[1], shape[1], 1, 1))
        nodes.append(helper.make_node("Conv", ["x", "w"], ["s"]))
    else:
        nodes.append(helper.make_node("Identity", ["x"], ["s"]))
    for name, (op, inputs, attrs, count) in cases.items():
        names = []
        for key, value in inputs.items():
            names.append("" if value is None else f"{name}_{key}")
            if value is not None:
                constants[f"{name}_{key}"] = value
        while names and not names[-1]:
            names.pop()
        node_outputs = [f"{name}_{k}" for k in range(count)]
        nodes.append(helper.make_node(op, ["s", *names], node_outputs, name=name, **attrs))
        outputs += node_outputs
    return chain(nodes, {"x": x}, constants, outputs, opset=opset), x


def case(op: str, inputs: dict | None = None, count: int = 1, **attrs) -> tuple:
    return (op, inputs or {}, attrs, count)


SLICES = {
    "middle": case("Slice", dict(starts=i64(1), ends=i64(3), axes=i64(1))),
    "outer": case("Slice", dict(starts=i64(1), ends=i64(2), axes=i64(0))),
    "backwards": case("Slice", dict(starts=i64(-1, 4), ends=i64(-100, 0), axes=i64(3, 1),
                                    steps=i64(-1, -2))),
    "clamped": case("Slice", dict(starts=i64(-100), ends=i64(INT_MAX), axes=i64(2))),
    "negative_axes": case("Slice", dict(starts=i64(1, 2), ends=i64(-1, 3), axes=i64(-1, -3))),
    "default_axes": case("Slice", dict(starts=i64(0, 1, 1, 0), ends=i64(2, 5, 4, 3))),
    "step_past_end": case("Slice", dict(starts=i64(2), ends=i64(3), axes=i64(2),
                                        steps=i64(10))),
    "strided": case("Slice", dict(starts=i64(0, 1), ends=i64(5, 6), axes=i64(2, 1),
                                  steps=i64(2, 3))),
    "whole": case("Slice", dict(starts=i64(0), ends=i64(INT_MAX), axes=i64(0))),
}
SPLITS = {
    "sizes": case("Split", dict(split=i64(2, 4)), count=2, axis=1),
    "equal": case("Split", {}, count=3, axis=1),
    "last_axis": case("Split", dict(split=i64(1, 3)), count=2, axis=-1),
    "outer": case("Split", dict(split=i64(1, 1)), count=2, axis=0),
}
GATHERS = {
    "scalar": case("Gather", dict(indices=np.array(2, np.int64)), axis=1),
    "outer_scalar": case("Gather", dict(indices=np.array(-1, np.int64)), axis=0),
    "range": case("Gather", dict(indices=i64(0, 2, 4)), axis=1),
    "reversed": case("Gather", dict(indices=i64(3, 2, 1)), axis=3),
    "any": case("Gather", dict(indices=np.array([[4, 0], [-1, 2]], np.int64)), axis=2),
    "repeated": case("Gather", dict(indices=i64(1, 1, 0)), axis=-1),
}
PADS = {
    "constant": case("Pad", dict(pads=i64(0, 1, 2, 0, 0, 2, 1, 3),
                                 value=np.array(1.5, np.float32))),
    "zero": case("Pad", dict(pads=i64(0, 0, 1, 1, 0, 0, 1, 1))),
    "reflect": case("Pad", dict(pads=i64(0, 2, 4, 1, 0, 3, 1, 3)), mode="reflect"),
    "edge": case("Pad", dict(pads=i64(1, 0, 6, 2, 0, 3, 1, 0)), mode="edge"),
    "wrap": case("Pad", dict(pads=i64(0, 1, 5, 2, 0, 6, 1, 4)), mode="wrap"),
    "axes": case("Pad", dict(pads=i64(2, 0, 1, 3), value=np.array(-2.0, np.float32),
                             axes=i64(-1, 1))),
    "edge_axes": case("Pad", dict(pads=i64(3, 1), value=None, axes=i64(2)), mode="edge"),
}
REPEATS = {
    "tile": case("Tile", dict(repeats=i64(1, 2, 1, 3))),
    "tile_once": case("Tile", dict(repeats=i64(1, 1, 1, 1))),
    "expand_same": case("Expand", dict(shape=i64(1, 1, 1))),
    "expand_rank": case("Expand", dict(shape=i64(3, 1, 1, 1, 1))),
}
BLOCKS = {
    "d2s_dcr": case("DepthToSpace", blocksize=2, mode="DCR"),
    "d2s_crd": case("DepthToSpace", blocksize=2, mode="CRD"),
    "d2s_default": case("DepthToSpace", blocksize=2),
}
S2D = {
    "s2d_dcr": case("SpaceToDepth", blocksize=2),
    "s2d_crd": case("SpaceToDepth", blocksize=2, mode="CRD"),
}
BATTERIES = {"slice": (SLICES, SHAPE, 17), "split": (SPLITS, SHAPE, 17),
             "gather": (GATHERS, SHAPE, 17), "pad": (PADS, SHAPE, 18),
             "repeat": (REPEATS, SHAPE, 17), "depth_to_space": (BLOCKS, (1, 8, 3, 4), 17),
             "space_to_depth": (S2D, (2, 3, 4, 6), 28)}


@pytest.mark.parametrize("channels_last", [False, True], ids=["row_major", "channels_last"])
@pytest.mark.parametrize("name", BATTERIES)
def test_battery_matches_onnx_reference(name, channels_last, tmp_path):
    cases, shape, opset = BATTERIES[name]
    model, x = battery(cases, shape, channels_last, opset)
    check(model, [x], tmp_path)


def kernels(model: onnx.ModelProto) -> list[str]:
    """The operators that run code in the compiled model, besides copies between memory
    orders."""
    return [k["op"] for k in compile_onnx(model).info.kernels if k["op"] != "ariel.Relayout"]


def test_parts_along_the_outer_axis_are_views():
    """Slices and Splits of a row-major tensor along its outermost axis (and Gather of one
    index there) are the input's bytes: no kernel runs for them. In channels-last memory
    the channel axis is innermost, so the same Split copies."""
    model, _ = battery({"outer": SLICES["outer"], "whole": SLICES["whole"],
                        "split": SPLITS["outer"], "first": GATHERS["outer_scalar"]})
    assert kernels(model) == []
    rows = case("Slice", dict(starts=i64(1), ends=i64(3), axes=i64(2)))
    flat, _ = battery({"rows": rows}, shape=(1, 1, 5, 4))
    assert kernels(flat) == []  # the axes outside it have one index each
    model, _ = battery({"split": SPLITS["sizes"]})
    assert kernels(model) == ["Split"]
    model, _ = battery({"split": SPLITS["sizes"]}, channels_last=True)
    assert kernels(model) == ["Conv", "Split"]


def test_views_of_views_keep_their_offsets(tmp_path):
    """A Split whose second output is sliced again along the same axis: both views, the
    second at the sum of the offsets."""
    rng = np.random.default_rng(1)
    x = random_array(rng, (6, 3, 2))
    model = chain([helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=0),
                   helper.make_node("Slice", ["b", "s", "e"], ["c"]),
                   helper.make_node("Relu", ["c"], ["y"])],
                  {"x": x}, {"sizes": i64(2, 4), "s": i64(1), "e": i64(3)}, ["a", "y"])
    compiled = compile_onnx(model)
    assert [k["op"] for k in compiled.info.kernels] == ["Relu"]
    c = compiled.graph.tensor("c")
    assert c.view_offset == (2 + 1) * 6
    check(model, [x], tmp_path)


def test_split_forms_of_older_and_newer_opsets(tmp_path):
    """Split sizes as an attribute (opset 11) and num_outputs with a smaller last part
    (opset 18)."""
    rng = np.random.default_rng(2)
    x = random_array(rng, (3, 7, 2))
    for opset, attrs in ((11, dict(split=[3, 4])), (18, dict(num_outputs=2))):
        model = chain([helper.make_node("Split", ["x"], ["a", "b"], axis=1, **attrs)],
                      {"x": x}, {}, ["a", "b"], opset=opset)
        check(model, [x], tmp_path / str(opset))


def test_slice_and_pad_attribute_forms_of_old_opsets(tmp_path):
    """Slice's starts/ends/axes and Pad's pads/value as attributes (opset 9)."""
    rng = np.random.default_rng(3)
    x = random_array(rng, (3, 4, 5))
    model = chain([helper.make_node("Slice", ["x"], ["a"], starts=[1, -3], ends=[3, 100],
                                    axes=[0, 2]),
                   helper.make_node("Pad", ["x"], ["b"], pads=[0, 1, 2, 1, 0, 0],
                                    value=-0.5),
                   helper.make_node("Pad", ["x"], ["c"], pads=[1, 0, 1, 0, 2, 1],
                                    mode="reflect")],
                  {"x": x}, {}, ["a", "b", "c"], opset=9)
    check(model, [x], tmp_path)


def onnxruntime_run(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in model.graph.input]
    return session.run(None, dict(zip(names, inputs, strict=True)))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_negative_pads_crop_then_pad_as_onnxruntime_does(mode, tmp_path):
    """onnx.reference (numpy.pad) refuses negative pads; ONNX Runtime crops first and pads
    what is left, and so does ariel."""
    rng = np.random.default_rng(4)
    x = random_array(rng, (2, 3, 6, 5))
    pads = i64(0, -1, 2, -2, 1, 0, -1, 2)
    model = chain([helper.make_node("Pad", ["x", "pads", "v"], ["y"], mode=mode)],
                  {"x": x}, {"pads": pads, "v": np.array(0.25, np.float32)}, ["y"])
    want = onnxruntime_run(model, [x])[0]
    got = run_on_host(model, [x], tmp_path)[0]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_integer_tensors_move_exactly(dtype, tmp_path):
    cases = {"slice": SLICES["backwards"], "split": SPLITS["sizes"],
             "gather": GATHERS["any"], "tile": REPEATS["tile"],
             "pad": case("Pad", dict(pads=i64(0, 1, 2, 0, 0, 2, 1, 3),
                                     value=np.array(7, dtype)), mode="constant"),
             "wrap": PADS["wrap"], "expand": REPEATS["expand_rank"]}
    model, x = battery(cases, dtype=dtype, opset=18)
    check(model, [x], tmp_path, tol=0)


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
def test_run_time_indices_count_from_the_end_and_zero_outside(index_dtype, tmp_path):
    """An embedding table looked up at run time: a negative index counts from the end; an
    index outside [-n, n) gives a row of zeros in the C and in ariel's reference (ONNX
    leaves it undefined, so only the valid rows are compared with onnx.reference)."""
    rng = np.random.default_rng(5)
    table = random_array(rng, (10, 4))
    indices = np.array([[3, -2, 12], [-11, 0, 9]], index_dtype)
    model = chain([helper.make_node("Gather", ["table", "i"], ["y"], axis=0)],
                  {"i": indices}, {"table": table}, ["y"])
    got = run_on_host(model, [indices], tmp_path)[0]
    ours = run_graph(compile_onnx(model).graph, [indices])[0]
    valid = (indices >= -10) & (indices < 10)
    expected = table[np.where(valid, indices, 0)] * valid[..., None]
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(ours, expected)
    # In range, also onnx.reference on a run-time data input and axis 1.
    data = random_array(rng, (2, 5, 3))
    model = chain([helper.make_node("Gather", ["d", "i"], ["y"], axis=1)],
                  {"d": data, "i": np.array([4, -5, 2], index_dtype)}, {}, ["y"])
    check(model, [data, np.array([4, -5, 2], index_dtype)], tmp_path / "axis1")


def test_pad_sub_graph_as_pytorch_exports_it_is_folded(tmp_path):
    """F.pad(x, (2, 0)) exported by PyTorch's TorchScript exporter: the pads come out of a
    ConstantOfShape / Concat / Reshape / Slice / Transpose / Cast sub-graph, which folds to a
    constant, leaving one Pad kernel."""
    rng = np.random.default_rng(6)
    x = random_array(rng, (1, 3, 8))
    nodes = [
        helper.make_node("ConstantOfShape", ["n"], ["zeros"],
                         value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Concat", ["p", "zeros"], ["all"], axis=0),
        helper.make_node("Reshape", ["all", "shape"], ["pairs"]),
        helper.make_node("Slice", ["pairs", "start", "end", "axis", "step"], ["reversed"]),
        helper.make_node("Transpose", ["reversed"], ["t"], perm=[1, 0]),
        helper.make_node("Reshape", ["t", "flat"], ["r"]),
        helper.make_node("Cast", ["r"], ["pads"], to=onnx.TensorProto.INT64),
        helper.make_node("Pad", ["x", "pads"], ["y"], mode="constant"),
    ]
    constants = {"n": i64(4), "p": i64(2, 0), "shape": i64(-1, 2), "start": i64(-1),
                 "end": i64(-INT_MAX), "axis": i64(0), "step": i64(-1), "flat": i64(-1)}
    model = chain(nodes, {"x": x}, constants, ["y"])
    assert kernels(model) == ["Pad"]
    check(model, [x], tmp_path)


@pytest.mark.parametrize("start, index, shape", [
    (None, -1, (5, 24)), (None, 0, (2, 60)), (1, -1, (5, 24)), (-3, 0, (3, 40))])
def test_shape_gather_concat_reshape_is_folded(start, index, shape, tmp_path):
    """x.reshape(x.shape[index], -1) as exporters write it: Shape (its whole shape by
    default, or from `start` to the end) -> Gather of one dimension -> Concat with -1 ->
    Reshape. The shape arithmetic folds away and the result has onnx.reference's shape."""
    x = random_array(np.random.default_rng(8), (2, 3, 4, 5))
    node = (helper.make_node("Shape", ["x"], ["s"]) if start is None
            else helper.make_node("Shape", ["x"], ["s"], start=start))
    nodes = [node,
             helper.make_node("Gather", ["s", "index"], ["d"], axis=0),
             helper.make_node("Concat", ["d", "rest"], ["new"], axis=0),
             helper.make_node("Reshape", ["x", "new"], ["y"])]
    model = chain(nodes, {"x": x}, {"index": i64(index), "rest": i64(-1)}, ["y"], opset=15)
    graph = compile_onnx(model).graph
    assert [n.op for n in graph.nodes] == ["Reshape"]
    assert graph.tensor(graph.outputs[0]).shape == shape
    check(model, [x], tmp_path)


UNSUPPORTED = {  # name: (op, graph inputs, constants, attributes, words of the message)
    "run_time_pads": ("Pad", {"x": np.zeros((2, 3), np.float32), "p": i64(0, 1, 0, 1)}, {},
                      {}, "input 1 computed at run time"),
    "reflect_too_far": ("Pad", {"x": np.zeros((2, 3), np.float32)},
                        {"p": i64(0, 3, 0, 0)}, {"mode": "reflect"},
                        "reflect pads up to size - 1"),
    "empty_slice": ("Slice", {"x": np.zeros((2, 3), np.float32)},
                    {"s": i64(2), "e": i64(1), "a": i64(1)}, {}, "an empty output"),
    "run_time_starts": ("Slice", {"x": np.zeros((2, 3), np.float32), "s": i64(0)},
                        {"e": i64(1)}, {}, "input 1 computed at run time"),
    "index_out_of_range": ("Gather", {"x": np.zeros((2, 3), np.float32)},
                           {"i": i64(0, 3)}, {"axis": 1}, "constant index 3 on an axis of 3"),
    "d2s_channels": ("DepthToSpace", {"x": np.zeros((1, 6, 2, 2), np.float32)}, {},
                     {"blocksize": 2}, "6 channels in blocks of 2x2"),
}


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_unsupported_uses_are_named_in_one_line(name):
    op, inputs, constants, attrs, words = UNSUPPORTED[name]
    outputs = ["y"]
    node = helper.make_node(op, [*inputs, *constants], outputs, name="the_node", **attrs)
    graph = helper.make_graph(
        [node], "bad", [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(
            v.dtype), v.shape) for n, v in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in outputs],
        [numpy_helper.from_array(v, n) for n, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(UnsupportedError) as error:
        compile_onnx(model)
    message = str(error.value)
    assert message.startswith(f"node 'the_node' ({op}): ") and words in message, message
    assert "supported:" in message and "\n" not in message


def test_generated_c_compiles_for_cortex_m4(tmp_path):
    """Every battery's kernels (channels-last), run-time Gather included, warning-free with
    the firmware's flags."""
    everything = {**SLICES, **SPLITS, **GATHERS, **PADS, **REPEATS}
    del everything["equal"]  # opset 18 wants num_outputs instead
    model, _ = battery(everything, channels_last=True, opset=18)
    compile_for_cortex_m4(compile_onnx(model), tmp_path / "moves")
    indices = np.array([1, -1], np.int64)
    lookup = chain([helper.make_node("Gather", ["table", "i"], ["y"], axis=1)],
                   {"i": indices}, {"table": np.ones((3, 4, 2), np.int8)}, ["y"])
    compile_for_cortex_m4(compile_onnx(lookup), tmp_path / "lookup")
    blocks, _ = battery({**BLOCKS}, shape=(1, 8, 3, 4), channels_last=True)
    compile_for_cortex_m4(compile_onnx(blocks), tmp_path / "blocks")


# name: (Pad attributes and constants, whether it folds into the Conv)
CONV_PADS = {
    "causal": (dict(pads=i64(0, 0, 2, 0, 0, 0)), True),
    "both_sides": (dict(pads=i64(0, 0, 1, 0, 0, 3)), True),
    "value": (dict(pads=i64(0, 0, 2, 0, 0, 0), value=np.array(1.0, np.float32)), False),
    "batch": (dict(pads=i64(1, 0, 2, 0, 0, 0)), False),
    "reflect": (dict(pads=i64(0, 0, 2, 0, 0, 0), mode="reflect"), False),
    "crop": (dict(pads=i64(0, 0, 2, 0, 0, -1)), False),
}


@pytest.mark.parametrize("name", CONV_PADS)
def test_pad_by_zeros_folds_into_the_conv(name, tmp_path):
    """Conv1d(F.pad(x, (2, 0))) is one Conv with pads (2, 0) added to its own; anything but
    spatial zeros stays a Pad kernel."""
    spec, folds = CONV_PADS[name]
    spec = dict(spec)
    mode = spec.pop("mode", "constant")
    rng = np.random.default_rng(7)
    x = random_array(rng, (1, 3, 10))
    model = chain([helper.make_node("Pad", ["x", *spec], ["p"], mode=mode),
                   helper.make_node("Conv", ["p", "w", "b"], ["y"], dilations=[2],
                                    pads=[1, 1])],
                  {"x": x}, {**spec, "w": random_array(rng, (4, 3, 3)),
                             "b": random_array(rng, (4,))}, ["y"])
    assert kernels(model) == (["Conv"] if folds else ["Pad", "Conv"])
    if name == "crop":  # onnx.reference (numpy.pad) refuses negative pads
        np.testing.assert_allclose(run_on_host(model, [x], tmp_path)[0],
                                   onnxruntime_run(model, [x])[0], rtol=1e-5, atol=1e-5)
    else:
        check(model, [x], tmp_path)


def test_pad_read_by_a_conv_and_another_node_stays(tmp_path):
    rng = np.random.default_rng(8)
    x = random_array(rng, (1, 2, 6, 6))
    model = chain([helper.make_node("Pad", ["x", "pads"], ["p"]),
                   helper.make_node("Conv", ["p", "w"], ["y"]),
                   helper.make_node("Relu", ["p"], ["z"])],
                  {"x": x}, {"pads": i64(0, 0, 1, 1, 0, 0, 1, 1),
                             "w": random_array(rng, (2, 2, 3, 3))}, ["y", "z"])
    assert "Pad" in kernels(model)
    check(model, [x], tmp_path)
