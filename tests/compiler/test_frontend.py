"""The front end refuses what it cannot read faithfully (found by the fuzzing suite)."""

import onnx
import pytest
from onnx import TensorProto, helper

from codegen.compiler.frontend import load_model
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
