"""ai.onnx.ml TreeEnsembleClassifier and TreeEnsembleRegressor, float32, generated as node
tables walked by one small loop.

Why tables and not nested if/else: they are the smaller forest in flash, which is what a
microcontroller runs out of first. Measured on examples/models/sklearn_forest_digits.onnx
(12 trees, 589 decisions, 601 leaves; mps2-an386, gcc -O2, both with the same sparse leaf
tables, 8,324 bytes): the tables take 5,325 bytes (9.0 per decision: a uint8 feature, a
float threshold, two uint16 children) plus 248 bytes of code, the whole firmware 16,158
bytes of flash; the same forest as nested comparisons compiles to 16,392 bytes of code
(27.8 per decision), the firmware 26,954 bytes. The comparisons are faster: 971
instructions per inference against 1,544 for the tables (QEMU counts, 20 held-out digits),
with the same outputs bit for bit.

The forest is read as ONNX Runtime reads it: a tree's root is its first listed node, trees
are summed in the order they first appear, a node goes to its true child when
`x[feature] <mode> threshold` holds (BRANCH_LEQ <=, BRANCH_LT <, BRANCH_GTE >=, BRANCH_GT >,
BRANCH_EQ ==, BRANCH_NEQ !=), the comparison made in float32 on the threshold as stored.
NaN: every comparison but != is false for NaN, so NaN goes to the false child, except at a
node with nodes_missing_value_tracks_true, where it goes to the true child; != sends NaN to
the true child. One branch mode for the whole forest is supported (every exporter writes
one); mixed modes are refused.

Tables (internal nodes renumbered depth first per tree, leaves after them):
    feature[i], threshold[i]    the test of decision node i
    true_next[i], false_next[i] the next node: another decision node (< I) or leaf I + l
    roots[t]                    where tree t starts (a one-leaf tree starts at its leaf)
Leaf values, whichever is smaller: dense `values[l][K]` (zeros where a leaf does not score
a class), or sparse `first[l]..first[l + 1]` into `target[e], weight[e]` with zero weights
left out. Both are exact for sums: adding 0 changes no sum. Regressors aggregating by MIN or
MAX take dense tables of leaves that score every target.

After the trees, the scores are finished as ONNX Runtime finishes them (base values, the
label, its binary rules, post_transform), with every decision about that made here at compile
time from the forest's attributes. A class "has a score" in ONNX Runtime when a visited leaf
named it; ariel needs that to be known at compile time, so it refuses a forest where some
class (without a base value) is named by only some leaves of every tree."""

from __future__ import annotations

from dataclasses import dataclass, field

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

TEMPLATE = "kernels/ml_tree_ensemble.c.j2"
INPUT_TYPES = ("float32", "int32", "int64")
BRANCHES = {"BRANCH_LEQ": "<=", "BRANCH_LT": "<", "BRANCH_GTE": ">=", "BRANCH_GT": ">",
            "BRANCH_EQ": "==", "BRANCH_NEQ": "!="}
COMPARE = {"<=": np.less_equal, "<": np.less, ">=": np.greater_equal, ">": np.greater,
           "==": np.equal, "!=": np.not_equal}
NODE_ATTRIBUTES = frozenset({
    "nodes_falsenodeids", "nodes_featureids", "nodes_hitrates", "nodes_hitrates_as_tensor",
    "nodes_missing_value_tracks_true", "nodes_modes", "nodes_nodeids", "nodes_treeids",
    "nodes_truenodeids", "nodes_values", "nodes_values_as_tensor", "post_transform",
    "base_values", "base_values_as_tensor"})

ALWAYS, NEVER, SOMETIMES = "always", "never", "sometimes"


@dataclass
class Forest:
    """A tree ensemble read from its attributes: decision nodes and leaves in table order."""

    features: int
    branch: str  # the C comparison operator
    feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    nan_true: list[bool] = field(default_factory=list)
    true_next: list[int] = field(default_factory=list)  # before leaves are offset by I
    false_next: list[int] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)
    # Each leaf's (target, weight) entries in the order listed; the tree it belongs to.
    leaves: list[list[tuple[int, float]]] = field(default_factory=list)
    leaf_tree: list[int] = field(default_factory=list)

    @property
    def decisions(self) -> int:
        return len(self.feature)

    def encode(self, ref: tuple[str, int]) -> int:
        """A child or root as the tables hold it: decision i, or leaf l as I + l."""
        kind, index = ref
        return index if kind == "node" else self.decisions + index

    def scored(self, target: int) -> str:
        """Whether every inference scores `target` (ALWAYS: some tree names it in every leaf),
        none does (NEVER), or it depends on the input (SOMETIMES)."""
        named = [any(t == target for t, _ in leaf) for leaf in self.leaves]
        if not any(named):
            return NEVER
        trees: dict[int, bool] = {}
        for tree, hit in zip(self.leaf_tree, named, strict=True):
            trees[tree] = trees.get(tree, True) and hit
        return ALWAYS if any(trees.values()) else SOMETIMES


