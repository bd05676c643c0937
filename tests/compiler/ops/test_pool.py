"""AveragePool, MaxPool, GlobalAveragePool and GlobalMaxPool against onnx.reference through
host-compiled generated C, and ariel's numpy reference against onnx.reference; the generated
C also compiled for the Cortex-M4."""

import shutil

import numpy as np
import onnxruntime
import pytest

from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.compiler.ops.test_reduce import (
    after_conv,
    check_against_onnx,
    kernel_of,
    reads_producer_directly,
)
from tests.support import (
    compile_for_cortex_m4,
    compile_onnx,
    random_array,
    run_on_host,
    single_node_model,
)

# (op, input shape, attributes); opset 19 throughout, where AveragePool gained dilations.
CASES = {
    "avg_3x3_pad1_exclude_pad": ("AveragePool", (1, 3, 7, 6),
                                 dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "avg_3x3_pad1_include_pad": ("AveragePool", (1, 3, 7, 6),
                                 dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                      count_include_pad=1)),
    "avg_stride2_asymmetric_pads": ("AveragePool", (1, 2, 9, 7),
                                    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 0])),
    "avg_asymmetric_pads_include_pad": ("AveragePool", (1, 2, 6, 6),
                                        dict(kernel_shape=[2, 3], pads=[1, 0, 0, 2],
                                             count_include_pad=1)),
    "avg_ceil_mode": ("AveragePool", (1, 2, 7, 6),
                      dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "avg_ceil_mode_pads_include_pad": ("AveragePool", (1, 2, 7, 7),
                                       dict(kernel_shape=[4, 4], strides=[3, 3],
                                            pads=[1, 1, 1, 1], ceil_mode=1,
                                            count_include_pad=1)),
    "avg_ceil_mode_pads_exclude_pad": ("AveragePool", (1, 2, 7, 7),
                                       dict(kernel_shape=[4, 4], strides=[3, 3],
                                            pads=[1, 1, 1, 1], ceil_mode=1)),
    "avg_same_upper": ("AveragePool", (1, 2, 7, 7),
                       dict(kernel_shape=[4, 4], strides=[2, 2], auto_pad="SAME_UPPER")),
    "avg_same_lower_include_pad": ("AveragePool", (1, 2, 7, 6),
                                   dict(kernel_shape=[4, 3], auto_pad="SAME_LOWER",
                                        count_include_pad=1)),
    "avg_valid": ("AveragePool", (1, 3, 7, 7),
                  dict(kernel_shape=[3, 2], strides=[1, 2], auto_pad="VALID")),
    "avg_dilations": ("AveragePool", (1, 2, 8, 8),
                      dict(kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])),
    "avg_dilations_include_pad": ("AveragePool", (1, 2, 7, 7),
                                  dict(kernel_shape=[3, 3], dilations=[2, 2],
                                       pads=[1, 1, 2, 2], count_include_pad=1)),
    "avg_batch2_2x2_stride2": ("AveragePool", (2, 4, 6, 6),
                               dict(kernel_shape=[2, 2], strides=[2, 2])),
    "avg_1d": ("AveragePool", (1, 3, 12), dict(kernel_shape=[3], strides=[2], pads=[1, 0])),
    "avg_1d_ceil_mode_include_pad": ("AveragePool", (1, 2, 10),
                                     dict(kernel_shape=[3], strides=[2], pads=[1, 1],
                                          ceil_mode=1, count_include_pad=1)),
    "avg_whole_input": ("AveragePool", (1, 16, 8, 8), dict(kernel_shape=[8, 8])),
    "avg_whole_input_batch2": ("AveragePool", (2, 5, 4, 3), dict(kernel_shape=[4, 3])),
    "avg_whole_input_1d": ("AveragePool", (1, 4, 9), dict(kernel_shape=[9])),
    "max_3x3_stride2_pad1": ("MaxPool", (1, 3, 9, 9),
                             dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "max_2x2_stride2": ("MaxPool", (2, 4, 8, 6), dict(kernel_shape=[2, 2], strides=[2, 2])),
    "max_ceil_mode": ("MaxPool", (1, 2, 7, 6),
                      dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    "max_asymmetric_pads": ("MaxPool", (1, 2, 6, 7),
                            dict(kernel_shape=[3, 2], pads=[2, 0, 0, 1])),
    "max_same_upper": ("MaxPool", (1, 2, 7, 7),
                       dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")),
    "max_same_lower": ("MaxPool", (1, 2, 6, 7), dict(kernel_shape=[3, 4], auto_pad="SAME_LOWER")),
    "max_dilations": ("MaxPool", (1, 2, 9, 9),
                      dict(kernel_shape=[3, 3], dilations=[2, 3], strides=[2, 1])),
    "max_1d": ("MaxPool", (1, 3, 11), dict(kernel_shape=[4], strides=[3], pads=[1, 2])),
    "max_whole_input": ("MaxPool", (1, 6, 5, 5), dict(kernel_shape=[5, 5])),
    "global_avg_2d": ("GlobalAveragePool", (2, 3, 5, 4), {}),
    "global_avg_1d": ("GlobalAveragePool", (1, 4, 7), {}),
    "global_avg_3d": ("GlobalAveragePool", (1, 2, 3, 4, 5), {}),
    "global_max_2d": ("GlobalMaxPool", (1, 3, 6, 6), {}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_pool_matches_onnx_reference(case, tmp_path):
    op, shape, attrs = CASES[case]
    x = random_array(np.random.default_rng(10), shape)
    check_against_onnx(single_node_model(op, {"x": x}, opset=19, **attrs), [x], tmp_path)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("attrs", [dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                                   dict(kernel_shape=[4, 4])], ids=["window", "whole_input"])
def test_max_pool_of_integers_is_exact(dtype, attrs, tmp_path):
    """onnx.reference pads integer inputs with NaN and fails, so onnxruntime is the oracle."""
    x = random_array(np.random.default_rng(11), (1, 3, 4, 4), dtype)
    model = single_node_model("MaxPool", {"x": x}, opset=12, **attrs)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    for actual in (run_on_host(model, [x], tmp_path)[0],
                   run_graph(compile_onnx(model).graph, [x])[0]):
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)


SAME_DILATED = {"same_upper": ("MaxPool", dict(auto_pad="SAME_UPPER")),
                "same_lower": ("AveragePool", dict(auto_pad="SAME_LOWER", count_include_pad=1))}


@pytest.mark.parametrize("case", SAME_DILATED, ids=list(SAME_DILATED))
def test_same_padding_with_dilations_follows_the_spec(case, tmp_path):
    """The ONNX spec pads SAME windows by their dilated extent, and ONNX shape inference
    agrees; onnx.reference and onnxruntime do not (they pad for the undilated kernel), so
    the generated C is checked against ariel's reference, which other cases tie to ONNX."""
    op, attrs = SAME_DILATED[case]
    x = random_array(np.random.default_rng(12), (1, 2, 7, 8))
    model = single_node_model(op, {"x": x}, opset=19, kernel_shape=[3, 2], dilations=[2, 3],
                              **attrs)
    declared = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    compiled = compile_onnx(model)
    expected = run_graph(compiled.graph, [x])[0]
    assert list(expected.shape) == declared == [1, 2, 7, 8]
    np.testing.assert_allclose(run_on_host(model, [x], tmp_path)[0], expected, rtol=1e-6,
                               atol=1e-6)


def test_whole_input_average_after_conv_is_one_contiguous_loop(tmp_path):
    """The pooling at the end of the MLPerf Tiny models: AveragePool 8x8 over an 8x8 map."""
    rng = np.random.default_rng(13)
    x = random_array(rng, (1, 3, 8, 8))
    model = after_conv("AveragePool", x, rng, channels=16, kernel_shape=[8, 8])
    check_against_onnx(model, [x], tmp_path)
    compiled = compile_onnx(model)
    assert reads_producer_directly(compiled, "AveragePool", "Conv")
    body = kernel_of(compiled, "AveragePool")
    assert "for (uint32_t i0 = 0; i0 < 64u; ++i0)" in body
    assert "for (uint32_t i1 = 0; i1 < 16u; ++i1)" in body
    assert "y0[i1] += v;" in body and "y0[i] = y0[i] / 64.0f;" in body
    assert "if (" not in body


def test_window_with_uniform_count_divides_by_one_constant():
    x = random_array(np.random.default_rng(14), (1, 2, 6, 6))
    model = single_node_model("AveragePool", {"x": x}, kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], count_include_pad=1)
    compiled = compile_onnx(model)
    body = kernel_of(compiled, "AveragePool")
    assert "out[c] = out[c] / 9.0f;" in body
    assert compiled.info.weights_bytes == 0


def test_window_without_padding_has_no_bounds_checks():
    x = random_array(np.random.default_rng(15), (1, 2, 6, 6))
    body = kernel_of(compile_onnx(single_node_model("MaxPool", {"x": x}, kernel_shape=[2, 2],
                                                    strides=[2, 2])), "MaxPool")
    assert "continue" not in body
    assert "MaxPool 'maxpool_node'" in body and "x [1,6,6,2] NHWC -> y [1,3,3,2] NHWC" in body


UNSUPPORTED = {
    "3d_average": ("AveragePool", (1, 2, 4, 4, 4), dict(kernel_shape=[2, 2, 2]), 1,
                   "3-D pooling"),
    "3d_max": ("MaxPool", (1, 2, 4, 4, 4), dict(kernel_shape=[2, 2, 2]), 1, "3-D pooling"),
    "storage_order": ("MaxPool", (1, 2, 4, 4), dict(kernel_shape=[2, 2], storage_order=1), 1,
                      "storage_order 1"),
    "indices_output": ("MaxPool", (1, 2, 4, 4), dict(kernel_shape=[2, 2]), 2,
                       "the Indices output"),
    "window_in_padding": ("MaxPool", (1, 1, 4, 4), dict(kernel_shape=[2, 2], pads=[2, 2, 2, 2],
                                                        strides=[2, 2]),
                          1, "wholly in the padding"),
}


@pytest.mark.parametrize("case", UNSUPPORTED, ids=list(UNSUPPORTED))
def test_unsupported_pooling_is_a_clear_error(case):
    op, shape, attrs, outputs, message = UNSUPPORTED[case]
    x = random_array(np.random.default_rng(16), shape)
    model = single_node_model(op, {"x": x}, n_outputs=outputs, **attrs)
    with pytest.raises(UnsupportedError) as error:
        compile_onnx(model)
    assert f"node '{op.lower()}_node' ({op})" in str(error.value)
    assert message in str(error.value)


TARGET_MODELS = {
    "avg_count_tables": ("AveragePool", np.float32, dict(kernel_shape=[3, 3], strides=[2, 2],
                                                         pads=[1, 1, 1, 1], ceil_mode=1)),
    "max_int8": ("MaxPool", np.int8, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "global_max": ("GlobalMaxPool", np.float32, {}),
    "reduce_mean_inner": ("ReduceMean", np.float32, dict(axes=[2, 3])),
}


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs arm-none-eabi-gcc (run `make setup`)")
@pytest.mark.parametrize("case", TARGET_MODELS, ids=list(TARGET_MODELS))
def test_generated_c_compiles_for_cortex_m4(case, tmp_path):
    op, dtype, attrs = TARGET_MODELS[case]
    x = random_array(np.random.default_rng(17), (1, 4, 7, 7), dtype)
    model = single_node_model(op, {"x": x}, opset=17, **attrs)
    if op == "AveragePool":
        model = after_conv(op, x, np.random.default_rng(18), **attrs)
    compiled = compile_onnx(model)
    assert "double" not in compiled.files[f"{compiled.info.prefix}.c"]
    compile_for_cortex_m4(compiled, tmp_path)



@pytest.mark.parametrize("op, attrs", [("MaxPool", {"kernel_shape": [2, 2]}),
                                       ("GlobalMaxPool", {})])
def test_max_pool_propagates_nan(op, attrs, tmp_path):
    """A window holding a NaN gives NaN wherever in the window it stands, as numpy's max
    and ariel's reference do (a window of NaNs was -inf). onnxruntime keeps a NaN only
    where it comes last in the window and onnx.reference drops NaNs, so numpy is the
    oracle here."""
    n = np.nan
    x = np.array([[[[n, 1, 2, 0], [1, 2, 0, 3]], [[1, 2, 0, 3], [0, 1, 2, n]],
                   [[n, n, n, n], [n, n, n, n]], [[1, 2, 0, 3], [0, 1, 2, 4]]]], np.float32)
    if op == "MaxPool":
        windows = np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(2, 3))
        expected = windows.max(axis=(-2, -1))
    else:
        expected = x.max(axis=(2, 3), keepdims=True)
    model = single_node_model(op, {"x": x}, **attrs)
    for got in (run_on_host(model, [x], tmp_path)[0],
                run_graph(compile_onnx(model).graph, [x])[0]):
        np.testing.assert_array_equal(got, expected)
    assert np.isnan(expected).any() and not np.isnan(expected).all()


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_same_padding_that_would_be_negative_is_refused(auto_pad):
    """A stride beyond the window under SAME padding: ONNX's formula gives a negative total
    (onnx.reference crops the input, onnxruntime refuses the model); ariel padded 0 and
    answered differently from onnx.reference (found by the fuzzer: qemu:11006803)."""
    x = np.arange(32, dtype=np.float32).reshape(1, 1, 4, 8)
    model = single_node_model("MaxPool", {"x": x}, opset=13, auto_pad=auto_pad,
                              kernel_shape=[1, 3], strides=[2, 2])
    with pytest.raises(UnsupportedError, match="padding would be negative"):
        compile_onnx(model)
