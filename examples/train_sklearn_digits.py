"""Train three scikit-learn classifiers on the 8x8 digits and export each with skl2onnx's
defaults (ZipMap included) to examples/models/sklearn_{logreg,forest,mlp}_digits.onnx.

Run from the repository top with the `train` extra installed:
    .venv/bin/python examples/train_sklearn_digits.py
The run is deterministic (fixed seeds, one BLAS thread), so running it again rewrites the
same files. Each model is checked against scikit-learn on the 540 held-out images: the
labels onnxruntime gives must be predict()'s, the probabilities predict_proba()'s.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from codegen.datasets import digits_split

SEED = 0
MODELS = Path(__file__).resolve().parent / "models"
# The opsets are pinned so that the files do not change with the installed onnx package;
# everything else is skl2onnx's default (ZipMap on the probabilities included).
OPSETS = {"": 17, "ai.onnx.ml": 3}


def classifiers() -> dict:
    return {
        # StandardScaler before the regression, as scikit-learn's documentation advises:
        # exported as ai.onnx.ml Scaler, LinearClassifier, Normalizer, ZipMap.
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        # Small enough to ship: 12 trees of depth at most 6 (TreeEnsembleClassifier).
        "forest": RandomForestClassifier(n_estimators=12, max_depth=6, random_state=SEED),
        # MatMul, Add, Relu, Softmax, then ArgMax and ArrayFeatureExtractor for the label.
        "mlp": MLPClassifier(hidden_layer_sizes=(32,), max_iter=1000, random_state=SEED),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output-dir", type=Path, default=MODELS)
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = digits_split()
    x_train, x_test = x_train.reshape(len(x_train), 64), x_test.reshape(len(x_test), 64)
    failed = False
    for name, clf in classifiers().items():
        with threadpool_limits(limits=1):
            clf.fit(x_train, y_train)
        model = to_onnx(clf, x_train[:1], target_opset=OPSETS)
        model.doc_string = f"examples/train_sklearn_digits.py: {name} on the 8x8 digits"
        onnx.checker.check_model(model, full_check=True)
        path = args.output_dir / f"sklearn_{name}_digits.onnx"
        path.write_bytes(model.SerializeToString())

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        labels, maps = session.run(None, {"X": x_test})
        proba = np.array([[m[k] for k in sorted(m)] for m in maps], dtype=np.float32)
        diff = float(np.abs(proba - clf.predict_proba(x_test)).max())
        same = bool(np.array_equal(labels, clf.predict(x_test)))
        ops = ", ".join(dict.fromkeys(node.op_type for node in model.graph.node))
        print(f"{path.name}: {path.stat().st_size} bytes ({ops}); test accuracy "
              f"{clf.score(x_test, y_test):.4f}; onnxruntime vs scikit-learn: labels "
              f"{'equal' if same else 'DIFFER'}, max |probability difference| {diff:.1e}")
        failed |= not same or diff > 1e-5
    if failed:
        print("error: an ONNX model does not match scikit-learn", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