def float_values(node: Node, name: str) -> np.ndarray | None:
    """A float attribute given as a list or, from ai.onnx.ml opset 3, as a float tensor
    (`<name>_as_tensor`); doubles are refused (they would be compared in double)."""
    if name in node.attrs:
        return np.asarray(node.attrs[name], dtype=np.float32)
    tensor = node.attrs.get(f"{name}_as_tensor")
    if tensor is None:
        return None
    if np.asarray(tensor).dtype != np.float32:
        raise unsupported(node, f"{name}_as_tensor of type {np.asarray(tensor).dtype}",
                          f"{name} as floats or a float32 tensor")
    return np.asarray(tensor, dtype=np.float32).reshape(-1)


def read_forest(node: Node, features: int, prefix: str) -> Forest:
    """Parse the node and leaf attributes (`prefix` is "class" or "target")."""
    ids = list(zip(attr(node, "nodes_treeids", []), attr(node, "nodes_nodeids", []),
                   strict=False))
    count = len(ids)
    columns = {name: list(attr(node, f"nodes_{name}", [])) for name in
               ("featureids", "modes", "truenodeids", "falsenodeids")}
    values = float_values(node, "nodes_values")
    tracks = list(attr(node, "nodes_missing_value_tracks_true", [])) or [0] * count
    if count == 0 or any(len(c) != count for c in columns.values()) or values is None \
            or len(values) != count or len(tracks) != count or \
            len(attr(node, "nodes_nodeids", [])) != count:
        raise unsupported(node, "node attributes of different lengths",
                          "one entry per node in every nodes_* attribute")
    branches = {m for m in columns["modes"] if m != "LEAF"}
    unknown = branches - set(BRANCHES)
    if unknown or len(branches) > 1:
        what = (f"branch mode {sorted(unknown)[0]}" if unknown
                else f"mixed branch modes ({', '.join(sorted(branches))})")
        raise unsupported(node, what, "one of " + ", ".join(BRANCHES) + " for every node")
    forest = Forest(features, BRANCHES[branches.pop()] if branches else "<=")
    position = {key: i for i, key in enumerate(ids)}
    if len(position) != count:
        raise unsupported(node, "a (tree, node) id listed twice", "unique node ids")

    entries: dict[tuple[int, int], list[tuple[int, float]]] = {}
    weights = float_values(node, f"{prefix}_weights")
    leaf_ids = list(zip(attr(node, f"{prefix}_treeids", []), attr(node, f"{prefix}_nodeids", []),
                        strict=False))
    targets = list(attr(node, f"{prefix}_ids", []))
    if weights is None or not len(leaf_ids) == len(targets) == len(weights):
        raise unsupported(node, f"{prefix} attributes of different lengths",
                          f"one entry per leaf weight in every {prefix}_* attribute")
    for key, target, weight in zip(leaf_ids, targets, weights, strict=True):
        entries.setdefault(key, []).append((int(target), float(weight)))

    seen: set[int] = set()

    def visit(index: int, tree: int) -> tuple[str, int]:
        if index in seen:
            raise unsupported(node, f"node {ids[index][1]} of tree {tree} reached twice",
                              "trees (every node reached from one parent)")
        seen.add(index)
        if columns["modes"][index] == "LEAF":
            forest.leaves.append(entries.pop(ids[index], []))
            forest.leaf_tree.append(tree)
            return ("leaf", len(forest.leaves) - 1)
        feature = int(columns["featureids"][index])
        if not 0 <= feature < features:
            raise unsupported(node, f"feature index {feature}",
                              f"feature indices 0..{features - 1} of the input")
        mine = forest.decisions
        forest.feature.append(feature)
        forest.threshold.append(float(values[index]))
        forest.nan_true.append(bool(tracks[index]))
        forest.true_next.append(0)
        forest.false_next.append(0)
        children = []
        for column in ("truenodeids", "falsenodeids"):
            child = position.get((tree, columns[column][index]))
            if child is None:
                raise unsupported(node, f"a child id {columns[column][index]} missing from "
                                  f"tree {tree}", "children listed among the nodes")
            children.append(visit(child, tree))
        forest.true_next[mine], forest.false_next[mine] = children
        return ("node", mine)

    roots: list[tuple[str, int]] = []
    trees_seen: set[int] = set()
    for index, (tree, _) in enumerate(ids):
        if tree not in trees_seen:  # ONNX Runtime's root: the tree's first listed node
            trees_seen.add(tree)
            roots.append(visit(index, tree))
    if entries:
        tree, nodeid = next(iter(entries))
        raise unsupported(node, f"a weight on node {nodeid} of tree {tree}, which is not a "
                          "leaf reached from its tree's root", "weights on leaves")
    forest.true_next = [forest.encode(c) for c in forest.true_next]
    forest.false_next = [forest.encode(c) for c in forest.false_next]
    forest.roots = [forest.encode(r) for r in roots]
    return forest


