"""A model compiled to run segment by segment (compiler/segments.py): one entry per output,
each running only what its output needs beyond the earlier ones, planned as one arena; a
segment that is only a view compiles warning-free too."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.compile import Options, compile_model_proto
from codegen.run.hostrun import HostModel, build_host_library
from tests.support import compile_for_cortex_m4


def _model() -> onnx.ModelProto:
    """x -> Gemm -> Relu -> a (output 0); a -> Reshape -> b (output 1, a view of a);
    a -> Gemm -> c (output 2)."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)
               for name, shape in (("w1", (6, 4)), ("w2", (4, 6)))]
    weights.append(numpy_helper.from_array(np.array([2, 2], np.int64), "shape"))
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="first"),
             helper.make_node("Relu", ["h"], ["a"], name="relu"),
             helper.make_node("Gemm", ["a", "w2"], ["c"], name="second"),
             helper.make_node("Reshape", ["a", "shape"], ["b"], name="view")]
    graph = helper.make_graph(
        nodes, "segments", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
         for n, s in (("a", [1, 4]), ("b", [2, 2]), ("c", [1, 6]))], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_one_entry_per_output_each_running_its_own_kernels(tmp_path):
    path = tmp_path / "segments.onnx"
    onnx.save(_model(), path)
    compiled = compile_model_proto(_model(), path, Options(segmented=True, pin_inputs=True),
                                   "tests")
    info = compiled.info
    assert info.segments == ["segments_segment0", "segments_segment1", "segments_segment2"]
    # The Reshape is a view: segment 1 runs no kernel; the second Gemm waits for segment 2,
    # though the model lists it before the Reshape.
    assert [(k["name"], k["segment"]) for k in info.kernels] == [("first", 0), ("second", 2)]
    source = compiled.files["segments.c"]
    assert "void segments_segment1(uint8_t *arena)\n{\n    /* " in source
    assert "(void)arena;" in source
    compile_for_cortex_m4(compiled, tmp_path / "m4")
    plain = compile_model_proto(_model(), path, Options(pin_inputs=True), "tests")
    x = np.random.default_rng(1).normal(size=(1, 6)).astype(np.float32)
    ours, theirs = (HostModel(build_host_library(c.files, tmp_path / name), c.info).run(x)
                    for c, name in ((compiled, "segmented"), (plain, "plain")))
    for a, b in zip(ours, theirs, strict=True):
        assert a.tobytes() == b.tobytes()
