"""Command lines a careless user or an attacker might type: odd output paths (spaces,
quotes, `$(...)`, newlines, a file, a user's folder, a folder holding an ariel.json and the
user's work), odd option values, missing or corrupt input and calibration files, --outputs
and --json at odd places. Sentinel files around every output folder must survive; a build
that succeeds must hold its firmware and survive `make -C OUT`; a simulation that succeeds
must match onnxruntime. The `qemu` kind builds random graphs with `ariel build` and runs
them with `ariel simulate` in QEMU, the sampled few of the graph cases."""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import tempfile
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.fuzz.command import Exit, Sentinels, ariel
from tests.fuzz.graph_cases import _check_float, _onnxruntime
from tests.fuzz.graphs import FLOAT, random_graph
from tests.fuzz.outcomes import CLEAN, CORRECT, WRONG, Verdict

SHAPE = (1, 3, 8, 8)
_BUILT: dict[str, Path] = {}  # one plain build per worker, copied into each case that needs it


def small_model(path: Path) -> Path:
    rng = np.random.default_rng(7)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    g = numpy_helper.from_array(rng.standard_normal((4, 5)).astype(np.float32), "g")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "g"], ["y"], name="head")]
    graph = helper.make_graph(nodes, "small", [x], [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], [w, g])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def built_project() -> Path:
    """A finished build of small_model (made once per worker)."""
    if "plain" not in _BUILT:
        folder = Path(tempfile.mkdtemp(prefix="ariel-fuzz-base-"))
        atexit.register(shutil.rmtree, folder, True)
        result = ariel(["build", small_model(folder / "model.onnx"), "-o", folder / "out"])
        if result.code != 0:
            raise RuntimeError(f"the base build failed: {result.stderr}")
        _BUILT["plain"] = folder / "out"
    return _BUILT["plain"]


# -- build cases ---------------------------------------------------------------------------

ODD_NAMES = ["with space", "it's", 'say "hi"', "$(touch INJECTED)", "`touch INJECTED`",
             "a;touch INJECTED", "new\nline", "100%", "#hash", "colon:equals=", "ünï cødé",
             "-dash", "x" * 200, "tab\there", "back\\slash", "star*?", "$HOME", "a$$b",
             "esc\x1b[2J\x07\r", "\u202eright-to-left",
             b"not utf-8 \xff\xfe".decode(errors="surrogateescape")]


def odd_output_path(rng, folder: Path, sentinels: Sentinels) -> tuple[list, Path | None]:
    name = str(rng.choice(ODD_NAMES))
    parent = folder / ("p " + name if rng.random() < 0.3 else "p")
    sentinels.plant(parent / "keep.txt")
    return ["-o", parent / name], parent / name


def output_is_a_file(rng, folder, sentinels):
    target = sentinels.plant(folder / "notes.txt")
    return ["-o", target if rng.random() < 0.5 else target / "out"], None


def output_is_a_user_folder(rng, folder, sentinels):
    target = folder / "project"
    sentinels.plant(target / "notes.txt")
    sentinels.plant(target / "src" / "main.c", "int main(void) { return 0; }\n")
    if rng.random() < 0.5:
        # A folder that looks like a build (an ariel.json) but holds the user's work.
        sentinels.plant(target / "ariel.json", json.dumps({"mine": True}))
    return ["-o", target], None


def rebuild_keeps_user_files(rng, folder, sentinels):
    """Build into an earlier build that the user has since put their own files into."""
    target = folder / "out"
    shutil.copytree(built_project(), target)
    sentinels.plant(target / "Y.npy")
    sentinels.plant(target / "report.json")
    return ["-o", target], target


def output_is_cwd_or_parent(rng, folder, sentinels):
    work = folder / "work"
    sentinels.plant(work / "notes.txt")
    sentinels.plant(folder / "other.txt")
    return ["-o", str(rng.choice([".", "..", "./", "../work"]))], None


def odd_options(rng, folder, sentinels):
    options = [
        ["--board", "arduino-uno"], ["--board", ""], ["--precision", "int4"],
        ["--input-shape", "x="], ["--input-shape", "x=0,3,8,8"], ["--input-shape", "x=-1"],
        ["--input-shape", "=1,2"], ["--input-shape", "y=1,3,8,8"],
        ["--input-shape", "x=1,3,99999999999,8"], ["--input-shape", "x=1e3"],
        ["--name", ""], ["--name", "123"], ["--name", "a\"b*/c"], ["--name", "x" * 300],
        ["--float-weights", "fp8"], ["--io", "int8"], ["--io", "uart", "--io", "semihosting"],
        ["--stage", "nope.onnx:int8", "--stage", "model.onnx:float"],
        ["--threshold", "nan"], ["--calib", "digits"], ["--precision", "int8"],
        ["--inputs", "missing.npy"], ["--float-weights", "fp16"],
        ["--calib-method", "entropy"], ["--margin", "binary"], ["--target-agreement", "0.9"],
        ["--precision", "ari", "--calib", "digits", "--threshold", "1", "--show-plan"],
    ]
    return [*options[int(rng.integers(len(options)))], "-o", folder / "out"], folder / "out"