def walk(forest: Forest, row: np.ndarray) -> list[int]:
    """The leaf each tree reaches for one row of features (the reference's tree walk)."""
    compare = COMPARE[forest.branch]
    reached = []
    for node in forest.roots:
        while node < forest.decisions:
            v = np.float32(row[forest.feature[node]])
            hit = bool(compare(v, np.float32(forest.threshold[node])))
            hit = hit or (forest.nan_true[node] and bool(np.isnan(v)))
            node = forest.true_next[node] if hit else forest.false_next[node]
        reached.append(node - forest.decisions)
    return reached


@dataclass
class Payload:
    """The leaf values as the kernel reads them, and the C that adds one leaf's values."""

    weights: dict[str, np.ndarray]
    statements: list[str]
    description: str
    leaf_count: int
    kind: str  # "dense" or "sparse"


def index_type(limit: int) -> np.dtype:
    """The narrowest unsigned type holding 0..limit."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if limit <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(limit)


@dataclass
class Finish:
    """What happens to a row of scores after the trees, in this order, all decided at compile
    time: divide by the number of trees (AVERAGE), add base values, the two-class rule that
    rebuilds the pair from the first score, choose the label, then either write one score as
    two (`expand`) or apply the post_transform to the row. `apply` is the numpy twin of
    `statements`."""

    width: int
    average: int = 0
    base: list[float] = field(default_factory=list)
    pair_from_first: float | None = None  # s[1] = value + s[0]; s[0] = -s[1]
    label: str | None = None  # "first_max" (labels[argmax]) or "threshold" (two classes)
    labels: np.ndarray | None = None
    positive: int | None = None  # the score a two-class label is decided on (None: 0)
    limit: float = 0.0
    low: int = 0
    high: int = 1
    # Classes ONNX Runtime writes as 0 because no leaf scored them (whatever was added).
    zeroed: list[int] = field(default_factory=list)
    expand: str | None = None  # "complement" [1-p, p], "negated" [-s, s], "logistic"
    transform: str = "NONE"
    notes: list[str] = field(default_factory=list)

    def apply(self, s: np.ndarray) -> int:
        """Finish one row of float32 scores in place; returns the label (0 if none)."""
        one = np.float32(1)
        if self.average:
            s[:] = s / np.float32(self.average)
        for k, b in enumerate(self.base):
            s[k] = s[k] + np.float32(b)
        if self.pair_from_first is not None:
            s[1] = np.float32(self.pair_from_first) + s[0]
            s[0] = -s[1]
        label = 0
        if self.label == "first_max":
            label = int(self.labels[ml_scores.first_maximum(s)])
        elif self.label == "threshold":
            decider = s[self.positive] if self.positive is not None else np.float32(0)
            label = self.high if decider > np.float32(self.limit) else self.low
        s[self.zeroed] = 0
        if self.expand == "complement":
            s[1] = ml_scores.logistic(s[:1])[0] if self.transform == "LOGISTIC" else s[0]
            s[0] = one - s[1]
        elif self.expand == "negated":
            s[1] = s[0]
            s[0] = -s[1]
        elif self.expand == "logistic":
            v = s[:1].copy()
            s[1], s[0] = ml_scores.logistic(v)[0], ml_scores.logistic(-v)[0]
        else:
            s[:] = ml_scores.transform(self.transform, s[None])[0]
        return label

    def statements(self, labels_table: str) -> list[str]:
        """The same steps in C, on `s` (the row) and `y0[n]` (the label)."""
        out = []
        if self.average:
            out += [f"for (uint32_t k = 0; k < {self.width}u; ++k) {{",
                    f"    s[k] /= {c_float(float(self.average))};", "}"]
        out += [f"s[{k}] += {as_literal(b)};" for k, b in enumerate(self.base)]
        if self.pair_from_first is not None:
            out += [f"s[1] = {as_literal(self.pair_from_first)} + s[0];", "s[0] = -s[1];"]
        if self.label == "first_max":
            out += ["uint32_t best = 0u;",
                    f"for (uint32_t c = 1; c < {self.width}u; ++c) {{",
                    "    best = s[c] > s[best] ? c : best;", "}",
                    ml_scores.label_statement("y0[n]", "best", self.labels, labels_table)]
        elif self.label == "threshold":
            decider = f"s[{self.positive}]" if self.positive is not None else "0.0f"
            out.append(f"y0[n] = {decider} > {as_literal(self.limit)} ? "
                       f"(int64_t){self.high} : (int64_t){self.low};")
        out += [f"s[{k}] = 0.0f;" for k in self.zeroed]
        if self.expand == "complement":
            first = "ariel_ml_logistic(s[0])" if self.transform == "LOGISTIC" else "s[0]"
            out += [f"s[1] = {first};", "s[0] = 1.0f - s[1];"]
        elif self.expand == "negated":
            out += ["s[1] = s[0];", "s[0] = -s[1];"]
        elif self.expand == "logistic":
            out += ["s[1] = ariel_ml_logistic(s[0]);", "s[0] = ariel_ml_logistic(-s[0]);"]
        else:
            out += ml_scores.transform_statements(self.transform, "s", self.width)
        return out

    def label_table(self) -> dict[str, np.ndarray]:
        """The constant labels the C looks up, when they are not 0..n-1."""
        if self.label != "first_max" or ml_scores.labels_are_indices(self.labels):
            return {}
        return {"labels": self.labels}


@dataclass
class Aggregation:
    """How leaf values combine over the trees, and how the result is finished."""

    init: float
    combine: str  # "sum", "min" or "max"
    first_only: bool  # one target: ONNX Runtime reads a leaf's first weight only
    finish: Finish


def as_literal(value: float) -> str:
    return c_float(float(np.float32(value)))


class TreeEnsembleBase(OpDef):
    """The walk, the tables and the template; subclasses decide the Aggregation."""

    domain = "ai.onnx.ml"
    prefix = ""  # "class" or "target": the leaf attributes' prefix
    labelled = False  # True: output 0 is the label, output 1 the scores

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        require_dtype(node, x, INPUT_TYPES)
        if x.rank not in (1, 2):
            raise unsupported(node, f"a rank-{x.rank} input", "inputs [N, F] or [F]")
        self.aggregation(node, self.forest(node, x.shape[-1]))

    def forest(self, node: Node, features: int) -> Forest:
        forest = read_forest(node, features, self.prefix)
        targets = self.targets(node)
        if any(not 0 <= t < targets for leaf in forest.leaves for t, _ in leaf):
            raise unsupported(node, f"a leaf weight for a {self.prefix} id outside 0.."
                              f"{targets - 1}", f"{self.prefix} ids below {targets}")
        return forest

    def targets(self, node: Node) -> int:
        raise NotImplementedError

    def base_values(self, node: Node) -> list[float]:
        values = float_values(node, "base_values")
        return [] if values is None else [float(v) for v in values]

    def aggregation(self, node: Node, forest: Forest) -> Aggregation:
        raise NotImplementedError

    def rows(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(1, -1) if x.ndim == 1 else x

    def scores(self, node: Node, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The reference: (labels [N], finished scores [N, width]), walking the trees."""
        rows = self.rows(x)
        forest = self.forest(node, rows.shape[1])
        agg = self.aggregation(node, forest)
        s = np.full((len(rows), agg.finish.width), agg.init, dtype=np.float32)
        labels = np.zeros(len(rows), dtype=np.int64)
        for n, row in enumerate(rows):
            for leaf in walk(forest, row):
                for target, weight in forest.leaves[leaf][:1 if agg.first_only else None]:
                    w = np.float32(weight)
                    if agg.combine == "sum":
                        s[n, target] = s[n, target] + w
                    elif agg.combine == "min":
                        s[n, target] = min(s[n, target], w)
                    else:
                        s[n, target] = max(s[n, target], w)
            labels[n] = agg.finish.apply(s[n])
        return labels, s

    def tables(self, node: Node, x: Tensor, symbol) -> tuple[Forest, Aggregation, dict,
                                                              Payload]:
        """The forest, its aggregation, the node tables and the leaf payload of a node."""
        features = x.shape[-1]
        forest = self.forest(node, features)
        agg = self.aggregation(node, forest)
        leaves = [leaf[:1] for leaf in forest.leaves] if agg.first_only else forest.leaves
        payload = leaf_payload(leaves, self.targets(node), agg.combine, symbol)
        last = forest.decisions + len(leaves) - 1
        tables = {"roots": np.array(forest.roots, dtype=index_type(last))}
        if forest.decisions:
            tables.update(
                feature=np.array(forest.feature, dtype=index_type(features - 1)),
                threshold=np.array(forest.threshold, dtype=np.float32),
                true_next=np.array(forest.true_next, dtype=index_type(last)),
                false_next=np.array(forest.false_next, dtype=index_type(last)))
            if any(forest.nan_true):
                tables["nan_true"] = np.array(forest.nan_true, dtype=np.uint8)
        return forest, agg, tables, payload

    def build_notes(self, node: Node, graph: Graph) -> list[str]:
        forest, _, tables, payload = self.tables(node, graph.tensor(node.inputs[0]), str)
        structure = sum(t.nbytes for t in tables.values())
        values = sum(t.nbytes for t in payload.weights.values())
        return [f"{node.op} '{node.name}': {len(forest.roots)} trees, {forest.decisions} "
                f"decisions and {len(forest.leaves)} leaves as node tables ({structure:,} "
                f"bytes) and {payload.kind} leaf values ({values:,} bytes), walked "
                "by one loop: smaller in flash than nested if/else, which measured about 3 "
                "times the bytes per decision and ran about 37% fewer instructions "
                "(ml_tree_ensemble.py)"]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x = graph.tensor(node.inputs[0])
        rows, features = (1, x.shape[0]) if x.rank == 1 else x.shape
        forest, agg, tables, payload = self.tables(node, x, names.weight)
        test = ""
        if forest.decisions:
            test = f"v {forest.branch} {names.weight('threshold')}[node]"
            if "nan_true" in tables:
                test = f"{test} || ({names.weight('nan_true')}[node] != 0u && v != v)"
        finish = agg.finish
        context = {
            "rows": rows, "features": features, "shape": list(x.shape), "x_ctype": x.ctype,
            "convert": "" if x.dtype == "float32" else "(float)",
            "trees": len(forest.roots), "decisions": forest.decisions,
            "leaves": payload.leaf_count,
            "width": finish.width, "out": "y1" if self.labelled else "y0",
            "init": c_float(agg.init), "test": test, "branch": forest.branch,
            "add_leaf": payload.statements,
            "finish": finish.statements(names.weight("labels")),
            "notes": [payload.description, *finish.notes],
        }
        return Kernel(TEMPLATE, context, {**tables, **payload.weights, **finish.label_table()})


