"""Names are data, never code. Models whose every name (tensors, nodes, the graph, doc strings,
the model file's name) holds C, shell and Makefile syntax, built into folders whose paths do
too: every template renders them, the C compiles warning-free for the host and the
Cortex-M, runs to exactly the outputs of the same model with plain names (and onnxruntime's),
the names read back intact where the C keeps them, and nothing they hold ever runs."""

import ctypes
import json
import re
import subprocess
from pathlib import Path

import jinja2
import numpy as np
import onnx
import onnxruntime
import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile
from onnx import TensorProto, helper, numpy_helper

from codegen.cli import main
from codegen.devkit.uart import parse_console
from codegen.resources import data_dir
from codegen.run.hostrun import HostModel, build_host_library
from tests.support import compile_for_cortex_m4, compile_onnx, compile_onnx_int8

# Each tries to end the place it is put in (a string literal, a comment, a line, a Makefile
# comment, a shell word) and add code of its own; the rest are characters that need escaping.
HOSTILE = [
    'x", 0u, 0u}}; int evil = 1; //',
    "*/ int evil = 2; /*",
    "tri??/",
    "back\\",
    "two\nlines\r\n\t$(shell touch PWNED)\n",
    "%s%n%x%%",
    "$(touch PWNED) `touch PWNED`; touch PWNED #",
    "'quoted' \"twice\"",
    "\u00fcn\u00ef \u20ac \U0001f600",
    "\u202ebidi\u2066",
    "/conv1/Conv*",
    "\x01\x1b[31m\x7f",
    "long" * 600,
    '"', "\\", "/", "*", "?", "??=",
]
# What a run of one of these names would leave behind.
EVIDENCE = ("PWNED", "evil")


def hostile(index: int) -> str:
    """The index-th hostile name, unique by its leading number."""
    return f"{index}{HOSTILE[index % len(HOSTILE)]}"


