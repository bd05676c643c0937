"""Resize and Upsample in float: the host-compiled C and ariel's numpy reference against
onnx.reference for every mode, coordinate transformation and nearest rounding, scales and
sizes, axes and keep_aspect_ratio_policy, antialias; against onnxruntime for the forms the
reference cannot run (Upsample, Resize before opset 11, tf_half_pixel_for_nn); the NHWC layout
between convolutions; and the one-line errors."""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper

from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_gemm import chain
from tests.support import (
    assert_matches_reference,
    compile_onnx,
    random_array,
    run_on_host,
    run_reference,
    single_node_model,
)

EMPTY = np.zeros(0, np.float32)


def scales(*values) -> np.ndarray:
    return np.array(values, np.float32)


def sizes(*values) -> np.ndarray:
    return np.array(values, np.int64)


def by_scales(*values) -> dict[str, np.ndarray]:
    """Resize's inputs after X for output = input * scales (roi empty)."""
    return {"roi": EMPTY, "scales": scales(*values)}


def by_sizes(*values) -> dict[str, np.ndarray]:
    """Resize's inputs after X for an output of the given sizes (roi and scales empty)."""
    return {"roi": EMPTY, "scales": EMPTY, "sizes": sizes(*values)}


# name: (input shape, constants after X, attributes[, opset])
CASES = {
    "nearest_x2_asymmetric_floor": ((1, 2, 3, 4), by_scales(1, 1, 2, 2),
                                    dict(mode="nearest", nearest_mode="floor",
                                         coordinate_transformation_mode="asymmetric")),
    "nearest_round_prefer_floor_half_pixel": ((1, 2, 4, 5), by_scales(1, 1, 1.5, 2.5),
                                              dict(mode="nearest")),
    "nearest_round_prefer_ceil_downsample": ((1, 1, 6, 7), by_scales(1, 1, 0.5, 0.6),
                                             dict(mode="nearest",
                                                  nearest_mode="round_prefer_ceil")),
    "nearest_ceil_align_corners": ((1, 2, 3, 3), by_sizes(1, 2, 7, 5),
                                   dict(mode="nearest", nearest_mode="ceil",
                                        coordinate_transformation_mode="align_corners")),
    "nearest_pytorch_half_pixel_to_one": (
        (1, 1, 4, 5), by_sizes(1, 1, 1, 3),
        dict(mode="nearest", coordinate_transformation_mode="pytorch_half_pixel")),
    "linear_half_pixel_x2": ((1, 3, 4, 4), by_scales(1, 1, 2, 2),
                             dict(mode="linear")),
    "linear_pytorch_half_pixel_sizes": ((1, 2, 5, 3), by_sizes(1, 2, 8, 7),
                                        dict(mode="linear",
                                             coordinate_transformation_mode="pytorch_half_pixel")),
    "linear_align_corners": ((1, 2, 3, 5), by_scales(1, 1, 2, 3),
                             dict(mode="linear", coordinate_transformation_mode="align_corners")),
    "linear_asymmetric_downsample": ((1, 1, 8, 9), by_scales(1, 1, 0.5, 0.4),
                                     dict(mode="linear",
                                          coordinate_transformation_mode="asymmetric")),
    "linear_half_pixel_symmetric": ((1, 1, 3, 4), by_scales(1, 1, 2.6, 0.7),
                                    dict(mode="linear",
                                         coordinate_transformation_mode="half_pixel_symmetric"),
                                    19),
    "linear_antialias_downsample": ((1, 2, 9, 8), by_scales(1, 1, 0.5, 0.4),
                                    dict(mode="linear", antialias=1), 18),
    "cubic_half_pixel": ((1, 1, 5, 4), by_scales(1, 1, 1.8, 2),
                         dict(mode="cubic")),
    "cubic_exclude_outside_a_half": ((1, 2, 4, 4), by_scales(1, 1, 0.8, 2),
                                     dict(mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1)),
    "cubic_antialias_downsample": ((1, 1, 8, 8), by_sizes(1, 1, 3, 5),
                                   dict(mode="cubic", antialias=1), 18),
    # Opset 18's axes and keep_aspect_ratio_policy; roi omitted (an empty name).
    "axes_3_2_sizes": ((1, 2, 3, 4), {"": EMPTY, "scales": EMPTY, "sizes": sizes(6, 5)},
                       dict(mode="linear", axes=[3, 2]), 18),
    "not_larger": ((1, 1, 4, 6), {"": EMPTY, "scales": EMPTY, "sizes": sizes(9, 9)},
                   dict(mode="linear", axes=[2, 3], keep_aspect_ratio_policy="not_larger"), 18),
    "not_smaller": ((1, 1, 4, 6), {"": EMPTY, "scales": EMPTY, "sizes": sizes(9, 9)},
                    dict(mode="nearest", axes=[2, 3], keep_aspect_ratio_policy="not_smaller"), 18),
    # Ranks other than 4, and a resized channel axis.
    "rank3_1d_linear": ((1, 4, 6), by_scales(1, 1, 2.5),
                        dict(mode="linear")),
    "rank2_both_axes": ((3, 5), by_sizes(7, 2), dict(mode="cubic")),
    "rank5_trilinear": ((1, 2, 3, 2, 4), by_scales(1, 1, 2, 1.5, 0.5),
                        dict(mode="linear")),
    "channel_axis_and_batch": ((2, 3, 2, 2), by_scales(1, 2, 1, 1.5),
                               dict(mode="linear")),
    "opset11_roi_and_empty_scales": ((1, 1, 3, 3), by_sizes(1, 1, 5, 4),
                                     dict(mode="linear"), 11),
}


