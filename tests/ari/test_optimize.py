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
    # Each stage's estimated cost, as the search added them up, for `ariel simulate`.
    assert tomllib.loads((out / "stages.toml").read_text())["measured_on"] == "nucleo-l4r5zi"
    assert [(s["cycles"], s["energy_uj"]) for s in stages] == [
        (c["cycles"], c["energy_uj"]) for c in chosen["costs"]]
    assert sum(c["cycles"] * n for c, n in zip(chosen["costs"], np.cumsum(
        chosen["calibration"]["answered"][::-1])[::-1], strict=True)) / sum(
        chosen["calibration"]["answered"]) == pytest.approx(chosen["calibration"]["cycles"])
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

    from codegen.ari.optimize import OptimizeRequest, check_fits, stage_of
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
    stages = [stage_of(key, [tmp_path / "ee.onnx"]) for key in point.stages]
    check_fits(result, stages, replace(request, board=board), print)
    with pytest.raises(Exception, match=r"the chosen stages \(ee.onnx:int8:ariel_exit1, "
                                        r"ee.onnx:float\) do not fit nucleo-l4r5zi: "):
        check_fits(result, stages, request, print)


def test_the_stages_file_loads_as_written_whatever_the_names(tmp_path):
    """Quotes, backslashes, control characters and characters beyond the BMP in a model's or
    an output's name survive the stages file, and `ariel build --stages` reads it back, with
    the stages' costs."""
    from codegen.ari.front import stages_toml
    from codegen.ari.optimize import Optimized
    from codegen.ari.search import Cost, Outcome, Point, SearchResult
    from codegen.ari.spec import load_stage_file

    model = tmp_path / 'm "q" \\ 😀.onnx'
    output = 'exit\t"1"\\\n\x7f 😀'
    outcome = Outcome(1.0, None, 10.0, None, [3, 1])
    point = Point((f"{model.name}:int8:{output}", f"{model.name}:float"), (0.25,), outcome,
                  costs=(Cost(1234.5, 0.1 + 0.2), Cost(98765.0625, 64.2)))
    optimized = Optimized(model, {}, SearchResult(point, [point], 1, 1, 1.0), [], [], 1.0, 2,
                          20, 20)
    path = tmp_path / "stages.toml"
    path.write_text(stages_toml(optimized, "ariel optimize 'a\nb' \x01", 'b"o\\ard'))
    loaded = load_stage_file(path)
    assert [(s.model, s.precision, s.output) for s in loaded.stages] == [
        (model, "int8", output), (model, "float", None)]
    assert loaded.thresholds == [0.25]
    assert loaded.costs.board == 'b"o\\ard'
    assert loaded.costs.cycles == (1234.5, 98765.0625)
    assert loaded.costs.energy_uj == (0.1 + 0.2, 64.2)  # exactly: repr round-trips
    without_power = Point(point.stages, point.thresholds, outcome,
                          costs=(Cost(1.0, None), Cost(2.0, None)))
    optimized.result = SearchResult(without_power, [without_power], 1, 1, 1.0)
    path.write_text(stages_toml(optimized, "ariel optimize", "b"))
    assert load_stage_file(path).costs.energy_uj is None


@pytest.mark.parametrize("costs, top", [
    (("cycles = 10.0", ""), 'measured_on = "b"'),  # one stage without cycles
    (("cycles = 10.0", "cycles = -1.0"), 'measured_on = "b"'),
    (("cycles = 10.0", 'cycles = "x"'), 'measured_on = "b"'),
    (("cycles = 10.0\nenergy_uj = 1.0", "cycles = 20.0"), 'measured_on = "b"'),
    (("energy_uj = 1.0", "energy_uj = 2.0"), 'measured_on = "b"'),  # energy, no cycles
    (("cycles = 10.0", "cycles = 20.0"), ""),  # no board
])
def test_stage_costs_for_some_stages_or_without_a_board_are_refused(tmp_path, costs, top):
    from codegen.ari.spec import load_stage_file
    from codegen.errors import ArielError

    path = tmp_path / "stages.toml"
    path.write_text(f'{top}\n[[stage]]\nmodel = "a.onnx"\nprecision = "int8"\n'
                    f'threshold = 1.0\n{costs[0]}\n[[stage]]\nmodel = "a.onnx"\n'
                    f'precision = "float"\n{costs[1]}\n')
    with pytest.raises(ArielError, match=r"--stages .*stages.toml: (give (cycles|energy_uj) "
                                         r"for every stage or for none|stage costs need)"):
        load_stage_file(path)


