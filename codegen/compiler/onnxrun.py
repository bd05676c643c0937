"""onnxruntime on a user's model, with one clear line when it cannot run it.

onnxruntime refuses an integer division by zero with an error, but it divides int64 MIN by -1
in the CPU's own instruction, which traps: SIGFPE kills the process, and with it ariel, without
a word. So a model holding an integer Div or Mod runs in a child process (`python -m
codegen.compiler.onnxrun FOLDER`; arrays cross in .npz files), whose death becomes one line
naming those nodes. Every other model runs in this process, as fast as before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from codegen.errors import ArielError

# Operators whose integer form divides: the ones that can trap.
DIVIDING = ("Div", "Mod")


def integer_divisions(model: onnx.ModelProto) -> list[str]:
    """The integer (or untyped) Div and Mod nodes of `model`, subgraphs included, as
    "Div 'name'"."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # a model ONNX cannot type: every division counts
        inferred = model
    types = {value.name: value.type.tensor_type.elem_type for value in [
        *inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]}
    types.update({init.name: init.data_type for init in inferred.graph.initializer})
    found = []
    for node in _all_nodes(inferred.graph):
        if node.op_type in DIVIDING and node.domain in ("", "ai.onnx"):
            elem = types.get(node.input[0], 0)
            if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                            onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
                found.append(f"{node.op_type} '{node.name or node.output[0]}'")
    return found


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs]:
                yield from _all_nodes(sub)


def run_model(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]],
              outputs: list[str], purpose: str, optimized: bool = True
              ) -> list[list[np.ndarray]]:
    """`outputs` of `model` on every feed, from onnxruntime's CPU provider (its graph
    optimizations off unless `optimized`). `purpose` says why, for errors."""
    dividing = integer_divisions(model)
    if not dividing:
        return _run(model.SerializeToString(), feeds, outputs, optimized, purpose)

    def write(folder: Path) -> dict:
        (folder / "model.onnx").write_bytes(model.SerializeToString())
        np.savez(folder / "feeds.npz", **{f"{i}.{j}": value for i, feed in enumerate(feeds)
                                          for j, value in enumerate(feed.values())})
        return {"inputs": [list(feed) for feed in feeds], "outputs": outputs,
                "optimized": optimized, "purpose": purpose}

    def read(folder: Path) -> list[list[np.ndarray]]:
        with np.load(folder / "outputs.npz", allow_pickle=False) as saved:
            return [[saved[f"{i}.{k}"] for k in range(len(outputs))] for i in range(len(feeds))]

    return in_child("run", write, read, f"running the model ({purpose})", dividing)


def _run(model: bytes, feeds: list[dict[str, np.ndarray]], outputs: list[str],
         optimized: bool, purpose: str) -> list[list[np.ndarray]]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # its errors reach the user as ariel's one line
    if not optimized:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = onnxruntime.InferenceSession(model, options,
                                               providers=["CPUExecutionProvider"])
        return [session.run(outputs, feed) for feed in feeds]
    except Exception as exc:  # onnxruntime raises its own types for models it cannot run
        raise ArielError(f"onnxruntime could not run the model ({purpose}): "
                         f"{_first_line(exc)}") from exc


def in_child(job: str, write: Callable[[Path], dict], read: Callable[[Path], object],
             doing: str, dividing: list[str]):
    """Run `job` (one of JOBS) in a child process: `write` puts its inputs in a folder and
    returns its settings, `read` takes its results from the folder."""
    with tempfile.TemporaryDirectory(prefix="ariel-onnxruntime-") as name:
        folder = Path(name)
        request = dict(write(folder), job=job)
        (folder / "request.json").write_text(json.dumps(request))
        result = subprocess.run([sys.executable, "-m", "codegen.compiler.onnxrun", name],
                                capture_output=True, text=True, env=_this_ariel_first())
        error = folder / "error.txt"
        if result.returncode == 0:
            return read(folder)
        if error.exists():
            raise ArielError(error.read_text())
        nodes = ", ".join(dividing[:5]) + (" ..." if len(dividing) > 5 else "")
        said = result.stderr.strip().splitlines()
        raise ArielError(f"onnxruntime {describe_exit(result.returncode)} {doing}; the model's "
                         f"integer divisions: {nodes}" + (f" ({said[-1]})" if said and
                                                          result.returncode > 0 else ""))


def _this_ariel_first() -> dict[str, str]:
    """The environment for a child that imports codegen: this copy of it first on the path,
    whatever the parent added to sys.path at run time (as bench/ scripts do)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def describe_exit(status: int) -> str:
    """How a child process ended, from its return code (negative: the signal)."""
    if status >= 0:
        return f"ended with status {status}"
    number = -status
    name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
    cause = {"SIGFPE": "an arithmetic trap, such as an integer division by zero or "
                       "MIN / -1",
             "SIGSEGV": "a memory access outside its memory",
             "SIGBUS": "a misaligned or invalid memory access",
             "SIGILL": "an illegal instruction or a trap"}.get(name)
    return f"was killed by {name}" + (f" ({cause})" if cause else "")


def _run_job(folder: Path, request: dict) -> None:
    model = (folder / "model.onnx").read_bytes()
    with np.load(folder / "feeds.npz", allow_pickle=False) as saved:
        feeds = [{name: saved[f"{i}.{j}"] for j, name in enumerate(names)}
                 for i, names in enumerate(request["inputs"])]
    results = _run(model, feeds, request["outputs"], request["optimized"], request["purpose"])
    np.savez(folder / "outputs.npz", **{f"{i}.{k}": value for i, values in enumerate(results)
                                        for k, value in enumerate(values)})


def _quantize_job(folder: Path, request: dict) -> None:
    from codegen.compiler.quant.calibrate import quantize_job

    quantize_job(folder, request)


JOBS = {"run": _run_job, "quantize": _quantize_job}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


if __name__ == "__main__":
    work = Path(sys.argv[1])
    order = json.loads((work / "request.json").read_text())
    try:
        JOBS[order["job"]](work, order)
    except ArielError as refusal:
        (work / "error.txt").write_text(str(refusal))
        sys.exit(3)
