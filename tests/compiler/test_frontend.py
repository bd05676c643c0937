"""The front end refuses what it cannot read faithfully (found by the fuzzing suite)."""

import onnx
import pytest
from onnx import TensorProto, helper

from codegen.compiler.frontend import fix_input_shapes, load_model
from codegen.errors import ArielError, UnsupportedError
from tests.support import compile_onnx


def relu_model(opset: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "r",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def test_opset_newer_than_onnx_knows_is_refused():
    """onnx.checker lets opset 10000 pass (with a warning); shape inference and ariel's
    operators would then apply the newest semantics they know without a word."""
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(UnsupportedError, match=f"opset {newest + 1}; .* up to {newest}"):
        compile_onnx(relu_model(newest + 1))
    assert compile_onnx(relu_model(newest)).info.outputs[0].shape == [1, 4]


def test_operator_type_that_is_not_utf8_is_one_clear_error(tmp_path):
    """onnx.checker raises UnicodeDecodeError (not its ValidationError) when the name it
    would quote is not UTF-8; a bit flip in a model file does that (exit 70 before)."""
    data = relu_model(17).SerializeToString().replace(b"Relu", b"R\xdflu", 1)
    path = tmp_path / "flipped.onnx"
    path.write_bytes(data)
    with pytest.raises(ArielError, match="not a valid ONNX model: .*not valid UTF-8"):
        load_model(path)


@pytest.mark.parametrize("size", [4, 16])
def test_input_shape_may_not_change_a_dimension_the_model_fixes(size):
    """--input-shape names sizes for free dimensions; one the model fixes (8 here) must be
    given as it is, smaller or larger being refused alike."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph)
    with pytest.raises(ArielError, match=f"dimension is fixed at 8 in the model, not {size}"):
        fix_input_shapes(model, {"x": (2, size)})
    fix_input_shapes(model, {"x": (2, 8)})
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [2, 8]
