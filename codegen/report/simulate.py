"""What `ariel simulate` prints and writes: per-input results, and optionally how the
firmware's outputs compare with onnxruntime running the original model."""

from __future__ import annotations

import numpy as np
import onnx

from codegen.compiler.onnxrun import run_model
from codegen.errors import ArielError
from codegen.run.simulate import Build, Simulation

MAX_ROWS = 10


def is_scores(shape: list[int]) -> bool:
    """An output that looks like one vector of class scores per input."""
    dims = [d for d in shape if d != 1]
    return len(dims) == 1 and 2 <= dims[0] <= 1000


def compare_with_onnxruntime(build: Build, inputs: list[np.ndarray], result: Simulation
                             ) -> list[dict]:
    info = build.info
    path = build.folder / build.metadata["model"]["file"]
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf and onnx raise several types for unreadable files
        raise ArielError(f"--compare reads the build's copy of the model, '{path}', which is "
                         f"not a readable ONNX model ({str(exc).strip()[:200]})") from exc
    feeds = [{spec.name: batch[n] for spec, batch in zip(info.inputs, inputs, strict=True)}
             for n in range(result.count)]
    runs = run_model(model, feeds, [o.name for o in info.outputs], "for --compare")
    expected = [[values[index] for values in runs] for index in range(len(info.outputs))]
    rows = []
    for spec, got, want in zip(info.outputs, result.outputs, expected, strict=True):
        want = np.stack(want).astype(np.float64)
        got64 = got.astype(np.float64)
        span = float(want.max() - want.min()) or 1.0
        row = {"output": spec.name, "max_abs_error": float(np.abs(got64 - want).max()),
               "max_error_relative_to_range": float(np.abs(got64 - want).max() / span),
               "range": [float(want.min()), float(want.max())]}
        if is_scores(spec.shape):
            same = (got.reshape(result.count, -1).argmax(1) ==
                    want.reshape(result.count, -1).argmax(1))
            row["same_top_class"] = int(same.sum())
        rows.append(row)
    return rows


def _per_input(spec_shape: list[int], values: np.ndarray) -> list[dict]:
    rows = []
    for sample in values:
        flat = sample.reshape(-1).astype(np.float64)
        if is_scores(spec_shape):
            order = np.argsort(-flat, kind="stable")
            rows.append({"top": int(order[0]), "score": float(flat[order[0]]),
                         "second": int(order[1]), "second_score": float(flat[order[1]])})
        else:
            rows.append({"min": float(flat.min()), "mean": float(flat.mean()),
                         "max": float(flat.max())})
    return rows


def summary_json(build: Build, result: Simulation, comparison: list[dict] | None) -> dict:
    info = build.info
    return {
        "board": build.board.name,
        "emulator": build.board.emulator,
        "inferences": result.count,
        "wall_seconds": round(result.seconds, 3),
        "outputs": [{"name": spec.name, "shape": spec.shape, "dtype": spec.dtype,
                     "per_input": _per_input(spec.shape, values)}
                    for spec, values in zip(info.outputs, result.outputs, strict=True)],
        "compare_onnxruntime": comparison,
    }


def summary_text(build: Build, result: Simulation, comparison: list[dict] | None) -> str:
    board = build.board
    lines = [f"{result.count} inference(s) on {board.name} ({board.emulator}) in "
             f"{result.seconds:.2f} s of wall time"]
    for spec, values in zip(build.info.outputs, result.outputs, strict=True):
        lines.append(f"output '{spec.name}' {spec.dtype}{spec.shape}")
        rows = _per_input(spec.shape, values)
        if is_scores(spec.shape):
            lines.append(f"  {'input':>5}  {'top':>4} {'score':>10}  {'2nd':>4} {'score':>10}")
            lines += [f"  {i:>5}  {r['top']:>4} {r['score']:>10.5g}  {r['second']:>4} "
                      f"{r['second_score']:>10.5g}" for i, r in enumerate(rows[:MAX_ROWS])]
        else:
            lines.append(f"  {'input':>5}  {'min':>11} {'mean':>11} {'max':>11}")
            lines += [f"  {i:>5}  {r['min']:>11.5g} {r['mean']:>11.5g} {r['max']:>11.5g}"
                      for i, r in enumerate(rows[:MAX_ROWS])]
        if len(rows) > MAX_ROWS:
            lines.append(f"  ... {len(rows) - MAX_ROWS} more (all in --outputs / --json)")
    for row in comparison or []:
        text = (f"onnxruntime vs firmware, '{row['output']}': largest difference "
                f"{row['max_abs_error']:.3g} ({row['max_error_relative_to_range']:.2g} of the "
                f"output range {row['range'][0]:.4g}..{row['range'][1]:.4g})")
        if "same_top_class" in row:
            text += f"; same top class on {row['same_top_class']}/{result.count}"
        lines.append(text)
    return "\n".join(lines)
