"""ai.onnx.ml feature transforms that scikit-learn pipelines export before a model: Scaler
(StandardScaler, MinMaxScaler ...), Normalizer, Binarizer and Imputer (SimpleImputer), float32,
as ONNX Runtime computes them. Their inputs are [N, F] (or [F]) rows of features; a per-
feature constant (offset, scale, imputed value) is given once per feature or once for all.

Where ONNX Runtime and onnx.reference differ, ariel follows ONNX Runtime: Normalizer MAX
divides by the largest value (not the largest magnitude) and a row whose divisor is 0 is
copied unchanged. Binarizer maps NaN to 0 (ONNX Runtime stops with an error on NaN)."""

from __future__ import annotations

import numpy as np

from codegen.compiler.c import c_float
from codegen.compiler.ir import Graph, Node, Tensor
from codegen.compiler.ops.base import (
    Kernel,
    Names,
    OpDef,
    attr,
    register,
    require_dtype,
    unsupported,
)

TEMPLATE = "kernels/ml_columns.c.j2"
NORMALIZER_TEMPLATE = "kernels/ml_normalizer.c.j2"


def features_of(x: Tensor) -> int:
    """Features per row: the last axis of a [N, F] or [F] input."""
    return x.shape[-1]


def require_rows(node: Node, x: Tensor) -> None:
    if x.rank not in (1, 2):
        raise unsupported(node, f"a rank-{x.rank} input", "inputs [N, F] or [F]")


def per_feature(node: Node, name: str, values, features: int, dtype=np.float32
                ) -> np.ndarray:
    """An attribute holding one value per feature or one for all, as an array of `features`."""
    array = np.asarray(values, dtype=dtype).reshape(-1)
    if array.size not in (1, features):
        raise unsupported(node, f"{array.size} values of {name} for {features} features",
                          f"one {name} per feature, or one for all")
    return np.broadcast_to(array, (features,)).copy()


class ColumnOp(OpDef):
    """An elementwise transform whose constants depend on the feature (column) only."""

    domain = "ai.onnx.ml"
    input_types: tuple[str, ...] = ("float32",)
    ranked = True  # the input must be [N, F] or [F]

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        require_dtype(node, x, self.input_types)
        if self.ranked:
            require_rows(node, x)
        self.constants(node, x.shape[-1] if x.rank else 1)

    def constants(self, node: Node, features: int) -> dict[str, np.ndarray]:
        """The per-feature arrays the statements read, by name."""
        return {}

    def statements(self, node: Node, constants: dict[str, str]) -> list[str]:
        """C statements turning `v` (the value of feature j) into the output value."""
        raise NotImplementedError

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, "float32")]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
        features = x.shape[-1] if x.rank else 1
        weights = self.constants(node, features)
        symbols = {key: names.weight(key) for key in weights}
        context = {"rows": x.size // features, "features": features, "shape": list(x.shape),
                   "x_ctype": x.ctype, "y_ctype": y.ctype,
                   "load": "x[j]" if x.ctype == y.ctype else f"({y.ctype})x[j]",
                   "statements": self.statements(node, symbols)}
        return Kernel(TEMPLATE, context, weights)


@register("Scaler")
class Scaler(ColumnOp):
    attributes = frozenset({"offset", "scale"})
    input_types = ("float32", "int32", "int64")

    def constants(self, node: Node, features: int) -> dict[str, np.ndarray]:
        return {"offset": per_feature(node, "offset", attr(node, "offset", [0.0]), features),
                "scale": per_feature(node, "scale", attr(node, "scale", [1.0]), features)}

    def statements(self, node: Node, constants: dict[str, str]) -> list[str]:
        return [f"v = (v - {constants['offset']}[j]) * {constants['scale']}[j];"]

    def reference(self, node: Node, x):
        c = self.constants(node, x.shape[-1])
        return [((x.astype(np.float32) - c["offset"]) * c["scale"]).astype(np.float32)]


@register("Binarizer")
class Binarizer(ColumnOp):
    attributes = frozenset({"threshold"})
    ranked = False

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        if "threshold" not in node.attrs:
            # ONNX gives 0 as the default, ONNX Runtime reads 1: either answer may be wrong.
            raise unsupported(node, "a Binarizer without a threshold (ONNX's default is 0, "
                              "ONNX Runtime's 1)", "an explicit threshold attribute")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, inputs[0].dtype)]

    def statements(self, node: Node, constants: dict[str, str]) -> list[str]:
        return [f"v = v > {c_float(node.attrs['threshold'])} ? 1.0f : 0.0f;"]

    def reference(self, node: Node, x):
        return [(x > np.float32(node.attrs["threshold"])).astype(x.dtype)]