def rename(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """`model` with every tensor, node and graph name hostile and hostile doc strings, and the
    old tensor names mapped to the new."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    names: dict[str, str] = {}

    def new(name: str) -> str:
        if name and name not in names:
            names[name] = hostile(len(names))
        return names.get(name, name)

    for value in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        value.name = new(value.name)
    for index, node in enumerate(graph.node):
        node.input[:] = [new(n) for n in node.input]
        node.output[:] = [new(n) for n in node.output]
        node.name = hostile(1000 + index)
        node.doc_string = hostile(2000 + index)
    graph.name, graph.doc_string = hostile(3000), hostile(3001)
    model.doc_string, model.producer_name = hostile(3002), hostile(3003)
    onnx.checker.check_model(model)
    return model, names


@pytest.fixture
def rendered(monkeypatch) -> set[str]:
    """The names of the templates rendered while the test runs."""
    names: set[str] = set()
    render = jinja2.Template.render

    def recording(self, *args, **kwargs):
        names.add(self.name)
        return render(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "render", recording)
    return names


# ---------------------------------------------------------------------------- models

def _constant(rng, name, shape):
    return numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)


def _model(nodes, inputs, outputs, constants) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "plain", inputs,
                              [helper.make_empty_tensor_value_info(o) for o in outputs],
                              constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def float_model() -> onnx.ModelProto:
    """A float model whose kernels use every float template (BatchNormalization after an Add,
    which no pass folds away; a Conv whose filters are an input; a Transpose as a view)."""
    rng = np.random.default_rng(0)
    value = helper.make_tensor_value_info
    node = helper.make_node
    inputs = [value("x", TensorProto.FLOAT, [1, 4, 6, 6]),
              value("x2", TensorProto.FLOAT, [1, 8, 6, 6]),
              value("wx", TensorProto.FLOAT, [2, 8, 1, 1]),
              value("m", TensorProto.FLOAT, [16, 5])]
    constants = [_constant(rng, "w1", (8, 4, 3, 3)), _constant(rng, "b1", (8,)),
                 _constant(rng, "wd", (8, 1, 3, 3)), _constant(rng, "scale", (8,)),
                 _constant(rng, "bias", (8,)), _constant(rng, "mean", (8,)),
                 numpy_helper.from_array(rng.uniform(0.5, 1, 8).astype(np.float32), "var"),
                 _constant(rng, "wg", (16, 10)), _constant(rng, "bg", (10,))]
    nodes = [
        node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        node("Add", ["c1", "x2"], ["a"]),
        node("BatchNormalization", ["a", "scale", "bias", "mean", "var"], ["bn"]),
        node("Sigmoid", ["bn"], ["s"]),
        node("Conv", ["s", "wd"], ["d"], pads=[1, 1, 1, 1], group=8),
        node("Conv", ["s", "wx"], ["rc"]),
        node("MaxPool", ["d"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("AveragePool", ["d"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Concat", ["p", "p2"], ["cc"], axis=1),
        node("Transpose", ["cc"], ["t"], perm=[0, 2, 3, 1]),
        node("ReduceMean", ["t"], ["r"], axes=[1, 2], keepdims=0),
        node("ReduceMax", ["cc"], ["rm"], axes=[1], keepdims=0),
        node("Gemm", ["r", "wg", "bg"], ["g"]),
        node("MatMul", ["r", "m"], ["mm"]),
        node("Softmax", ["g"], ["y"]),
    ]
    return _model(nodes, inputs, ["y", "mm", "rm", "rc", "t"], constants)


def int8_model() -> onnx.ModelProto:
    """A float model whose int8 kernels, after ONNX Runtime quantizes it, use every int8
    template (the 12x12 Conv's receptive field is too large for the packed path; the Gemm of
    one row packs its filters in pairs, that of four rows does not; the Conv on two channels
    pairs its taps; the dilated depthwise Conv takes the kernel of four channels per step, the
    other the planes of int16 pairs)."""
    rng = np.random.default_rng(1)
    value = helper.make_tensor_value_info
    node = helper.make_node
    inputs = [value("x", TensorProto.FLOAT, [1, 8, 6, 6]),
              value("m", TensorProto.FLOAT, [4, 5]), value("z", TensorProto.FLOAT, [1, 2, 5, 5])]
    constants = [_constant(rng, "w1", (8, 8, 3, 3)), _constant(rng, "b1", (8,)),
                 _constant(rng, "wp", (3, 2, 3, 3)),
                 _constant(rng, "wd", (8, 1, 3, 3)), _constant(rng, "wbig", (4, 8, 12, 12)),
                 _constant(rng, "wg", (4, 10)), _constant(rng, "bg", (10,)),
                 _constant(rng, "lns", (5,)), _constant(rng, "lnb", (5,)),
                 _constant(rng, "wm", (5, 3))]
    nodes = [
        node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        node("Conv", ["x", "wd"], ["d"], pads=[1, 1, 1, 1], group=8),
        node("Conv", ["x", "wd"], ["dd"], pads=[2, 2, 2, 2], dilations=[2, 2], group=8),
        node("Add", ["c1", "d"], ["a0"]),
        node("Add", ["a0", "dd"], ["a"]),
        node("Sigmoid", ["a"], ["s"]),
        node("Conv", ["s", "wbig"], ["big"], pads=[5, 5, 5, 5]),
        node("AveragePool", ["big"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("MaxPool", ["p"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["mp"], ["f"]),
        node("Gemm", ["f", "wg", "bg"], ["g"]),
        node("MatMul", ["f", "m"], ["mm"]),
        node("LayerNormalization", ["mm", "lns", "lnb"], ["ln"]),
        node("Softmax", ["g"], ["y"]),
        node("Gemm", ["m", "wm"], ["gm"]),
        node("Conv", ["z", "wp"], ["cp"], pads=[1, 1, 1, 1]),
    ]
    return _model(nodes, inputs, ["y", "ln", "gm", "cp"], constants)


def small_model() -> onnx.ModelProto:
    """Conv, Sigmoid, a mean and a Gemm: three scores, for the firmware builds."""
    rng = np.random.default_rng(2)
    node = helper.make_node
    nodes = [node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             node("Sigmoid", ["c"], ["s"]),
             node("ReduceMean", ["s"], ["r"], axes=[2, 3], keepdims=0),
             node("Gemm", ["r", "wg"], ["y"])]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                  ["y"], [_constant(rng, "w", (4, 2, 3, 3)), _constant(rng, "wg", (4, 3))])


def operators_model() -> onnx.ModelProto:
    """The float operators of the other families, each in the kernel form with a template
    of its own: ConvTranspose (constant and run-time filters), Resize, Gather with run-time
    indices, LSTM, and scikit-learn's ai.onnx.ml operators."""
    rng = np.random.default_rng(5)
    value = helper.make_tensor_value_info
    node = helper.make_node

    def ml(op, inputs, outputs, **attrs):
        return node(op, inputs, outputs, domain="ai.onnx.ml", **attrs)

    inputs = [value("x", TensorProto.FLOAT, [1, 4, 5, 5]),
              value("wt", TensorProto.FLOAT, [4, 2, 3, 3]),
              value("i", TensorProto.INT64, [3]),
              value("seq", TensorProto.FLOAT, [5, 1, 3]),
              value("f", TensorProto.FLOAT, [1, 6])]
    constants = [_constant(rng, "wct", (4, 2, 3, 3)), _constant(rng, "table", (10, 4)),
                 _constant(rng, "W", (1, 16, 3)), _constant(rng, "R", (1, 16, 4)),
                 numpy_helper.from_array(np.array([], np.float32), "roi"),
                 numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
                 numpy_helper.from_array(np.array([0, 5], np.int64), "columns"),
                 numpy_helper.from_array(np.array([2], np.int64), "k"),
                 _constant(rng, "ln_scale", (4,))]
    support = rng.normal(size=(4, 6)).astype(np.float32)
    nodes = [
        node("ConvTranspose", ["x", "wct"], ["ct"], strides=[2, 2]),
        node("ConvTranspose", ["x", "wt"], ["ctr"], pads=[1, 1, 1, 1]),
        node("Resize", ["ct", "roi", "scales"], ["rs"], mode="linear"),
        node("Gather", ["table", "i"], ["g"]),
        node("LSTM", ["seq", "W", "R"], ["lstm_y", "lstm_h"], hidden_size=4),
        node("LayerNormalization", ["g", "ln_scale"], ["ln"]),
        node("LogSoftmax", ["ln"], ["lsm"]),
        node("ArgMax", ["lsm"], ["am"], axis=1),
        node("TopK", ["g", "k"], ["top", "top_i"]),
        ml("Scaler", ["f"], ["sc"], offset=list(rng.normal(size=6)),
           scale=list(rng.uniform(0.5, 2, size=6))),
        ml("Normalizer", ["sc"], ["n"], norm="L2"),
        ml("ArrayFeatureExtractor", ["n", "columns"], ["afe"]),
        ml("LinearClassifier", ["sc"], ["label", "probabilities"],
           coefficients=list(rng.normal(size=18)), intercepts=list(rng.normal(size=3)),
           classlabels_ints=[0, 1, 2]),
        ml("SVMClassifier", ["sc"], ["svm_label", "svm_scores"], kernel_type="RBF",
           kernel_params=[0.2, 0.0, 3.0], support_vectors=list(support.reshape(-1)),
           vectors_per_class=[2, 2], coefficients=list(rng.normal(size=4)), rho=[0.1],
           classlabels_ints=[0, 1]),
        ml("TreeEnsembleRegressor", ["sc"], ["tree"], n_targets=1,
           nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
           nodes_values=[0.1, 0.0, 0.0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
           nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
           target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0],
           target_weights=[1.0, -1.0]),
    ]
    shapes = {"ctr": [1, 2, 5, 5], "rs": [1, 2, 22, 22], "g": [3, 4], "lstm_y": [5, 1, 1, 4],
              "lstm_h": [1, 1, 4], "afe": [1, 2], "label": [1], "probabilities": [1, 3],
              "svm_label": [1], "svm_scores": [1, 2], "tree": [1, 1], "am": [3, 1],
              "top": [3, 2], "top_i": [3, 2]}
    integers = {"label", "svm_label", "am", "top_i"}
    outputs = [value(name, TensorProto.INT64 if name in integers else TensorProto.FLOAT, shape)
               for name, shape in shapes.items()]
    graph = helper.make_graph(nodes, "plain", inputs, outputs, constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    return model


FLOAT_TEMPLATES = {"model.c.j2", "model.h.j2", "weights.c.j2", "weights.h.j2"} | {
    f"kernels/{name}.c.j2" for name in (
        "batchnorm_f32", "broadcast", "conv_dw_f32", "conv_f32", "conv_f32_runtime",
        "copy", "matmul_f32", "matmul_packed_f32", "pool_window", "reduce_inner",
        "reduce_outer", "softmax_f32", "unary")}
OPERATOR_TEMPLATES = {f"kernels/{name}.c.j2" for name in (
    "conv_transpose", "conv_transpose_f32_runtime", "resize", "gather", "recurrent_f32",
    "ml_columns", "ml_normalizer", "ml_array_feature_extractor", "ml_linear", "ml_svm",
    "ml_tree_ensemble", "normalization_f32", "log_softmax_f32", "arg_extreme", "topk")}
INT8_TEMPLATES = {f"kernels/{name}.c.j2" for name in (
    "binary_s8", "conv_direct_s8", "conv_dw_rows_s8", "conv_dw_s8", "conv_pairs_s8", "conv_s8",
    "dequantize_linear", "lookup_s8", "matmul_packed_s8", "matmul_pairs_s8", "matmul_s8",
    "normalization_s8", "pool_average_s8", "quantize_linear", "softmax_s8")}
FIRMWARE_TEMPLATES = {"firmware/Makefile.j2", "firmware/ariel_model.h.j2",
                      "firmware/linker.ld.j2", "firmware/ariel_test_data.c.j2",
                      "firmware/board_config.h.j2", "ari/ari.c.j2", "ari/ari.h.j2",
                      "ari/ari_thresholds.c.j2"}
INTERMITTENT_TEMPLATES = {"checkpoint.c.j2"}
EXPORT_TEMPLATES = {f"export/{name}.j2" for name in (
    "model_api.h", "CMakeLists.txt", "arm-none-eabi.cmake", "zephyr_module.yml",
    "zephyr_CMakeLists.txt", "Kconfig", "library.properties", "sketch.ino", "arena.c")}


def test_the_hostile_builds_render_every_template():
    """Each test below asserts which templates it rendered: together, all of them (a new
    template needs a case here)."""
    folder = data_dir("templates")
    templates = {str(p.relative_to(folder)) for p in folder.rglob("*.j2")
                 if not p.name.startswith("_")}  # partials are rendered inside others
    missing = (templates - FLOAT_TEMPLATES - OPERATOR_TEMPLATES - INT8_TEMPLATES
               - FIRMWARE_TEMPLATES - EXPORT_TEMPLATES - INTERMITTENT_TEMPLATES)
    assert not missing, f"no hostile-name build renders {sorted(missing)}: add a case"


# ---------------------------------------------------------------------------- host runs

class Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("offset", ctypes.c_uint32),
                ("nbytes", ctypes.c_uint32)]


def _read_back_names(library: Path, prefix: str, count: int, which: str) -> list[str]:
    table = (Tensor * count).in_dll(ctypes.CDLL(str(library)), f"{prefix}_{which}")
    return [t.name.decode("utf-8", "surrogateescape") for t in table]


def _check_host_build(plain, hostile_compiled, names, inputs, workdir: Path, want=None):
    """The hostile build's C compiles for the host and the Cortex-M with -Werror, injects
    nothing, keeps its tensor names exactly, and computes what the plain build does."""
    for text in hostile_compiled.files.values():
        assert text.isascii()
    info = hostile_compiled.info
    identifiers = [info.prefix, *(k["fn"] for k in info.kernels)]
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", i) for i in identifiers), identifiers
    library = build_host_library(hostile_compiled.files, workdir / "hostile")
    compile_for_cortex_m4(hostile_compiled, workdir / "m4")
    symbols = subprocess.run(["nm", str(library)], capture_output=True, text=True).stdout
    assert not any(word in symbols for word in EVIDENCE)
    for which, specs in (("inputs", info.inputs), ("outputs", info.outputs)):
        assert _read_back_names(library, info.prefix, len(specs), which) == [
            s.name for s in specs]
    assert {names[t.name] for t in plain.info.inputs} == {t.name for t in info.inputs}

    expected = HostModel(build_host_library(plain.files, workdir / "plain"), plain.info)
    got = HostModel(library, info).run(*inputs)
    for a, b in zip(got, expected.run(*inputs), strict=True):
        assert a.tobytes() == b.tobytes()  # the same C, bit for bit
    if want is not None:
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _onnxruntime(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    feeds = {i.name: x for i, x in zip(model.graph.input, inputs, strict=True)}
    return session.run([o.name for o in model.graph.output], feeds)


def test_float_model_with_hostile_names(tmp_path, rendered):
    plain = float_model()
    model, names = rename(plain)
    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=[d.dim_value for d in i.type.tensor_type.shape.dim])
              .astype(np.float32) for i in model.graph.input]
    compiled = compile_onnx(model)
    assert FLOAT_TEMPLATES <= rendered
    _check_host_build(compile_onnx(plain), compiled, names, inputs, tmp_path,
                      want=_onnxruntime(model, inputs))
    # --weights-in-ram: the same arrays with a section attribute
    in_ram = compile_onnx(model, weights_in_ram=True)
    assert "__attribute__((section(" in in_ram.files[f"{in_ram.info.prefix}_weights.c"]
    _check_host_build(compile_onnx(plain), in_ram, names, inputs, tmp_path / "ram")


