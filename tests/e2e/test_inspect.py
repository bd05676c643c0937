"""`ariel inspect` counts work as MLPerf Tiny publishes it: the MACs and parameters of the
four reference models equal the figures in examples/README.md (from the benchmark)."""

import numpy as np
import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.report.inspect import inspect
from codegen.resources import data_dir

PUBLISHED = {  # model: (MACs, params), MLPerf Tiny reference models
    "resnet8_cifar10": (12_501_632, 77_708),
    "ad_autoencoder_toycar": (264_192, 265_864),
    "vww_mobilenet_96": (7_489_664, 210_852),
    "kws_dscnn": (2_656_768, 22_606),
}


@pytest.mark.parametrize("model", PUBLISHED)
def test_macs_and_params_match_the_published_figures(model):
    result = inspect(data_dir("examples") / "models" / f"{model}.onnx")
    assert result.supported
    assert sum(r.macs for r in result.rows) == PUBLISHED[model][0]
    assert sum(r.params for r in result.rows) == PUBLISHED[model][1]


def test_inspect_marks_unsupported_nodes_without_failing(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="ok"),
             helper.make_node("Det", ["r"], ["y"], name="bad")]  # no TinyML model's operator
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [1])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert any(" ok " in line and line.rstrip().endswith("yes") for line in lines)
    assert any(" bad " in line and "NO: operator Det is not supported" in line for line in lines)
    assert "1 unsupported: Det" in lines[-2]
    assert lines[-1].startswith("a build stops with: node 'bad': operator Det is not supported")


def causal_pad_model(path):
    """A TCN's causal padding as PyTorch exports F.pad: the pads computed from constants
    (ConstantOfShape, Concat, Reshape, a reversing Slice, Transpose, Cast) and fed to Pad;
    then an operator ariel has no kernel for (Det, of the padded sequence as 4x4 blocks)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name, values):
        return numpy_helper.from_array(np.array(values, np.int64), name)

    nodes = [
        helper.make_node("ConstantOfShape", ["four"], ["zeros"], name="pad_zeros",
                         value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Concat", ["left", "zeros"], ["flat"], name="pad_concat", axis=0),
        helper.make_node("Reshape", ["flat", "pairs"], ["rows"], name="pad_rows"),
        helper.make_node("Slice", ["rows", "start", "end", "axis", "step"], ["reversed"],
                         name="pad_reverse"),
        helper.make_node("Transpose", ["reversed"], ["columns"], name="pad_transpose",
                         perm=[1, 0]),
        helper.make_node("Reshape", ["columns", "minus_one"], ["pads_i64"], name="pad_flat"),
        helper.make_node("Cast", ["pads_i64"], ["pads"], name="pad_cast", to=TensorProto.INT64),
        helper.make_node("Pad", ["x", "pads"], ["padded"], name="causal_pad"),
        helper.make_node("Reshape", ["padded", "blocks"], ["squares"], name="to_blocks"),
        helper.make_node("Det", ["squares"], ["y"], name="determinant"),
    ]
    initializers = [const("four", [4]), const("left", [2, 0]), const("pairs", [-1, 2]),
                    const("start", [-1]), const("end", [-(2 ** 62)]), const("axis", [0]),
                    const("step", [-1]), const("minus_one", [-1]), const("blocks", [4, 4, 4])]
    graph = helper.make_graph(
        nodes, "tcn_pad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 14])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_inspect_and_builds_fold_constants_alike_and_name_the_same_operator(tmp_path):
    """inspect folds the pad arithmetic as a build does, so only Det is unsupported; and
    inspect, a float build and an int8 build give the same one line for it."""
    model = causal_pad_model(tmp_path / "tcn.onnx")
    result = inspect(model)
    assert [r.op for r in result.rows] == ["Pad", "Reshape", "Det"]
    assert [r.op for r in result.rows if r.problem] == ["Det"]
    runner = CliRunner()
    shown = runner.invoke(main, ["inspect", str(model)])
    assert shown.exit_code == 0
    prefix = "a build stops with: "
    line = shown.stdout.splitlines()[-1]
    assert line.startswith(prefix + "node 'determinant': operator Det is not supported")
    np.save(tmp_path / "calib.npy", np.ones((2, 1, 4, 14), np.float32))
    for precision in ("float", "int8"):
        built = runner.invoke(main, ["build", str(model), "-o", str(tmp_path / precision),
                                     "--precision", precision,
                                     *(["--calib", str(tmp_path / "calib.npy")]
                                       if precision == "int8" else [])])
        assert built.exit_code == 1
        errors = [e for e in built.stderr.splitlines() if e.startswith("error: ")]
        assert errors == ["error: " + line[len(prefix):]], precision
