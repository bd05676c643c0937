"""Random graphs compiled by ariel, built for the host, run, and checked against an oracle:
float graphs against onnxruntime within a tolerance relative to the output's range; int8
graphs bit-exact against ariel's numpy integer reference and, layer by layer and as a whole,
against onnxruntime running the QDQ model as written; int32 graphs against onnx.reference."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

from codegen.compiler.quant.report import quantization_report, quantize_inputs
from codegen.compiler.reference import run_graph
from codegen.errors import ArielError
from codegen.run.hostrun import HostModel, build_host_library
from tests.fuzz.graphs import FLOAT, INT8, INT32, random_graph
from tests.fuzz.outcomes import CLEAN, CORRECT, INTERNAL, UNCLEAR, WRONG, Verdict, one_line
from tests.support import compile_onnx, compile_onnx_int8

# Float: |ariel - onnxruntime| <= FLOAT_TOLERANCE * (largest |value| of that output, or 1).
FLOAT_TOLERANCE = 1e-4
# The C's float outputs against ariel's own numpy reference of the same graph.
REFERENCE_TOLERANCE = 1e-5
# int8, each layer fed onnxruntime's own int8 inputs: at most one unit apart (rounding ties:
# onnxruntime rounds half to even in float, ariel half up in integers), and ties are rare.
LAYER_MAX_LSB = 1
LAYER_MAX_TIE_SHARE = 0.2
# Averages over a few values at one scale land on exact halves often (a window of two: every
# odd sum, and half of those ties round apart: about a quarter of the values).
AVERAGING = {"AveragePool", "GlobalAveragePool", "ReduceMean"}
AVERAGE_MAX_TIE_SHARE = 0.5
# int8, the whole model against onnxruntime as written: ties feed later layers, so a few
# values may move by a unit more per layer they pass through; bounded all the same.
MODEL_MAX_DIFFERENT_SHARE = 0.25
CALIBRATION_CHECKED = 4  # calibration samples run besides the fresh one


def float_case(seed: int, workdir: Path) -> tuple[str, str]:
    case = random_graph(seed, FLOAT)
    expected = _onnxruntime(case.model, case.inputs)
    compiled = _compile(lambda: compile_onnx(case.model, f"f{seed}"))
    host = _host(compiled, workdir)
    got = host.run(*[case.inputs[spec.name] for spec in compiled.info.inputs])
    for spec, mine, theirs in zip(compiled.info.outputs, got, expected, strict=True):
        _check_float(spec.name, mine, theirs)
    return CORRECT, case.describe()


def int8_case(seed: int, workdir: Path) -> tuple[str, str]:
    case = random_graph(seed, INT8)
    _onnxruntime(case.model, case.inputs)  # the float model is valid for the oracle
    compiled = _compile(lambda: compile_onnx_int8(case.model, case.calibration, io="int8",
                                                  name=f"q{seed}"))
    graph = compiled.graph
    samples = {name: np.concatenate([batch[:CALIBRATION_CHECKED], case.inputs[name][None]])
               for name, batch in case.calibration.items()}
    for spec in [*compiled.info.inputs, *compiled.info.outputs]:
        if spec.dtype == "int8" and (spec.scale is None or spec.zero_point is None):
            raise Verdict(WRONG, f"--io int8: tensor '{spec.name}' is int8 but the build "
                          "gives no scale and zero point for it")
    host = _host(compiled, workdir)
    count = CALIBRATION_CHECKED + 1
    for i in range(count):
        floats = [samples[graph.origins.get(n, n)][i] for n in graph.inputs]
        ints = quantize_inputs(graph, floats)
        mine = host.run(*[ints[graph.inputs.index(s.name)] for s in compiled.info.inputs])
        reference = run_graph(graph, ints)
        for spec, c_value, numpy_value in zip(compiled.info.outputs, mine, reference,
                                              strict=True):
            _check_bit_exact(f"sample {i}: output '{spec.name}'", c_value,
                             numpy_value.reshape(c_value.shape))
    if compiled.quantized_model is not None:
        _check_against_onnxruntime(compiled, samples, count)
    return CORRECT, case.describe()


def _check_bit_exact(where: str, mine: np.ndarray, reference: np.ndarray) -> None:
    """The C against ariel's numpy reference: integers bit for bit; a float output (after
    a DequantizeLinear, or an operator left in float) within float rounding, since the C's
    expf and tanhf are not numpy's."""
    if mine.dtype.kind == "f":
        scale = max(1.0, float(np.abs(reference).max(initial=0.0)))
        if np.allclose(mine, reference, rtol=0, atol=REFERENCE_TOLERANCE * scale,
                       equal_nan=True):
            return
    elif np.array_equal(mine, reference):
        return
    raise Verdict(WRONG, f"{where} of the C differs from ariel's reference: "
                  f"{_difference(mine, reference)}")


