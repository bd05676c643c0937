"""`ariel optimize`: each output's cost split into backbone and head as the model truncated
to that output computes it; on the digits CNN, the chosen stages and the front written, their
figures reproduced by the dispatcher's own simulation; bad input refused with no output."""

import json
import tomllib

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from codegen.ari.exit_costs import output_costs
from codegen.ari.margins import simulate as simulate_dispatch
from codegen.ari.optimize import host_scores
from codegen.cli import main
from codegen.compiler.compile import Options, compile_model
from codegen.datasets import digits_split
from codegen.resources import data_dir
from tests.support import compile_onnx, compile_onnx_int8

DIGITS = data_dir("examples") / "models" / "digits_cnn.onnx"


def exits_model() -> onnx.ModelProto:
    """conv-relu, exit 1 (global mean, Gemm), conv-relu, exit 2, then the final Gemm."""
    rng = np.random.default_rng(0)
    weights, nodes = [], []

    def const(name, shape):
        weights.append(numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32),
                                               name))
        return name

    def head(source, channels, output):
        nodes.extend([
            helper.make_node("GlobalAveragePool", [source], [f"{output}_gap"],
                             name=f"{output}_gap"),
            helper.make_node("Flatten", [f"{output}_gap"], [f"{output}_flat"],
                             name=f"{output}_flatten"),
            helper.make_node("Gemm", [f"{output}_flat", const(f"{output}_w", (10, channels)),
                                      const(f"{output}_b", (10,))], [output], name=output,
                             transB=1)])

    nodes += [helper.make_node("Conv", ["x", const("w1", (4, 1, 3, 3))], ["c1"], name="conv1",
                               pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c1"], ["r1"], name="relu1")]
    head("r1", 4, "ariel_exit1")
    nodes += [helper.make_node("Conv", ["r1", const("w2", (8, 4, 3, 3))], ["c2"], name="conv2",
                               pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c2"], ["r2"], name="relu2")]
    head("r2", 8, "ariel_exit2")
    head("r2", 8, "logits")
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 10])
               for n in ("logits", "ariel_exit1", "ariel_exit2")]
    graph = helper.make_graph(nodes, "ee", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 1, 8, 8])], outputs, weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def truncated(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    cut = onnx.ModelProto.FromString(model.SerializeToString())
    keep = [o for o in cut.graph.output if o.name == output]
    del cut.graph.output[:]
    cut.graph.output.extend(keep)
    return cut


@pytest.mark.parametrize("precision", ["float", "int8"])
def test_costs_split_as_the_truncated_models_compute(precision):
    """An output's prefix plus head is what the model cut down to that output runs; its
    prefix is the part the final output runs too."""
    calibration = {"x": np.random.default_rng(1).normal(size=(16, 1, 1, 8, 8)).astype(
        np.float32)}

    def compiled(model):
        return compile_onnx(model) if precision == "float" else \
            compile_onnx_int8(model, calibration, io="float")

    model = exits_model()
    full = compiled(model)
    cycles = [float(2 ** i) for i in range(len(full.info.kernels))]  # each sum is unique
    by_name = {k["name"]: c for k, c in zip(full.info.kernels, cycles, strict=True)}
    costs = output_costs(full.graph, full.info.kernels, cycles, "logits", 0.5)
    ran = {o: {k["name"] for k in compiled(truncated(model, o)).info.kernels}
           for o in ("logits", "ariel_exit1", "ariel_exit2")}
    assert ran["logits"] <= set(by_name)
    for output in ("ariel_exit1", "ariel_exit2"):
        backbone = ran[output] & ran["logits"]
        assert costs[output].prefix.cycles == sum(by_name[n] for n in backbone)
        assert costs[output].head.cycles == sum(by_name[n] for n in ran[output] - backbone)
        assert costs[output].head.energy_uj == 0.5 * costs[output].head.cycles
    assert costs["logits"].prefix.cycles == sum(by_name[n] for n in ran["logits"])
    assert costs["logits"].head.cycles == 0
    assert costs["ariel_exit1"].prefix.cycles < costs["ariel_exit2"].prefix.cycles


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output, result.stderr


@pytest.fixture(scope="module")
def digits_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    x_train, y_train, x_test, y_test = digits_split()
    np.savez(folder / "train.npz", x=x_train[:, None], y=y_train)
    np.savez(folder / "held.npz", x=x_test[:, None], y=y_test)
    return folder


def test_a_target_the_held_out_data_cannot_support(digits_data, tmp_path):
    code, _, err = run(["optimize", DIGITS, "--data", digits_data / "train.npz", "--heldout",
                        digits_data / "held.npz", "--target-agreement", "0.999", "-o",
                        tmp_path / "out"])
    assert code == 1
    assert "has 540 inputs; half of them calibrate the thresholds" in err
    assert "needs at least 1000 there" in err and "give at least 2000 held-out inputs" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.qemu
def test_optimize_the_digits_cnn(digits_data, tmp_path):
    out = tmp_path / "out"
    code, output, err = run(["optimize", DIGITS, "--data", digits_data / "train.npz",
                             "--heldout", digits_data / "held.npz", "--board",
                             "nucleo-l4r5zi", "--hidden", "0,16", "-o", out])
    assert code == 0, err
    front = json.loads((out / "front.json").read_text())
    chosen = front["chosen"]
    assert chosen["calibration"]["agreement"] >= 0.995
    assert front["search_cost"]["emulator_runs"] == 4  # two head sizes, two precisions
    stages = tomllib.loads((out / "stages.toml").read_text())["stage"]
    assert [s.get("threshold") for s in stages[:-1]] == chosen["thresholds"]
    assert "threshold" not in stages[-1]
    for name in ("digits_cnn_ee", "digits_cnn_ee_h16"):
        assert (out / f"{name}.onnx").is_file() and (out / f"{name}.exits.json").is_file()
    assert stages[0]["model"] in ("digits_cnn_ee.onnx", "digits_cnn_ee_h16.onnx")
    assert "<- chosen" in output and "<svg" in (out / "front.html").read_text()
    # The front's energies fall as its agreement does.
    energies = [p["calibration"]["energy_uj"] for p in front["front"]]
    assert energies == sorted(energies, reverse=True)

    # The chosen figures again, from a fresh compile of each precision and the dispatcher's
    # simulation (codegen/ari/margins.py), on the odd held-out inputs the figures are for.
    x_test, y_test = digits_split()[2:]
    x, labels = x_test[1::2, None], y_test[1::2]
    ee = out / stages[0]["model"]
    outputs = [o.name for o in onnx.load(str(ee)).graph.output]
    scores = {}
    for precision in ("int8", "float"):
        compiled = compile_model(ee, Options(precision=precision, calibration=str(
            digits_data / "train.npz") if precision == "int8" else None, name="ee"))
        for name, values in zip(outputs, host_scores(compiled, tmp_path / precision, x),
                                strict=True):
            scores[f"{ee.name}:{precision}" + ("" if name == outputs[0] else f":{name}")] = \
                values
    dispatch = simulate_dispatch([scores[k] for k in chosen["stages"]], chosen["thresholds"],
                                 "top2")
    assert np.bincount(dispatch.stage, minlength=len(stages)).tolist() == \
        chosen["heldout"]["answered"]
    assert np.mean(dispatch.answer == labels) == pytest.approx(chosen["heldout"]["accuracy"])


@pytest.mark.qemu  # links firmware (the toolchain), runs nothing
def test_a_chosen_list_that_does_not_fit_the_board_is_an_error(tmp_path):
    from dataclasses import replace

    from codegen.ari.optimize import OptimizeRequest, check_fits
    from codegen.ari.search import Outcome, Point, SearchResult
    from codegen.target.boards import MemoryMap, Region, get_board

    onnx.save(exits_model(), tmp_path / "ee.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(2).normal(size=(8, 1, 1, 8, 8))
            .astype(np.float32))
    board = get_board("nucleo-l4r5zi")
    small = replace(board, chip=MemoryMap("chip", Region(board.chip.flash.origin, 4096),
                                          board.chip.ram))
    outcome = Outcome(1.0, None, 1.0, 1.0, [1, 0])
    point = Point(("ee.onnx:int8:ariel_exit1", "ee.onnx:float"), (1.0,), outcome)
    result = SearchResult(point, [point], 1, 1, 1.0)
    request = OptimizeRequest(tmp_path / "ee.onnx", str(tmp_path / "x.npy"), "unused", small,
                              tmp_path / "out")
    check_fits(result, tmp_path / "ee.onnx", replace(request, board=board), print)
    with pytest.raises(Exception, match=r"the chosen stages \(ee.onnx:int8:ariel_exit1, "
                                        r"ee.onnx:float\) do not fit nucleo-l4r5zi: "):
        check_fits(result, tmp_path / "ee.onnx", request, print)


def test_the_stages_file_loads_as_written_whatever_the_names(tmp_path):
    """Quotes, backslashes, control characters and characters beyond the BMP in a model's or
    an output's name survive the stages file, and `ariel build --stages` reads it back."""
    from codegen.ari.front import stages_toml
    from codegen.ari.optimize import Optimized
    from codegen.ari.search import Outcome, Point, SearchResult
    from codegen.ari.spec import load_stage_file

    model = tmp_path / 'm "q" \\ 😀.onnx'
    output = 'exit\t"1"\\\n\x7f 😀'
    outcome = Outcome(1.0, None, 10.0, None, [3, 1])
    point = Point((f"{model.name}:int8:{output}", f"{model.name}:float"), (0.25,), outcome)
    optimized = Optimized(model, {}, SearchResult(point, [point], 1, 1, 1.0), [], [], 1.0, 2,
                          20, 20)
    path = tmp_path / "stages.toml"
    path.write_text(stages_toml(optimized, "ariel optimize 'a\nb' \x01"))
    stages, thresholds = load_stage_file(path)
    assert [(s.model, s.precision, s.output) for s in stages] == [
        (model, "int8", output), (model, "float", None)]
    assert thresholds == [0.25]


def test_bad_head_sizes_are_refused_before_any_work(tmp_path):
    for bad in ("x", "-1", "0,5000", ""):
        code, _, err = run(["optimize", DIGITS, "--data", "digits", "--heldout", "digits",
                            "--hidden", bad, "-o", tmp_path / "out"])
        assert code == 1 and "--hidden" in err and "whole numbers from 0 to 4096" in err
    assert not (tmp_path / "out").exists()