def test_operators_model_with_hostile_names(tmp_path, rendered):
    plain = operators_model()
    model, names = rename(plain)
    rng = np.random.default_rng(6)
    inputs = []
    for value in model.graph.input:
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if value.type.tensor_type.elem_type == TensorProto.INT64:
            inputs.append(rng.integers(0, 10, size=shape).astype(np.int64))
        else:
            inputs.append(rng.normal(size=shape).astype(np.float32))
    compiled = compile_onnx(model)
    assert OPERATOR_TEMPLATES <= rendered
    _check_host_build(compile_onnx(plain), compiled, names, inputs, tmp_path,
                      want=_onnxruntime(model, inputs))


def test_int8_model_with_hostile_names(tmp_path, rendered):
    plain = int8_model()
    model, names = rename(plain)
    rng = np.random.default_rng(4)
    calibration = {"x": rng.normal(size=(8, 1, 8, 6, 6)).astype(np.float32),
                   "m": rng.normal(size=(8, 4, 5)).astype(np.float32),
                   "z": rng.normal(size=(8, 1, 2, 5, 5)).astype(np.float32)}
    compiled = compile_onnx_int8(model, {names[k]: v for k, v in calibration.items()},
                                 io="float")
    assert INT8_TEMPLATES <= rendered
    _check_host_build(compile_onnx_int8(plain, calibration, io="float"), compiled, names,
                      [calibration["x"][0], calibration["m"][0], calibration["z"][0]],
                      tmp_path)


