"""`ariel inspect` counts work as MLPerf Tiny publishes it: the MACs and parameters of the
four reference models equal the figures in examples/README.md (from the benchmark)."""

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
    assert "1 unsupported: Det" in lines[-1]
