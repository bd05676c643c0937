"""Early exits as stages (no emulator): the stage syntax with outputs, the grouping of
consecutive stages of one model and precision into one model run segment by segment, its
outputs against the unsegmented model (int8, bit for bit) and onnxruntime (float), the
generated C warning-free, and bad stage lists refused in one line."""

import numpy as np
import onnx
import onnxruntime
import pytest
from click.testing import CliRunner

from codegen.ari.assemble import compile_stages
from codegen.ari.segments import group_stages
from codegen.ari.spec import AriOptions, Stage, load_stage_file, parse_stage
from codegen.cli import main
from codegen.errors import ArielError
from codegen.run.hostrun import HostModel, build_host_library
from tests.ari.exit_models import inputs, two_exit_cnn
from tests.support import compile_for_cortex_m4


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exits")
    onnx.save(two_exit_cnn(), folder / "ee.onnx")
    np.save(folder / "calib.npy", inputs(64, seed=1))
    return folder


def _options(folder, stages, thresholds=None):
    return AriOptions(stages, calibration=str(folder / "calib.npy"), thresholds=thresholds)


def _host(compiled, workdir, index):
    model = compiled.models[index]
    return HostModel(build_host_library(model.files, workdir / model.info.prefix,
                                        model.info.prefix), model.info)


def test_stage_syntax_with_outputs(tmp_path):
    assert parse_stage("ee.onnx:int8") == Stage(tmp_path.__class__("ee.onnx"), "int8")
    assert parse_stage("a:b/ee.onnx:int8:ariel_exit1").output == "ariel_exit1"
    assert parse_stage("a:b/ee.onnx:int8:ariel_exit1").model.name == "ee.onnx"
    assert parse_stage("ee.onnx:float:x:y") == Stage(tmp_path.__class__("ee.onnx"), "float",
                                                     "x:y")
    assert parse_stage("ee.onnx:int8:ariel_exit1").label == "ee:int8:ariel_exit1"
    for bad in ("ee.onnx:int4", "ee.onnx:int8:", ":int8:x", "ee.onnx"):
        with pytest.raises(ArielError, match="is not of the form MODEL.onnx:int8"):
            parse_stage(bad)
    config = tmp_path / "exits.toml"
    config.write_text('[[stage]]\nmodel = "ee.onnx"\nprecision = "int8"\n'
                      'output = "ariel_exit1"\nthreshold = 1.5\n\n'
                      '[[stage]]\nmodel = "ee.onnx"\nprecision = "float"\n')
    loaded = load_stage_file(config)
    assert [(s.output, s.precision) for s in loaded.stages] == [("ariel_exit1", "int8"),
                                                                (None, "float")]
    assert loaded.thresholds == [1.5] and loaded.costs is None
    config.write_text('[[stage]]\nmodel = "ee.onnx"\nprecision = "int8"\noutput = 3\n')
    with pytest.raises(ArielError, match="stage 0 needs model"):
        load_stage_file(config)


def test_consecutive_stages_of_one_model_and_precision_are_grouped(files):
    ee = files / "ee.onnx"
    stages = [Stage(ee, "int8", "ariel_exit1"), Stage(ee, "int8", "ariel_exit2"),
              Stage(ee, "int8"), Stage(ee, "float")]
    assert [(g.precision, g.indices) for g in group_stages(stages)] == [("int8", [0, 1, 2]),
                                                                        ("float", [3])]


def test_segmented_int8_model_equals_the_unsegmented_one_bit_for_bit(files, tmp_path):
    """exit1 int8 -> exit2 int8 -> final int8 -> final float: one int8 model in three
    segments. Its final output equals that of the int8 model built alone; its exits equal
    those of models built for each exit alone; the float stage is the model as it is. Each
    segment runs only its own kernels, and the C compiles warning-free for a Cortex-M4."""
    ee = files / "ee.onnx"
    stages = [Stage(ee, "int8", "ariel_exit1"), Stage(ee, "int8", "ariel_exit2"),
              Stage(ee, "int8"), Stage(ee, "float")]
    compiled = compile_stages(_options(files, stages, [1.0, 1.0, 1.0]), "tests")
    assert len(compiled.models) == 2
    segmented = compiled.models[0].info
    assert segmented.segments == [f"{segmented.prefix}_segment{i}" for i in range(3)]
    assert [o.name for o in segmented.outputs] == ["ariel_exit1", "ariel_exit2", "logits"]
    # Each stage's kernels: its segment's only; the backbone's convolutions once each.
    convs = [[k["name"] for k in compiled.info.kernels if k["stage"] == s and k["op"] == "Conv"]
             for s in range(4)]
    assert convs == [["block1"], ["block2"], ["block3"], ["block1", "block2", "block3"]]
    alone = [compile_stages(_options(files, [Stage(ee, "int8", output), Stage(ee, "float")],
                                     [1.0]), "tests")
             for output in ("ariel_exit1", "ariel_exit2", None)]
    x = inputs(12, seed=2)
    together = _host(compiled, tmp_path, 0)
    singles = [_host(c, tmp_path / f"alone{i}", 0) for i, c in enumerate(alone)]
    for sample in x:
        outputs = together.run(sample)
        for output, single in zip(outputs, singles, strict=True):
            np.testing.assert_array_equal(output, single.run(sample)[0])
    compile_for_cortex_m4(compiled, tmp_path / "m4")