def test_early_exit_stages_with_hostile_names(tmp_path, rendered):
    """An early-exit model whose every name (its exits' outputs too) is hostile, as exit 1
    int8 -> exit 2 int8 -> final int8 -> final float: the segmented model's C and the
    dispatcher's (whose comments name the stages by their outputs) compile warning-free,
    inject nothing, and compute what the plain model's do, bit for bit."""
    from codegen.ari.assemble import compile_stages
    from codegen.ari.spec import AriOptions, Stage
    from tests.ari.exit_models import inputs, two_exit_cnn

    plain = two_exit_cnn()
    model, names = rename(plain)
    np.save(tmp_path / "calib.npy", inputs(32, seed=1))
    compiled = []
    for onnx_model, path, output in ((plain, tmp_path / "plain.onnx", str),
                                     (model, tmp_path / MODEL_FILE, names.get)):
        onnx.save(onnx_model, path)
        stages = [Stage(path, "int8", output("ariel_exit1")),
                  Stage(path, "int8", output("ariel_exit2")), Stage(path, "int8"),
                  Stage(path, "float")]
        compiled.append(compile_stages(AriOptions(stages, str(tmp_path / "calib.npy"),
                                                  thresholds=[1.0, 2.0, 3.0]), "tests"))
    assert {"ari/ari.c.j2", "ari/ari.h.j2", "model.c.j2", "model.h.j2"} <= rendered
    assert compiled[1].models[0].info.segments
    for text in compiled[1].files.values():
        assert text.isascii()
    compile_for_cortex_m4(compiled[1], tmp_path / "ari")
    _check_host_build(compiled[0].models[0], compiled[1].models[0], names,
                      [inputs(1, seed=2)[0]], tmp_path)
    _nothing_ran(tmp_path)


