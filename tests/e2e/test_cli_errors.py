"""Every bad input of `ariel build` and `ariel simulate` gets one clear line on stderr, a
non-zero exit, no traceback, and no output folder left behind."""

import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from codegen.cli import main
from codegen.resources import data_dir
from tests.support import DAMAGED_NPZ, damaged_npz

pytestmark = pytest.mark.qemu


def tiny_model(path: Path, op: str = "Relu", dims=(1, 3, 8, 8), **attrs) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    w = numpy_helper.from_array(np.full((2, dims[1], 3, 3), 0.1, np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv")
    last = helper.make_node(op, ["c"], ["y"], name="last", **attrs)
    graph = helper.make_graph([conv, last], "tiny", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(onnx.shape_inference.infer_shapes(model), path)
    return path


def run(args, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    return result.exit_code, result.stdout, result.stderr


def assert_clean_error(code, stderr, *patterns):
    assert code not in (0, None)
    assert "Traceback" not in stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, stderr
    for pattern in patterns:
        assert re.search(pattern, error_lines[0]), (pattern, error_lines[0])


def test_missing_model(tmp_path):
    code, _, err = run(["build", tmp_path / "nope.onnx", "-o", tmp_path / "out"])
    assert_clean_error(code, err, "not found")
    assert not (tmp_path / "out").exists()


def test_corrupt_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf\xff\xff")
    code, _, err = run(["build", bad, "-o", tmp_path / "a" / "b" / "out"])
    assert_clean_error(code, err, "not a (readable|valid) ONNX model")
    assert not (tmp_path / "a").exists(), "parent folders created for the build are removed"


def test_dynamic_shape_suggests_input_shape(tmp_path):
    model = tiny_model(tmp_path / "m.onnx", dims=(1, 3, "height", 8))
    code, _, err = run(["build", model, "-o", tmp_path / "out"])
    assert_clean_error(code, err, "dynamic shape", r"--input-shape x=1,3,N,8")
    assert not (tmp_path / "out").exists()
    code, out, err = run(["build", model, "-o", tmp_path / "out", "--input-shape", "x=1,3,6,8"])
    assert code == 0, err
    assert (tmp_path / "out" / "build" / "firmware.elf").is_file()


def test_dynamic_batch_is_set_to_one(tmp_path):
    model = tiny_model(tmp_path / "m.onnx", dims=("batch", 3, 8, 8))
    code, _, err = run(["build", model, "-o", tmp_path / "out"])
    assert code == 0, err
    assert "batch dimension 'batch' set to 1" in err


def test_unknown_board(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    code, _, err = run(["build", model, "--board", "arduino-uno", "-o", tmp_path / "out"])
    assert_clean_error(code, err, "unknown board 'arduino-uno'", "mps2-an386")
    assert not (tmp_path / "out").exists()


def test_unsupported_operator_names_node_op_and_alternatives(tmp_path):
    model = tiny_model(tmp_path / "m.onnx", op="Det")  # a determinant: no TinyML model's
    code, _, err = run(["build", model, "-o", tmp_path / "out"])
    assert_clean_error(code, err, "node 'last'", "operator Det is not supported",
                       "supported operators: .*Conv")
    assert not (tmp_path / "out").exists()


def test_unsupported_feature_of_a_supported_operator(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4, 4])
    w = numpy_helper.from_array(np.ones((2, 2, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv3d")
    graph = helper.make_graph([node], "c3", [x], [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2, 2])], [w])
    path = tmp_path / "c3.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    code, _, err = run(["build", path, "-o", tmp_path / "out"])
    assert_clean_error(code, err, "node 'conv3d' \\(Conv\\)", "3-D convolution is not supported",
                       "supported: 1-D and 2-D")
    assert not (tmp_path / "out").exists()


def test_existing_non_ariel_folder_is_not_overwritten(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _, err = run(["build", model, "-o", tmp_path / "mine"])
    assert_clean_error(code, err, "not an ariel build")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_toolchain_missing(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    bare = tmp_path / "bin"
    bare.mkdir()
    os.symlink("/usr/bin/make", bare / "make")
    code, _, err = run(["build", model, "-o", tmp_path / "out"], env={"PATH": str(bare)})
    assert_clean_error(code, err, "arm-none-eabi-gcc not found", "apt-get install")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("built")
    model = tiny_model(folder / "m.onnx")
    code, _, err = run(["build", model, "-o", folder / "out"])
    assert code == 0, err
    return folder / "out"


def test_inputs_of_wrong_dtype(built, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 3, 8, 8)))
    code, _, err = run(["simulate", built, "--inputs", tmp_path / "x.npy",
                        "--outputs", tmp_path / "y.npy"])
    assert_clean_error(code, err, "must be float32, got float64")
    assert not (tmp_path / "y.npy").exists()


def test_inputs_of_wrong_shape(built, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 8, 7), np.float32))
    code, _, err = run(["simulate", built, "--inputs", tmp_path / "x.npy"])
    assert_clean_error(code, err, r"has shape \[2, 3, 8, 7\]", r"takes \[1, 3, 8, 8\]")


def test_qemu_missing(built, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    code, _, err = run(["simulate", built, "--inputs", tmp_path / "x.npy"],
                       env={"PATH": str(tmp_path)})
    assert_clean_error(code, err, "qemu-system-arm not found")


def test_not_a_build_folder(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    code, _, err = run(["simulate", tmp_path, "--inputs", tmp_path / "x.npy"])
    assert_clean_error(code, err, "not an ariel build folder")


def _rebuild_with(built: Path, tmp_path: Path, statement: str) -> Path:
    """A copy of the build whose run function starts with `statement`, rebuilt with make."""
    import shutil
    import subprocess

    copy = tmp_path / "broken"
    shutil.copytree(built, copy)
    source = next((copy / "model").glob("m.c"))
    text = source.read_text().replace("void m_run(uint8_t *arena)\n{\n",
                                      "void m_run(uint8_t *arena)\n{\n    " + statement + "\n")
    source.write_text(text)
    subprocess.run(["make", "-s", "-C", str(copy)], check=True, capture_output=True)
    return copy


def test_firmware_fault_is_reported(built, tmp_path):
    broken = _rebuild_with(built, tmp_path, "__builtin_trap();")
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    code, _, err = run(["simulate", broken, "--inputs", tmp_path / "x.npy"])
    assert_clean_error(code, err, "faulted", "pc=0x[0-9a-f]{8}")


def test_firmware_hang_hits_the_time_limit(built, tmp_path):
    broken = _rebuild_with(built, tmp_path, "for (volatile int spin = 1; spin;) {}")
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    code, _, err = run(["simulate", broken, "--inputs", tmp_path / "x.npy", "--timeout", "2"])
    assert_clean_error(code, err, "did not finish within 2 s")


def test_model_too_big_for_the_board_says_by_how_much(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])
    node = helper.make_node("Mul", ["x", "w"], ["y"], name="big")
    w = numpy_helper.from_array(np.ones((300, 1024), np.float32), "w")  # 1.2 MB of weights
    graph = helper.make_graph([node], "big", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [300, 1024])],
                              [w])
    path = tmp_path / "big.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    code, _, err = run(["build", path, "--board", "netduinoplus2", "-o", tmp_path / "out"])
    assert_clean_error(code, err, "does not fit netduinoplus2", r"FLASH overflowed by [\d,]+ bytes")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", DAMAGED_NPZ)
def test_damaged_inputs_npz(built, tmp_path, kind):
    path = damaged_npz(tmp_path / "x.npz", kind, np.zeros((1, 3, 8, 8), np.float32))
    code, _, err = run(["simulate", built, "--inputs", path])
    assert_clean_error(code, err, re.escape(DAMAGED_NPZ[kind]), "x.npz")


def test_output_folder_inside_a_file_or_proc(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    code, _, err = run(["build", model, "-o", tmp_path / "m.onnx" / "out"])
    assert_clean_error(code, err, "m.onnx' is a file, not a folder")
    code, _, err = run(["build", model, "-o", "/proc/ariel-out"])
    assert_clean_error(code, err, "cannot create the output folder '/proc/ariel-out'")
    code, _, err = run(["build", model, "-o", tmp_path / ("long" * 100)])
    assert_clean_error(code, err, "File name too long")


@pytest.mark.parametrize("option,value", [("--target-agreement", "nan"),
                                          ("--target-agreement", "0"),
                                          ("--decision-threshold", "inf")])
def test_numbers_are_finite_and_in_range(tmp_path, option, value):
    model = tiny_model(tmp_path / "m.onnx")
    code, _, err = run(["build", model, "--precision", "ari", "--calib", model, "-o",
                        tmp_path / "out", option, value])
    assert code == 2 and "Traceback" not in err, err
    assert f"Invalid value for '{option}'" in err, err


@pytest.mark.parametrize("option", ["--outputs", "--json", "--html"])
def test_report_in_a_missing_folder_or_at_a_folder(built, tmp_path, option):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    (tmp_path / "reports").mkdir()
    profile = ["--profile"] if option == "--html" else []
    for target, message in ((tmp_path / "missing" / "r.out", "folder .*missing' does not exist"),
                            (tmp_path / "reports", "is a folder")):
        code, _, err = run(["simulate", built, "--inputs", tmp_path / "x.npy", option, target,
                            *profile])
        assert_clean_error(code, err, option, message)
    assert sorted(os.listdir(tmp_path)) == ["reports", "x.npy"]
    assert os.listdir(tmp_path / "reports") == []


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "1e12"])
def test_timeout_is_a_positive_finite_number(built, tmp_path, value):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    for command in (["simulate", built, "--inputs", tmp_path / "x.npy"],
                    ["calibrate", built, "--data", tmp_path / "x.npy"]):
        code, _, err = run([*command, "--timeout", value])
        assert code == 2 and "Traceback" not in err, err
        assert "Invalid value for '--timeout'" in err, err


@pytest.mark.parametrize("text,message", [
    ("{", "cannot be read"), ("[]", "not a JSON object"), ('{"board": "mps2-an386"}', "no 'elf'"),
    ("\udcff", "cannot be read"), (None, "no 'model_info'")])
def test_damaged_ariel_json(built, tmp_path, text, message):
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    if text is None:
        metadata = json.loads((copy / "ariel.json").read_text())
        del metadata["model_info"]
        text = json.dumps(metadata)
    (copy / "ariel.json").write_bytes(text.encode(errors="surrogateescape"))
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    for command in (["simulate", copy, "--inputs", tmp_path / "x.npy"],
                    ["calibrate", copy, "--data", tmp_path / "x.npy"],
                    ["flash", copy, "--dry-run"]):
        code, _, err = run(command)
        assert_clean_error(code, err, "ariel.json", message)


def test_outputs_may_not_replace_the_build_s_own_files(built, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    elf = built / "build" / "firmware.elf"
    before = {path: path.read_bytes() for path in (elf, built / "model" / "m.c",
                                                    built / "ariel.json")}
    for path in before:
        code, _, err = run(["simulate", built, "--inputs", tmp_path / "x.npy", "--outputs", path])
        assert_clean_error(code, err, "--outputs", "among the build's own files")
    assert {path: path.read_bytes() for path in before} == before
    code, _, err = run(["simulate", built, "--inputs", tmp_path / "x.npy", "--outputs",
                        tmp_path / "x.npy"])
    assert_clean_error(code, err, "is the input data file")


@pytest.mark.parametrize("content", [b"\x7fELF garbage", b"", "host"])
def test_damaged_firmware_elf(built, tmp_path, content):
    """A firmware.elf damaged or replaced since the build (garbage after the ELF magic, an
    empty file, the host's own executable) is one line naming the file, not pyelftools'
    ELFError out of the fault explainer."""
    import shutil
    import sys

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    elf = copy / "build" / "firmware.elf"
    if content == "host":
        shutil.copyfile(os.path.realpath(sys.executable), elf)
    else:
        elf.write_bytes(content)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    for command in (["simulate", copy, "--inputs", tmp_path / "x.npy"],
                    ["calibrate", copy, "--data", tmp_path / "x.npy"],
                    ["flash", copy, "--dry-run"]):
        code, _, err = run(command)
        assert_clean_error(code, err, "firmware.elf", "not (a readable firmware ELF|ARM)",
                           "make -C")


def test_model_with_no_graph_outputs(tmp_path):
    """A valid model whose graph lists no outputs: one line before any C is written (was a
    firmware of 0 kernels whose harness gcc refused: -Werror=type-limits on a loop to 0)."""
    model = onnx.load(tiny_model(tmp_path / "m.onnx"))
    del model.graph.output[:]
    onnx.save(model, tmp_path / "none.onnx")
    code, _, err = run(["build", tmp_path / "none.onnx", "-o", tmp_path / "out"])
    assert_clean_error(code, err, "declares no outputs", "2 node")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options, named", [
    (["--calib", "x.npy"], "--calib"),
    (["--calib-method", "entropy"], "--calib-method"),
    (["--precision", "int8", "--calib", "x.npy", "--threshold", "0.3"], "--threshold"),
    (["--margin", "binary", "--scores", "logits"], "--margin, --scores"),
    (["--target-agreement", "0.9"], "--target-agreement"),
    (["--precision", "ari", "--calib", "x.npy", "--threshold", "0.3", "--io", "int8"],
     "--io int8"),
    (["--precision", "ari", "--calib", "x.npy", "--threshold", "0.3", "--name", "n",
      "--show-plan"], "--name, --show-plan"),
    (["--precision", "ari", "--calib", "x.npy", "--threshold", "0.3", "--threshold-data",
      "x.npy"], "--threshold-data"),
    (["--precision", "ari", "--calib", "x.npy", "--threshold", "0.3",
      "--decision-threshold", "0.5"], "--decision-threshold"),
    (["--precision", "int8", "--stage", "m.onnx:int8", "--stage", "m.onnx:float", "--calib",
      "x.npy", "--threshold", "0.3"], "--precision"),
])
def test_build_options_the_build_would_not_use_are_refused(tmp_path, monkeypatch, options,
                                                           named):
    """An option the build would ignore (was: ignored in silence, as if applied) is named."""
    monkeypatch.chdir(tmp_path)
    tiny_model(tmp_path / "m.onnx", dims=(1, 3, 4, 4))
    np.save(tmp_path / "x.npy", np.zeros((4, 1, 3, 4, 4), np.float32))
    model = [] if "--stage" in options else ["m.onnx"]
    code, _, err = run(["build", *model, *options, "-o", "out"])
    assert_clean_error(code, err, re.escape(named) + " ha(s|ve) no effect")
    assert not (tmp_path / "out").exists()


