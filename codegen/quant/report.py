"""What `ariel build --precision int8` reports about quantization: per layer, the scales and
the worst-case error of the int8 result against the float model on the calibration data;
and how ariel's int8 outputs compare with ONNX Runtime running the same QDQ model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from codegen.ir import Graph
from codegen.ops import REGISTRY
from codegen.reference import run_graph_values

MAX_SAMPLES = 32
SUFFIX = "_QuantizeLinear_Input"  # ONNX Runtime's name for a renamed float graph output


@dataclass
class LayerRow:
    index: int
    name: str
    op: str
    scale: float
    zero_point: int
    weight_scales: tuple[float, float] | None  # smallest and largest per-channel scale
    worst_error: float | None  # max |dequantized - float| / max |float|, worst sample


@dataclass
class Agreement:
    output: str
    identical: float  # fraction of values equal to ONNX Runtime's
    max_lsb: int
    values: int


@dataclass
class QuantReport:
    layers: list[LayerRow]
    agreement: list[Agreement]
    samples: int


def quantize_inputs(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Float inputs as the graph takes them: quantized where its inputs are int8."""
    result = []
    for name, value in zip(graph.inputs, inputs, strict=True):
        tensor = graph.tensor(name)
        if tensor.dtype == "int8" and tensor.quant is not None:
            scale = np.float32(tensor.quant.scale)
            value = np.clip(np.rint(value.astype(np.float32) / scale) + tensor.quant.zero_point,
                            -128, 127).astype(np.int8)
        result.append(value)
    return result


def quantization_report(graph: Graph, float_model: onnx.ModelProto | None,
                        qdq_model: onnx.ModelProto | None,
                        samples: dict[str, np.ndarray] | None) -> QuantReport:
    """Compare on up to MAX_SAMPLES of `samples` (model input name -> (N, *shape)); with no
    samples (a model that came quantized) only the scales are reported."""
    if not samples:
        float_model = qdq_model = None
        samples = {}
    count = min(MAX_SAMPLES, len(next(iter(samples.values())))) if samples else 0
    ours = [run_graph_values(graph, quantize_inputs(
        graph, [samples[_float_input(graph, n)][i] for n in graph.inputs]))
        for i in range(count)]
    wanted = {_float_name(float_model, graph.origins[t]) for t in _kernel_outputs(graph)
              if t in graph.origins} if float_model is not None else set()
    floats = _run_onnxruntime(float_model, samples, count, sorted(wanted)) if wanted else None
    layers = []
    for index, node in enumerate(graph.nodes):
        out = graph.tensor(node.outputs[0])
        if out.quant is None or out.dtype != "int8" or REGISTRY[node.op].is_view:
            continue
        error = None
        origin = graph.origins.get(out.name)
        if floats is not None and origin is not None:
            float_name = _float_name(float_model, origin)
            error = max(_relative_error(_dequantize(out, ours[i][out.name]),
                                        floats[i][float_name]) for i in range(count))
        weights = [graph.tensor(n) for n in node.inputs[1:2] if n and graph.tensor(n).is_const
                   and graph.tensor(n).quant is not None]
        weight_scales = (float(np.min(weights[0].quant.scale)),
                         float(np.max(weights[0].quant.scale))) if weights else None
        layers.append(LayerRow(index, node.name, node.op, float(out.quant.scale),
                               int(out.quant.zero_point), weight_scales, error))
    agreement = (_agreement(graph, qdq_model, samples, count, ours)
                 if qdq_model is not None else [])
    return QuantReport(layers, agreement, count)


def _kernel_outputs(graph: Graph) -> list[str]:
    return [node.outputs[0] for node in graph.nodes if not REGISTRY[node.op].is_view]


def _float_input(graph: Graph, name: str) -> str:
    """The float model's input that graph input `name` stands for (the QuantizeLinear's
    input when the graph takes int8)."""
    return graph.origins.get(name, name)


def _float_name(float_model: onnx.ModelProto, name: str) -> str:
    """The tensor of the float model that the quantized tensor represents. ONNX Runtime's
    quantizer renames float graph outputs, and drops a Relu after a Conv into the output
    range: the quantized tensor then stands for the Relu's output."""
    if name.endswith(SUFFIX):
        name = name[:-len(SUFFIX)]
    consumers = [n for n in float_model.graph.node if name in n.input]
    if len(consumers) == 1 and consumers[0].op_type in ("Relu", "Clip"):
        return consumers[0].output[0]
    return name


def _run_onnxruntime(model: onnx.ModelProto, samples, count: int, names: list[str]
                     ) -> list[dict[str, np.ndarray]]:
    import onnxruntime

    model = onnx.ModelProto.FromString(model.SerializeToString())
    existing = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names
                              if n not in existing)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    results = []
    for i in range(count):
        values = session.run(names, {n: samples[n][i] for n in inputs})
        results.append(dict(zip(names, values, strict=True)))
    return results


def _dequantize(tensor, values: np.ndarray) -> np.ndarray:
    return (values.astype(np.float64) - float(tensor.quant.zero_point)) * float(
        tensor.quant.scale)


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    span = float(np.abs(want).max()) or 1.0
    return float(np.abs(got - want.astype(np.float64)).max()) / span


def _agreement(graph: Graph, qdq_model: onnx.ModelProto, samples, count: int, ours
               ) -> list[Agreement]:
    """Each model output compared, as int8, with ONNX Runtime on the QDQ model."""
    names = []
    for output in graph.outputs:
        producer = graph.producer(output)
        quantized = producer.inputs[0] if producer is not None and \
            producer.op == "DequantizeLinear" else output
        if graph.tensor(quantized).dtype == "int8":
            names.append(quantized)
    if not names:
        return []
    theirs = _run_onnxruntime(qdq_model, samples, count, names)
    rows = []
    for name in names:
        got = np.stack([ours[i][name] for i in range(count)]).astype(np.int32)
        want = np.stack([theirs[i][name] for i in range(count)]).astype(np.int32)
        difference = np.abs(got - want)
        rows.append(Agreement(name, float((difference == 0).mean()), int(difference.max()),
                              int(difference.size)))
    return rows


def format_report(report: QuantReport) -> str:
    basis = (f"errors on {report.samples} calibration samples" if report.samples else
             "the model came quantized: no float model to measure errors against")
    lines = [f"Quantization (int8; {basis})",
             f"  {'#':>3}  {'op':<18}{'out scale':>12}{'zp':>6}  {'weight scales':<21}"
             f"{'worst rel. error':>17}"]
    for row in report.layers:
        weights = (f"{row.weight_scales[0]:.2e}..{row.weight_scales[1]:.2e}"
                   if row.weight_scales else "")
        error = f"{row.worst_error:.4f}" if row.worst_error is not None else "n/a"
        lines.append(f"  {row.index:>3}  {row.op:<18}{row.scale:>12.4g}{row.zero_point:>6}  "
                     f"{weights:<21}{error:>17}")
    for row in report.agreement:
        lines.append(f"  vs ONNX Runtime on the same QDQ model, '{row.output}': "
                     f"{100 * row.identical:.2f}% of {row.values:,} int8 values identical, "
                     f"largest difference {row.max_lsb} LSB")
    if report.agreement:
        lines.append("  (ONNX Runtime requantizes in float and rounds half to even; ariel uses "
                     "one integer rounding, half up, so ties can differ by 1 LSB)")
    return "\n".join(lines)
