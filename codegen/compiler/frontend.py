"""Read an ONNX file into an ir.Graph: validate it, fix its input shapes, infer every shape."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from codegen.compiler.budget import CEILING, Budget, check_tensor
from codegen.compiler.c import c_identifier
from codegen.compiler.ir import C_TYPES, Graph, Node, Tensor
from codegen.errors import ArielError, UnsupportedError


@dataclass
class ModelSource:
    """Where a graph came from, for generated-file headers and reports."""

    path: str
    sha256: str
    notes: list[str]


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read and check an ONNX file, with one clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise ArielError(f"model file '{path}' not found")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises several unrelated types for corrupt bytes
        raise ArielError(f"'{path}' is not a readable ONNX model ({_first_line(exc)})") from exc
    if not model.graph.node and not model.graph.output:
        raise ArielError(f"'{path}' is not a readable ONNX model (it has no graph)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ArielError(f"'{path}' is not a valid ONNX model: {_first_line(exc)}") from exc
    except UnicodeDecodeError as exc:  # the checker's message quotes a name that is not UTF-8
        raise ArielError(f"'{path}' is not a valid ONNX model: it holds a name or operator "
                         f"type that is not valid UTF-8 ({exc.reason} at byte {exc.start})"
                         ) from exc
    return model


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parse_input_shapes(specs: tuple[str, ...] | list[str]) -> dict[str, tuple[int, ...]]:
    """Parse --input-shape values of the form NAME=1,3,32,32."""
    shapes = {}
    for spec in specs:
        name, sep, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or min(shape) < 1:
            raise ArielError(f"--input-shape '{spec}' is not of the form NAME=1,3,32,32")
        shapes[name] = shape
    return shapes


def fix_input_shapes(model: onnx.ModelProto, overrides: dict[str, tuple[int, ...]]
                     ) -> list[str]:
    """Give every graph input a static shape: the user's override, else 1 for a symbolic
    leading (batch) dimension. Returns notes on what was assumed."""
    notes = _shadowed_inputs_notes(model)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    names = {i.name for i in inputs}
    for name in overrides:
        if name not in names:
            raise ArielError(f"--input-shape names '{name}', but the model's inputs are "
                             f"{', '.join(sorted(names))}")
    for value in inputs:
        dims = value.type.tensor_type.shape.dim
        if value.name in overrides:
            shape = overrides[value.name]
            if len(shape) != len(dims):
                raise ArielError(f"--input-shape gives {len(shape)} dimensions for "
                                 f"'{value.name}', which has {len(dims)}")
            for dim, size in zip(dims, shape, strict=True):
                if dim.HasField("dim_value") and dim.dim_value != size:
                    raise ArielError(f"--input-shape {value.name}: dimension is fixed at "
                                     f"{dim.dim_value} in the model, not {size}")
                dim.dim_value = size
            continue
        for index, dim in enumerate(dims):
            if _is_static(dim):
                continue
            if dim.HasField("dim_value") and dim.dim_value == 0:
                raise UnsupportedError(f"input '{value.name}' has a dimension of size 0; "
                                       "ariel does not support empty tensors")
            if index == 0:
                label = dim.dim_param or "?"
                dim.dim_value = 1
                notes.append(f"input '{value.name}': batch dimension '{label}' set to 1")
                continue
            shown = ",".join(_dim_text(d) for d in dims)
            wanted = ",".join(_dim_text(d) if _is_static(d) else "N" for d in dims)
            raise ArielError(
                f"input '{value.name}' has a dynamic shape [{shown}] that ariel cannot "
                f"resolve; give it with --input-shape {value.name}={wanted}")
    return notes


def drop_zipmaps(model: onnx.ModelProto) -> list[str]:
    """Remove each ai.onnx.ml ZipMap whose output is a graph output, making its input (the
    float tensor of class probabilities it was built from) the output instead. A ZipMap
    turns that tensor into a sequence of {class label: probability} maps, which C has no
    type for; the tensor holds the same numbers, column j for the j-th class label. Returns
    a note per ZipMap naming the tensor that replaces its output."""
    graph = model.graph
    outputs = [o.name for o in graph.output]
    notes = []
    for node in [n for n in graph.node if n.op_type == "ZipMap" and n.domain == "ai.onnx.ml"]:
        name = node.name or "ZipMap"
        if node.output[0] not in outputs or any(node.output[0] in other.input
                                                for other in graph.node):
            raise UnsupportedError(
                f"node '{name}' (ZipMap): a ZipMap whose output other nodes read is not "
                "supported; supported: a ZipMap whose output is a model output (ariel then "
                "outputs its input tensor of probabilities)")
        graph.node.remove(node)
        probabilities = node.input[0]
        position = outputs.index(node.output[0])
        del graph.output[position]
        if probabilities not in outputs:
            # Type only: shape inference and ariel's own give the shape.
            graph.output.insert(position, onnx.helper.make_tensor_value_info(
                probabilities, onnx.TensorProto.FLOAT, None))
        outputs = [o.name for o in graph.output]
        labels = next((a.name for a in node.attribute if a.name.startswith("classlabels")),
                      "classlabels")
        notes.append(f"ZipMap '{name}' dropped: output '{node.output[0]}' (a sequence of "
                     f"maps from class label to probability) is replaced by the float tensor "
                     f"'{probabilities}', column j holding the probability of class "
                     f"{labels}[j]")
    return notes


def require_outputs(model: onnx.ModelProto) -> None:
    """Refuse a graph that declares no outputs: the firmware would compute nothing anyone
    can read (and the harness has no output to report)."""
    if not model.graph.output:
        raise ArielError(f"the model's graph declares no outputs ({len(model.graph.node)} "
                         "node(s), none of whose results is a graph output), so there is "
                         "nothing for firmware to compute; list the tensors to compute in "
                         "the graph's outputs")


def require_runtime_inputs(model: onnx.ModelProto) -> None:
    """Refuse a model the firmware would have nothing to feed: no graph inputs, or only
    inputs that also have an initializer (which ariel takes as constants)."""
    initializers = {init.name for init in model.graph.initializer}
    if any(value.name not in initializers for value in model.graph.input):
        return
    if not model.graph.input:
        raise ArielError("the model has no inputs: its outputs are constants, so there is "
                         "nothing for firmware to compute at run time")
    shadowed = ", ".join(f"'{value.name}'" for value in model.graph.input)
    raise ArielError(
        f"the model has no run-time inputs: its graph input(s) {shadowed} also have an "
        "initializer of the same name, a default value in ONNX that a run-time feed "
        "replaces; ariel builds such inputs in as constants, which leaves the firmware "
        "nothing to read. To feed them at run time, remove those initializers from the model")


def _shadowed_inputs_notes(model: onnx.ModelProto) -> list[str]:
    """From IR version 4 on, an initializer that shares a graph input's name is only that
    input's default value; ariel builds it in as a constant, and says so. (Before version 4
    every initializer had to be listed as an input: the usual way to store weights.)"""
    initializers = {init.name for init in model.graph.initializer}
    shadowed = [value.name for value in model.graph.input if value.name in initializers]
    if not shadowed or model.ir_version < 4:
        return []
    named = ", ".join(f"'{name}'" for name in shadowed[:3])
    more = f" and {len(shadowed) - 3} more" if len(shadowed) > 3 else ""
    return [f"graph input(s) {named}{more} also have an initializer (an ONNX default value): "
            "ariel builds them in as constants, so the firmware does not read them"]


def _is_static(dim) -> bool:
    return dim.HasField("dim_value") and dim.dim_value > 0


def _dim_text(dim) -> str:
    return str(dim.dim_value) if _is_static(dim) else (dim.dim_param or "?")


def to_graph(model: onnx.ModelProto, name: str, budget: Budget = CEILING) -> Graph:
    """Convert a shape-inferred ModelProto into an ir.Graph (constants become data); no
    tensor may exceed `budget` (checked on the shapes before any value is computed)."""
    inferred = infer_shapes(model, budget)
    g = inferred.graph
    opset = next((o.version for o in inferred.opset_import if o.domain in ("", "ai.onnx")), 0)
    known = onnx.defs.onnx_opset_version()
    if opset > known:
        # Shape inference and the operators would read it with the newest semantics known
        # here, which a later opset may have changed: an answer that may be wrong.
        raise UnsupportedError(f"the model uses ONNX opset {opset}; the installed onnx "
                               f"package knows opsets up to {known}: export the model for "
                               f"opset {known} or lower")
    tensors: dict[str, Tensor] = {}
    nodes = graph_nodes(g, tensors, [*g.input, *g.value_info, *g.output])
    inputs = [v.name for v in g.input if not tensors[v.name].is_const]
    outputs = [v.name for v in g.output]
    return Graph(name, tensors, nodes, inputs, outputs, opset, budget=budget)


def graph_nodes(g: onnx.GraphProto, tensors: dict[str, Tensor], values, prefix: str = ""
                ) -> list[Node]:
    """The nodes of `g` (the model's graph, or a branch of an If), adding its constants and
    the tensors `values` describe to `tensors`; Constant nodes become constants. `prefix`
    goes before the names of unnamed nodes."""
    for init in g.initializer:
        data = numpy_helper.to_array(init)
        tensors[init.name] = Tensor(init.name, tuple(data.shape), _dtype_name(data.dtype),
                                    data=np.ascontiguousarray(data).reshape(data.shape))
    for value in values:
        if value.name in tensors:
            continue
        tensors[value.name] = _tensor_from_value_info(value)

    nodes = []
    for index, proto in enumerate(g.node):
        node_name = proto.name or f"{prefix}{proto.op_type}_{index}"
        attrs = {a.name: _attribute_value(a) for a in proto.attribute}
        if proto.op_type == "Constant" and proto.domain in ("", "ai.onnx"):
            out = proto.output[0]
            data = _constant_value(proto, attrs, node_name)
            tensors[out] = Tensor(out, tuple(data.shape), _dtype_name(data.dtype), data=data)
            continue
        for out in proto.output:
            if out and out not in tensors:
                tensors[out] = Tensor(out, None, "")  # filled in by our shape inference
        slots = tuple(i for i, o in enumerate(proto.output) if o)
        nodes.append(Node(node_name, proto.op_type, list(proto.input),
                          [o for o in proto.output if o], attrs, proto.domain, proto=proto,
                          output_slots=() if slots == tuple(range(len(slots))) else slots))
    return nodes


def infer_shapes(model: onnx.ModelProto, budget: Budget = CEILING) -> onnx.ModelProto:
    """ONNX's shape inference, every shape it finds held to `budget`. Its data propagation
    (which follows shape arithmetic such as Shape -> Gather -> Concat -> Reshape) builds a
    protobuf entry per element of any 1-D tensor it meets, about 150 bytes each: a
    ConstantOfShape of 2**30 elements takes it past 12 GB. So plain inference runs first and
    its shapes are checked; data propagation follows only where no 1-D tensor can be long."""
    plain = check_budget(model, budget)
    if not _propagation_is_safe(plain):
        return plain
    inferred = _onnx_inference(model, data_prop=True)
    check_model_shapes(inferred, budget)
    return inferred


def check_budget(model: onnx.ModelProto, budget: Budget) -> onnx.ModelProto:
    """ONNX's plain shape inference (no data propagation: cheap), every shape it finds held
    to `budget`; returns the inferred model."""
    plain = _onnx_inference(model, data_prop=False)
    check_model_shapes(plain, budget)
    return plain


def check_model_shapes(model: onnx.ModelProto, budget: Budget) -> None:
    """Refuse any initializer, constant or inferred tensor over `budget`, naming it."""
    g = model.graph
    producers = {out: f"output of {node.op_type} '{node.name or f'{node.op_type}_{index}'}'"
                 for index, node in enumerate(g.node) for out in node.output}
    for init in g.initializer:
        check_tensor(init.name, tuple(init.dims), _onnx_dtype_name(init.data_type, init.name),
                     budget, "an initializer")
    for value in [*g.input, *g.value_info, *g.output]:
        shape = _static_shape(value)
        if shape is not None:
            check_tensor(value.name, shape, _onnx_dtype_name(
                value.type.tensor_type.elem_type, value.name), budget,
                producers.get(value.name, "a graph input"))


# A 1-D tensor longer than this is data, not a shape: ONNX's data propagation is not run on
# a model holding one (shape vectors have a handful of elements).
PROPAGATION_LENGTH = 1 << 16
# Operators whose output size follows from the values of their inputs, which data
# propagation may learn and then expand element by element.
SIZED_BY_VALUES = {"ConstantOfShape", "Expand", "Tile", "Range", "Pad", "Reshape", "Resize",
                   "Upsample", "OneHot", "CenterCropPad"}


def _propagation_is_safe(plain: onnx.ModelProto) -> bool:
    g = plain.graph
    sized = {out for node in g.node if node.op_type in SIZED_BY_VALUES for out in node.output}
    for value in [*g.input, *g.value_info, *g.output]:
        ttype = value.type.tensor_type
        dims = ttype.shape.dim if ttype.HasField("shape") else None
        if dims is not None and len(dims) == 1 and _is_static(dims[0]):
            if dims[0].dim_value > PROPAGATION_LENGTH:
                return False
        elif value.name in sized and (dims is None or len(dims) == 1):
            return False  # a vector of unknown length that propagation could learn
    for init in g.initializer:
        if len(init.dims) == 1 and init.dims[0] > PROPAGATION_LENGTH:
            return False
    return True


def _onnx_inference(model: onnx.ModelProto, data_prop: bool) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, strict_mode=True, data_prop=data_prop)
    except Exception as exc:  # onnx raises InferenceError and, for some ops, RuntimeError
        if _untyped_input(exc):
            # Some operators have no type inference in onnx (ai.onnx.ml's Normalizer): the
            # next node's then fails in strict mode on an input of no type. Lenient
            # inference leaves those tensors to ariel's own, which every operator has.
            return shape_inference.infer_shapes(model, strict_mode=False, data_prop=data_prop)
        raise ArielError(f"ONNX shape inference failed: {_first_line(exc)}") from exc


def _untyped_input(exc: Exception) -> bool:
    """True for onnx's strict-mode failure on an input that an earlier node left untyped."""
    return "expected to have type but instead is null" in str(exc)


def _static_shape(value: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    ttype = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not ttype.HasField("shape"):
        return None
    dims = ttype.shape.dim
    return tuple(d.dim_value for d in dims) if all(_is_static(d) for d in dims) else None


def load_graph(path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None,
               name: str | None = None, budget: Budget = CEILING
               ) -> tuple[Graph, ModelSource]:
    """The front end in one call: file -> checked, static-shaped ir.Graph."""
    model = load_model(path)
    notes = fix_input_shapes(model, input_shapes or {}) + drop_zipmaps(model)
    graph = to_graph(model, c_identifier(name or Path(path).stem), budget)
    return graph, ModelSource(str(path), sha256_of(path), notes)


def _tensor_from_value_info(value: onnx.ValueInfoProto) -> Tensor:
    ttype = value.type.tensor_type
    if not value.type.HasField("tensor_type"):
        raise UnsupportedError(f"'{value.name}' is not a tensor (sequences, maps and optionals "
                               "are not supported)")
    dtype = _onnx_dtype_name(ttype.elem_type, value.name)
    return Tensor(value.name, _static_shape(value), dtype)


def _onnx_dtype_name(elem_type: int, where: str) -> str:
    if elem_type == 0:
        return ""
    try:
        name = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except Exception:
        name = onnx.TensorProto.DataType.Name(elem_type).lower()
    return "bool" if name == "bool" else name


def _dtype_name(dtype: np.dtype) -> str:
    return np.dtype(dtype).name


def check_dtype_supported(tensor: Tensor) -> None:
    if tensor.dtype not in C_TYPES:
        raise UnsupportedError(
            f"tensor '{tensor.name}' has data type {tensor.dtype or 'unknown'}; supported: "
            f"{', '.join(C_TYPES)}")


def _attribute_value(attribute: onnx.AttributeProto):
    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def _constant_value(proto: onnx.NodeProto, attrs: dict, node_name: str) -> np.ndarray:
    if "value" in attrs:
        return np.ascontiguousarray(attrs["value"]).reshape(np.shape(attrs["value"]))
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    raise UnsupportedError(f"node '{node_name}' (Constant): attribute "
                           f"{', '.join(attrs) or '(none)'} is not supported; supported: "
                           "value, value_float(s), value_int(s)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