def _check_against_onnxruntime(compiled, samples: dict[str, np.ndarray], count: int) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = quantization_report(compiled.graph, None, compiled.quantized_model,
                                         {k: v[:count] for k, v in samples.items()})
    except Exception as exc:  # `ariel build --precision int8` makes this report too
        raise Verdict(INTERNAL, one_line(f"quantization report: {type(exc).__name__}: "
                                         f"{exc}")) from None
    for row in report.layers:
        if row.ort_max_lsb is None:
            continue
        share = AVERAGE_MAX_TIE_SHARE if row.op in AVERAGING else LAYER_MAX_TIE_SHARE
        if row.ort_max_lsb > LAYER_MAX_LSB or 1 - row.ort_identical > share:
            raise Verdict(WRONG, f"layer {row.index} {row.op} '{row.name}' fed onnxruntime's "
                          f"inputs: {row.ort_identical:.1%} identical, largest difference "
                          f"{row.ort_max_lsb} LSB")
    for row in report.agreement:
        if row.optimized:
            continue  # onnxruntime's fused kernels requantize their own way: shown, not held
        if 1 - row.identical > MODEL_MAX_DIFFERENT_SHARE:
            raise Verdict(WRONG, f"output '{row.output}' vs onnxruntime (QDQ as written): "
                          f"{row.identical:.1%} identical, largest difference {row.max_lsb} LSB")


def int32_case(seed: int, workdir: Path) -> tuple[str, str]:
    """Integer arithmetic: exact against onnx.reference, except that where a division by
    zero or INT_MIN / -1 happens any value is taken (the answer is then ariel's to define),
    as long as the run survives."""
    case = random_graph(seed, INT32)
    expected, undefined = _reference_int(case.model, case.inputs)
    compiled = _compile(lambda: compile_onnx(case.model, f"i{seed}"))
    host = _host(compiled, workdir)
    got = host.run(*[case.inputs[spec.name] for spec in compiled.info.inputs])
    if undefined:
        return CORRECT, f"{case.describe()} (undefined division: values not checked)"
    for spec, mine, theirs in zip(compiled.info.outputs, got, expected, strict=True):
        if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
            raise Verdict(WRONG, f"output '{spec.name}': {_difference(mine, theirs)}")
    return CORRECT, case.describe()


def _reference_int(model: onnx.ModelProto, inputs: dict[str, np.ndarray]
                   ) -> tuple[list[np.ndarray], bool]:
    """onnx.reference's outputs, and whether any Div met a zero divisor or INT_MIN / -1."""
    from onnx.reference import ReferenceEvaluator

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = ReferenceEvaluator(model)
        names = [o.name for o in model.graph.output]
        divisions = [n for n in model.graph.node if n.op_type == "Div"]
        wanted = sorted({i for n in divisions for i in n.input} - set(inputs)
                        - {i.name for i in model.graph.initializer})
        values = evaluator.run([*names, *wanted], inputs)
    known = dict(zip([*names, *wanted], values, strict=True))
    known.update(inputs)
    known.update({i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer})
    undefined = False
    for node in divisions:
        a, b = np.broadcast_arrays(known[node.input[0]], known[node.input[1]])
        undefined |= bool(np.any(b == 0) or np.any((a == np.iinfo(a.dtype).min) & (b == -1)))
    return list(values[:len(names)]), undefined


