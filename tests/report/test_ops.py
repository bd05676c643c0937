"""`ariel ops`: the table lists exactly the registered operators with what the registry says of
each, and every operator it lists builds: a model of it compiles to C, which is built for the
host and run against the expected outputs (ONNX's backend node cases for ai.onnx; for the
ai.onnx.ml operators, which have none in the onnx package, small models against ONNX
Runtime)."""

import json

import numpy as np
import onnx
import onnxruntime
import pytest
from click.testing import CliRunner
from onnx import TensorProto

from codegen.cli import main
from codegen.compiler.ops import REGISTRY
from codegen.errors import UnsupportedError
from codegen.report.ops import ONNX2C, TFLITE_MICRO, format_ops, operator_rows
from codegen.run.hostrun import HostModel, build_host_library
from tests.compiler.ops.test_ml import (
    CLASSIFIER_OUT,
    TREES,
    forest_attributes,
    leaf_weights,
    ml_model,
    svm_attributes,
)
from tests.conformance.test_onnx_node_cases import (
    ALL_CASES,
    check_outputs,
    freeze,
    shape_inputs,
    unsupported_types,
)
from tests.support import compile_onnx

ROWS = operator_rows()


def test_the_table_lists_the_registry():
    listed = {row.op for row in ROWS}
    registered = {f"{opdef.domain}.{op}" if opdef.domain else op
                  for op, opdef in REGISTRY.items() if not op.startswith("ariel.")}
    assert listed == registered
    assert sum(row.domain == "ai.onnx" for row in ROWS) >= 80  # the bar
    for row in ROWS:
        opdef = REGISTRY[row.op.rpartition(".")[2]]
        schema = onnx.defs.get_schema(opdef.op_type, domain=opdef.domain)
        assert row.unsupported_attributes == sorted(set(schema.attributes) - opdef.attributes)
        assert row.limits == opdef.limits
        if opdef.domain:
            assert row.int8 == "refused on float data"
        elif row.float == "float32":
            assert row.int8.startswith("int8") == opdef.int8, row


def test_what_the_table_says_of_known_operators():
    status = {row.op: (row.float, row.int8) for row in ROWS}
    assert status["Conv"] == ("float32", "int8")
    assert status["HardSwish"] == ("float32", "int8 (table)")
    assert status["LSTM"] == ("float32", "float island (int8 weights)")
    assert status["BatchNormalization"] == ("float32", "float island")
    assert status["BitwiseAnd"] == ("integers only", "as in float")
    assert status["ai.onnx.ml.Scaler"] == ("float32", "refused on float data")
    limits = {row.op: row.limits for row in ROWS}
    assert "tf_crop_and_resize" in limits["Resize"]