def test_simulate_options_the_run_would_not_use_are_refused(built, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    x = ["--inputs", tmp_path / "x.npy"]
    for options, named in ([[*x, "--html", tmp_path / "p.html"], "--html"],
                           [[*x, "--profile", "--compare", "--outputs", tmp_path / "y.npy"],
                            "--outputs, --compare"]):
        code, _, err = run(["simulate", built, *options])
        assert_clean_error(code, err, re.escape(named) + " ha(s|ve) no effect")
    assert not [p for p in tmp_path.iterdir() if p.name != "x.npy"]


def test_calibrate_refuses_a_target_agreement_its_energy_budget_would_override(tmp_path):
    code, _, err = run(["calibrate", tmp_path, "--data", "digits", "--target-agreement", "0.9",
                        "--energy-budget", "5"])
    assert_clean_error(code, err, "--target-agreement has no effect with --energy-budget")


def test_an_internal_error_exits_70_naming_itself_a_bug(monkeypatch):
    """An exception ariel did not expect exits 70 (a bug), not 1 (the user's mistake), with
    one line and no traceback."""
    def broken():
        raise ValueError("a planted bug")

    monkeypatch.setattr("codegen.cli.all_boards", broken)
    monkeypatch.delenv("ARIEL_DEBUG", raising=False)
    result = CliRunner().invoke(main, ["boards"])
    assert result.exit_code == 70
    assert result.stderr == ("internal error: ValueError: a planted bug (this is a bug in "
                             "ariel; rerun with ARIEL_DEBUG=1 for details)\n")


def test_an_adaptive_build_refuses_weights_in_ram(tmp_path):
    model = data_dir("examples") / "models" / "digits_cnn.onnx"
    code, _, err = run(["build", model, "--precision", "ari",
                        "--weights-in-ram", "-o", tmp_path / "out"])
    assert_clean_error(code, err, "--weights-in-ram has no effect in an adaptive build")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,message", [
    (["--fixed-timing"], "--fixed-timing has no effect on a float build"),
    (["--tune"], "--tune has no effect on a float build"),
    (["--precision", "int8", "--calib", "digits", "--tune", "--fixed-timing"],
     "--tune has no effect with --fixed-timing"),
])
def test_timing_options_refuse_builds_they_cannot_change(args, message, tmp_path):
    model = data_dir("examples") / "models" / "digits_mlp.onnx"
    code, _, err = run(["build", model, *args, "-o", tmp_path / "out"])
    assert_clean_error(code, err, message)
    assert not (tmp_path / "out").exists()
