"""Train a scikit-learn MLP on the 8x8 digits and export it to examples/models/digits_mlp.onnx.

Run from the repository top with the `train` extra installed:
    .venv/bin/python examples/train_digits_mlp.py
The run is deterministic (fixed seed, one BLAS thread), so running it again rewrites the same
file.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import skl2onnx
from onnx import TensorProto
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from codegen.datasets import digits_split

SEED = 0
OUT = Path(__file__).resolve().parent / "models" / "digits_mlp.onnx"


def train(x: np.ndarray, y: np.ndarray) -> MLPClassifier:
    # Adam with sklearn's default tolerance stops on its own after a few hundred epochs.
    clf = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", max_iter=1000,
                        random_state=SEED)
    return clf.fit(x, y)


def export(clf: MLPClassifier) -> onnx.ModelProto:
    """The classifier as an ONNX graph from float input [1,64] to probabilities [1,10]."""
    model = to_onnx(clf, initial_types=[("input", FloatTensorType([1, 64]))],
                    target_opset={"": 13, "ai.onnx.ml": 1}, options={"zipmap": False})
    # skl2onnx also emits the predicted label (ArgMax, then ArrayFeatureExtractor from the
    # ai.onnx.ml domain to look the class up, Reshape, Cast to int64). A microcontroller
    # application takes the argmax itself, so keep only the part of the graph that computes
    # the probabilities.
    model = onnx.utils.Extractor(model).extract_model(["input"], ["probabilities"])
    graph = model.graph

    # What remains also holds two no-ops: a Cast of the float input to float and an Identity
    # that renames the Softmax output to "probabilities". Drop them so the graph is only
    # MatMul, Add, Relu, MatMul, Add, Softmax.
    rename = {}
    for node in list(graph.node):
        no_op_cast = (node.op_type == "Cast"
                      and onnx.helper.get_attribute_value(node.attribute[0]) == TensorProto.FLOAT
                      and node.input[0] == "input")
        if node.op_type == "Identity" or no_op_cast:
            rename[node.output[0]] = node.input[0]
            graph.node.remove(node)
    for node in graph.node:
        node.input[:] = [rename.get(name, name) for name in node.input]
        if node.op_type == "Softmax":
            # The Identity we removed gave the output its name; the Softmax writes it directly.
            node.output[0] = "probabilities"
            # skl2onnx calls this node "Relu1"; ariel names C functions after nodes.
            node.name = "Softmax"
    # The ai.onnx.ml domain was only needed by the label branch.
    kept = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    # The Extractor lists the graph's input and output again as value_info and signs the
    # model as its own; neither says anything useful.
    del graph.value_info[:]
    model.producer_name, model.producer_version = "skl2onnx", skl2onnx.__version__
    model.doc_string = "skl2onnx export, cut to the probabilities (examples/train_digits_mlp.py)"
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = digits_split()
    # The MLP sees the 64 pixels as a flat vector (row after row).
    x_train, x_test = x_train.reshape(len(x_train), 64), x_test.reshape(len(x_test), 64)
    # One BLAS thread: sums of the same products in another order would change the weights'
    # last bits, and so the file's bytes.
    with threadpool_limits(limits=1):
        clf = train(x_train, y_train)
    print(f"train accuracy {clf.score(x_train, y_train):.4f}, "
          f"test accuracy {clf.score(x_test, y_test):.4f} "
          f"({len(x_train)} train, {len(x_test)} test, {clf.n_iter_} epochs)")

    model = export(clf)
    args.output.write_bytes(model.SerializeToString())
    session = ort.InferenceSession(str(args.output), providers=["CPUExecutionProvider"])
    onnx_proba = np.concatenate(
        [session.run(["probabilities"], {"input": row[None]})[0] for row in x_test])
    sk_proba = clf.predict_proba(x_test)
    diff = float(np.abs(onnx_proba - sk_proba).max())
    ops = ", ".join(node.op_type for node in model.graph.node)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes; {ops}); "
          f"onnxruntime vs predict_proba on the test set: max |difference| {diff:.2e}")
    if diff > 1e-5 or not np.array_equal(onnx_proba.argmax(1), sk_proba.argmax(1)):
        print("error: the ONNX model does not match scikit-learn", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
