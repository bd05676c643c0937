"""The int8 output stage against oracles that share no code with it, on exact rounding ties.

The bit-exact tests compare ariel's two twins (the numpy reference and the C helpers) with
each other, so a rounding change made to both would pass them. Here:
- the C helpers and the numpy twin equal exact rational arithmetic (fractions) on values
  that are mostly exact halves;
- int8 Conv (general and depthwise), MatMul, Gemm, Add and AveragePool, on hand-built QDQ
  models whose scales are powers of two (so many values are exact ties): the host-built C
  equals onnx.reference's float result on the QDQ model as written, rounded half up
  (ariel's documented rule); for the products ONNX Runtime's int8 output equals the same
  value rounded half to even (its QuantizeLinear's rule), so the two differ by exactly one
  on the ties whose lower neighbour is even, and nowhere else; its own Add and AveragePool
  kernels equal ariel's off the ties and are one step away at most on them.
"""

from __future__ import annotations

import ctypes
import math
import subprocess
from fractions import Fraction

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from codegen.compiler.quant.fixedpoint import requantize
from codegen.compiler.reference import run_graph
from codegen.resources import data_dir
from codegen.run.hostrun import HOST_CFLAGS
from tests.compiler.ops.test_conv_s8 import onnxruntime_int8
from tests.support import compile_onnx_int8, host_model

