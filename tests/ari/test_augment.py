"""`ariel augment`: exit points are the graph's cuts (never inside a residual block), heads
are trained well above chance, the backbone's outputs stay bit for bit what onnxruntime gives
for the original model, each exit output equals a numpy recomputation of its head on
onnxruntime's features, the same inputs give the same bytes, and bad inputs are refused
with one line and no file."""

import json

import numpy as np
import onnx
import onnxruntime
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from codegen.ari.augment.candidates import Cuts, choose
from codegen.ari.augment.pipeline import analyse
from codegen.ari.augment.sidecar import read_sidecar
from codegen.cli import main
from codegen.datasets import digits_split
from codegen.resources import data_dir

MODELS = data_dir("examples") / "models"
DIGITS = MODELS / "digits_cnn.onnx"


def run(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["augment", *(str(a) for a in args)])
    return result.exit_code, result.stdout, result.stderr


def ort(model: onnx.ModelProto | str, x: np.ndarray, outputs: list[str] | None = None
        ) -> list[np.ndarray]:
    """onnxruntime on each sample of x (N, *input shape without its batch of one), the
    outputs stacked (N, ...)."""
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    runs = [session.run(outputs, {name: sample[None]}) for sample in x]
    return [np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))]


@pytest.fixture(scope="module")
def digits_data(tmp_path_factory):
    """Training and held-out digits as .npz files with labels (600 and 300 images)."""
    folder = tmp_path_factory.mktemp("digits")
    x_train, y_train, x_test, y_test = digits_split()
    np.savez(folder / "train.npz", x=x_train[:600], y=y_train[:600])
    np.savez(folder / "held.npz", x=x_test[:300], y=y_test[:300])
    return folder / "train.npz", folder / "held.npz", x_test[:300], y_test[:300]


@pytest.fixture(scope="module")
def augmented(tmp_path_factory, digits_data):
    train, held, _, _ = digits_data
    runs = []
    for name in ("first", "second"):
        output = tmp_path_factory.mktemp(name) / "ee.onnx"
        code, out, err = run(DIGITS, "--data", train, "--heldout", held, "--pool", "grid",
                             "-o", output)
        assert code == 0, err
        runs.append((output, out, err))
    return runs


def test_heads_are_trained_well_above_chance(augmented, digits_data):
    output, out, err = augmented[0]
    sidecar = read_sidecar(output.with_name("ee.exits.json"))
    assert [e["output"] for e in sidecar["exits"]] == ["ariel_exit1", "ariel_exit2"]
    for entry in sidecar["exits"]:
        assert entry["accuracy"] > 0.8  # ten classes: chance is 0.1
        assert entry["heldout"] == 300
    # The sidecar's figures are those of the model it describes, on the held-out labels.
    _, _, x, y = digits_data
    scores = ort(onnx.load(str(output)), x)
    final = scores[0].argmax(axis=1)
    for entry, exit_scores in zip(sidecar["exits"], scores[1:], strict=True):
        assert entry["accuracy"] == pytest.approx(np.mean(exit_scores.argmax(axis=1) == y))
        assert entry["agreement"] == pytest.approx(np.mean(exit_scores.argmax(axis=1) == final))
    assert sidecar["final_accuracy"] == pytest.approx(np.mean(final == y))
    assert "ariel_exit1" in out and "accuracy" in err  # the table, and the progress


def test_backbone_outputs_unchanged_bit_for_bit(augmented, digits_data):
    output = augmented[0][0]
    x = digits_data[2]
    model = onnx.load(str(output))
    assert [o.name for o in model.graph.output] == ["logits", "ariel_exit1", "ariel_exit2"]
    original = onnx.load(str(DIGITS))
    np.testing.assert_array_equal(ort(model, x, ["logits"])[0], ort(original, x)[0])
    # Every weight of the backbone is there unchanged, and every node in the same order.
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for init in original.graph.initializer:
        np.testing.assert_array_equal(weights[init.name], numpy_helper.to_array(init))
    backbone = [n for n in model.graph.node if not n.name.startswith("ariel_exit")]
    assert [n.SerializeToString() for n in backbone] == \
        [n.SerializeToString() for n in original.graph.node]


