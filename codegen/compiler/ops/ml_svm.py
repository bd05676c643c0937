"""ai.onnx.ml SVMClassifier and SVMRegressor (support vector machines as libsvm and
scikit-learn's SVC and SVR train them), float32, kernels LINEAR, RBF, POLY and SIGMOID:

    k(x, v) = x.v | exp(-gamma |x - v|^2) | (gamma x.v + coef0)^degree | tanh(gamma x.v + coef0)

The kernel streams over the support vectors, computing each k(x, v) once and adding it,
times its coefficients, into the scores it takes part in, so no buffer of kernel values is
needed. The regressor's score is rho[0] + sum of coef[v] k(x, v) (one_class: +1 if > 0,
else -1). The classifier is one-against-one: one score per pair of classes i < j, the sum
over the support vectors of both classes plus rho[pair]; a score > 0 is a vote for i, else
for j; the label is the class with the most votes (the first of equals). As ONNX Runtime
writes them, the scores output holds the pair scores after post_transform; with two classes
it holds [-s, s] (post_transform NONE) or [1 - p, p] with p = logistic(s) (LOGISTIC).

ONNX Runtime adds each pair's products in double precision; ariel adds in float, so a score
can differ in its last bits and a vote may differ where a score is within rounding of 0.
Probability estimates (prob_a, prob_b: SVC(probability=True)) and the linear mode without
support vectors (liblinear) are refused."""

from __future__ import annotations

import numpy as np

from codegen.compiler.c import c_float
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

TEMPLATE = "kernels/ml_svm.c.j2"
KERNELS = ("LINEAR", "RBF", "POLY", "SIGMOID")


def kernel_parameters(node: Node) -> tuple[str, float, float, float]:
    """(kernel type, gamma, coef0, degree), the kernel type checked."""
    kind = attr(node, "kernel_type", "LINEAR")
    if kind not in KERNELS:
        raise unsupported(node, f"kernel_type {kind}", "kernel_type " + ", ".join(KERNELS))
    gamma, coef0, degree = (list(attr(node, "kernel_params", [])) + [0.0, 0.0, 0.0])[:3]
    return kind, float(np.float32(gamma)), float(np.float32(coef0)), float(np.float32(degree))