@register("Imputer")
class Imputer(ColumnOp):
    """Replaces the value `replaced_value_float` (NaN: any NaN) by the feature's imputed
    value; int64 inputs with `replaced_value_int64` and `imputed_value_int64s`."""

    attributes = frozenset({"imputed_value_floats", "replaced_value_float",
                            "imputed_value_int64s", "replaced_value_int64"})
    input_types = ("float32", "int64")

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, inputs[0].dtype)]

    def integer(self, node: Node) -> bool:
        return bool(attr(node, "imputed_value_int64s", None))

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        if self.integer(node) == bool(attr(node, "imputed_value_floats", None)):
            raise unsupported(node, "imputed values of both kinds or of neither",
                              "imputed_value_floats or imputed_value_int64s")
        wanted = "int64" if self.integer(node) else "float32"
        if x.dtype != wanted:
            raise unsupported(node, f"a {x.dtype} input with {wanted} imputed values",
                              "imputed values of the input's type")

    def replaced(self, node: Node):
        if self.integer(node):
            return np.int64(attr(node, "replaced_value_int64", 0))
        return np.float32(attr(node, "replaced_value_float", 0.0))

    def constants(self, node: Node, features: int) -> dict[str, np.ndarray]:
        if self.integer(node):
            return {"imputed": per_feature(node, "imputed value",
                                           node.attrs["imputed_value_int64s"], features,
                                           np.int64)}
        return {"imputed": per_feature(node, "imputed value",
                                       attr(node, "imputed_value_floats", [0.0]), features)}

    def statements(self, node: Node, constants: dict[str, str]) -> list[str]:
        replaced = self.replaced(node)
        if self.integer(node):
            test = f"v == (int64_t){int(replaced)}"
        else:
            test = "v != v" if np.isnan(replaced) else f"v == {c_float(float(replaced))}"
        return [f"v = {test} ? {constants['imputed']}[j] : v;"]

    def reference(self, node: Node, x):
        imputed = self.constants(node, x.shape[-1])["imputed"]
        replaced = self.replaced(node)
        hit = np.isnan(x) if not self.integer(node) and np.isnan(replaced) else x == replaced
        return [np.where(hit, imputed, x).astype(x.dtype)]


@register("Normalizer")
class Normalizer(OpDef):
    domain = "ai.onnx.ml"
    attributes = frozenset({"norm"})
    NORMS = {"MAX": "ariel_ml_normalize_max", "L1": "ariel_ml_normalize_l1",
             "L2": "ariel_ml_normalize_l2"}

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x = graph.tensor(node.inputs[0])
        require_dtype(node, x, ("float32",))
        require_rows(node, x)
        norm = attr(node, "norm", "MAX")
        if norm not in self.NORMS:
            raise unsupported(node, f"norm {norm}", ", ".join(f"norm {n}" for n in self.NORMS))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        return [(inputs[0].shape, "float32")]

    def reference(self, node: Node, x):
        rows = x.reshape(-1, x.shape[-1]).astype(np.float32)
        norm = attr(node, "norm", "MAX")
        if norm == "MAX":
            divisor = rows.max(axis=1, keepdims=True)
        elif norm == "L1":
            divisor = np.abs(rows).sum(axis=1, keepdims=True, dtype=np.float32)
        else:
            divisor = (rows * rows).sum(axis=1, keepdims=True, dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            if norm == "L2":
                magnitude = np.sqrt(rows * rows / divisor)
                scaled = np.where(rows < 0, -magnitude, magnitude)
            else:
                scaled = rows / divisor
        return [np.where(divisor != 0, scaled, rows).astype(np.float32).reshape(x.shape)]

    def lower(self, node: Node, graph: Graph, names: Names) -> Kernel:
        x = graph.tensor(node.inputs[0])
        features = x.shape[-1]
        context = {"rows": x.size // features, "features": features, "shape": list(x.shape),
                   "norm": attr(node, "norm", "MAX"),
                   "function": self.NORMS[attr(node, "norm", "MAX")]}
        return Kernel(NORMALIZER_TEMPLATE, context)