def test_exit_outputs_equal_numpy_heads_on_onnxruntime_features(augmented, digits_data):
    output = augmented[0][0]
    x = digits_data[2]
    model = onnx.load(str(output))
    sidecar = read_sidecar(output.with_name("ee.exits.json"))
    tensors = [e["after_tensor"] for e in sidecar["exits"]]
    probe = onnx.load(str(DIGITS))
    probe.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tensors)
    features = ort(probe, x, tensors)
    exits = ort(model, x, ["ariel_exit1", "ariel_exit2"])
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for number, (values, got) in enumerate(zip(features, exits, strict=True), start=1):
        # The grid head: a mean over each spatial half (a remainder row or column unread),
        # then one Gemm.
        n, c, h, w = values.shape
        kh, kw = h // 2, w // 2
        grid = values[:, :, :2 * kh, :2 * kw].reshape(n, c, 2, kh, 2, kw).mean(axis=(3, 5))
        expected = grid.reshape(n, -1) @ weights[f"ariel_exit{number}/W1"].T \
            + weights[f"ariel_exit{number}/b1"]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_the_same_inputs_give_the_same_bytes(augmented):
    (first, _, _), (second, _, _) = augmented
    assert first.read_bytes() == second.read_bytes()
    assert first.with_name("ee.exits.json").read_bytes() == \
        second.with_name("ee.exits.json").read_bytes()


def test_sidecar_format(augmented):
    output = augmented[0][0]
    sidecar = read_sidecar(output.with_name("ee.exits.json"))
    assert sidecar["format"] == "ariel-exits/1"
    assert sidecar["final_output"] == "logits" and sidecar["classes"] == 10
    assert sidecar["source"]["path"] == str(DIGITS)
    first, second = sidecar["exits"]
    # MACs as `ariel inspect` counts them: conv1 (4,608), then conv2 (73,728). The ReLU
    # before the max pooling is listed rather than the pooling (the same MACs).
    assert (first["after_node"], first["macs_backbone"]) == ("/relu1/Relu", 4608)
    assert (second["after_node"], second["macs_backbone"]) == ("/relu2/Relu", 78336)
    assert first["macs_head"] == 8 * 2 * 2 * 10  # a 2x2 grid of 8 channels to 10 classes
    assert sidecar["macs_total"] == 88192


