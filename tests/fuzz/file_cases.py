"""Corrupt and odd model files given to `ariel build`: truncated, bit-flipped, garbage, wrong
opset or IR version, missing fields, huge or negative dimensions, cycles, duplicate names,
external data pointing outside the model's folder, and the like. Each must end in one clean
line, or, where the file is still a valid model, in a build whose output matches
onnxruntime's. Sentinel files beside the model and the output folder must survive."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.fuzz.command import Sentinels, ariel
from tests.fuzz.graphs import FLOAT, random_graph
from tests.fuzz.outcomes import CORRECT, WRONG, Verdict, one_line

BASE_MODELS = 64  # the mutated models are drawn from this many random graphs


def base_model(rng: np.random.Generator) -> onnx.ModelProto:
    return random_graph(int(rng.integers(BASE_MODELS)), FLOAT).model


# -- mutations: each returns the bytes of the model file ---------------------------------

def truncated(rng, model, folder):
    data = model.SerializeToString()
    return data[:int(rng.integers(0, len(data)))]


def bit_flips(rng, model, folder):
    data = bytearray(model.SerializeToString())
    for _ in range(int(rng.integers(1, 9))):
        position = int(rng.integers(len(data)))
        data[position] ^= 1 << int(rng.integers(8))
    return bytes(data)


def garbage(rng, model, folder):
    choice = int(rng.integers(5))
    if choice == 0:
        return b""
    if choice == 1:
        return rng.bytes(int(rng.integers(1, 4096)))
    if choice == 2:
        return b"\x08\x07" + rng.bytes(64)  # an ir_version field, then noise
    if choice == 3:
        return numpy_helper.from_array(np.ones(3, np.float32), "t").SerializeToString()
    return b"<html>not a model</html>\n"


def opset(rng, model, folder):
    choice = int(rng.integers(6))
    if choice == 0:
        model.opset_import[0].version = int(rng.choice([1, 5, 99, 10_000]))
    elif choice == 1:
        del model.opset_import[:]
    elif choice == 2:
        model.opset_import[0].domain = "ai.onnx.ml"
    elif choice == 3:
        model.ir_version = int(rng.choice([0, 1, 99]))
    elif choice == 4:
        model.opset_import.append(helper.make_opsetid("com.example", 1))
        model.graph.node[0].domain = "com.example"
    else:
        model.opset_import[0].version = -1
    return model.SerializeToString()


def missing_field(rng, model, folder):
    graph = model.graph
    choice = int(rng.integers(8))
    if choice == 0:
        del graph.output[:]
    elif choice == 1:
        del graph.input[:]
    elif choice == 2:
        node = graph.node[int(rng.integers(len(graph.node)))]
        del node.input[:]
    elif choice == 3:
        graph.node[int(rng.integers(len(graph.node)))].op_type = ""
    elif choice == 4 and graph.initializer:
        del graph.initializer[int(rng.integers(len(graph.initializer)))]
    elif choice == 5:
        graph.input[0].type.tensor_type.elem_type = 0
    elif choice == 6:
        graph.input[0].type.tensor_type.ClearField("shape")
    else:
        del graph.node[:]
    return model.SerializeToString()


def huge_dims(rng, model, folder):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    value = int(rng.choice([2**31, 2**32 + 1, 2**40, 3_000_000, 65_537]))
    choice = int(rng.integers(3))
    if choice == 0:
        dims[int(rng.integers(len(dims)))].dim_value = value
    elif choice == 1:
        dims[int(rng.integers(len(dims)))].dim_value = int(rng.choice([-1, -5, 0]))
    else:
        # A constant whose shape asks for a huge fill at compile time.
        graph = model.graph
        graph.initializer.append(numpy_helper.from_array(
            np.array([value], np.int64), "huge_shape"))
        graph.node.append(helper.make_node("ConstantOfShape", ["huge_shape"], ["huge"],
                                           name="huge"))
        graph.output.append(helper.make_tensor_value_info("huge", TensorProto.FLOAT, None))
    return model.SerializeToString()


def cycle(rng, model, folder):
    graph = model.graph
    node = graph.node[int(rng.integers(len(graph.node)))]
    if rng.random() < 0.5 or len(graph.node) < 2:
        node.input[0] = node.output[0]  # a node that reads its own output
    else:
        graph.node[0].input[0] = graph.node[-1].output[0]  # the first reads the last
    return model.SerializeToString()


def duplicate_names(rng, model, folder):
    graph = model.graph
    choice = int(rng.integers(4))
    if choice == 0 and len(graph.node) > 1:
        graph.node[1].output[0] = graph.node[0].output[0]  # two writers of one tensor
    elif choice == 1:
        graph.input.append(graph.input[0])  # one input declared twice
    elif choice == 2:
        # The run-time input shadowed by an initializer of the same name.
        value = graph.input[0]
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        graph.initializer.append(numpy_helper.from_array(np.zeros(shape, np.float32),
                                                         value.name))
    else:
        for node in graph.node:
            node.name = "same"
    return model.SerializeToString()


def external_data(rng, model, folder):
    """A weight stored as external data whose location leaves the model's folder, or that
    points past the end of its file."""
    weights = np.ones((4, 4), np.float32)
    tensor = numpy_helper.from_array(weights, "ext_w")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    outside = folder / "outside.bin"
    outside.write_bytes(weights.tobytes())
    (folder / "model_dir").mkdir(exist_ok=True)
    (folder / "model_dir" / "weights.bin").write_bytes(weights.tobytes()[:16])
    location = str(rng.choice(["../outside.bin", str(outside), "/etc/passwd",
                               "../../../../../../etc/hostname", "weights.bin",
                               "missing.bin"]))
    entries = {"location": location}
    if location == "weights.bin":
        entries.update(offset="8", length="64")  # past the end of the file
    for key, value in entries.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("MatMul", ["x", "ext_w"], ["y"], name="mm")
    graph = helper.make_graph([node], "ext", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [tensor])
    made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    made.ir_version = 8
    return made.SerializeToString(), "model_dir/model.onnx"


def odd_attributes(rng, model, folder):
    graph = model.graph
    node = graph.node[int(rng.integers(len(graph.node)))]
    choice = int(rng.integers(5))
    if choice == 0:
        node.attribute.append(helper.make_attribute("kernel_shape", [0.5, 2.5]))
    elif choice == 1:
        node.attribute.append(helper.make_attribute("strides", [0, -1]))
    elif choice == 2:
        node.attribute.append(helper.make_attribute("pads", [-3, 2**40, 1, 1]))
    elif choice == 3:
        node.attribute.append(helper.make_attribute("axis", 2**62))
    else:
        node.attribute.append(helper.make_attribute("not_an_attribute", "x" * 5000))
    return model.SerializeToString()


def odd_values(rng, model, folder):
    """Valid files with unusual content: huge names and doc strings, NaN weights, a
    subgraph, a string input, a graph with no nodes, no run-time input, a long chain."""
    graph = model.graph
    choice = int(rng.integers(7))
    if choice == 0:
        model.doc_string = "d" * 100_000
        graph.name = "g" * 5_000
    elif choice == 1 and graph.initializer:
        init = graph.initializer[0]
        data = numpy_helper.to_array(init).copy()
        if data.dtype == np.float32 and data.size:
            data.reshape(-1)[0] = np.float32(rng.choice([np.nan, np.inf, 3e38]))
        graph.initializer[0].CopyFrom(numpy_helper.from_array(data, init.name))
    elif choice == 2:
        return _simple(helper.make_node("Identity", ["x"], ["y"], name="id"),
                       TensorProto.STRING)
    elif choice == 3:
        return _simple(None, TensorProto.FLOAT)  # no nodes: the output is the input
    elif choice == 4:
        const = helper.make_node("Constant", [], ["y"], name="k",
                                 value=numpy_helper.from_array(np.ones(3, np.float32)))
        graph = helper.make_graph([const], "noinput", [],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
        made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        made.ir_version = 8
        return made.SerializeToString()
    elif choice == 5:
        return _chain(int(rng.choice([200, 1000])))
    else:
        for dtype in (TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BOOL):
            if rng.random() < 0.5:
                return _simple(helper.make_node("Relu", ["x"], ["y"], name="r"), dtype)
        return _simple(helper.make_node("Relu", ["x"], ["y"], name="r"), TensorProto.INT64)
    return model.SerializeToString()


def _simple(node, elem_type: int) -> bytes:
    nodes = [node] if node is not None else []
    output = "y" if node is not None else "x"
    graph = helper.make_graph(nodes, "simple", [helper.make_tensor_value_info("x", elem_type,
                                                                               [1, 4])],
                              [helper.make_tensor_value_info(output, elem_type, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _chain(length: int) -> bytes:
    nodes = [helper.make_node("Relu" if i % 2 else "Sigmoid", [f"t{i}"], [f"t{i + 1}"],
                              name=f"n{i}") for i in range(length)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info(
        "t0", TensorProto.FLOAT, [1, 8])], [helper.make_tensor_value_info(
            f"t{length}", TensorProto.FLOAT, [1, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


MUTATIONS = [truncated, bit_flips, garbage, opset, missing_field, huge_dims, cycle,
             duplicate_names, external_data, odd_attributes, odd_values]


def model_file_case(mutation, seed: int, folder: Path) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    made = mutation(rng, base_model(rng), folder)
    data, relative = made if isinstance(made, tuple) else (made, "model.onnx")
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    sentinels = Sentinels()
    sentinels.guard(path)
    sentinels.plant(folder / "notes.txt")
    sentinels.plant(folder / "builds" / "keep.txt")
    out = folder / "builds" / "out"
    result = ariel(["build", path, "-o", out])
    sentinels.check()
    what = f"{mutation.__name__}"
    if result.code != 0:
        outcome, line = result.refusal()
        if out.exists():
            raise Verdict(WRONG, f"{what}: refused ({line}) but left {out.name}/ behind")
        return outcome, f"{what}: {line}"
    return _check_built(path, out, what)


def _check_built(path: Path, out: Path, what: str) -> tuple[str, str]:
    """A build that succeeded: the same file's generated C, run on the host, must match
    the oracle on it."""
    from tests.fuzz.graph_cases import _check_float, _host
    from tests.support import compile_onnx

    if not (out / "build" / "firmware.elf").is_file():
        raise Verdict(WRONG, f"{what}: exit 0 but no firmware.elf")
    model = onnx.load(str(path))
    feeds = {}
    rng = np.random.default_rng(0)
    for value in model.graph.input:
        if value.name in {i.name for i in model.graph.initializer}:
            continue
        dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        shape = [d.dim_value if d.dim_value > 0 else 1
                 for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = (rng.uniform(-1, 1, shape) * 5).astype(dtype)
    expected = _oracle(path, model, feeds, what)
    compiled = compile_onnx(model, "fuzzfile")
    host = _host(compiled, out.parent / "host")
    got = host.run(*[feeds[s.name] for s in compiled.info.inputs])
    try:
        for spec, mine, theirs in zip(compiled.info.outputs, got, expected, strict=True):
            _check_float(spec.name, mine, theirs)
    except Verdict as verdict:
        if not _matches_the_specification(model, feeds, compiled.info.outputs, got):
            raise verdict
        return CORRECT, f"{what}: built, matches onnx.reference where onnxruntime differs"
    return CORRECT, f"{what}: built, matches onnxruntime"


def _matches_the_specification(model: onnx.ModelProto, feeds: dict, specs, got) -> bool:
    """Whether ariel's outputs match onnx.reference, which computes the operators' formulas
    as ONNX writes them. Where values overflow (odd_values' weights of 3e38), onnxruntime's
    own order of operations may turn an infinity into NaN (its BatchNormalization folds
    scale / sqrt(var + eps) first); either oracle's answer is then taken."""
    from onnx.reference import ReferenceEvaluator

    from tests.fuzz.graph_cases import _check_float

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            expected = ReferenceEvaluator(model).run(None, feeds)
        for spec, mine, theirs in zip(specs, got, expected, strict=True):
            _check_float(spec.name, mine, theirs)
    except Exception:  # a Verdict, or onnx.reference refusing the model
        return False
    return True


def _oracle(path: Path, model: onnx.ModelProto, feeds: dict, what: str) -> list[np.ndarray]:
    """onnxruntime's outputs; where it refuses the file, onnxruntime's on the same model with
    its nodes renamed apart (node names carry no meaning; onnxruntime refuses duplicates),
    then on that model without the nodes no output depends on (ariel drops them, so an
    operator onnxruntime does not know there changes nothing), then on that model converted
    to opset 13 by onnx's version converter (onnxruntime runs no opset before 7), then
    onnx.reference's (which gets BatchNormalization on [N, C] wrong, and takes every opset's
    Softmax as opset 13's, so it comes last); a model that none of them runs should not have
    been built."""
    from onnx.reference import ReferenceEvaluator

    from tests.fuzz.graph_cases import onnxruntime_session

    renamed = onnx.ModelProto.FromString(model.SerializeToString())
    for index, node in enumerate(renamed.graph.node):
        node.name = f"node{index}"
    live = _without_dead_nodes(renamed)
    runs = [lambda: onnxruntime_session(str(path)).run(None, feeds),
            lambda: onnxruntime_session(renamed.SerializeToString()).run(None, feeds),
            lambda: onnxruntime_session(live.SerializeToString()).run(None, feeds),
            lambda: onnxruntime_session(_converted(live).SerializeToString()).run(None, feeds),
            lambda: ReferenceEvaluator(model).run(None, feeds)]
    refusals = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for run in runs:
            try:
                return run()
            except Exception as exc:
                refusals.append(one_line(exc, 100))
    raise Verdict(WRONG, f"{what}: built a model that onnxruntime and onnx.reference refuse "
                  f"({refusals[0]})")


def _converted(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` at opset 13 by onnx's version converter (which rewrites what changed
    meaning, such as Softmax's axes before opset 13)."""
    from onnx import version_converter

    return version_converter.convert_version(model, 13)


def _without_dead_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` keeping only the nodes that some graph output depends on."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    live = onnx.ModelProto.FromString(model.SerializeToString())
    del live.graph.node[:]
    live.graph.node.extend(reversed(kept))
    return live


KINDS = {f"file-{m.__name__.replace('_', '-')}": partial(model_file_case, m) for m in MUTATIONS}
TIME_LIMITS = {kind: 120.0 for kind in KINDS}