def bad_calibration(rng, folder, sentinels):
    path = folder / "calib.npy"
    choice = int(rng.integers(9))
    if choice == 0:
        np.save(path, np.zeros((4, 3, 8, 8), np.float64))
    elif choice == 1:
        np.save(path, np.full((4, *SHAPE[1:]), np.nan, np.float32))
    elif choice == 2:
        np.save(path, np.zeros((0, *SHAPE[1:]), np.float32))
    elif choice == 3:
        path.write_bytes(b"\x93NUMPY garbage")
    elif choice == 4:
        path = folder / "calib.npz"
        np.savez(path, x=np.array([object(), 1], dtype=object))
    elif choice == 5:
        path = folder / "calib.npz"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("x.txt", "not an array")
    elif choice == 6:
        path = folder / "calib.npz"
        np.savez(path, x=np.zeros((2, *SHAPE[1:]), np.float32))
        data = bytearray(path.read_bytes())
        data[60] ^= 0xFF  # inside the member: its CRC no longer holds
        path.write_bytes(bytes(data))
    elif choice == 7:
        np.save(path, np.zeros((4, 5), np.float32))
    else:
        path = folder / "missing.npy"
    sentinels.guard(path) if path.exists() else None
    return ["--precision", "int8", "--calib", path, "-o", folder / "out"], folder / "out"


BUILD_SCENARIOS = [odd_output_path, output_is_a_file, output_is_a_user_folder,
                   rebuild_keeps_user_files, output_is_cwd_or_parent, odd_options,
                   bad_calibration]


def build_case(scenario, seed: int, folder: Path) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    sentinels = Sentinels()
    model = sentinels.guard(small_model(folder / "model.onnx"))
    args, out = scenario(rng, folder, sentinels)
    cwd = folder / "work" if (folder / "work").is_dir() else folder
    result = ariel(["build", model, *args], cwd=cwd)
    what = scenario.__name__
    sentinels.check()
    _no_injection(folder, what)
    if result.code != 0:
        outcome, line = result.refusal()
        return outcome, f"{what}: {line}"
    out = out if out is not None else _output_of(args, cwd)
    return _check_build(out, folder, what)


def _output_of(args: list, cwd: Path) -> Path:
    target = Path(args[args.index("-o") + 1])
    return target if target.is_absolute() else cwd / target


def _check_build(out: Path, folder: Path, what: str) -> tuple[str, str]:
    if not (out / "build" / "firmware.elf").is_file():
        raise Verdict(WRONG, f"{what}: exit 0 but no firmware in {out}")
    make = subprocess.run(["make", "-C", str(out)], capture_output=True, text=True,
                          errors="surrogateescape", timeout=300)  # a path may not be UTF-8
    _no_injection(folder, what)
    if make.returncode != 0:
        last = (make.stderr.strip().splitlines() or [""])[-1]
        raise Verdict(WRONG, f"{what}: built, but `make -C OUT` fails: {last}")
    return CORRECT, f"{what}: built, make -C OUT works"


def _no_injection(folder: Path, what: str) -> None:
    planted = [p for p in folder.rglob("INJECTED")]
    if planted:
        raise Verdict(WRONG, f"{what}: a path ran a shell command ({planted[0]} created)")


# -- simulate cases ------------------------------------------------------------------------

def bad_inputs(rng, folder, out, sentinels):
    path = folder / "x.npy"
    choice = int(rng.integers(7))
    if choice == 0:
        np.save(path, np.zeros((2, 3, 8, 7), np.float32))
    elif choice == 1:
        np.save(path, np.zeros((1, *SHAPE[1:]), np.float64))
    elif choice == 2:
        np.save(path, np.full((1, *SHAPE[1:]), np.nan, np.float32))
    elif choice == 3:
        path.write_bytes(b"")
    elif choice == 4:
        path = folder / "x.npz"
        np.savez(path, x=np.array([object()], dtype=object))
    elif choice == 5:
        path = folder / "x.npz"
        np.savez(path, other=np.zeros((1, *SHAPE[1:]), np.float32))
    else:
        path = folder / "nothing.npy"
    return ["--inputs", path]


def odd_timeout(rng, folder, out, sentinels):
    return ["--inputs", _good_inputs(folder), "--timeout",
            str(rng.choice(["nan", "inf", "-1", "0", "1e308", "abc"]))]