def kernel_values(node: Node, x: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """k(x, v) for each row of x [N, F] and support vector [V, F], float32 -> [N, V]."""
    kind, gamma, coef0, degree = kernel_parameters(node)
    x, vectors = x.astype(np.float32), vectors.astype(np.float32)
    if kind == "RBF":
        d = x[:, None, :] - vectors[None, :, :]
        return np.exp(np.float32(-gamma) * (d * d).sum(axis=2, dtype=np.float32))
    dot = (x @ vectors.T).astype(np.float32)
    if kind == "LINEAR":
        return dot
    t = (np.float32(gamma) * dot + np.float32(coef0)).astype(np.float32)
    if kind == "SIGMOID":
        return np.tanh(t)
    return np.power(t, np.float32(degree)).astype(np.float32)


def kernel_statements(node: Node) -> list[str]:
    """C computing `k` from the row `x` and the support vector `v` (`features` long)."""
    kind, gamma, coef0, degree = kernel_parameters(node)
    if kind == "RBF":
        return ["float d = 0.0f;", "for (uint32_t f = 0; f < FEATURES; ++f) {",
                "    const float diff = x[f] - v[f];", "    d += diff * diff;", "}",
                f"const float k = expf({c_float(-gamma)} * d);"]
    dot = ["float dot = 0.0f;", "for (uint32_t f = 0; f < FEATURES; ++f) {",
           "    dot += x[f] * v[f];", "}"]
    if kind == "LINEAR":
        return [*dot, "const float k = dot;"]
    t = f"const float t = {c_float(gamma)} * dot + {c_float(coef0)};"
    if kind == "SIGMOID":
        return [*dot, t, "const float k = tanhf(t);"]
    power = {2.0: "t * t", 3.0: "t * t * t"}.get(degree, f"powf(t, {c_float(degree)})")
    return [*dot, t, f"const float k = {power};"]


class SupportVectorMachine(OpDef):
    """What the classifier and the regressor share: checks, support vectors, kernel C."""

    domain = "ai.onnx.ml"

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        require_dtype(node, x, ("float32",))
        if x.rank not in (1, 2):
            raise unsupported(node, f"a rank-{x.rank} input", "inputs [N, F] or [F]")
        kernel_parameters(node)
        count = self.vector_count(node)
        if count == 0:
            raise unsupported(node, "a linear SVM without support vectors (liblinear mode)",
                              "support vectors (vectors_per_class or n_supports)")
        vectors = len(attr(node, "support_vectors", []))
        if vectors != count * x.shape[-1]:
            raise unsupported(node, f"{vectors} support vector values for {count} vectors "
                              f"of {x.shape[-1]} features", "one value per feature each")

    def vector_count(self, node: Node) -> int:
        raise NotImplementedError

    def vectors(self, node: Node, features: int) -> np.ndarray:
        return np.asarray(node.attrs["support_vectors"], np.float32).reshape(-1, features)

    def coefficients(self, node: Node) -> np.ndarray:
        return np.asarray(node.attrs["coefficients"], np.float32)

    def kernel(self, node: Node, graph: Graph, names: Names, context: dict,
               weights: dict[str, np.ndarray]) -> Kernel:
        x = graph.tensor(node.inputs[0])
        features = x.shape[-1]
        kind, gamma, coef0, degree = kernel_parameters(node)
        context.update(
            rows=1 if x.rank == 1 else x.shape[0], features=features, shape=list(x.shape),
            vectors=self.vector_count(node), kind=kind,
            params=f"gamma {gamma:g}, coef0 {coef0:g}, degree {degree:g}",
            kernel=[s.replace("FEATURES", f"{features}u") for s in kernel_statements(node)])
        weights = {"support_vectors": self.vectors(node, features).reshape(-1),
                   "coefficients": self.coefficients(node), **weights}
        return Kernel(TEMPLATE, context, weights)

    def macs(self, node: Node, graph: Graph) -> int:
        x = graph.tensor(node.inputs[0])
        rows = 1 if x.rank == 1 else x.shape[0]
        return rows * len(attr(node, "support_vectors", []))


@register("SVMRegressor")
class SVMRegressor(SupportVectorMachine):
    limits = "liblinear mode (no support vectors); post_transform other than NONE"
    attributes = frozenset({"coefficients", "kernel_params", "kernel_type", "n_supports",
                            "one_class", "post_transform", "rho", "support_vectors"})

    def vector_count(self, node: Node) -> int:
        return int(attr(node, "n_supports", 0))

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        # ONNX says the transform applies; ONNX Runtime ignores it: either may be wrong.
        ml_scores.post_transform(node, ("NONE",))
        if len(attr(node, "coefficients", [])) != self.vector_count(node):
            raise unsupported(node, f"{len(attr(node, 'coefficients', []))} coefficients for "
                              f"{self.vector_count(node)} support vectors",
                              "one coefficient per support vector")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        rows = 1 if inputs[0].rank == 1 else inputs[0].shape[0]
        return [((rows, 1), "float32")]

    def reference(self, node: Node, x):
        rows = x.reshape(1, -1) if x.ndim == 1 else x
        k = kernel_values(node, rows, self.vectors(node, rows.shape[1]))
        s = (k @ self.coefficients(node) + np.float32(node.attrs["rho"][0])).astype(np.float32)
        if attr(node, "one_class", 0):
            s = np.where(s > 0, np.float32(1), np.float32(-1))
        return [s.reshape(-1, 1).astype(np.float32)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        finish = [f"s[0] += {c_float(node.attrs['rho'][0])};"]
        if attr(node, "one_class", 0):
            finish.append("s[0] = s[0] > 0.0f ? 1.0f : -1.0f;")
        context = {"classes": 1, "pairs": 1, "width": 1, "out": "y0", "finish": finish,
                   "ranges": [(0, self.vector_count(node), [(0, 0)])], "notes": [
                       "score: rho + the sum of coefficient x kernel over the support vectors"
                       + (", then +1 if > 0 else -1 (one_class)" if attr(node, "one_class", 0)
                          else "")]}
        return self.kernel(node, graph, names, context, {})


@register("SVMClassifier")
class SVMClassifier(SupportVectorMachine):
    limits = ("liblinear mode (no support vectors); probability estimates (prob_a, prob_b); "
              "string class labels; post_transform PROBIT")
    attributes = frozenset({"classlabels_ints", "classlabels_strings", "coefficients",
                            "kernel_params", "kernel_type", "post_transform", "prob_a",
                            "prob_b", "rho", "support_vectors", "vectors_per_class"})

    def vector_count(self, node: Node) -> int:
        return int(sum(attr(node, "vectors_per_class", [])))

    def labels(self, node: Node) -> np.ndarray:
        return ml_scores.integer_labels(node, ("classlabels_ints",))

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        if attr(node, "prob_a", None) or attr(node, "prob_b", None):
            raise unsupported(node, "probability estimates (prob_a, prob_b: an SVC trained "
                              "with probability=True)", "decision scores (SVC's default)")
        mode = ml_scores.post_transform(node)
        labels = self.labels(node)
        classes = len(attr(node, "vectors_per_class", []))
        if labels is None or len(labels) != classes or classes < 2:
            raise unsupported(node, f"{0 if labels is None else len(labels)} class labels for "
                              f"{classes} classes of support vectors",
                              "one label per class, two or more classes")
        if classes == 2 and mode not in ("NONE", "LOGISTIC"):
            raise unsupported(node, f"post_transform {mode} of a two-class SVM",
                              "post_transform NONE, LOGISTIC")
        pairs = classes * (classes - 1) // 2
        if len(attr(node, "rho", [])) != pairs or \
                len(node.attrs["coefficients"]) != (classes - 1) * self.vector_count(node):
            raise unsupported(node, "coefficients or rho of the wrong length",
                              f"(classes - 1) x vectors coefficients and {pairs} rho")

    def shape(self, node: Node) -> tuple[int, int]:
        """(classes, scores per row)."""
        classes = len(node.attrs["vectors_per_class"])
        return classes, 2 if classes == 2 else classes * (classes - 1) // 2

    def infer(self, node: Node, inputs: list[Tensor | None]):
        rows = 1 if inputs[0].rank == 1 else inputs[0].shape[0]
        return [((rows,), "int64"), ((rows, self.shape(node)[1]), "float32")]

    def pair_scores(self, node: Node, rows: np.ndarray) -> np.ndarray:
        """One-against-one scores [N, pairs], pairs (0,1), (0,2), ..., (1,2), ..."""
        classes = len(node.attrs["vectors_per_class"])
        k = kernel_values(node, rows, self.vectors(node, rows.shape[1]))
        count = self.vector_count(node)
        coefficients = self.coefficients(node).reshape(classes - 1, count)
        starts = np.cumsum([0, *node.attrs["vectors_per_class"]])
        rho = np.asarray(node.attrs["rho"], np.float32)
        scores = []
        for i in range(classes - 1):
            for j in range(i + 1, classes):
                own_i, own_j = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
                scores.append(k[:, own_i] @ coefficients[j - 1, own_i]
                              + k[:, own_j] @ coefficients[i, own_j] + rho[len(scores)])
        return np.stack(scores, axis=1).astype(np.float32)

    def reference(self, node: Node, x):
        rows = x.reshape(1, -1) if x.ndim == 1 else x
        classes, _ = self.shape(node)
        s = self.pair_scores(node, rows)
        votes = np.zeros((len(rows), classes), dtype=np.int64)
        pair = 0
        for i in range(classes - 1):
            for j in range(i + 1, classes):
                votes[:, i] += s[:, pair] > 0
                votes[:, j] += s[:, pair] <= 0
                pair += 1
        label = self.labels(node)[np.argmax(votes, axis=1)]
        mode = ml_scores.post_transform(node)
        if classes == 2:
            if mode == "NONE":
                return [label, np.concatenate([-s, s], axis=1)]
            p = ml_scores.logistic(s)
            return [label, np.concatenate([1 - p, p], axis=1).astype(np.float32)]
        return [label, ml_scores.transform(mode, s)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        classes, width = self.shape(node)
        pairs = classes * (classes - 1) // 2
        starts = np.cumsum([0, *node.attrs["vectors_per_class"]]).tolist()
        labels = self.labels(node)
        mode = ml_scores.post_transform(node)
        finish = [f"for (uint32_t p = 0; p < {pairs}u; ++p) {{",
                  f"    s[p] += {names.weight('rho')}[p];", "}",
                  f"uint32_t votes[{classes}] = {{0u}};", "uint32_t p = 0u;",
                  f"for (uint32_t i = 0; i + 1u < {classes}u; ++i) {{",
                  f"    for (uint32_t j = i + 1u; j < {classes}u; ++j, ++p) {{",
                  "        ++votes[s[p] > 0.0f ? i : j];", "    }", "}",
                  "uint32_t best = 0u;", f"for (uint32_t c = 1; c < {classes}u; ++c) {{",
                  "    best = votes[c] > votes[best] ? c : best;", "}",
                  ml_scores.label_statement("y0[n]", "best", labels, names.weight("labels"))]
        if classes == 2 and mode == "NONE":
            finish += ["s[1] = s[0];", "s[0] = -s[1];"]
            shown = "two classes: scores [-s, s]"
        elif classes == 2:
            finish += ["s[1] = ariel_ml_logistic(s[0]);", "s[0] = 1.0f - s[1];"]
            shown = "two classes: scores [1 - p, p], p = logistic(s)"
        else:
            finish += ml_scores.transform_statements(mode, "s", pairs)
            shown = f"{pairs} pair scores, post_transform {mode}"
        # Each support vector of class c, against each other class o, feeds the score of
        # pair (min, max) with coefficient row o - 1 (c < o) or o (c > o).
        index = {pair: p for p, pair in enumerate((i, j) for i in range(classes - 1)
                                                  for j in range(i + 1, classes))}
        ranges = [(starts[c], starts[c + 1],
                   [(index[(min(c, o), max(c, o))], o - 1 if c < o else o)
                    for o in range(classes) if o != c])
                  for c in range(classes)]
        weights = {"rho": np.asarray(node.attrs["rho"], np.float32)}
        if not ml_scores.labels_are_indices(labels):
            weights["labels"] = labels
        context = {"classes": classes, "pairs": pairs, "width": width, "out": "y1",
                   "finish": finish, "ranges": ranges,
                   "notes": [f"one against one, label by votes; {shown}"]}
        return self.kernel(node, graph, names, context, weights)
