"""The ai.onnx.ml operators: one-node models through ariel's numpy reference and through the
generated C built for the host, both against ONNX Runtime (the runtime scikit-learn's
exports are checked on, and whose rules ariel follows where onnx.reference differs), and
against onnx.reference where the two runtimes agree. Forests are built by hand here in the
shapes scikit-learn's exporter writes them (tests do not need skl2onnx)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from codegen.compiler.reference import run_graph
from codegen.errors import UnsupportedError
from tests.support import compile_onnx, run_on_host, run_reference

ML = "ai.onnx.ml"
ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
        np.dtype(np.int32): TensorProto.INT32}


def ml_model(op: str, x: np.ndarray, outputs: list[tuple[str, int, int]], constants=None,
             ml_opset: int = 3, **attrs) -> onnx.ModelProto:
    """One ai.onnx.ml node reading graph input X (and `constants`, initializers), writing
    `outputs` (name, ONNX element type, rank; the sizes are left to shape inference)."""
    constants = constants or {}
    node = helper.make_node(op, ["X", *constants], [name for name, _, _ in outputs],
                            name=f"{op}_node", domain=ML, **attrs)
    graph = helper.make_graph(
        [node], "ml_test", [helper.make_tensor_value_info("X", ELEM[x.dtype], x.shape)],
        [helper.make_tensor_value_info(name, elem, [None] * rank) for name, elem, rank in outputs],
        [onnx.numpy_helper.from_array(v, n) for n, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(ML, ml_opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def onnxruntime_run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})


def ariel_reference(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    """ariel's numpy reference of the compiled graph."""
    compiled = compile_onnx(model)
    return run_graph(compiled.graph, [x])


def check(model: onnx.ModelProto, x: np.ndarray, tmp_path, atol: float = 1e-6,
          onnx_reference: bool = False) -> None:
    """C on the host and the numpy reference against ONNX Runtime (labels equal, scores
    within `atol`), and against onnx.reference when asked."""
    want = onnxruntime_run(model, x)
    oracles = [want, run_reference(model, [x])] if onnx_reference else [want]
    for got in (run_on_host(model, [x], tmp_path), ariel_reference(model, x)):
        for oracle in oracles:
            assert len(got) == len(oracle)
            for g, w in zip(got, oracle, strict=True):
                w = np.asarray(w)
                assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype)
                if g.dtype == np.int64:
                    np.testing.assert_array_equal(g, w)
                else:
                    np.testing.assert_allclose(g, w, rtol=1e-5, atol=atol)


def refusal(model: onnx.ModelProto) -> str:
    with pytest.raises(UnsupportedError) as info:
        compile_onnx(model)
    return str(info.value)


RNG = np.random.default_rng(14)
CLASSIFIER_OUT = [("label", TensorProto.INT64, 1), ("scores", TensorProto.FLOAT, 2)]


# -- LinearClassifier, LinearRegressor ----------------------------------------------------

@pytest.mark.parametrize("transform,labels", [
    ("NONE", [0, 1, 2]), ("LOGISTIC", [7, -3, 40]), ("SOFTMAX", [0, 1, 2]),
    ("SOFTMAX_ZERO", [7, -3, 40])])
def test_linear_classifier(transform, labels, tmp_path):
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    model = ml_model("LinearClassifier", x, CLASSIFIER_OUT,
                     coefficients=RNG.normal(size=15).astype(np.float32).tolist(),
                     intercepts=[0.5, -0.25, 0.0], classlabels_ints=labels,
                     post_transform=transform)
    check(model, x, tmp_path)