def residual_cnn() -> onnx.ModelProto:
    """conv-relu, a residual block (conv-relu-conv, plus its input), relu, conv-relu,
    global pooling, Gemm: random weights, [1, 2, 6, 6] in, 3 classes out."""
    rng = np.random.default_rng(5)

    def conv(name, x, cin, cout, out):
        w = numpy_helper.from_array(rng.normal(0, 0.5, (cout, cin, 3, 3)).astype(np.float32),
                                    f"{name}.w")
        return helper.make_node("Conv", [x, w.name], [out], name=name, pads=[1, 1, 1, 1]), w

    nodes, weights = [], []
    for node, w in [conv("c1", "x", 2, 4, "c1"), conv("r1", "a1", 4, 4, "r1"),
                    conv("r2", "r1a", 4, 4, "r2"), conv("c3", "b1", 4, 4, "c3")]:
        nodes.append(node)
        weights.append(w)
    nodes[1:1] = [helper.make_node("Relu", ["c1"], ["a1"], name="relu1")]
    nodes[3:3] = [helper.make_node("Relu", ["r1"], ["r1a"], name="relu_r1")]
    nodes[5:5] = [helper.make_node("Add", ["r2", "a1"], ["sum"], name="add"),
                  helper.make_node("Relu", ["sum"], ["b1"], name="relu_b")]
    gemm_w = numpy_helper.from_array(rng.normal(0, 0.5, (3, 4)).astype(np.float32), "fc.w")
    nodes += [helper.make_node("Relu", ["c3"], ["a3"], name="relu3"),
              helper.make_node("GlobalAveragePool", ["a3"], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
              helper.make_node("Gemm", ["flat", "fc.w"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(
        nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [*weights, gemm_w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def residual_path(tmp_path):
    path = tmp_path / "residual.onnx"
    onnx.save(residual_cnn(), str(path))
    return path


def test_candidates_are_cuts_and_skip_residual_inner_tensors(residual_path):
    cuts = analyse(residual_path)
    assert isinstance(cuts, Cuts)
    assert [p.tensor for p in cuts.candidates()] == ["a1", "b1"]
    assert [p.macs for p in cuts.candidates()] == [2 * 4 * 9 * 36, (2 * 4 + 2 * 16) * 9 * 36]
    for inner in ("r1", "r1a", "r2"):
        assert "node 'add' (Add) reads 'a1' beside it" in cuts.problem(inner)
    # Cuts, only not listed: their block goes on (a ReLU follows).
    assert cuts.problem("c1") is None and cuts.problem("sum") is None
    assert "is a model output" in cuts.problem("y")
    assert "is a model input" in cuts.problem("x")


def test_a_tensor_name_with_commas_is_one_exit(tmp_path):
    model = residual_cnn()
    for node in model.graph.node:
        node.input[:] = ["b, 1" if n == "b1" else n for n in node.input]
        node.output[:] = ["b, 1" if n == "b1" else n for n in node.output]
    onnx.save(model, str(tmp_path / "m.onnx"))
    cuts = analyse(tmp_path / "m.onnx")
    assert [p.tensor for p in choose(cuts, "1,b, 1")] == ["a1", "b, 1"]
    assert [p.tensor for p in choose(cuts, "b, 1, 1")] == ["a1", "b, 1"]


def test_list_shows_the_candidates_with_their_macs(residual_path):
    code, out, _ = run(residual_path, "--list")
    assert code == 0
    assert "1  a1" in out and "2  b1" in out and "2,592" in out
    assert "2 candidate exit(s); the whole backbone: 18,156 MACs" in out


def refused(tmp_path, *args) -> str:
    """The one error line of a refused augment, after checking that nothing was written."""
    output = tmp_path / "ee.onnx"
    code, _, err = run(*args, "-o", output)
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not output.exists() and not output.with_name("ee.exits.json").exists()
    return err


def test_an_exit_inside_a_residual_block_is_refused(tmp_path, residual_path):
    x = np.zeros((20, 1, 2, 6, 6), np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 3)
    err = refused(tmp_path, residual_path, "--data", tmp_path / "d.npz", "--exits", "r2")
    assert "tensor 'r2' is not on every path from the input to the outputs" in err
    assert "node 'add' (Add) reads 'a1' beside it" in err and "candidates: 1 'a1'" in err


def test_bad_exit_names_and_numbers(tmp_path, digits_data):
    train = digits_data[0]
    err = refused(tmp_path, DIGITS, "--data", train, "--exits", "nothing_here")
    assert "'nothing_here' is neither a candidate number nor a tensor of the model" in err
    err = refused(tmp_path, DIGITS, "--data", train, "--exits", "3")
    assert "there is no candidate 3; candidates: 1 '/relu1/Relu_output_0'" in err
    err = refused(tmp_path, DIGITS, "--data", train, "--exits", "logits")
    assert "tensor 'logits' is a model output already" in err
    err = refused(tmp_path, DIGITS, "--data", train, "--exits", "1,1")
    assert "names tensor '/relu1/Relu_output_0' twice" in err


def test_a_model_without_candidates_is_refused(tmp_path):
    x = np.zeros((20, 1, 64), np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 10)
    err = refused(tmp_path, MODELS / "digits_mlp.onnx", "--data", tmp_path / "d.npz")
    assert "no candidate exit in the model" in err


def test_a_model_that_does_not_classify_is_refused(tmp_path):
    err = refused(tmp_path, MODELS / "unet_mnist.onnx", "--data", "digits")
    assert "need float class scores [1, K] as the final answer; the model gives " \
        "'mask_logits' float32[1, 1, 28, 28]" in err


@pytest.mark.parametrize("x_shape, labels, message", [
    ((30, 1, 7, 7), np.arange(30) % 10,
     "training data (--data) for input 'input' has shape [30, 1, 7, 7]; the model takes "
     "[1, 1, 8, 8]"),
    ((30, 1, 8, 8), np.arange(30) % 10 + 1, "label 10 is outside the model's 10 classes"),
    ((30, 1, 8, 8), np.arange(29) % 10, "29 labels for 30 inputs"),
    ((30, 1, 8, 8), np.full(30, 0.5), "labels y are not whole numbers"),
    ((30, 1, 8, 8), np.zeros((30, 2), np.int64), "labels y have shape [30, 2]"),
])
def test_training_data_that_does_not_fit_is_refused(tmp_path, x_shape, labels, message):
    np.savez(tmp_path / "d.npz", x=np.zeros(x_shape, np.float32), y=labels)
    err = refused(tmp_path, DIGITS, "--data", tmp_path / "d.npz")
    assert message in err


def test_a_file_ariel_did_not_write_is_not_replaced(tmp_path, digits_data):
    output = tmp_path / "ee.onnx"
    output.write_text("mine")
    code, _, err = run(DIGITS, "--data", digits_data[0], "-o", output)
    assert code == 1 and "exists and is not a model ariel augmented" in err
    assert output.read_text() == "mine"
    code, _, err = run(DIGITS, "--data", digits_data[0], "-o", DIGITS)
    assert code == 1 and "would replace the model" in err
    code, _, err = run(DIGITS, "--data", digits_data[0], "-o", tmp_path / "ee.bin")
    assert code == 1 and "must name an .onnx file" in err
    sidecar = tmp_path / "new.exits.json"
    sidecar.write_text("{}")
    code, _, err = run(DIGITS, "--data", digits_data[0], "-o", tmp_path / "new.onnx")
    assert code == 1 and "(the exits file beside -o) exists and is not ariel's" in err
    assert sidecar.read_text() == "{}" and not (tmp_path / "new.onnx").exists()


def test_a_model_ariel_augmented_is_replaced(tmp_path, digits_data):
    output = tmp_path / "ee.onnx"
    for exits in ("1", "2"):
        code, _, err = run(DIGITS, "--data", digits_data[0], "--exits", exits, "-o", output)
        assert code == 0, err
    (entry,) = read_sidecar(output.with_name("ee.exits.json"))["exits"]
    assert entry["after_node"] == "/relu2/Relu"


def test_heldout_data_that_is_the_training_data_is_noted(tmp_path, digits_data):
    code, _, err = run(DIGITS, "--data", digits_data[0], "--heldout", digits_data[0],
                       "--exits", "2", "--pool", "global", "-o", tmp_path / "ee.onnx")
    assert code == 0 and "note: the held-out data is the training data" in err


def test_heldout_carved_from_the_training_data(tmp_path, digits_data):
    output = tmp_path / "ee.onnx"
    code, _, err = run(DIGITS, "--data", digits_data[0], "--exits", "2", "-o", output)
    assert code == 0, err
    sidecar = json.loads(output.with_name("ee.exits.json").read_text())
    assert sidecar["data"]["heldout_count"] == 120 and sidecar["data"]["train_count"] == 480
    assert "carved from" in sidecar["data"]["heldout"] and "no --heldout" in err
    assert [e["after_tensor"] for e in sidecar["exits"]] == ["/relu2/Relu_output_0"]


def test_pool_auto_picks_by_validation_on_the_training_data(tmp_path, digits_data):
    train, held, x, _ = digits_data
    output = tmp_path / "ee.onnx"
    code, _, err = run(DIGITS, "--data", train, "--heldout", held, "--exits", "1", "-o", output)
    assert code == 0, err
    assert "'/relu1/Relu_output_0': validation loss (accuracy) global" in err
    (entry,) = json.loads(output.with_name("ee.exits.json").read_text())["exits"]
    # On 8x8 digits a global mean loses where the strokes are: a grid wins.
    assert entry["head"]["pool"] == "grid" and entry["head"]["cells"] in (2, 4)
    cells = entry["head"]["cells"]
    assert entry["head"]["window"] == [8 // cells, 8 // cells]
    assert entry["macs_head"] == 8 * cells * cells * 10
    model = onnx.load(str(output))
    pool = next(n for n in model.graph.node if n.name == "ariel_exit1/pool")
    assert pool.op_type == "AveragePool"
    assert list(helper.get_attribute_value(pool.attribute[0])) == [8 // cells] * 2


def test_without_labels_the_heads_learn_the_final_answers(tmp_path, digits_data):
    x_train = np.load(digits_data[0])["x"]
    np.save(tmp_path / "x.npy", x_train)
    output = tmp_path / "ee.onnx"
    code, out, err = run(DIGITS, "--data", tmp_path / "x.npy", "--exits", "2", "-o", output)
    assert code == 0, err
    assert "no --heldout: holding out 120 inputs carved from" in err and "seed 0" in err
    assert "training final" in err
    sidecar = read_sidecar(output.with_name("ee.exits.json"))
    assert sidecar["data"]["targets"] == "final" and sidecar["final_accuracy"] is None
    (entry,) = sidecar["exits"]
    assert entry["accuracy"] is None and entry["agreement"] > 0.8
    assert entry["head_nodes"][0] == "ariel_exit1/pool"
    assert entry["head_nodes"][-1] == "ariel_exit1/gemm1"
    # The head's nodes follow the node computing its tensor, before the backbone goes on.
    names = [n.name for n in onnx.load(str(output)).graph.node]
    after = names.index(entry["after_node"])
    assert names[after + 1:after + 1 + len(entry["head_nodes"])] == entry["head_nodes"]
    code, _, err = run(DIGITS, "--data", tmp_path / "x.npy", "--fit", "labels", "-o", output)
    assert code == 1 and "has no labels" in err


def test_options_that_would_do_nothing_are_refused(tmp_path, digits_data):
    err = refused(tmp_path, DIGITS, "--data", digits_data[0], "--grid-cells", "3")
    assert "--grid-cells has no effect without --pool grid" in err
    code, _, err = run(DIGITS, "--list", "--data", digits_data[0])
    assert code == 1 and "--data has no effect with --list" in err
    code, _, err = run(DIGITS)
    assert code == 1 and "give the training data (--data) and the output (-o EE.onnx)" in err


def sequence_model(opset: int) -> onnx.ModelProto:
    """[1, 6, 4] steps of features -> MatMul, ReLU, MatMul, ReLU (features on the last axis,
    as in a sequence model), mean over the steps, Gemm to 2 classes."""
    rng = np.random.default_rng(2)
    inits = [numpy_helper.from_array(rng.normal(0, 0.7, shape).astype(np.float32), name)
             for name, shape in (("w1", (4, 8)), ("w2", (8, 8)), ("fc", (2, 8)))]
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "axes"))
        mean = helper.make_node("ReduceMean", ["a2", "axes"], ["m"], name="mean", keepdims=0)
    else:
        mean = helper.make_node("ReduceMean", ["a2"], ["m"], name="mean", axes=[1], keepdims=0)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h1"], name="mm1"),
             helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
             helper.make_node("MatMul", ["a1", "w2"], ["h2"], name="mm2"),
             helper.make_node("Relu", ["h2"], ["a2"], name="relu2"), mean,
             helper.make_node("Gemm", ["m", "fc"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(
        nodes, "sequence", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [13, 18])
def test_a_sequence_exit_averages_over_the_steps(tmp_path, opset):
    onnx.save(sequence_model(opset), str(tmp_path / "seq.onnx"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 1, 6, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0, :, 0].mean(axis=1) > 0).astype(np.int64))
    output = tmp_path / "ee.onnx"
    code, _, err = run(tmp_path / "seq.onnx", "--data", tmp_path / "d.npz", "--exits", "a1",
                       "-o", output)
    assert code == 0, err
    (entry,) = read_sidecar(output.with_name("ee.exits.json"))["exits"]
    assert entry["head"]["pool"] == "sequence" and entry["accuracy"] > 0.7
    model = onnx.load(str(output))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    samples = x[:50, 0]  # ort() adds the batch of one
    (original_y,) = ort(onnx.load(str(tmp_path / "seq.onnx")), samples)
    probe = sequence_model(opset)
    probe.graph.output.append(onnx.ValueInfoProto(name="a1"))
    (a1,) = ort(probe, samples, ["a1"])
    expected = a1.mean(axis=1) @ weights["ariel_exit1/W1"].T + weights["ariel_exit1/b1"]
    got_y, got_exit = ort(model, samples, ["y", "ariel_exit1"])
    np.testing.assert_allclose(got_exit, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got_y, original_y)


def test_hostile_names_are_data(tmp_path, digits_data):
    """Every name of the model hostile (C, shell and terminal syntax, control characters):
    the exits go where they go with plain names, the terminal shows the names escaped, the
    sidecar holds them intact."""
    from tests.e2e.test_hostile_names import rename

    model, names = rename(onnx.load(str(DIGITS)))
    onnx.save(model, str(tmp_path / "hostile.onnx"))
    output = tmp_path / "ee.onnx"
    target = names["/pool/MaxPool_output_0"]  # a cut, not listed: named
    code, out, err = run(tmp_path / "hostile.onnx", "--data", digits_data[0], "--exits",
                         f"1,{target}", "-o", output)
    assert code == 0, err
    for text in (out, err):
        assert not any(c in text for c in "\x1b\x01\x7f\r\u202e\u2066"), text
    sidecar = read_sidecar(output.with_name("ee.exits.json"))
    assert [e["after_tensor"] for e in sidecar["exits"]] == \
        [names["/relu1/Relu_output_0"], target]
    x = digits_data[2][:20]
    augmented = onnx.load(str(output))
    np.testing.assert_array_equal(ort(augmented, x, [names["logits"]])[0], ort(model, x)[0])
    code, out, _ = run(tmp_path / "hostile.onnx", "--list")
    assert code == 0 and "\x1b" not in out and "2 candidate exit(s)" in out


def test_auto_takes_early_exits_spread_over_the_macs():
    cuts = analyse(MODELS / "kws_dscnn.onnx")
    shares = [round(p.macs / cuts.total_macs, 3) for p in cuts.candidates()]
    assert shares == [0.12, 0.148, 0.34, 0.367, 0.56, 0.587, 0.78, 0.807]
    # Nearest to 1/8, 1/4 (0.34 is nearer than 0.148) and 1/2 of the MACs.
    chosen = [round(p.macs / cuts.total_macs, 3) for p in choose(cuts, "auto")]
    assert chosen == [0.12, 0.34, 0.56]


def test_a_block_ends_after_its_normalisation_and_activation(tmp_path):
    """Conv, InstanceNormalization (which does work of its own), ReLU: the block's exit is
    after the ReLU, not between its layers."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)
             for name, shape in (("w1", (4, 2, 3, 3)), ("s", (4,)), ("b", (4,)),
                                 ("w2", (4, 4, 3, 3)), ("fc", (3, 4)))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("InstanceNormalization", ["c1", "s", "b"], ["n1"]),
             helper.make_node("Relu", ["n1"], ["a1"]),
             helper.make_node("Conv", ["a1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["a2"]),
             helper.make_node("GlobalAveragePool", ["a2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    graph = helper.make_graph(
        nodes, "normed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              str(tmp_path / "normed.onnx"))
    cuts = analyse(tmp_path / "normed.onnx")
    assert [p.tensor for p in cuts.candidates()] == ["a1"]
    assert cuts.exit_point("n1").macs > cuts.exit_point("c1").macs  # the norm's own work


def test_a_hidden_layer_head(tmp_path, digits_data):
    train, held, x, y = digits_data
    output = tmp_path / "ee.onnx"
    code, _, err = run(DIGITS, "--data", train, "--heldout", held, "--exits", "2", "--pool",
                       "global", "--hidden", "12", "-o", output)
    assert code == 0, err
    (entry,) = read_sidecar(output.with_name("ee.exits.json"))["exits"]
    assert entry["head"] == {"pool": "global", "hidden": 12}
    assert entry["macs_head"] == 16 * 12 + 12 * 10
    assert [n.split("/")[1] for n in entry["head_nodes"]] == \
        ["pool", "flatten", "gemm1", "relu1", "gemm2"]
    model = onnx.load(str(output))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    probe = onnx.load(str(DIGITS))
    probe.graph.output.append(onnx.ValueInfoProto(name=entry["after_tensor"]))
    (values,) = ort(probe, x, [entry["after_tensor"]])
    hidden = np.maximum(values.mean(axis=(2, 3)) @ weights["ariel_exit1/W1"].T
                        + weights["ariel_exit1/b1"], 0)
    expected = hidden @ weights["ariel_exit1/W2"].T + weights["ariel_exit1/b2"]
    (got,) = ort(model, x, ["ariel_exit1"])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # The sidecar's accuracy is that of the head the model holds.
    assert entry["accuracy"] == pytest.approx(np.mean(got.argmax(axis=1) == y))