def odd_result_files(rng, folder, out, sentinels):
    """--outputs, --json and --html at odd places: a missing folder, a folder, the build's
    own files, a planted symlink where ariel writes its temporary file."""
    inputs = _good_inputs(folder)
    choice = int(rng.integers(6))
    victim = sentinels.plant(folder / "victim.txt")
    if choice == 0:
        return ["--inputs", inputs, "--outputs", folder / "missing" / "y.npy"]
    if choice == 1:
        (folder / "adir.npy").mkdir()
        return ["--inputs", inputs, "--outputs", folder / "adir.npy"]
    if choice == 2:
        return ["--inputs", inputs, "--outputs", out / "build" / "firmware.elf"]
    if choice == 3:
        (folder / ".y.npy.tmp").symlink_to(victim)
        return ["--inputs", inputs, "--outputs", folder / "y.npy"]
    if choice == 4:
        (folder / ".r.json.tmp").symlink_to(victim)
        return ["--inputs", inputs, "--json", folder / "r.json"]
    return ["--inputs", inputs, "--json", folder]


def corrupt_build(rng, folder, out, sentinels):
    choice = int(rng.integers(4))
    if choice == 0:
        (out / "ariel.json").write_text("{ not json")
    elif choice == 1:
        (out / "ariel.json").write_text(json.dumps({"board": "mps2-an386"}))
    elif choice == 2:
        (out / "build" / "firmware.elf").write_bytes(b"\x7fELF garbage")
    else:
        (out / "build" / "firmware.elf").unlink()
    return ["--inputs", _good_inputs(folder)]


def good_run(rng, folder, out, sentinels):
    """A plain run that must work and match onnxruntime (with --compare now and then)."""
    args = ["--inputs", _good_inputs(folder, int(rng.integers(1, 4))), "--outputs",
            folder / "y.npy"]
    return args + (["--compare"] if rng.random() < 0.5 else [])


def _good_inputs(folder: Path, count: int = 1) -> Path:
    path = folder / "x.npy"
    np.save(path, np.random.default_rng(count).uniform(-1, 1, (count, *SHAPE[1:]))
            .astype(np.float32))
    return path


SIMULATE_SCENARIOS = [bad_inputs, odd_timeout, odd_result_files, corrupt_build, good_run]


def simulate_case(scenario, seed: int, folder: Path) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    out = folder / "out"
    shutil.copytree(built_project(), out)
    sentinels = Sentinels()
    args = scenario(rng, folder, out, sentinels)
    for path in [a for a in args if isinstance(a, Path) and a.is_file()]:
        sentinels.guard(path)
    result = ariel(["simulate", out, *args], cwd=folder)
    sentinels.check()
    what = scenario.__name__
    if result.code != 0:
        outcome, line = result.refusal()
        return outcome, f"{what}: {line}"
    if scenario is good_run:
        return _check_simulated(folder, out, what)
    return _accepted(result, what)


def _accepted(result: Exit, what: str) -> tuple[str, str]:
    """An odd simulate command that exited 0: acceptable only if it did the run."""
    if "inference" not in result.stdout + result.stderr:
        raise Verdict(WRONG, f"{what}: exit 0 without a run")
    return CORRECT, f"{what}: ran"


def _check_simulated(folder: Path, out: Path, what: str) -> tuple[str, str]:
    x = np.load(folder / "x.npy")
    model = onnx.load(str(out / "model.onnx"))
    got = np.load(folder / "y.npy")
    for i in range(len(x)):
        expected = _onnxruntime(model, {"x": x[i].reshape(SHAPE)})[0]
        _check_float("y", got[i].reshape(expected.shape), expected)
    return CORRECT, f"{what}: {len(x)} inferences in QEMU match onnxruntime"


# -- random graphs through the command line and QEMU ---------------------------------------------

def qemu_case(seed: int, folder: Path) -> tuple[str, str]:
    case = random_graph(seed, FLOAT)
    path = folder / "model.onnx"
    onnx.save(case.model, path)
    expected = _onnxruntime(case.model, case.inputs)
    result = ariel(["build", path, "-o", folder / "out"])
    if result.code != 0:
        outcome, line = result.refusal()
        return outcome, line
    inputs = folder / "x.npz"
    np.savez(inputs, **{name: value[None] for name, value in case.inputs.items()})
    outputs = folder / "y.npz"
    result = ariel(["simulate", folder / "out", "--inputs", inputs, "--outputs", outputs])
    if result.code != 0:
        outcome, line = result.refusal()
        raise Verdict(WRONG if outcome == CLEAN else outcome, f"simulate: {line}")
    got = np.load(outputs)
    names = [o.name for o in case.model.graph.output]
    for name, theirs in zip(names, expected, strict=True):
        _check_float(name, got[name][0], theirs)
    return CORRECT, case.describe()


def _kind(prefix: str, scenario) -> str:
    return f"{prefix}-{scenario.__name__.replace('_', '-')}"


KINDS = {**{_kind("build", s): partial(build_case, s) for s in BUILD_SCENARIOS},
         **{_kind("simulate", s): partial(simulate_case, s) for s in SIMULATE_SCENARIOS},
         "qemu": qemu_case}
TIME_LIMITS = {kind: 300.0 for kind in KINDS}