@pytest.mark.parametrize("transform", ["NONE", "LOGISTIC", "SOFTMAX"])
def test_linear_classifier_one_score(transform, tmp_path):
    """One row of coefficients (a binary model): ONNX Runtime writes [1 - p, p], p the
    logistic of the score under LOGISTIC and the score itself otherwise (onnx.reference
    differs); it takes such a model only with two labels, and so does ariel."""
    x = RNG.normal(size=(6, 3)).astype(np.float32)
    model = ml_model("LinearClassifier", x, CLASSIFIER_OUT, coefficients=[0.5, -1.0, 2.0],
                     intercepts=[0.1], classlabels_ints=[3, 8], post_transform=transform)
    check(model, x, tmp_path)
    three = ml_model("LinearClassifier", x, CLASSIFIER_OUT, coefficients=[0.5, -1.0, 2.0],
                     classlabels_ints=[0, 1, 2])
    assert "3 class labels for one row of coefficients is not supported; supported: two " \
        "labels (a binary classifier)" in refusal(three)


def test_linear_classifier_one_row_input(tmp_path):
    x = RNG.normal(size=(4,)).astype(np.float32)
    model = ml_model("LinearClassifier", x, CLASSIFIER_OUT,
                     coefficients=RNG.normal(size=8).astype(np.float32).tolist(),
                     intercepts=[0.0, 1.0], classlabels_ints=[0, 1], post_transform="SOFTMAX")
    check(model, x, tmp_path)


@pytest.mark.parametrize("targets,transform", [(1, "NONE"), (1, "SOFTMAX"), (3, "LOGISTIC")])
def test_linear_regressor(targets, transform, tmp_path):
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    model = ml_model("LinearRegressor", x, [("y", TensorProto.FLOAT, x.ndim)],
                     coefficients=RNG.normal(size=4 * targets).astype(np.float32).tolist(),
                     intercepts=RNG.normal(size=targets).astype(np.float32).tolist(),
                     targets=targets, post_transform=transform)
    check(model, x, tmp_path)


def test_probit_and_string_labels_are_named():
    x = np.zeros((1, 2), np.float32)
    probit = ml_model("LinearClassifier", x, CLASSIFIER_OUT, coefficients=[1.0, 2.0, 3.0, 4.0],
                      classlabels_ints=[0, 1], post_transform="PROBIT")
    text = refusal(probit)
    assert "'LinearClassifier_node' (LinearClassifier): post_transform PROBIT is not " \
           "supported; supported: post_transform NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO" in text
    strings = ml_model("LinearClassifier", x, [("label", TensorProto.STRING, 1),
                                               ("scores", TensorProto.FLOAT, 2)],
                       coefficients=[1.0, 2.0, 3.0, 4.0], classlabels_strings=["a", "b"])
    assert "string class labels (classlabels_strings) is not supported" in refusal(strings)


# -- Scaler, Normalizer, Binarizer, Imputer -----------------------------------------------

@pytest.mark.parametrize("offset,scale", [([0.5, -1.0, 2.0], [2.0, 0.5, -1.0]), ([1.0], [3.0])])
def test_scaler(offset, scale, tmp_path):
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    model = ml_model("Scaler", x, [("y", TensorProto.FLOAT, x.ndim)], offset=offset, scale=scale)
    check(model, x, tmp_path, onnx_reference=True)


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
def test_normalizer(norm, tmp_path):
    """ONNX Runtime's rules: MAX divides by the largest value, a zero row is copied."""
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    x[1] = 0.0
    x[2] = -np.abs(x[2])
    model = ml_model("Normalizer", x, [("y", TensorProto.FLOAT, x.ndim)], norm=norm)
    check(model, x, tmp_path)


def test_binarizer(tmp_path):
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    model = ml_model("Binarizer", x, [("y", TensorProto.FLOAT, x.ndim)], threshold=0.25)
    check(model, x, tmp_path, onnx_reference=True)
    unset = ml_model("Binarizer", x, [("y", TensorProto.FLOAT, x.ndim)])
    assert "explicit threshold" in refusal(unset)


@pytest.mark.parametrize("replaced", [float("nan"), 0.0])
def test_imputer_float(replaced, tmp_path):
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    x[0, 1] = x[2, 3] = replaced
    model = ml_model("Imputer", x, [("y", TensorProto.FLOAT, x.ndim)],
                     imputed_value_floats=[1.0, 2.0, 3.0, 4.0], replaced_value_float=replaced)
    check(model, x, tmp_path)