HELPERS = r"""
#include <stdint.h>
#include "ariel_runtime.h"

void helpers(const int32_t *acc, const int32_t *multiplier, const int32_t *shift, int32_t n,
             int32_t *generic, int32_t *hi)
{
    for (int32_t i = 0; i < n; ++i) {
        generic[i] = ariel_requantize(acc[i], multiplier[i], shift[i], 3, -1000000, 1000000);
        hi[i] = shift[i] >= 33
            ? ariel_requantize_hi(acc[i], multiplier[i], shift[i] - 33, 3, -128, 127)
            : generic[i];
    }
}
"""


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def test_output_stage_rounds_exact_halves_up(tmp_path):
    (tmp_path / "h.c").write_text(HELPERS)
    library = tmp_path / "libh.so"
    subprocess.run(["gcc", *HOST_CFLAGS, f"-I{data_dir('firmware')}", str(tmp_path / "h.c"),
                    "-o", str(library)], check=True)
    rng = np.random.default_rng(7)
    count = 4000
    shift = rng.integers(31, 45, count)
    multiplier = np.full(count, 2**30)  # a power of two: acc * M / 2**shift has few digits
    acc = rng.integers(-3000, 3000, count)
    # Make most of them exact halves: acc * 2**30 an odd multiple of 2**(shift - 1).
    halves = (2 * rng.integers(-40, 40, count) + 1) << np.maximum(shift - 31, 0)
    acc[: count * 3 // 4] = halves[: count * 3 // 4]
    arrays = [np.ascontiguousarray(a, np.int32) for a in (acc, multiplier, shift)]
    generic, hi = np.zeros(count, np.int32), np.zeros(count, np.int32)
    pointer = ctypes.POINTER(ctypes.c_int32)
    ctypes.CDLL(str(library)).helpers(*[a.ctypes.data_as(pointer) for a in arrays],
                                      ctypes.c_int32(count), generic.ctypes.data_as(pointer),
                                      hi.ctypes.data_as(pointer))
    exact = [Fraction(int(a) * int(m), 2 ** int(s))
             for a, m, s in zip(acc, multiplier, shift, strict=True)]
    ties = sum(value.denominator == 2 for value in exact)
    assert ties > count // 2
    want = np.array([half_up(value) + 3 for value in exact])
    np.testing.assert_array_equal(generic, want)
    np.testing.assert_array_equal(requantize(acc, multiplier, shift, 3, -1000000, 1000000),
                                  want)
    np.testing.assert_array_equal(hi[shift >= 33], np.clip(want, -128, 127)[shift >= 33])


# Scales: x 2**-2, w 2**-3, y 2**-4, so the real multiplier s_x s_w / s_y is 1/2 exactly and
# every float value below is exact in float32; y 2**-2 makes it 1/8 (shift 34: the packed
# kernels' 32-bit output stage, ariel_requantize_hi).
X_SCALE, W_SCALE = 2.0**-2, 2.0**-3
X_ZERO, Y_ZERO = 3, -7

CASES = {  # name: (core node, x shape, w shape, bias length or 0, y scale)
    "conv": (helper.make_node("Conv", ["xf", "wf", "bf"], ["yf"], pads=[1, 1, 1, 1]),
             (1, 3, 5, 5), (4, 3, 3, 3), 4, 2.0**-4),
    "conv_shift_34": (helper.make_node("Conv", ["xf", "wf", "bf"], ["yf"], pads=[1, 1, 1, 1]),
                      (1, 3, 5, 5), (4, 3, 3, 3), 4, 2.0**-2),
    "conv_depthwise": (helper.make_node("Conv", ["xf", "wf", "bf"], ["yf"], group=4,
                                        pads=[1, 1, 1, 1]), (1, 4, 5, 5), (4, 1, 3, 3), 4,
                       2.0**-4),
    "matmul": (helper.make_node("MatMul", ["xf", "wf"], ["yf"]), (3, 12), (12, 5), 0,
               2.0**-4),
    "gemm": (helper.make_node("Gemm", ["xf", "wf", "bf"], ["yf"], transB=1), (3, 12),
             (5, 12), 5, 2.0**-4),
    "gemm_shift_34": (helper.make_node("Gemm", ["xf", "wf", "bf"], ["yf"], transB=1), (4, 16),
                      (6, 16), 6, 2.0**-2),
    # Add of a constant int8 tensor: (x - zx) / 2 + w / 4 at y scale 1/2, so quarters.
    "add": (helper.make_node("Add", ["xf", "wf"], ["yf"]), (1, 4, 3, 3), (1, 4, 3, 3), 0,
            2.0**-1),
    # The mean of four at the input's scale: quarters again.
    "average_pool": (helper.make_node("AveragePool", ["xf"], ["yf"], kernel_shape=[2, 2]),
                     (1, 3, 4, 4), (1,), 0, 2.0**-2),
}


# Where ONNX Runtime computes the float value and QuantizeLinear rounds it half to even (its
# QLinearAdd and int8 AveragePool round ties their own way).
ORT_HALF_EVEN = {"conv", "conv_shift_34", "conv_depthwise", "matmul", "gemm", "gemm_shift_34"}


def qdq_model(name: str, rng: np.random.Generator) -> onnx.ModelProto:
    """x -> QuantizeLinear -> DequantizeLinear -> the core node (int8 weights and int32 bias
    through DequantizeLinear) -> QuantizeLinear -> DequantizeLinear -> y."""
    core, x_shape, w_shape, bias, y_scale = CASES[name]
    w = rng.integers(-3, 4, w_shape).astype(np.int8)
    constants = {"sx": np.array(X_SCALE, np.float32), "zx": np.array(X_ZERO, np.int8),
                 "sw": np.array(W_SCALE, np.float32), "zw": np.array(0, np.int8),
                 "sy": np.array(y_scale, np.float32), "zy": np.array(Y_ZERO, np.int8),
                 "w": w, "sb": np.array(X_SCALE * W_SCALE, np.float32),
                 "zb": np.array(0, np.int32)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xf"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wf"])]
    if bias:
        constants["b"] = rng.integers(-9, 10, bias).astype(np.int32)
        nodes.append(helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["bf"]))
    nodes += [core, helper.make_node("QuantizeLinear", ["yf", "sy", "zy"], ["yq"]),
              helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["y"])]
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_empty_tensor_value_info("y")],
        [numpy_helper.from_array(v, k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def reference_before_quantize(model: onnx.ModelProto, xq: np.ndarray, y_scale: float
                              ) -> np.ndarray:
    """onnx.reference on the model as written, from the int8 input to the float value the
    output QuantizeLinear receives, divided by the output scale (exact here)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    graph.node.remove(next(n for n in graph.node if n.output[0] == "xq"))
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info("xq", TensorProto.INT8, xq.shape))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("yf", TensorProto.FLOAT, None))
    yf = ReferenceEvaluator(model).run(None, {"xq": xq})[0]
    return yf.astype(np.float64) / y_scale


@pytest.mark.parametrize("name", CASES)
def test_int8_kernel_rounds_ties_half_up_against_onnx_reference(name, tmp_path):
    rng = np.random.default_rng(8)
    model = qdq_model(name, rng)
    compiled = compile_onnx_int8(model, io="int8")
    kernels = [n.op for n in compiled.graph.nodes if n.op != "ariel.Relayout"]
    assert kernels == [CASES[name][0].op_type]
    host = host_model(compiled, tmp_path)
    shape = CASES[name][1]
    ties = differing = 0
    for _ in range(6):
        xq = (rng.integers(-3, 4, shape) + X_ZERO).astype(np.int8)
        value = reference_before_quantize(model, xq, CASES[name][4])
        assert np.array_equal(value * 8, np.rint(value * 8))  # eighths: exact
        tie = value - np.floor(value) == 0.5
        half_up = np.clip(np.floor(value + 0.5) + Y_ZERO, -128, 127)
        half_even = np.clip(np.rint(value) + Y_ZERO, -128, 127)
        got = host.run(xq)[0]
        np.testing.assert_array_equal(got, half_up)
        np.testing.assert_array_equal(run_graph(compiled.graph, [xq])[0], half_up)
        theirs = onnxruntime_int8(model, {"xq": xq}, "yq")
        if name in ORT_HALF_EVEN:
            np.testing.assert_array_equal(theirs, half_even)
        else:  # ONNX Runtime's own int8 kernel: the same off the ties, one step at most on them
            np.testing.assert_array_equal(theirs[~tie], half_up[~tie])
            assert np.abs(theirs[tie].astype(int) - half_up[tie]).max(initial=0) <= 1
        ties += int(tie.sum())
        differing += int((got != theirs).sum())
    # Enough ties of both parities that a change of the rounding shows.
    print(f"\n{name}: {ties} ties, {differing} outputs one above ONNX Runtime's")
    assert ties >= 20 and 0 < differing < ties
