"""Concat of any number of inputs of any numeric type, on every axis, with constant inputs
and in channels-last memory order, against onnx.reference through host-compiled C and
through ariel's numpy reference of the compiled graph."""

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.compiler.ir import channels_last
from tests.compiler.ops.test_gemm import chain, check
from tests.support import compile_onnx, random_array

SHAPES = [(2, 3, 4), (2, 3, 4, 5)]  # 3-D and 4-D
DTYPES = [np.float32, np.int8, np.uint8, np.int64]


def parts(rng, shape, axis: int, sizes: list[int], dtype) -> list[np.ndarray]:
    """Arrays of `shape` except for `sizes` along `axis`."""
    arrays = []
    for size in sizes:
        part = list(shape)
        part[axis] = size
        arrays.append(random_array(rng, tuple(part), dtype))
    return arrays


@pytest.mark.parametrize("shape, axis", [(s, a) for s in SHAPES for a in range(len(s))],
                         ids=lambda v: str(v))
@pytest.mark.parametrize("from_end", [False, True], ids=["axis", "negative_axis"])
def test_concat_of_three_on_every_axis(shape, axis, from_end, tmp_path):
    rng = np.random.default_rng(1)
    values = dict(zip("abc", parts(rng, shape, axis, [2, 1, 3], np.float32), strict=True))
    attr = axis - len(shape) if from_end else axis
    model = chain([helper.make_node("Concat", list(values), ["y"], axis=attr)], values, {},
                  ["y"])
    check(model, list(values.values()), tmp_path)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_concat_of_any_numeric_type_with_a_constant(dtype, tmp_path):
    rng = np.random.default_rng(2)
    a, b, c = parts(rng, (2, 3, 4), 1, [3, 2, 1], dtype)
    model = chain([helper.make_node("Concat", ["a", "b", "c"], ["y"], axis=-2)],
                  {"a": a, "c": c}, {"b": b}, ["y"])
    check(model, [a, c], tmp_path)


def test_constant_first_and_the_same_input_twice(tmp_path):
    rng = np.random.default_rng(3)
    k, x = parts(rng, (1, 4, 3), 2, [2, 3], np.float32)
    model = chain([helper.make_node("Concat", ["k", "x", "x"], ["y"], axis=2)],
                  {"x": x}, {"k": k}, ["y"])
    check(model, [x], tmp_path)


def conv_then_concat(rng, others: list[str], inputs: dict[str, np.ndarray],
                     constants: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A Conv (whose output is channels-last inside ariel) concatenated on channels with
    `others`."""
    constants = {**constants, "w": random_array(rng, (4, 2, 3, 3))}
    return chain([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                  helper.make_node("Concat", ["c", *others], ["y"], axis=1)],
                 inputs, constants, ["y"])


def test_channels_last_input_and_constant_stay_channels_last(tmp_path):
    rng = np.random.default_rng(4)
    x = random_array(rng, (1, 2, 5, 5))
    model = conv_then_concat(rng, ["k"], {"x": x}, {"k": random_array(rng, (1, 3, 5, 5))})
    graph = compile_onnx(model).graph
    concat = next(n for n in graph.nodes if n.op == "Concat")
    assert graph.tensor(concat.outputs[0]).order == channels_last(4)
    assert not any(n.op == "ariel.Relayout" and n.outputs[0] in concat.inputs
                   for n in graph.nodes)
    check(model, [x], tmp_path)


def test_input_in_another_order_is_copied_to_the_first_ones(tmp_path):
    rng = np.random.default_rng(5)
    x = random_array(rng, (1, 2, 5, 5))
    model = conv_then_concat(rng, ["x"], {"x": x}, {})
    graph = compile_onnx(model).graph
    concat = next(n for n in graph.nodes if n.op == "Concat")
    orders = [graph.tensor(name).memory_order for name in concat.inputs]
    assert orders == [channels_last(4)] * 2
    check(model, [x], tmp_path)