def test_imputer_int64(tmp_path):
    x = np.array([[1, -1, 5], [-1, 2, -1]], dtype=np.int64)
    model = ml_model("Imputer", x, [("y", TensorProto.INT64, x.ndim)], imputed_value_int64s=[9],
                     replaced_value_int64=-1)
    check(model, x, tmp_path)


# -- ArrayFeatureExtractor ----------------------------------------------------------------

def test_array_feature_extractor_run_time_data(tmp_path):
    x = RNG.normal(size=(3, 5)).astype(np.float32)
    model = ml_model("ArrayFeatureExtractor", x, [("y", TensorProto.FLOAT, x.ndim)],
                     {"indices": np.array([4, 0, 2, 2], dtype=np.int64)})
    check(model, x, tmp_path, onnx_reference=True)


def test_array_feature_extractor_run_time_index(tmp_path):
    """scikit-learn's label look-up: a constant class table indexed by a computed index;
    an index outside the table gives 0 (ONNX Runtime would stop with an error)."""
    classes = np.array([10, 20, 30], dtype=np.int64)
    node = helper.make_node("ArrayFeatureExtractor", ["classes", "X"], ["y"], domain=ML)
    index = helper.make_tensor_value_info("X", TensorProto.INT64, [1, 1])
    graph = helper.make_graph([node], "afe", [index],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 1])],
                              [onnx.numpy_helper.from_array(classes, "classes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(ML, 1)])
    model.ir_version = 8
    for value in (0, 2):
        check(model, np.array([[value]], dtype=np.int64), tmp_path / str(value))
    outside = run_on_host(model, [np.array([[3]], dtype=np.int64)], tmp_path / "outside")
    np.testing.assert_array_equal(outside[0], [[0]])


def test_array_feature_extractor_constant_index_out_of_range():
    x = np.zeros((2, 3), np.float32)
    model = ml_model("ArrayFeatureExtractor", x, [("y", TensorProto.FLOAT, x.ndim)],
                     {"indices": np.array([3], dtype=np.int64)})
    assert "index 3 into an axis of 3 is not supported; supported: indices 0..2" in \
        refusal(model)


# -- TreeEnsembleClassifier, TreeEnsembleRegressor ----------------------------------------

def forest_attributes(trees: list[list[tuple]], mode: str = "BRANCH_LEQ",
                      nan_true: bool = False) -> dict:
    """Node attributes for trees given as lists of (node id, feature, threshold, true id,
    false id) for decisions and (node id,) for leaves."""
    attrs: dict[str, list] = {key: [] for key in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true")}
    for tree, nodes in enumerate(trees):
        for entry in nodes:
            node_id, *test = entry
            feature, threshold, true_id, false_id = test or (0, 0.0, 0, 0)
            attrs["nodes_treeids"].append(tree)
            attrs["nodes_nodeids"].append(node_id)
            attrs["nodes_featureids"].append(feature)
            attrs["nodes_values"].append(threshold)
            attrs["nodes_modes"].append(mode if test else "LEAF")
            attrs["nodes_truenodeids"].append(true_id)
            attrs["nodes_falsenodeids"].append(false_id)
            attrs["nodes_missing_value_tracks_true"].append(int(nan_true and bool(test)))
    return attrs


# Two trees over three features: tree 0 has 3 decisions and 4 leaves, tree 1 one decision.
TREES = [[(0, 0, 0.25, 1, 2), (1, 1, -0.5, 3, 4), (2, 2, 0.0, 5, 6), (3,), (4,), (5,), (6,)],
         [(0, 2, 0.5, 1, 2), (1,), (2,)]]
TREE_LEAVES = [(0, 3), (0, 4), (0, 5), (0, 6), (1, 1), (1, 2)]


def leaf_weights(prefix: str, targets: list[int], weights: np.ndarray) -> dict:
    """One weight per (leaf, target), in TREE_LEAVES order."""
    attrs = {f"{prefix}_treeids": [], f"{prefix}_nodeids": [], f"{prefix}_ids": [],
             f"{prefix}_weights": []}
    for (tree, node), row in zip(TREE_LEAVES, weights, strict=True):
        for target, weight in zip(targets, row, strict=True):
            attrs[f"{prefix}_treeids"].append(tree)
            attrs[f"{prefix}_nodeids"].append(node)
            attrs[f"{prefix}_ids"].append(target)
            attrs[f"{prefix}_weights"].append(float(weight))
    return attrs


def tree_inputs() -> np.ndarray:
    """Rows that reach every leaf, with values on the thresholds themselves."""
    x = RNG.uniform(-1, 1, size=(24, 3)).astype(np.float32)
    x[:3] = [[0.25, -0.5, 0.0], [0.25, 0.0, 0.5], [-1.0, -0.5, 0.5]]
    return x


@pytest.mark.parametrize("transform", ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"])
def test_tree_classifier_multiclass(transform, tmp_path):
    """A random forest's shape: every leaf scores every class; custom labels."""
    probabilities = RNG.dirichlet(np.ones(3), size=6).astype(np.float32) / 2
    probabilities[0, 1] = 0.0  # zeros are left out of sparse tables
    model = ml_model("TreeEnsembleClassifier", tree_inputs(), CLASSIFIER_OUT,
                     classlabels_int64s=[4, 5, 9], post_transform=transform,
                     **forest_attributes(TREES),
                     **leaf_weights("class", [0, 1, 2], probabilities))
    check(model, tree_inputs(), tmp_path)


@pytest.mark.parametrize("mode", ["BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ",
                                  "BRANCH_NEQ"])
def test_tree_branch_modes(mode, tmp_path):
    x = tree_inputs()
    model = ml_model("TreeEnsembleClassifier", x, CLASSIFIER_OUT,
                     classlabels_int64s=[0, 1, 2], **forest_attributes(TREES, mode),
                     **leaf_weights("class", [0, 1, 2], RNG.uniform(size=(6, 3))))
    check(model, x, tmp_path)


@pytest.mark.parametrize("nan_true", [False, True])
def test_tree_nan_inputs(nan_true, tmp_path):
    """NaN goes to the false child, or to the true one where missing values track true."""
    x = tree_inputs()
    x[::3, 0] = np.nan
    x[1::4, 2] = np.nan
    model = ml_model("TreeEnsembleClassifier", x, CLASSIFIER_OUT,
                     classlabels_int64s=[0, 1, 2], **forest_attributes(TREES, nan_true=nan_true),
                     **leaf_weights("class", [0, 1, 2], RNG.uniform(size=(6, 3))))
    check(model, x, tmp_path)


@pytest.mark.parametrize("ids", [[0], [1], [0, 1]])
@pytest.mark.parametrize("base", [[], [0.3], [0.2, -0.1]])
@pytest.mark.parametrize("transform,signs", [("NONE", "positive"), ("LOGISTIC", "positive"),
                                             ("LOGISTIC", "mixed"), ("SOFTMAX", "mixed")])
def test_tree_classifier_two_classes(ids, base, transform, signs, tmp_path):
    """ONNX Runtime's two-class rules, over the forms exporters write (scikit-learn's
    forests: class 0's probability, all positive, no base value; gradient boosting: one
    class, mixed signs, one base value, LOGISTIC) and the others the rules distinguish.
    The C is built for a few of them; the reference checks all (the same decisions)."""
    x = tree_inputs()
    weights = RNG.uniform(0.01, 0.5, size=(6, len(ids))) if signs == "positive" \
        else RNG.normal(size=(6, len(ids)))
    extra = leaf_weights("class", ids, weights)
    if base:
        extra["base_values"] = base
    model = ml_model("TreeEnsembleClassifier", x, CLASSIFIER_OUT, classlabels_int64s=[3, 6],
                     post_transform=transform, **forest_attributes(TREES), **extra)
    want = onnxruntime_run(model, x)
    got = ariel_reference(model, x)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
    if (ids, base, transform) in (([0], [0.3], "LOGISTIC"), ([1], [0.2, -0.1], "SOFTMAX")):
        check(model, x, tmp_path)  # gradient boosting's form, and the pair rebuilt


@pytest.mark.parametrize("aggregate,targets", [("SUM", 1), ("AVERAGE", 2), ("MIN", 1),
                                               ("MAX", 2)])
def test_tree_regressor(aggregate, targets, tmp_path):
    x = tree_inputs()
    model = ml_model("TreeEnsembleRegressor", x, [("y", TensorProto.FLOAT, x.ndim)],
                     n_targets=targets, aggregate_function=aggregate,
                     base_values=[0.5, -2.0][:targets], **forest_attributes(TREES),
                     **leaf_weights("target", list(range(targets)),
                                    RNG.normal(size=(6, targets))))
    check(model, x, tmp_path, atol=1e-5)


def test_tree_refusals():
    x = np.zeros((1, 3), np.float32)
    mixed = forest_attributes(TREES)
    mixed["nodes_modes"][0] = "BRANCH_LT"
    model = ml_model("TreeEnsembleClassifier", x, CLASSIFIER_OUT, classlabels_int64s=[0, 1, 2],
                     **mixed, **leaf_weights("class", [0, 1, 2], np.ones((6, 3))))
    assert "mixed branch modes (BRANCH_LEQ, BRANCH_LT) is not supported" in refusal(model)
    partial = leaf_weights("class", [0, 1, 2], np.ones((6, 3)))
    dropped = [i for i, (node, target) in enumerate(zip(partial["class_nodeids"],
                                                         partial["class_ids"], strict=True))
               if node in (3, 1) and target == 2]  # each tree's first leaf, class 2
    partial = {key: [v for i, v in enumerate(values) if i not in dropped]
               for key, values in partial.items()}
    model = ml_model("TreeEnsembleClassifier", x, CLASSIFIER_OUT, classlabels_int64s=[0, 1, 2],
                     **forest_attributes(TREES), **partial)
    assert "classes 2 scored by only some leaves of every tree" in refusal(model)
    model = ml_model("TreeEnsembleRegressor", x, [("y", TensorProto.FLOAT, x.ndim)],
                     aggregate_function="MEDIAN", **forest_attributes(TREES),
                     **leaf_weights("target", [0], np.ones((6, 1))))
    assert "aggregate_function MEDIAN is not supported; supported: aggregate_function SUM, " \
           "AVERAGE, MIN, MAX" in refusal(model)


# -- ZipMap and the frontend --------------------------------------------------------------

def zipmap_model(consumer: bool = False) -> onnx.ModelProto:
    x = np.zeros((1, 2), np.float32)
    base = ml_model("LinearClassifier", x, CLASSIFIER_OUT, coefficients=[1.0, 2.0, 3.0, 4.0],
                    intercepts=[0.5, -0.5], classlabels_ints=[0, 1], post_transform="SOFTMAX")
    zipmap = helper.make_node("ZipMap", ["scores"], ["maps"], name="zip", domain=ML,
                              classlabels_int64s=[0, 1])
    base.graph.node.append(zipmap)
    maps = helper.make_value_info("maps", helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64,
                                   helper.make_tensor_type_proto(TensorProto.FLOAT, []))))
    del base.graph.output[1]
    base.graph.output.append(maps)
    if consumer:
        base.graph.node.append(helper.make_node("Identity", ["maps"], ["copy"]))
    return base


def test_zipmap_is_replaced_by_its_probabilities(tmp_path):
    from codegen.compiler.frontend import drop_zipmaps

    model = zipmap_model()
    notes = drop_zipmaps(model)
    assert notes == ["ZipMap 'zip' dropped: output 'maps' (a sequence of maps from class label "
                     "to probability) is replaced by the float tensor 'scores', column j "
                     "holding the probability of class classlabels_int64s[j]"]
    compiled = compile_onnx(zipmap_model())
    assert [o.name for o in compiled.info.outputs] == ["label", "scores"]
    x = np.array([[0.5, -1.0]], np.float32)
    label, scores = run_on_host(zipmap_model(), [x], tmp_path)
    maps = onnxruntime_run(zipmap_model(), x)[1]
    np.testing.assert_allclose(scores, [[maps[0][0], maps[0][1]]], rtol=1e-6)


def test_zipmap_read_by_another_node_is_refused():
    from codegen.compiler.frontend import drop_zipmaps

    with pytest.raises(UnsupportedError, match="a ZipMap whose output other nodes read"):
        drop_zipmaps(zipmap_model(consumer=True))


@pytest.mark.parametrize("source,to", [
    (np.array([[-3.75, 0.0, 2.5, 7.0, 100.9]], np.float32), TensorProto.INT64),
    (np.array([0.0, -0.5, np.nan, 3.0], np.float32), TensorProto.BOOL),
    (np.array([0, 5, -2], np.int32), TensorProto.INT64),
    (np.array([[0, 300, -2]], np.int64), TensorProto.UINT8)])
def test_cast_to_integer_types(source, to, tmp_path):
    """The casts scikit-learn's exports make around labels (int32 -> int64, float -> int),
    and the conversions C and ONNX share: truncation toward zero, NaN is true, wrapping."""
    from tests.support import assert_matches_reference, single_node_model

    model = single_node_model("Cast", {"x": source}, to=to)
    assert_matches_reference(model, [source], tmp_path)


# -- SVMClassifier, SVMRegressor ----------------------------------------------------------

def svm_attributes(vectors_per_class: list[int], features: int, kind: str) -> dict:
    count = sum(vectors_per_class)
    classes = len(vectors_per_class)
    return {"kernel_type": kind, "kernel_params": [0.7, 0.25, 3.0],
            "support_vectors": RNG.uniform(-1, 1, size=count * features).tolist(),
            "coefficients": RNG.normal(size=(classes - 1) * count).tolist(),
            "rho": RNG.normal(size=classes * (classes - 1) // 2).tolist(),
            "vectors_per_class": vectors_per_class}


@pytest.mark.parametrize("kind,vectors_per_class,transform", [
    ("RBF", [3, 4], "NONE"), ("LINEAR", [2, 3], "LOGISTIC"), ("POLY", [2, 2, 3], "NONE"),
    ("SIGMOID", [3, 1, 2, 2], "SOFTMAX")])
def test_svm_classifier(kind, vectors_per_class, transform, tmp_path):
    """One against one, labels by votes; two classes write [-s, s] or [1 - s, s]."""
    x = RNG.uniform(-1, 1, size=(16, 5)).astype(np.float32)
    labels = [10 * (c + 1) for c in range(len(vectors_per_class))]
    model = ml_model("SVMClassifier", x, CLASSIFIER_OUT, classlabels_ints=labels,
                     post_transform=transform, **svm_attributes(vectors_per_class, 5, kind))
    check(model, x, tmp_path, atol=1e-5)


@pytest.mark.parametrize("kind,one_class", [("RBF", 0), ("POLY", 0), ("LINEAR", 1)])
def test_svm_regressor(kind, one_class, tmp_path):
    x = RNG.uniform(-1, 1, size=(8, 4)).astype(np.float32)
    attrs = svm_attributes([6, 0], 4, kind)
    del attrs["vectors_per_class"]
    attrs["rho"] = attrs["rho"][:1]
    model = ml_model("SVMRegressor", x, [("y", TensorProto.FLOAT, 2)], n_supports=6,
                     one_class=one_class, **attrs)
    check(model, x, tmp_path, atol=1e-5)


def test_svm_probabilities_are_refused():
    x = np.zeros((1, 5), np.float32)
    model = ml_model("SVMClassifier", x, CLASSIFIER_OUT, classlabels_ints=[0, 1],
                     prob_a=[1.0], prob_b=[0.5], **svm_attributes([2, 2], 5, "RBF"))
    assert "probability estimates (prob_a, prob_b: an SVC trained with probability=True) " \
           "is not supported; supported: decision scores (SVC's default)" in refusal(model)