def test_stage_costs_for_another_board_are_left_out_with_a_warning(tmp_path):
    from codegen.ari.build import given_costs
    from codegen.ari.spec import AriOptions, Stage, StageCosts
    from codegen.target.boards import get_board

    stages = [Stage(tmp_path / "ee.onnx", "int8", "ariel_exit1"),
              Stage(tmp_path / "ee.onnx", "float")]
    costs = StageCosts("nucleo-l4r5zi", (10.0, 20.0), (1.0, 2.0), "the stages file s.toml")
    said = []
    recorded = given_costs(AriOptions(stages, costs=costs), get_board("nucleo-l4r5zi"),
                           said.append)
    assert recorded["costs"] == [
        {"label": "ee:int8:ariel_exit1", "cycles": 10.0, "energy_uj": 1.0},
        {"label": "ee:float", "cycles": 20.0, "energy_uj": 2.0}] and not said
    assert given_costs(AriOptions(stages, costs=costs), get_board("nucleo-g071rb"),
                       said.append) is None
    assert said == ["warning: the stage costs in the stages file s.toml were estimated for "
                    "nucleo-l4r5zi, not nucleo-g071rb: left out (`ariel calibrate` measures "
                    "this build's)"]


@pytest.mark.qemu
def test_simulate_summarizes_a_build_from_optimizes_stages_file(tmp_path):
    """`ariel build --stages` on a stages file with costs, then `ariel simulate`: the mean
    and worst cycles and energy are the file's costs added up over the stages each input
    ran (the firmware's `stage` output), with no `ariel calibrate`."""
    onnx.save(exits_model(), tmp_path / "ee.onnx")
    x = np.random.default_rng(3).normal(size=(12, 1, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    threshold = 0.6  # inside the int8 exit's margins on these inputs: both stages answer
    (tmp_path / "stages.toml").write_text(
        'measured_on = "nucleo-l4r5zi"\n'
        '[[stage]]\nmodel = "ee.onnx"\nprecision = "int8"\noutput = "ariel_exit1"\n'
        f'threshold = {threshold}\ncycles = 1000.0\nenergy_uj = 0.5\n'
        '[[stage]]\nmodel = "ee.onnx"\nprecision = "float"\ncycles = 4000.0\n'
        'energy_uj = 2.25\n')
    code, output, err = run(["build", "--stages", tmp_path / "stages.toml", "--calib",
                             tmp_path / "x.npy", "--board", "nucleo-l4r5zi", "-o",
                             tmp_path / "out"])
    assert code == 0, err
    code, output, err = run(["simulate", tmp_path / "out", "--inputs", tmp_path / "x.npy",
                             "--outputs", tmp_path / "y.npz", "--json", tmp_path / "r.json"])
    assert code == 0, err
    stage = np.load(tmp_path / "y.npz")["stage"].reshape(-1)
    assert 0 < stage.mean() < 1, stage  # both stages answered some inputs
    report = json.loads((tmp_path / "r.json").read_text())["adaptive"]
    cycles = np.where(stage == 0, 1000.0, 5000.0)
    energy = np.where(stage == 0, 0.5, 2.75)
    assert report["cycles"] == {"mean": pytest.approx(cycles.mean()), "worst": 5000.0}
    assert report["energy_uj"] == {"mean": pytest.approx(energy.mean()), "worst": 2.75}
    assert f"energy per inference: mean {energy.mean():,.2f} uJ, worst 2.75 uJ" in output
    assert "stage costs from the stages file stages.toml, estimated for nucleo-l4r5zi" in \
        output


def test_bad_head_sizes_are_refused_before_any_work(tmp_path):
    for bad in ("x", "-1", "0,5000", ""):
        code, _, err = run(["optimize", DIGITS, "--data", "digits", "--heldout", "digits",
                            "--hidden", bad, "-o", tmp_path / "out"])
        assert code == 1 and "--hidden" in err and "whole numbers from 0 to 4096" in err
    assert not (tmp_path / "out").exists()


def test_a_little_network_with_another_input_is_refused_before_any_work(digits_data,
                                                                        tmp_path):
    little = data_dir("examples") / "models" / "basic_motions_little.onnx"  # [1, 6, 100]
    code, _, err = run(["optimize", DIGITS, "--data", digits_data / "train.npz", "--heldout",
                        digits_data / "held.npz", "--little", little, "-o", tmp_path / "out"])
    assert code == 1
    assert f"--little {little}: its input (input [1, 6, 100]) is not the model's one input " \
        "of shape [1, 1, 8, 8]" in err
    assert not (tmp_path / "out").exists()
    code, _, err = run(["optimize", DIGITS, "--data", digits_data / "train.npz", "--heldout",
                        digits_data / "held.npz", "--little", tmp_path / "none.onnx", "-o",
                        tmp_path / "out"])
    assert code == 1 and "none.onnx: no such file" in err