# A tensor name that ends its string literal and its initializer, defines a function that
# runs when the library loads, and opens a table for the template's own tail; a node name
# that ends its comment. Both give valid C if pasted in unescaped.
INJECTING_TENSOR = ('x", 0u, 16u}}; int evil_ran; __attribute__((constructor)) void '
                    'evil(void) { evil_ran = 1; } const ariel_tensor_t evil_rest[1] = {{"x')
INJECTING_NODE = "*/ int evil_comment = 1; /*"


def test_names_that_close_a_string_or_a_comment_inject_nothing(tmp_path):
    """The host build loads the model's C into ariel's own process (as `--io uart` builds
    and calibration do): what a name holds must stay a name."""
    value = helper.make_tensor_value_info
    node = helper.make_node("Relu", [INJECTING_TENSOR], ["y"], name=INJECTING_NODE)
    graph = helper.make_graph([node], "g", [value(INJECTING_TENSOR, TensorProto.FLOAT, [1, 4])],
                              [value("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    compiled = compile_onnx(model)
    library = ctypes.CDLL(str(build_host_library(compiled.files, tmp_path)))
    for symbol in ("evil_ran", "evil", "evil_rest", "evil_comment"):
        with pytest.raises(AttributeError):
            getattr(library, symbol)
    assert _read_back_names(tmp_path / "libmodel.so", "m", 1, "inputs") == [INJECTING_TENSOR]
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    assert HostModel(tmp_path / "libmodel.so", compiled.info).run(x)[0].tolist() == [
        [0.0, 2.0, 0.0, 4.0]]


# ---------------------------------------------------------------------------- firmware

# A model file name and an output folder that try to leave the Makefile's comment (a newline;
# a backslash, which continues a comment in make) and run a command in make or the shell.
MODEL_FILE = "m* int evil;\\\n$(shell touch PWNED)\n'q' \"qq\" `touch PWNED` ??=.onnx"
FOLDER = "out dir 'q' \"qq\" $(touch PWNED) `touch PWNED`; touch PWNED #\nline"


def _cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + result.stderr
    return result


def _make(folder: Path) -> None:
    """`make -C FOLDER` from scratch, as a user rebuilds without ariel."""
    for targets in (["clean"], []):  # then the default goal, the ELF
        result = subprocess.run(["make", "-s", "-C", str(folder), *targets],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def _nothing_ran(root: Path) -> None:
    assert not [p for p in root.rglob("*") if p.name in EVIDENCE]


def _hostile_model_file(tmp_path: Path) -> tuple[Path, onnx.ModelProto]:
    model, _ = rename(small_model())
    path = tmp_path / MODEL_FILE
    onnx.save(model, path)
    return path, model


def test_paths_in_the_makefile_run_nothing(tmp_path):
    """A model file name that ends the Makefile's `# command:` line to add a `$(shell ...)`
    (and comments out the rest), an output folder that holds a command substitution: with
    either pasted into the Makefile as it is, the build works and runs them, at build time
    and at every `make`."""
    path = tmp_path / "m\n$(shell touch PWNED)\n#.onnx"
    onnx.save(small_model(), path)
    out = tmp_path / "out$(touch${IFS}PWNED)"
    _cli("build", path, "-o", out)
    _make(out)
    assert (out / "build" / "firmware.elf").is_file()
    _nothing_ran(tmp_path)


def test_semihosting_build_into_a_hostile_folder_runs_in_qemu(tmp_path):
    """Output folders may hold spaces, quotes, `$`, `;`, `#` and newlines: the build,
    `make -C` again and `ariel simulate` work, and the ELF is the same build's in a plain
    folder, byte for byte (its debug information names the folder ".")."""
    path, model = _hostile_model_file(tmp_path)
    out, plain = tmp_path / FOLDER, tmp_path / "plain"
    _cli("build", path, "-o", out)
    _cli("build", path, "-o", plain)
    _make(out)
    elf = Path("build") / "firmware.elf"
    assert (out / elf).read_bytes() == (plain / elf).read_bytes()

    x = np.random.default_rng(5).normal(size=(2, 1, 2, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    _cli("simulate", out, "--inputs", tmp_path / "x.npy", "--outputs", tmp_path / "y.npy")
    got = np.load(tmp_path / "y.npy")
    for sample, result in zip(x, got, strict=True):
        np.testing.assert_allclose(result, _onnxruntime(model, [sample])[0], atol=1e-5)
    _nothing_ran(tmp_path)


def test_intermittent_build_with_hostile_names_runs_in_qemu(tmp_path, rendered):
    """An intermittent build (its checkpoint tables comment every saved tensor by name) into
    a hostile folder compiles warning-free and computes what the model does."""
    path, model = _hostile_model_file(tmp_path)
    out = tmp_path / FOLDER
    _cli("build", path, "--board", "nucleo-l4r5zi-fram", "--power", "intermittent", "-o", out)
    assert INTERMITTENT_TEMPLATES <= rendered
    checkpoint = next((out / "model").glob("*_checkpoint.c")).read_text()
    assert checkpoint.isascii()  # names as escaped comment text
    x = np.random.default_rng(7).normal(size=(2, 1, 2, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    _cli("simulate", out, "--inputs", tmp_path / "x.npy", "--outputs", tmp_path / "y.npy")
    for sample, result in zip(x, np.load(tmp_path / "y.npy"), strict=True):
        np.testing.assert_allclose(result, _onnxruntime(model, [sample])[0], atol=1e-5)
    _nothing_ran(tmp_path)


def test_adaptive_uart_build_with_hostile_names_passes_its_own_check_in_qemu(tmp_path,
                                                                            rendered):
    """The firmware templates and the dispatcher's: an adaptive --io uart build of the
    hostile model (its C compiled and run on the host for the expected outputs) boots in QEMU
    and finds its outputs equal to the host's; the test input's source, a file name, reads
    back from the ELF intact."""
    path, model = _hostile_model_file(tmp_path)
    data = tmp_path / "calib *\\ $(touch PWNED)\n\"q\".npy"
    np.save(data, np.random.default_rng(6).normal(size=(16, 1, 2, 6, 6)).astype(np.float32))
    out = tmp_path / FOLDER
    _cli("build", path, "--precision", "ari", "--calib", data, "--threshold", "0.1",
         "--board", "stm32f4-discovery", "--io", "uart", "--inputs", data, "-o", out)
    assert FIRMWARE_TEMPLATES <= rendered
    result = _cli("simulate", out)
    console = parse_console(result.stdout)
    assert console.passed and len(console.runs) == 3
    expected = json.loads((out / "expected_output.json").read_text())
    assert console.runs[0].outputs[0].hex() == expected["outputs"][0]["hex"]
    with open(out / "build" / "firmware.elf", "rb") as handle:
        assert _string_symbol(ELFFile(handle), "ariel_test_input_source") == (
            f"the first sample of '{data.name}'")
    _nothing_ran(tmp_path)


def _string_symbol(elf: ELFFile, name: str) -> str:
    """The NUL-terminated bytes of a constant char array in the ELF."""
    symbol = elf.get_section_by_name(".symtab").get_symbol_by_name(name)[0]
    address = symbol["st_value"]
    for section in elf.iter_sections():
        start = section["sh_addr"]
        if section["sh_type"] == "SHT_PROGBITS" and start <= address < start + section[
                "sh_size"]:
            data = section.data()[address - start:address - start + symbol["st_size"]]
            return data.split(b"\0")[0].decode("utf-8", "surrogateescape")
    raise AssertionError(f"{name} is in no section")


def test_exports_with_hostile_names_compile_and_run_nothing(tmp_path, rendered):
    """`ariel export` of the hostile model in every format, and of an adaptive build of it,
    into a hostile folder: the sources and the public header compile warning-free for the
    Cortex-M4 (the header in C and C++), CMake configures and builds the cmake export there,
    and nothing a name holds runs."""
    from codegen.export.formats import FORMATS

    path, _ = _hostile_model_file(tmp_path)
    data = tmp_path / "calib.npy"
    np.save(data, np.random.default_rng(6).normal(size=(16, 1, 2, 6, 6)).astype(np.float32))
    folder = tmp_path / FOLDER
    for fmt in FORMATS:
        _cli("export", path, "--format", fmt, "-o", folder / fmt)
    _cli("export", path, "--precision", "ari", "--calib", data, "--threshold", "0.1",
         "--static-arena", "-o", folder / "ari")
    assert EXPORT_TEMPLATES <= rendered
    for export in sorted(folder.iterdir()):
        for text_file in (p for p in export.rglob("*") if p.is_file()):
            assert text_file.read_bytes().isascii(), text_file
        header = next((export / "src").glob("*_model.h"))
        user = export / "user.c"
        user.write_text(f'#include "{header.name}"\nint user(void);\n'
                        "int user(void) { return 0; }\n")
        for source in [*sorted((export / "src").glob("*.c")), user]:
            _compile("arm-none-eabi-gcc", source, export / "src", ["-std=c11"])
        cpp = export / "user.cpp"
        cpp.write_text(user.read_text())
        _compile("arm-none-eabi-g++", cpp, export / "src", ["-std=c++17"])
    # CMake itself builds in no folder whose path holds a newline (it truncates it), a `;`
    # (its lists split there), a quote, a backquote, `$(` or `#` (its own Makefiles break):
    # the CMake build of the hostile model's export goes to a folder with spaces.
    cmake_export = tmp_path / "cmake export dir" / "cmake"
    _cli("export", path, "--format", "cmake", "-o", cmake_export)
    binary = tmp_path / "cmake build"
    toolchain = cmake_export / "cmake" / "arm-none-eabi.cmake"
    for command in (["cmake", "-S", cmake_export, "-B", binary,
                     f"-DCMAKE_TOOLCHAIN_FILE={toolchain}"], ["cmake", "--build", binary]):
        result = subprocess.run([str(c) for c in command], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    _nothing_ran(tmp_path)


def _compile(compiler: str, source: Path, include: Path, extra: list[str]) -> None:
    """Compiled by relative names from the export's folder, as its build files do (gcc
    writes the source's path into the assembler's `.file` line, which a newline breaks)."""
    from tests.support import CORTEX_M4_FLAGS

    flags = [f for f in CORTEX_M4_FLAGS if not f.startswith("-std=")]
    folder = include.parent
    result = subprocess.run([compiler, *flags, *extra, f"-I{include.relative_to(folder)}",
                             "-c", str(source.relative_to(folder)), "-o",
                             str(source.relative_to(folder)) + ".o"],
                            capture_output=True, text=True, cwd=folder)
    assert result.returncode == 0, f"{source.name}:\n{result.stderr}"