def _compile(make):
    """ariel's compile; a refusal ends the case (one line: clean)."""
    try:
        return make()
    except ArielError as exc:
        text = str(exc)
        raise Verdict(CLEAN if "\n" not in text.strip() else UNCLEAR, one_line(text)) from None
    except Exception as exc:  # what `ariel build` would report as an internal error
        raise Verdict(INTERNAL, one_line(f"{type(exc).__name__}: {exc}")) from None


def _host(compiled, workdir: Path) -> HostModel:
    try:
        library = build_host_library(compiled.files, workdir / "host")
    except ArielError as exc:
        first = next((line for line in str(exc).splitlines() if "error" in line), str(exc))
        raise Verdict(WRONG, f"generated C does not compile: {one_line(first)}") from None
    return HostModel(library, compiled.info)


def onnxruntime_session(model: bytes | str) -> onnxruntime.InferenceSession:
    """onnxruntime running the model as written: its graph optimizations off (they are no
    part of the model's meaning, and its NCHWc Conv rewrite fails on some small shapes)."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _onnxruntime(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    try:
        return onnxruntime_session(model.SerializeToString()).run(None, inputs)
    except Exception as exc:  # the generator made a model the oracle cannot run
        raise Verdict(WRONG, f"oracle failed (a generator bug): {one_line(exc)}") from None


def _check_float(name: str, mine: np.ndarray, theirs: np.ndarray) -> None:
    if mine.dtype.kind != "f" and mine.shape == theirs.shape and mine.dtype == theirs.dtype:
        if not np.array_equal(mine, theirs):
            raise Verdict(WRONG, f"output '{name}': {_difference(mine, theirs)}")
        return
    if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
        raise Verdict(WRONG, f"output '{name}': {mine.dtype}{list(mine.shape)}, onnxruntime "
                      f"gives {theirs.dtype}{list(theirs.shape)}")
    if not np.array_equal(np.isnan(mine), np.isnan(theirs)):
        raise Verdict(WRONG, f"output '{name}': NaN where onnxruntime has none, or not where "
                      "it has")
    finite = np.isfinite(theirs)
    if not np.array_equal(mine[~finite & ~np.isnan(theirs)], theirs[~finite & ~np.isnan(theirs)]):
        raise Verdict(WRONG, f"output '{name}': infinities differ")
    scale = max(1.0, float(np.abs(theirs[finite]).max(initial=0.0)))
    error = float(np.abs(mine[finite].astype(np.float64) - theirs[finite]).max(initial=0.0))
    if error > FLOAT_TOLERANCE * scale:
        raise Verdict(WRONG, f"output '{name}': {_difference(mine, theirs)} (tolerance "
                      f"{FLOAT_TOLERANCE * scale:.3g})")


def _difference(mine: np.ndarray, theirs: np.ndarray) -> str:
    if mine.shape != theirs.shape:
        return f"shape {list(mine.shape)}, expected {list(theirs.shape)}"
    delta = np.abs(mine.astype(np.float64) - theirs.astype(np.float64))
    index = np.unravel_index(int(np.nanargmax(delta)), delta.shape) if delta.size else ()
    return (f"{int(np.sum(delta > 0))} of {delta.size} values differ, largest "
            f"{float(np.nanmax(delta)):.4g} at {list(map(int, index))} "
            f"({mine[index]} vs {theirs[index]})")


KINDS = {FLOAT: float_case, INT8: int8_case, INT32: int32_case}
