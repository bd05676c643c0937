"""What ariel prints to a terminal shows a model's names and the user's paths as data: a
name holding an ANSI escape, a carriage return, a backspace or a right-to-left override
cannot clear the screen, rewrite a line or forge one (an error stays one line), and a path
that is not UTF-8 is shown, not an encoding error."""

import unicodedata
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from codegen.cli import main
from tests.e2e.test_hostile_names import rename, small_model

pytestmark = pytest.mark.qemu

TRICKS = "\x1b[2J\x1b]0;owned\x07\rerror: forged\x08\u202e\n"


def _invisible(text: str) -> list[str]:
    """The characters of `text` that steer a terminal instead of showing (line breaks and
    tabs aside)."""
    return [c for c in text if c not in "\n\t"
            and unicodedata.category(c) in ("Cc", "Cf", "Cs")]


def _run(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    for stream in (result.stdout, result.stderr):
        assert not _invisible(stream), repr(stream)
    return result.exit_code, result.stdout, result.stderr


def _tricky_model(path: Path, op: str = "Relu", shape=(1, 4), out_shape=(1, 4)) -> Path:
    x = helper.make_tensor_value_info("x" + TRICKS, TensorProto.FLOAT, list(shape))
    node = helper.make_node(op, ["x" + TRICKS], ["y" + TRICKS], name="node" + TRICKS)
    graph = helper.make_graph([node], "g" + TRICKS, [x], [
        helper.make_tensor_value_info("y" + TRICKS, TensorProto.FLOAT, list(out_shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_an_error_naming_a_tricky_node_is_one_line(tmp_path):
    code, _, err = _run("build", _tricky_model(tmp_path / "m.onnx", "Det", (4, 4), ()),
                        "-o", tmp_path / "out")
    assert code == 1
    lines = err.splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], err
    assert "node\\x1b[2J\\x1b]0;owned\\x07\\rerror: forged\\x08\\u202e\\n" in lines[-1]


def test_inspect_build_and_simulate_show_names_as_data(tmp_path):
    model = _tricky_model(tmp_path / "m.onnx")
    code, out, _ = _run("inspect", model)
    assert code == 0 and "node\\x1b[2J" in out
    code, _, err = _run("build", model, "-o", tmp_path / "out")
    assert code == 0, err
    np.save(tmp_path / "x.npy", np.ones((1, 1, 4), np.float32))
    code, out, err = _run("simulate", tmp_path / "out", "--inputs", tmp_path / "x.npy")
    assert code == 0, err
    assert "output 'y\\x1b[2J" in out


def test_a_hostile_model_s_notes_and_reports_show_names_as_data(tmp_path):
    """The hostile-names model of test_hostile_names (every name and doc string hostile)
    through build and simulate with --compare: notes, the memory report, the summary."""
    hostile, _ = rename(small_model())
    onnx.save(hostile, tmp_path / "m.onnx")
    code, _, err = _run("build", tmp_path / "m.onnx", "-o", tmp_path / "out")
    assert code == 0, err
    np.save(tmp_path / "x.npy", np.ones((1, 1, 2, 6, 6), np.float32))
    code, _, err = _run("simulate", tmp_path / "out", "--inputs", tmp_path / "x.npy",
                        "--compare")
    assert code == 0, err


def test_paths_that_are_not_utf8_are_shown(tmp_path):
    name = b"m\xff\x1b[1m.onnx".decode(errors="surrogateescape")
    model = _tricky_model(tmp_path / name)
    out = tmp_path / b"out\xfe".decode(errors="surrogateescape")
    code, stdout, err = _run("build", model, "-o", out)
    assert code == 0, err
    assert "m\\xff\\x1b[1m.onnx" in err and "out\\xfe" in stdout
    code, _, err = _run("build", tmp_path / "missing\udcff.onnx", "-o", tmp_path / "o")
    assert code == 1 and "missing\\xff.onnx' not found" in err


def test_an_adaptive_build_of_a_model_whose_name_is_not_utf8(tmp_path):
    """The stages of an adaptive build are named after their model files: the memory plan
    naming them was written as UTF-8 text (an internal error: UnicodeEncodeError)."""
    model = _tricky_model(tmp_path / b"m\xff.onnx".decode(errors="surrogateescape"))
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(8, 1, 4))
            .astype(np.float32))
    out = tmp_path / b"out\xfe".decode(errors="surrogateescape")
    code, stdout, err = _run("build", model, "--precision", "ari", "--calib",
                             tmp_path / "x.npy", "--threshold", "0.5", "-o", out)
    assert code == 0, err
    assert "m\\xff:int8" in (out / "memory_plan.txt").read_text()