def leaf_payload(leaves: list[list[tuple[int, float]]], targets: int, combine: str,
                 symbol) -> Payload:
    """Dense or sparse leaf tables, the smaller (module docstring), and the C adding one
    leaf's values into the row `s`. `combine` is "sum", "min" or "max" (min and max need
    dense tables); `symbol` names a table's C array from its key."""
    duplicated = any(len({t for t, _ in leaf}) != len(leaf) for leaf in leaves)
    dense = np.zeros((len(leaves), targets), dtype=np.float32)
    for index, leaf in enumerate(leaves):
        for target, weight in leaf:
            dense[index, target] = weight
    update = {"sum": "s[k] += v;", "min": "s[k] = v < s[k] ? v : s[k];",
              "max": "s[k] = v > s[k] ? v : s[k];"}[combine]
    values = symbol("values")
    if targets == 1:
        dense_statements = ["const uint32_t k = 0u;", f"const float v = {values}[leaf];",
                            update]
    else:
        dense_statements = [f"const float *values = &{values}[leaf * {targets}u];",
                            f"for (uint32_t k = 0; k < {targets}u; ++k) {{",
                            "    const float v = values[k];", f"    {update}", "}"]
    kept = [[(t, w) for t, w in leaf if w != 0.0] for leaf in leaves]
    count = sum(len(leaf) for leaf in kept)
    first_type, target_type = index_type(count), index_type(max(targets - 1, 0))
    sparse_bytes = (len(leaves) + 1) * first_type.itemsize + count * (target_type.itemsize + 4)
    sparse_possible = combine == "sum" and targets > 1
    if sparse_possible and (duplicated or sparse_bytes < dense.nbytes):
        first = np.cumsum([0] + [len(leaf) for leaf in kept]).astype(first_type)
        target = np.array([t for leaf in kept for t, _ in leaf], dtype=target_type)
        weight = np.array([w for leaf in kept for _, w in leaf], dtype=np.float32)
        return Payload(
            {"first": first, "target": target, "weight": weight},
            [f"for (uint32_t e = {symbol('first')}[leaf]; e < {symbol('first')}[leaf + 1u]; "
             "++e) {", f"    s[{symbol('target')}[e]] += {symbol('weight')}[e];", "}"],
            f"sparse leaf values: {count} nonzero weights in {sparse_bytes} bytes (dense "
            f"[{len(leaves)}][{targets}] would take {dense.nbytes})", len(leaves), "sparse")
    alternative = f"; sparse would take {sparse_bytes}" if sparse_possible else ""
    return Payload({"values": dense.reshape(-1)}, dense_statements,
                   f"dense leaf values [{len(leaves)}][{targets}] in {dense.nbytes} bytes"
                   f"{alternative}", len(leaves), "dense")