def test_the_command_prints_the_table_and_json():
    runner = CliRunner()
    text = runner.invoke(main, ["ops"])
    assert text.exit_code == 0
    assert text.stdout.rstrip("\n") == format_ops(ROWS)
    lines = text.stdout.splitlines()
    for row in ROWS:
        assert sum(line.split()[:1] == [row.op] for line in lines) == 1, row.op
    assert f"onnx2c {ONNX2C}" in text.stdout and f"about {TFLITE_MICRO}" in text.stdout
    as_json = runner.invoke(main, ["ops", "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == [row.to_dict() for row in ROWS]


def _node_cases(op: str):
    """The backend node cases of `op` alone, in a data type ariel holds."""
    return [case for case in ALL_CASES if {n.op_type for n in case.model.graph.node} == {op}
            and not unsupported_types(case.model)]


@pytest.mark.parametrize("row", [row for row in ROWS if row.domain == "ai.onnx"],
                         ids=lambda row: row.op)
def test_every_listed_standard_operator_builds(row, tmp_path):
    """The first of the operator's backend cases that ariel takes (shape inputs frozen, as
    the conformance suite does) builds for the host and gives the expected outputs; where
    none is in a type ariel holds, a node made here gives ONNX Runtime's."""
    refusals = []
    for case in _node_cases(row.op):
        frozen = shape_inputs(case.model)
        names = [value.name for value in case.model.graph.input]
        inputs, expected = case.data_sets[0]
        values = dict(zip(names, inputs, strict=True))
        model = freeze(case.model, {n: np.asarray(values[n]) for n in frozen})
        try:
            compiled = compile_onnx(model, "op")
        except UnsupportedError as exc:
            refusals.append(f"{case.name}: {exc}")
            continue
        host = HostModel(build_host_library(compiled.files, tmp_path), compiled.info)
        check_outputs(case, host.run(*[v for n, v in values.items() if n not in frozen]),
                      expected)
        return
    if row.op not in HAND_MADE:
        pytest.fail(f"no backend case of {row.op} builds: {refusals[:3]}")
    model, inputs = HAND_MADE[row.op]()
    compiled = compile_onnx(model, "op")
    got = HostModel(build_host_library(compiled.files, tmp_path), compiled.info).run(*inputs)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    feeds = {value.name: x for value, x in zip(model.graph.input, inputs, strict=True)}
    for ours, theirs in zip(got, session.run(None, feeds), strict=True):
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def _one_node(op: str, inputs: dict, constants: dict | None = None, **attrs):
    """A model of one `op` node reading `inputs` (graph inputs) then `constants`."""
    constants = constants or {}
    node = onnx.helper.make_node(op, [*inputs, *constants], ["y"], name="node", **attrs)
    graph = onnx.helper.make_graph(
        [node], "op",
        [onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(
            value.dtype), value.shape) for name, value in inputs.items()],
        [onnx.helper.make_empty_tensor_value_info("y")],
        [onnx.numpy_helper.from_array(value, name) for name, value in constants.items()])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    return model, list(inputs.values())


# The operators whose backend cases all use types ariel does not hold (Cast's and CastLike's
# float16, double or strings; ReduceLogSumExp's double): one node of each made here.
CAST_INPUT = np.array([[-2.7, -0.5, 0.0], [0.5, 3.9, 100.2]], np.float32)
HAND_MADE = {
    "Cast": lambda: _one_node("Cast", {"x": CAST_INPUT}, to=TensorProto.INT32),
    "CastLike": lambda: _one_node("CastLike", {"x": CAST_INPUT},
                                  {"like": np.zeros(1, np.int16)}),
    "ReduceLogSumExp": lambda: _one_node("ReduceLogSumExp", {"x": CAST_INPUT},
                                         {"axes": np.array([1], np.int64)}, keepdims=0),
}


RNG = np.random.default_rng(5)
X = RNG.normal(size=(4, 3)).astype(np.float32)
FLOAT_OUT = [("y", TensorProto.FLOAT, 2)]
ML_MODELS = {
    "LinearClassifier": lambda: ml_model(
        "LinearClassifier", X, CLASSIFIER_OUT, coefficients=RNG.normal(size=6).tolist(),
        intercepts=[0.5, -0.5], classlabels_ints=[0, 1], post_transform="SOFTMAX"),
    "LinearRegressor": lambda: ml_model("LinearRegressor", X, FLOAT_OUT,
                                        coefficients=[0.5, -1.0, 2.0], intercepts=[0.25]),
    "Scaler": lambda: ml_model("Scaler", X, FLOAT_OUT, offset=[0.5], scale=[2.0]),
    "Normalizer": lambda: ml_model("Normalizer", X, FLOAT_OUT, norm="L2"),
    "Binarizer": lambda: ml_model("Binarizer", X, FLOAT_OUT, threshold=0.1),
    "Imputer": lambda: ml_model("Imputer", X, FLOAT_OUT, imputed_value_floats=[1.0, 2.0, 3.0],
                                replaced_value_float=0.0),
    "ArrayFeatureExtractor": lambda: ml_model(
        "ArrayFeatureExtractor", X, FLOAT_OUT, constants={"i": np.array([2, 0], np.int64)}),
    "SVMClassifier": lambda: ml_model("SVMClassifier", X, CLASSIFIER_OUT,
                                      classlabels_ints=[1, 2],
                                      **svm_attributes([2, 3], 3, "RBF")),
    "SVMRegressor": lambda: ml_model(
        "SVMRegressor", X, FLOAT_OUT, n_supports=4,
        **{key: value for key, value in svm_attributes([4, 0], 3, "LINEAR").items()
           if key != "vectors_per_class"} | {"rho": [0.1]}),
    "TreeEnsembleClassifier": lambda: ml_model(
        "TreeEnsembleClassifier", X, CLASSIFIER_OUT, classlabels_int64s=[0, 1],
        **forest_attributes(TREES), **leaf_weights("class", [0, 1], RNG.uniform(size=(6, 2)))),
    "TreeEnsembleRegressor": lambda: ml_model(
        "TreeEnsembleRegressor", X, FLOAT_OUT, n_targets=1, aggregate_function="SUM",
        **forest_attributes(TREES), **leaf_weights("target", [0], RNG.normal(size=(6, 1)))),
}


@pytest.mark.parametrize("row", [row for row in ROWS if row.domain == "ai.onnx.ml"],
                         ids=lambda row: row.op)
def test_every_listed_ml_operator_builds(row, tmp_path):
    model = ML_MODELS[row.op.rpartition(".")[2]]()
    compiled = compile_onnx(model, "op")
    got = HostModel(build_host_library(compiled.files, tmp_path), compiled.info).run(X)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    for ours, theirs in zip(got, session.run(None, {"X": X}), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_the_readme_gives_the_table_counts():
    from pathlib import Path

    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    standard = sum(row.domain == "ai.onnx" for row in ROWS)
    int8 = sum(row.int8.startswith("int8") for row in ROWS)
    assert (f"{len(ROWS)} operators, {standard} of ai.onnx and {len(ROWS) - standard} of "
            f"ai.onnx.ml, {int8} of them with an int8 kernel or table") in readme
    assert format_ops(ROWS).splitlines()[-2] in readme
