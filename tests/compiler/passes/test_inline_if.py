"""An If whose condition is known at compile time compiles as the branch it takes (checked
against onnx.reference on the host build); one decided at run time is refused by name."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.errors import UnsupportedError
from tests.support import assert_matches_reference, compile_onnx

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])


def branching_model(condition_nodes, initializers=(), inputs=(X,)) -> onnx.ModelProto:
    """y = If(cond, Relu(x) * 2, Sigmoid(x) + w): the branches read x and w from outside."""
    w = numpy_helper.from_array(np.linspace(-1, 1, 6, dtype=np.float32).reshape(1, 6), "w")
    two = numpy_helper.from_array(np.array(2, np.float32), "two")
    then_branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "two"], ["t"])],
        "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 6])], [two])
    else_branch = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Add", ["s", "w"], ["e"])],
        "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 6])])
    branch = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_branch,
                              else_branch=else_branch)
    graph = helper.make_graph([*condition_nodes, branch], "branching", list(inputs), [Y],
                              [w, *initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("value", [True, False])
def test_a_constant_condition_compiles_the_branch_it_takes(tmp_path, value):
    condition = numpy_helper.from_array(np.array(value), "cond")
    model = branching_model([], [condition])
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(1, 6)
    assert_matches_reference(model, [x], tmp_path)


def test_a_condition_computed_from_a_shape_compiles(tmp_path):
    """The form exporters write: a branch on the batch size, known once shapes are."""
    one = numpy_helper.from_array(np.array([1], np.int64), "one")
    nodes = [helper.make_node("Shape", ["x"], ["shape"], start=0, end=1),
             helper.make_node("Equal", ["shape", "one"], ["equal"]),
             helper.make_node("Squeeze", ["equal"], ["cond"])]
    model = branching_model(nodes, [one])
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(1, 6)
    assert_matches_reference(model, [x], tmp_path)
    assert [k["op"] for k in compile_onnx(model).info.kernels if not k.get("view")] == [
        "Relu", "Mul"]


def test_a_condition_known_only_at_run_time_is_refused_by_name():
    model = branching_model([], inputs=(X, helper.make_tensor_value_info(
        "cond", TensorProto.BOOL, [])))
    with pytest.raises(UnsupportedError, match="node 'branch': operator If is supported only "
                       "when its condition is known at compile time.*'cond' is computed at "
                       "run time"):
        compile_onnx(model)