@register("TreeEnsembleClassifier")
class TreeEnsembleClassifier(TreeEnsembleBase):
    limits = "string class labels; post_transform PROBIT"
    attributes = NODE_ATTRIBUTES | {"class_ids", "class_nodeids", "class_treeids",
                                    "class_weights", "class_weights_as_tensor",
                                    "classlabels_int64s", "classlabels_strings"}
    prefix = "class"
    labelled = True

    def labels(self, node: Node) -> np.ndarray:
        labels = ml_scores.integer_labels(node, ("classlabels_int64s",))
        if labels is None or len(labels) < 2:
            raise unsupported(node, f"{0 if labels is None else len(labels)} class labels",
                              "two or more class labels (classlabels_int64s)")
        return labels

    def targets(self, node: Node) -> int:
        return len(self.labels(node))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        rows = 1 if inputs[0].rank == 1 else inputs[0].shape[0]
        return [((rows,), "int64"), ((rows, self.targets(node)), "float32")]

    def aggregation(self, node: Node, forest: Forest) -> Aggregation:
        mode = ml_scores.post_transform(node)
        labels = self.labels(node)
        base = self.base_values(node)
        scored = [forest.scored(k) for k in range(len(labels))]
        if len(labels) > 2:
            finish = self.multiclass(node, labels, base, scored, mode)
        else:
            finish = self.binary(node, labels, base, scored, mode)
        return Aggregation(0.0, "sum", False, finish)

    def multiclass(self, node, labels, base, scored, mode) -> Finish:
        # A class has a score when some leaf visited named it, or it has a base value.
        unscored = [str(labels[k]) for k, how in enumerate(scored)
                    if how != ALWAYS and k >= len(base)]
        if unscored:
            raise unsupported(node, f"classes {', '.join(unscored)} scored by only some "
                              "leaves of every tree, or by none (whether they have a score "
                              "would depend on the input)",
                              "every class scored by every leaf of some tree, or given a "
                              "base value")
        return Finish(len(labels), base=base[:len(labels)], label="first_max", labels=labels,
                      transform=mode,
                      notes=[f"{len(base)} base values; label: the class of the first "
                             f"largest score; then post_transform {mode}"])

    def binary(self, node, labels, base, scored, mode) -> Finish:
        """ONNX Runtime's two-class rules (TreeAggregatorClassifier.FinalizeScores with
        write_scores), each decided here from the attributes."""
        if SOMETIMES in scored:
            raise unsupported(node, "a two-class forest whose classes are scored by only "
                              "some leaves of every tree", "classes scored by every leaf of "
                              "some tree, or by none")
        has0, has1 = scored[0] == ALWAYS, scored[1] == ALWAYS
        weights = float_values(node, "class_weights")
        binary_case = len(set(attr(node, "class_ids", []))) == 1
        finish = Finish(2, label="threshold", transform=mode)
        single, expand = False, None
        if len(base) == 2:
            if has1:
                finish.pair_from_first = base[1]
            else:
                finish.base = base
        elif len(base) == 1:
            finish.base = base
            single = not has1
        elif not base:
            expand, single = "negated", not has1
        finish.positive = 1 if (not single and has1) else (0 if has0 else None)
        finish.zeroed = [k for k, has in enumerate((has0, has1)[:1 if single else 2])
                         if not has]
        if binary_case:
            all_positive = bool((weights >= 0).all())
            finish.limit = 0.5 if all_positive else 0.0
            expand = "complement" if all_positive else "negated"
            finish.low, finish.high = int(labels[0]), int(labels[1])
        if single:
            if expand is None:
                raise unsupported(node, "a two-class forest whose second score ONNX "
                                  "Runtime leaves unwritten", "two-class forests with base "
                                  "values or weights for one class")
            finish.expand = "logistic" if expand == "negated" and mode == "LOGISTIC" \
                else expand
        decider = "0" if finish.positive is None else f"s{finish.positive}"
        complement = "logistic(s)" if mode == "LOGISTIC" else "s"
        shown = {None: f"two scores, post_transform {mode}", "complement": f"one score s, "
                 f"p = {complement} written [1 - p, p]", "negated": "one score s, written "
                 "[-s, s]",
                 "logistic": "one score s, written [logistic(-s), logistic(s)]"}
        finish.notes = [f"two classes: label {finish.high} if {decider} > {finish.limit:g}, "
                        f"else {finish.low}; {shown[finish.expand]}"]
        return finish

    def reference(self, node: Node, x):
        return list(self.scores(node, x))