def case_model(name: str):
    shape, constants, attrs, *opset = CASES[name]
    x = random_array(np.random.default_rng(1), shape)
    return single_node_model("Resize", {"x": x}, constants, opset=opset[0] if opset else 13,
                             **attrs), x


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_resize_matches_onnx_reference(case, tmp_path):
    model, x = case_model(case)
    assert_matches_reference(model, [x], tmp_path, rtol=1e-5, atol=1e-6)
    compiled = compile_onnx(model)
    # onnx.reference computes cubic weights in float32 (its cubic_coeff_a is a float32), so
    # ariel's float64 weights differ from them by float32 rounding.
    np.testing.assert_allclose(run_graph(compiled.graph, [x])[0], run_reference(model, [x])[0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.int8])
def test_nearest_moves_any_numeric_type(dtype, tmp_path):
    x = random_array(np.random.default_rng(2), (1, 2, 3, 3), dtype)
    model = single_node_model("Resize", {"x": x}, by_scales(1, 1, 2, 1.5),
                              mode="nearest")
    assert_matches_reference(model, [x], tmp_path, rtol=0, atol=0)


def onnxruntime_output(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


# Forms onnx.reference cannot run, checked against onnxruntime.
LEGACY = {
    "upsample9_nearest": ("Upsample", 9, {"scales": scales(1, 1, 2, 3)}, dict(mode="nearest")),
    "upsample9_nearest_fractional": ("Upsample", 9, {"scales": scales(1, 1, 1.5, 2.5)},
                                     dict(mode="nearest")),
    "upsample9_linear": ("Upsample", 9, {"scales": scales(1, 1, 2, 1.5)}, dict(mode="linear")),
    "upsample7_attribute_scales": ("Upsample", 7, {}, dict(mode="linear",
                                                           scales=[1.0, 1.0, 2.0, 2.0])),
    # Resize-10 takes its nearest input position below when enlarging, above when shrinking.
    "resize10_nearest_mixed": ("Resize", 10, {"scales": scales(1, 1, 2.5, 0.6)},
                               dict(mode="nearest")),
    "resize10_linear": ("Resize", 10, {"scales": scales(1, 1, 0.75, 1.5)}, dict(mode="linear")),
    # onnx.reference does not take negative axes.
    "resize18_negative_axes": ("Resize", 18, {"": EMPTY, "scales": scales(2.0, 1.5)},
                               dict(mode="linear", axes=[-1, -2])),
    "resize11_tf_half_pixel_for_nn": ("Resize", 11, by_scales(1, 1, 2, 1.5),
                                      dict(mode="nearest",
                                           coordinate_transformation_mode="tf_half_pixel_for_nn")),
}


@pytest.mark.parametrize("case", LEGACY, ids=list(LEGACY))
def test_legacy_forms_match_onnxruntime(case, tmp_path):
    """onnx.reference runs only the newest Resize, and Upsample only for whole nearest
    scales: these forms are checked against onnxruntime."""
    op, opset, constants, attrs = LEGACY[case]
    x = random_array(np.random.default_rng(3), (1, 2, 4, 5))
    model = single_node_model(op, {"x": x}, constants, opset=opset, **attrs)
    want = onnxruntime_output(model, x)
    got = run_on_host(model, [x], tmp_path)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run_graph(compile_onnx(model).graph, [x])[0], want, rtol=1e-5,
                               atol=1e-6)