def test_segmented_float_model_matches_onnxruntime(files, tmp_path):
    ee = files / "ee.onnx"
    stages = [Stage(ee, "float", "ariel_exit1"), Stage(ee, "float", "ariel_exit2"),
              Stage(ee, "float")]
    compiled = compile_stages(_options(files, stages, [1.0, 1.0]), "tests")
    assert len(compiled.models) == 1 and compiled.models[0].info.segments
    session = onnxruntime.InferenceSession(str(ee), providers=["CPUExecutionProvider"])
    host = _host(compiled, tmp_path, 0)
    for sample in inputs(8, seed=3):
        final, exit1, exit2 = session.run(None, {"input": sample})
        got = host.run(sample)
        for ours, theirs in zip(got, (exit1, exit2, final), strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def run(args):
    """The exit code and the error: exactly one line, checked here."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    errors = [line for line in result.stderr.splitlines() if not line.startswith("ariel: ")]
    assert len(errors) == 1, result.stderr
    return result.exit_code, errors[0]


def test_bad_stage_outputs_are_refused_in_one_line(files, tmp_path):
    ee = files / "ee.onnx"
    common = ["--calib", files / "calib.npy", "--threshold", "1,1", "-o", tmp_path / "o"]
    code, err = run(["build", "--stage", f"{ee}:int8:nope", "--stage", f"{ee}:int8",
                     "--stage", f"{ee}:float", *common])
    assert code == 1 and "'nope' is not a graph output of ee.onnx" in err
    assert "'logits', 'ariel_exit1', 'ariel_exit2'" in err
    code, err = run(["build", "--stage", f"{ee}:int8:ariel_exit2", "--stage",
                     f"{ee}:int8:ariel_exit1", "--stage", f"{ee}:float", *common])
    assert code == 1
    assert ("stage ee:int8:ariel_exit1 comes after stage ee:int8:ariel_exit2 but its output "
            "'ariel_exit1' branches off the backbone before 'ariel_exit2' does") in err
    code, err = run(["build", "--stage", f"{ee}:int8", "--stage", f"{ee}:int8:ariel_exit1",
                     "--stage", f"{ee}:float", *common])
    assert code == 1 and "in backbone order, the earliest exit first" in err
    code, err = run(["build", "--stage", f"{ee}:int8:ariel_exit1", "--stage",
                     f"{ee}:int8:ariel_exit1", "--stage", f"{ee}:float", *common])
    assert code == 1 and "as an earlier stage of the same model and precision does" in err
    assert not (tmp_path / "o").exists()


def test_segmented_builds_are_deterministic_and_take_the_scores_asked_for(files, tmp_path):
    """The same stages give the same bytes; with --scores probabilities each stage's output
    gets its own Softmax (each row of every output sums to 1 and keeps the logits' order)."""
    ee = files / "ee.onnx"
    stages = [Stage(ee, "float", "ariel_exit1"), Stage(ee, "float")]
    first, second = (compile_stages(_options(files, stages, [0.5]), "tests") for _ in range(2))
    assert first.files == second.files
    logits = _host(first, tmp_path / "logits", 0)
    options = _options(files, stages, [0.5])
    options.scores = "probabilities"
    probabilities = _host(compile_stages(options, "tests"), tmp_path / "probabilities", 0)
    for sample in inputs(4, seed=8):
        for raw, scaled in zip(logits.run(sample), probabilities.run(sample), strict=True):
            assert scaled.sum() == pytest.approx(1.0, abs=1e-5)
            assert (np.argsort(raw.ravel()) == np.argsort(scaled.ravel())).all()
