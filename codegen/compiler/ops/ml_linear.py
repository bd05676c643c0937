"""ai.onnx.ml LinearClassifier and LinearRegressor, float32: per row of x, one inner product
per class (or target) with its coefficients, plus its intercept; then the classifier's label
and the post_transform, as ONNX Runtime computes them:

- LinearClassifier with several classes: label = classlabels[first maximum of the raw
  scores]; the post_transform is applied to the scores after the label is chosen.
- with one class (one row of coefficients, which ONNX Runtime takes with exactly two labels):
  label = classlabels[1] if the raw score > 0 else classlabels[0]; the scores output is the
  pair [1 - p, p] with p = logistic(raw) under LOGISTIC and p = raw under any other
  post_transform (ONNX Runtime's rule, which onnx.reference does not follow).
- LinearRegressor: the post_transform applies to rows of two or more targets only.

Labels are int64, as ONNX declares them; string labels are refused (ml_scores.py)."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops import ml_scores
from codegen.compiler.ops.base import (
    Kernel,
    Names,
    OpDef,
    attr,
    register,
    require_dtype,
    unsupported,
)

TEMPLATE = "kernels/ml_linear.c.j2"
# Input types ONNX Runtime reads (converted to float before the products).
INPUT_TYPES = ("float32", "int32", "int64")


def rows_and_features(x: Tensor) -> tuple[int, int]:
    """A [N, F] input is N rows of F features; a [F] input one row (ONNX Runtime's reading)."""
    return (1, x.shape[0]) if x.rank == 1 else (x.shape[0], x.shape[1])


class LinearModel(OpDef):
    """What the two share: the coefficient matrix [targets, F], the intercepts, the checks."""

    domain = "ai.onnx.ml"

    def targets(self, node: Node, features: int) -> int:
        raise NotImplementedError

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        require_dtype(node, x, INPUT_TYPES)
        if x.rank not in (1, 2):
            raise unsupported(node, f"a rank-{x.rank} input", "inputs [N, F] or [F]")
        features = rows_and_features(x)[1]
        coefficients = len(attr(node, "coefficients", []))
        if coefficients == 0 or coefficients % features:
            raise unsupported(node, f"{coefficients} coefficients for {features} features",
                              "a whole number of rows of one coefficient per feature")
        targets = self.targets(node, features)
        if len(attr(node, "intercepts", [])) not in (0, targets):
            raise unsupported(node, f"{len(node.attrs['intercepts'])} intercepts for "
                              f"{targets} outputs", "one intercept per output, or none")

    def matrix(self, node: Node, features: int) -> tuple[np.ndarray, np.ndarray]:
        """(coefficients [targets, F], intercepts [targets]), float32."""
        w = np.asarray(node.attrs["coefficients"], dtype=np.float32).reshape(-1, features)
        b = np.asarray(attr(node, "intercepts", None) or np.zeros(len(w)), dtype=np.float32)
        return w, b

    def raw_scores(self, node: Node, x: np.ndarray) -> np.ndarray:
        rows = x.reshape(1, -1) if x.ndim == 1 else x
        w, b = self.matrix(node, rows.shape[1])
        return (rows.astype(np.float32) @ w.T + b).astype(np.float32)

    def kernel(self, node: Node, graph: Graph, names: Names, label: list[str],
               scores: list[str], width: int, notes: list[str],
               weights: dict[str, np.ndarray]) -> Kernel:
        """The shared template: inner products into the scores row, then `label` and
        `scores` statements (C, per row, `s` the row of raw scores)."""
        x = graph.tensor(node.inputs[0])
        rows, features = rows_and_features(x)
        w, b = self.matrix(node, features)
        context = {"rows": rows, "features": features, "targets": len(w), "width": width,
                   "out": "y1" if label else "y0",
                   "load": "x[f]" if x.dtype == "float32" else "(float)x[f]",
                   "x_ctype": x.ctype, "label": label, "scores": scores,
                   "shape": list(x.shape), "notes": notes}
        return Kernel(TEMPLATE, context, {"coefficients": w, "intercepts": b, **weights},
                      multiplicand="coefficients")

    def macs(self, node: Node, graph: Graph) -> int:
        rows, features = rows_and_features(graph.tensor(node.inputs[0]))
        return rows * len(attr(node, "coefficients", []))


@register("LinearClassifier")
class LinearClassifier(LinearModel):
    limits = "string class labels; post_transform PROBIT"
    attributes = frozenset({"classlabels_ints", "classlabels_strings", "coefficients",
                            "intercepts", "multi_class", "post_transform"})

    def targets(self, node: Node, features: int) -> int:
        return len(node.attrs["coefficients"]) // features

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        ml_scores.post_transform(node)
        labels = ml_scores.integer_labels(node)
        classes = self.targets(node, rows_and_features(graph.tensor(node.inputs[0]))[1])
        count = 0 if labels is None else len(labels)
        if classes > 1 and count < classes:
            raise unsupported(node, f"{count} class labels for {classes} classes",
                              "one label per class")
        if classes == 1 and count != 2:
            raise unsupported(node, f"{count} class labels for one row of coefficients",
                              "two labels (a binary classifier)")

    def labels(self, node: Node) -> np.ndarray:
        return ml_scores.integer_labels(node)

    def infer(self, node: Node, inputs: list[Tensor | None]):
        rows, features = rows_and_features(inputs[0])
        classes = self.targets(node, features)
        return [((rows,), "int64"), ((rows, max(classes, 2)), "float32")]

    def reference(self, node: Node, x):
        raw = self.raw_scores(node, x)
        labels = self.labels(node)
        if raw.shape[1] == 1:
            label = np.where(raw[:, 0] > 0, labels[1], labels[0]).astype(np.int64)
            p = ml_scores.logistic(raw) if ml_scores.post_transform(node) == "LOGISTIC" else raw
            return [label, np.concatenate([1 - p, p], axis=1).astype(np.float32)]
        label = labels[ml_scores.first_maximum(raw)]
        return [label, ml_scores.transform(ml_scores.post_transform(node), raw)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        features = rows_and_features(graph.tensor(node.inputs[0]))[1]
        classes = self.targets(node, features)
        labels = self.labels(node)
        mode = ml_scores.post_transform(node)
        if classes == 1:
            positive, negative = int(labels[1]), int(labels[0])
            label = [f"y0[n] = s[0] > 0.0f ? (int64_t){positive} : (int64_t){negative};"]
            p = "ariel_ml_logistic(s[0])" if mode == "LOGISTIC" else "s[0]"
            notes = [f"one score s: label {positive} if s > 0, else {negative}; scores "
                     f"[1 - p, p] with p = {p.replace('[0]', '')}"]
            return self.kernel(node, graph, names, label, [f"s[1] = {p};", "s[0] = 1.0f - s[1];"],
                               2, notes, {})
        table = names.weight("labels")
        label = ["uint32_t best = 0u;",
                 f"for (uint32_t c = 1; c < {classes}u; ++c) {{",
                 "    best = s[c] > s[best] ? c : best;",
                 "}",
                 ml_scores.label_statement("y0[n]", "best", labels[:classes], table)]
        weights = ({} if ml_scores.labels_are_indices(labels[:classes])
                   else {"labels": labels[:classes]})
        notes = [f"label: the class of the first largest raw score; then post_transform {mode}"]
        return self.kernel(node, graph, names, label,
                           ml_scores.transform_statements(mode, "s", classes), classes, notes,
                           weights)


@register("LinearRegressor")
class LinearRegressor(LinearModel):
    limits = "post_transform PROBIT"
    attributes = frozenset({"coefficients", "intercepts", "targets", "post_transform"})

    def targets(self, node: Node, features: int) -> int:
        return attr(node, "targets", 1)

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        features = rows_and_features(graph.tensor(node.inputs[0]))[1]
        if len(node.attrs["coefficients"]) != self.targets(node, features) * features:
            raise unsupported(node, f"{len(node.attrs['coefficients'])} coefficients for "
                              f"{self.targets(node, features)} targets of {features} features",
                              "targets x features coefficients")
        ml_scores.post_transform(node)

    def mode(self, node: Node, targets: int) -> str:
        """ONNX Runtime transforms rows of two or more scores only."""
        return ml_scores.post_transform(node) if targets > 1 else "NONE"

    def infer(self, node: Node, inputs: list[Tensor | None]):
        rows, features = rows_and_features(inputs[0])
        return [((rows, self.targets(node, features)), "float32")]

    def reference(self, node: Node, x):
        raw = self.raw_scores(node, x)
        return [ml_scores.transform(self.mode(node, raw.shape[1]), raw)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        targets = self.targets(node, rows_and_features(graph.tensor(node.inputs[0]))[1])
        mode = self.mode(node, targets)
        return self.kernel(node, graph, names, [],
                           ml_scores.transform_statements(mode, "s", targets), targets,
                           [f"post_transform {mode}"], {})