def test_upsample_between_convolutions_stays_channels_last(tmp_path):
    """Resize takes its input's memory order: between two Convs (NHWC inside) no copy is
    made, and each output pixel's channels are one block."""
    rng = np.random.default_rng(4)
    x = random_array(rng, (1, 3, 5, 5))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["a", "", "s"], ["b"], mode="linear"),
             helper.make_node("Conv", ["b", "w2"], ["y"], pads=[1, 1, 1, 1])]
    model = chain(nodes, {"x": x}, {"w1": random_array(rng, (8, 3, 3, 3)),
                                    "s": scales(1, 1, 2, 2),
                                    "w2": random_array(rng, (4, 8, 3, 3))}, ["y"], opset=13)
    compiled = compile_onnx(model)
    ops = [n.op for n in compiled.graph.nodes]
    # Copies only at the model's edges (its input and output are NCHW).
    assert ops == ["ariel.Relayout", "Conv", "Resize", "Conv", "ariel.Relayout"]
    resize = compiled.graph.nodes[2]
    assert compiled.graph.tensor(resize.outputs[0]).memory_order == (0, 2, 3, 1)
    assert "then 8 consecutive values" in compiled.files["m.c"]
    assert_matches_reference(model, [x], tmp_path, rtol=1e-4, atol=1e-5)


def test_constant_scales_from_a_folded_sub_graph(tmp_path):
    """PyTorch exports the scales or sizes of an interpolation as shape arithmetic
    (Shape, Gather, Mul, Concat...), which constant folding turns into the constant Resize
    needs."""
    x = random_array(np.random.default_rng(5), (1, 2, 3, 4))
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Slice", ["shape", "start", "end"], ["hw"]),
             helper.make_node("Mul", ["hw", "two"], ["hw2"]),
             helper.make_node("Concat", ["nc", "hw2"], ["size"], axis=0),
             helper.make_node("Resize", ["x", "", "", "size"], ["y"], mode="nearest")]
    model = chain(nodes, {"x": x}, {"start": sizes(2), "end": sizes(4), "two": sizes(2),
                                    "nc": sizes(1, 2)}, ["y"], opset=13)
    assert_matches_reference(model, [x], tmp_path, rtol=0, atol=0)
    assert [n.op for n in compile_onnx(model).graph.nodes] == ["Resize"]


ERRORS = {
    "tf_crop_and_resize": ({"roi": scales(0, 0, 0.2, 0.2, 1, 1, 0.8, 0.8), "scales": EMPTY,
                            "sizes": sizes(1, 1, 3, 3)},
                           dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize"),
                           "coordinate_transformation_mode tf_crop_and_resize is not supported"),
    "antialias_nearest": ({"": EMPTY, "scales": scales(1, 1, 0.5, 0.5)},
                          dict(mode="nearest", antialias=1), "antialias with mode nearest"),
    "zero_size_output": (by_scales(1, 1, 0.1, 1), dict(mode="nearest"),
                         "a dimension of size 0"),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_unsupported_resize_is_one_line(case):
    constants, attrs, message = ERRORS[case]
    x = np.zeros((1, 1, 4, 4), np.float32)
    model = single_node_model("Resize", {"x": x}, constants, opset=18, **attrs)
    with pytest.raises(UnsupportedError) as error:
        compile_onnx(model)
    text = str(error.value)
    assert text.startswith("node 'resize_node' (Resize): ") and message in text
    assert "supported: " in text and "\n" not in text


def test_scales_at_run_time_name_the_input():
    model = chain([helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
                  {"x": np.zeros((1, 1, 2, 2), np.float32), "scales": scales(1, 1, 2, 2)}, {},
                  ["y"], opset=13, shapes={"y": (1, 1, 4, 4)})
    with pytest.raises(UnsupportedError, match="input 'scales' computed at run time"):
        compile_onnx(model)


def test_upsample_refuses_to_shrink():
    x = np.zeros((1, 1, 4, 4), np.float32)
    model = single_node_model("Upsample", {"x": x}, {"scales": scales(1, 1, 0.5, 2)}, opset=9,
                              mode="nearest")
    with pytest.raises(UnsupportedError, match="Upsample only enlarges"):
        compile_onnx(model)
