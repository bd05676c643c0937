"""What the ai.onnx.ml classifiers and regressors share: their post_transform (the numpy twin
of firmware/ariel_ml.h, float32 as ONNX Runtime computes it, and the C call that applies it
to a row of scores), the first-maximum rule that picks a label, and the checks of the
attributes that name class labels.

ONNX Runtime is the oracle here, where onnx.reference sometimes differs (which scores a
label is chosen from, the binary cases): the models these operators come from are run there.
PROBIT is not taken (ONNX Runtime computes it with its own approximation of erfinv)."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Node
from codegen.compiler.ops.base import attr, unsupported

# post_transform values ariel computes, and the runtime function that does each.
TRANSFORMS = {"NONE": None, "LOGISTIC": "ariel_ml_logistic_all", "SOFTMAX": "ariel_ml_softmax",
              "SOFTMAX_ZERO": "ariel_ml_softmax_zero"}
LABEL_ATTRIBUTES = ("classlabels_ints", "classlabels_int64s", "classlabels_strings")


def post_transform(node: Node, allowed: tuple[str, ...] = tuple(TRANSFORMS)) -> str:
    """The node's post_transform, refused with one line when ariel does not compute it."""
    value = attr(node, "post_transform", "NONE")
    if value not in allowed:
        raise unsupported(node, f"post_transform {value}",
                          f"post_transform {', '.join(allowed)}")
    return value


def transform_statements(mode: str, row: str, n: int) -> list[str]:
    """The C statement that applies `mode` to the `n` scores starting at `row`."""
    function = TRANSFORMS[mode]
    return [] if function is None else [f"{function}({row}, {n}u);"]


def transform(mode: str, scores: np.ndarray) -> np.ndarray:
    """`mode` applied to each row of `scores` [N, C] (float32), as the C does."""
    s = scores.astype(np.float32)
    if mode == "LOGISTIC":
        return logistic(s)
    if mode in ("SOFTMAX", "SOFTMAX_ZERO"):
        out = np.empty_like(s)
        for i, row in enumerate(s):
            out[i] = softmax_zero(row) if mode == "SOFTMAX_ZERO" else softmax(row)
        return out
    return s


def logistic(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        p = np.float32(1) / (np.float32(1) + np.exp(-np.abs(v)))
    return np.where(v < 0, np.float32(1) - p, p).astype(np.float32)


def softmax(row: np.ndarray) -> np.ndarray:
    e = np.exp(row - row.max(initial=np.float32(-3.40282347e38)))
    return (e / e.sum(dtype=np.float32)).astype(np.float32)


def softmax_zero(row: np.ndarray) -> np.ndarray:
    largest = row.max(initial=np.float32(-3.40282347e38))
    scored = (row > np.float32(1e-7)) | (row < np.float32(-1e-7))
    out = np.where(scored, np.exp(row - largest), row * np.exp(-largest)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (out / out[scored].sum(dtype=np.float32)).astype(np.float32)


def first_maximum(scores: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
    """Per row, the first column holding the largest score (the strict > scan ONNX Runtime
    and the C make), among `candidates` columns only when given."""
    s = scores.astype(np.float32)
    if candidates is not None:
        s = np.where(candidates, s, -np.inf)
    return np.argmax(s, axis=-1)


def integer_labels(node: Node, attribute_names: tuple[str, ...] = LABEL_ATTRIBUTES
                   ) -> np.ndarray | None:
    """The node's integer class labels (int64), None when it names none; string labels are
    refused, since C outputs integers: the label output would have to hold text."""
    if attr(node, "classlabels_strings", None):
        raise unsupported(node, "string class labels (classlabels_strings)",
                          "integer class labels: train on integer labels (for example "
                          "through sklearn's LabelEncoder) and export again")
    for name in attribute_names:
        if attr(node, name, None):
            return np.asarray(node.attrs[name], dtype=np.int64)
    return None


def labels_are_indices(labels: np.ndarray) -> bool:
    """True when class j's label is j, so that no table of labels is needed."""
    return bool(np.array_equal(labels, np.arange(len(labels))))


def label_statement(out: str, index: str, labels: np.ndarray, table: str) -> str:
    """The C statement storing the label of class `index` into `out`: the index itself when
    the labels are 0..n-1, else a look-up in the constant array `table` (of `labels`)."""
    if labels_are_indices(labels):
        return f"{out} = (int64_t){index};"
    return f"{out} = {table}[{index}];"
