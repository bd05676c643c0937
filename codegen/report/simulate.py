"""What `ariel simulate` prints and writes: per-input results, and optionally how the
firmware's outputs compare with onnxruntime running the original model."""

from __future__ import annotations

import math

import numpy as np
import onnx

from codegen.compiler.onnxrun import run_model
from codegen.errors import ArielError
from codegen.report.adaptive import AdaptiveSummary, format_summary, summarize
from codegen.run.simulate import Build, Simulation
from codegen.target.stack_usage import stack_use

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
    return [compare_output(spec.name, spec.shape, got, np.stack(want))
            for spec, got, want in zip(info.outputs, result.outputs, expected, strict=True)]


def compare_output(name: str, shape: list[int], got: np.ndarray, want: np.ndarray) -> dict:
    """The firmware's values of one output (N, *shape) against onnxruntime's. Differences
    are taken where both are finite; NaN and infinities are counted instead: equal ones (NaN
    on both sides, the same infinity) agree, any other is a mismatch."""
    got, want = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(got) & np.isfinite(want)
    agreeing = (got == want) | (np.isnan(got) & np.isnan(want))
    errors = np.abs(got[finite] - want[finite])
    expected = want[np.isfinite(want)]
    low, high = (float(expected.min()), float(expected.max())) if expected.size else \
        (math.nan, math.nan)
    span = (high - low) or 1.0 if expected.size else 1.0
    largest = float(errors.max()) if errors.size else math.nan
    row = {"output": name, "max_abs_error": largest,
           "max_error_relative_to_range": largest / span, "range": [low, high],
           "values": int(got.size),
           "nan": {"firmware": int(np.isnan(got).sum()), "onnxruntime": int(np.isnan(want).sum())},
           "infinite": {"firmware": int(np.isinf(got).sum()),
                        "onnxruntime": int(np.isinf(want).sum())},
           "non_finite_mismatches": int((~finite & ~agreeing).sum())}
    if is_scores(shape):
        count = len(got)
        same = _top_class(got.reshape(count, -1)) == _top_class(want.reshape(count, -1))
        row["same_top_class"] = int(same.sum())
    return row


def _top_class(scores: np.ndarray) -> np.ndarray:
    """The index of each row's largest score, NaN counted below every number."""
    return np.where(np.isnan(scores), -np.inf, scores).argmax(1)


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
    adaptive = adaptive_summary(build, result)
    return {
        "board": build.board.name,
        "emulator": build.board.emulator,
        "inferences": result.count,
        "wall_seconds": round(result.seconds, 3),
        "outputs": [{"name": spec.name, "shape": spec.shape, "dtype": spec.dtype,
                     "per_input": _per_input(spec.shape, values)}
                    for spec, values in zip(info.outputs, result.outputs, strict=True)],
        "compare_onnxruntime": comparison,
        "stack": _stack(result),
        "adaptive": None if adaptive is None else adaptive.to_dict(),
    }


def adaptive_summary(build: Build, result: Simulation) -> AdaptiveSummary | None:
    """For an adaptive build: which stage answered how many inputs, and what they cost."""
    ari = build.metadata.get("ari")
    if ari is None:
        return None
    names = [spec.name for spec in build.info.outputs]
    return summarize(ari, result.outputs[names.index("stage")], build.board.clock_hz)


def _stack(result: Simulation) -> dict | None:
    """The run's stack high-water mark and the stack reserved (None if it printed none)."""
    use = stack_use(result.console)
    return None if use is None else {"high_water": use.used, "reserved": use.size}


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
    lines += [_comparison_text(row, result.count) for row in comparison or []]
    stack = _stack(result)
    if stack is not None:
        lines.append(f"stack high-water {stack['high_water']:,} B of {stack['reserved']:,} B "
                     "reserved")
    adaptive = adaptive_summary(build, result)
    if adaptive is not None:
        lines.append(format_summary(adaptive))
    return "\n".join(lines)


def _comparison_text(row: dict, count: int) -> str:
    if math.isnan(row["max_abs_error"]):
        difference = "no value is finite in both"
    else:
        difference = (f"largest difference {row['max_abs_error']:.3g} "
                      f"({row['max_error_relative_to_range']:.2g} of the output range "
                      f"{row['range'][0]:.4g}..{row['range'][1]:.4g})")
    text = f"onnxruntime vs firmware, '{row['output']}': {difference}"
    if "same_top_class" in row:
        text += f"; same top class on {row['same_top_class']}/{count}"
    for kind in ("nan", "infinite"):
        found = row[kind]
        if found["firmware"] or found["onnxruntime"]:
            text += (f"; {'NaN' if kind == 'nan' else 'infinite'}: {found['firmware']} of the "
                     f"firmware's {row['values']} values, {found['onnxruntime']} of "
                     "onnxruntime's")
    if row["non_finite_mismatches"]:
        text += (f"; WARNING: {row['non_finite_mismatches']} value(s) are NaN or infinite on "
                 "one side only")
    return text