@register("TreeEnsembleRegressor")
class TreeEnsembleRegressor(TreeEnsembleBase):
    limits = "post_transform PROBIT"
    attributes = NODE_ATTRIBUTES | {"aggregate_function", "n_targets", "target_ids",
                                    "target_nodeids", "target_treeids", "target_weights",
                                    "target_weights_as_tensor"}
    prefix = "target"
    AGGREGATES = {"SUM": "sum", "AVERAGE": "sum", "MIN": "min", "MAX": "max"}

    def targets(self, node: Node) -> int:
        return int(attr(node, "n_targets", 1))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        rows = 1 if inputs[0].rank == 1 else inputs[0].shape[0]
        return [((rows, self.targets(node)), "float32")]

    def aggregation(self, node: Node, forest: Forest) -> Aggregation:
        aggregate = attr(node, "aggregate_function", "SUM")
        if aggregate not in self.AGGREGATES:
            raise unsupported(node, f"aggregate_function {aggregate}",
                              "aggregate_function " + ", ".join(self.AGGREGATES))
        targets = self.targets(node)
        # ONNX Runtime transforms rows of two or more scores; one score only by PROBIT.
        mode = ml_scores.post_transform(node) if targets > 1 else "NONE"
        if targets == 1:
            ml_scores.post_transform(node, tuple(t for t in ml_scores.TRANSFORMS))
        combine = self.AGGREGATES[aggregate]
        if combine != "sum" and any(sorted(t for t, _ in leaf) != list(range(targets))
                                    for leaf in forest.leaves):
            raise unsupported(node, f"aggregate_function {aggregate} over leaves that do "
                              "not score every target once",
                              "MIN and MAX over leaves with one weight per target")
        if targets == 1 and any(not leaf for leaf in forest.leaves):
            raise unsupported(node, "a leaf without a weight", "a weight on every leaf")
        base = self.base_values(node)
        base = base if len(base) == targets else []
        finish = Finish(targets, average=len(forest.roots) if aggregate == "AVERAGE" else 0,
                        base=base, transform=mode,
                        notes=[f"aggregate {aggregate} of {len(forest.roots)} trees; "
                               f"{len(base)} base values; post_transform {mode}"])
        init = {"sum": 0.0, "min": float("inf"), "max": float("-inf")}[combine]
        return Aggregation(init, combine, targets == 1, finish)

    def reference(self, node: Node, x):
        return [self.scores(node, x)[1]]
