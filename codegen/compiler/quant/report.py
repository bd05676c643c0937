"""What `ariel build --precision int8` reports about quantization: per layer, the scales, the
worst-case error of the int8 result against the float model on the calibration data, and
how the layer's int8 output compares with ONNX Runtime's for the same int8 inputs; and the
model's outputs against ONNX Runtime running the whole QDQ model.

ONNX Runtime runs a QDQ model two ways. With graph optimizations off it does what the model
says: dequantize, compute in float, quantize (round half to even). ariel differs from that
only where a product lands on a rounding tie (it rounds once, in integers, half up), and
through a network those single-LSB ties feed later layers. With its default optimizations
ONNX Runtime fuses the patterns into its own integer kernels, whose requantization differs
from both, so the model's outputs differ from ariel's by more: the report shows both."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx

from codegen.compiler.ir import Graph, Tensor
from codegen.compiler.onnxrun import run_model
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.base import is_view_node
from codegen.compiler.reference import run_graph_values

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
    ort_identical: float | None = None  # vs ONNX Runtime, fed the same int8 inputs
    ort_max_lsb: int | None = None


@dataclass
class Agreement:
    output: str
    optimized: bool  # ONNX Runtime with its default graph optimizations (fused kernels)
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


def calibration_inputs(graph: Graph, samples: dict[str, np.ndarray], count: int
                       ) -> list[np.ndarray] | None:
    """The first `count` of `samples` (model input name -> (N, ...)) as the graph takes
    them, one array [count, *shape] per graph input, found under the model's name (a graph
    that takes its int8 tensors names its inputs after them): float data quantized where the
    graph takes int8, int8 data (a model read as int8) as it is. None when an input has no
    data."""
    names = [_float_input(graph, name) for name in graph.inputs]
    if any(name not in samples for name in names):
        return None
    arrays = [np.asarray(samples[source][:count]).reshape(-1, *graph.tensor(name).shape)
              for name, source in zip(graph.inputs, names, strict=True)]
    quantized = quantize_inputs(graph, [array.astype(np.float32) for array in arrays])
    return [array if array.dtype == np.int8 else scaled
            for array, scaled in zip(arrays, quantized, strict=True)]


def quantization_report(graph: Graph, float_model: onnx.ModelProto | None,
                        qdq_model: onnx.ModelProto | None,
                        samples: dict[str, np.ndarray] | None) -> QuantReport:
    """Compare on up to MAX_SAMPLES of `samples` (model input name -> (N, *shape)); with no
    samples (a model that came quantized) only the scales are reported."""
    if not samples:
        float_model = qdq_model = None
        samples = {}
    count = min(MAX_SAMPLES, len(next(iter(samples.values())))) if samples else 0
    inputs = calibration_inputs(graph, samples, count) if count else None
    if inputs is None:
        count = 0
    ours = [run_graph_values(graph, [x[i] for x in inputs]) for i in range(count)]
    wanted = {_float_name(float_model, graph.origins[t]) for t in _kernel_outputs(graph)
              if t in graph.origins} if float_model is not None else set()
    floats = _run_onnxruntime(float_model, samples, count, sorted(wanted)) if wanted else None
    layers = []
    for index, node in enumerate(graph.nodes):
        out = graph.tensor(node.outputs[0])
        if out.quant is None or out.dtype != "int8" or is_view_node(graph, node):
            continue
        error = None
        origin = graph.origins.get(out.name)
        if floats is not None and origin is not None:
            float_name = _float_name(float_model, origin)
            error = max(_relative_error(_dequantize(out, model_order(out, ours[i][out.name])),
                                        floats[i][float_name]) for i in range(count))
        weights = [graph.tensor(n) for n in node.inputs[1:2] if n and graph.tensor(n).is_const
                   and graph.tensor(n).quant is not None]
        weight_scales = (float(np.min(weights[0].quant.scale)),
                         float(np.max(weights[0].quant.scale))) if weights else None
        layers.append(LayerRow(index, node.name, node.op, float(out.quant.scale),
                               int(out.quant.zero_point), weight_scales, error))
    agreement = []
    if qdq_model is not None:
        agreement = _agreement(graph, qdq_model, samples, count, ours)
        _compare_layers(graph, qdq_model, samples, count, layers)
    return QuantReport(layers, agreement, count)


def _onnx_name(name: str) -> str:
    """The QDQ model's name for a tensor (layout copies add a suffix to the source's)."""
    return re.sub(r"__ariel\d+$", "", name)


def _compare_layers(graph: Graph, qdq_model: onnx.ModelProto, samples, count: int,
                    layers: list[LayerRow]) -> None:
    """Feed each integer layer ONNX Runtime's own int8 inputs and compare its output with
    ONNX Runtime's: this isolates the kernel's arithmetic from differences upstream."""
    produced = {o for node in qdq_model.graph.node for o in node.output}
    rows = {row.index: row for row in layers}
    names = sorted({_onnx_name(n) for i in rows for n in [*graph.nodes[i].inputs,
                                                          *graph.nodes[i].outputs]
                    if n and not graph.tensor(n).is_const} & produced)
    theirs = _run_onnxruntime(qdq_model, samples, count, names)
    for index, row in rows.items():
        node = graph.nodes[index]
        if _onnx_name(node.outputs[0]) not in produced:
            continue
        differences = []
        for values in theirs:
            inputs = [None if not n else graph.tensor(n).data if graph.tensor(n).is_const
                      else values.get(_onnx_name(n)) for n in node.inputs]
            if any(v is None for n, v in zip(node.inputs, inputs, strict=True) if n):
                break
            inputs = [v if not n or graph.tensor(n).is_const else ariel_order(graph.tensor(n), v)
                      for n, v in zip(node.inputs, inputs, strict=True)]
            ours = model_order(graph.tensor(node.outputs[0]),
                               REGISTRY[node.op].reference_s8(node, graph, *inputs)[0])
            differences.append(np.abs(ours.astype(np.int32) -
                                      values[_onnx_name(node.outputs[0])].astype(np.int32)))
        if differences and len(differences) == len(theirs):
            flat = np.concatenate([d.reshape(-1) for d in differences])
            row.ort_identical, row.ort_max_lsb = float((flat == 0).mean()), int(flat.max())


def model_order(tensor: Tensor, values: np.ndarray) -> np.ndarray:
    """`values` of `tensor` as ariel stores them, put back in the model's channel order (a
    dense layer's outputs may be stored in the order the next one reads them,
    zero_rows.plan_listing)."""
    if tensor.channel_order is None:
        return values
    restored = np.empty_like(values)
    restored[..., tensor.channel_order] = values
    return restored


def ariel_order(tensor: Tensor, values: np.ndarray) -> np.ndarray:
    """The model's `values` of `tensor` in the order ariel stores them."""
    return values if tensor.channel_order is None else values[..., tensor.channel_order]


def _kernel_outputs(graph: Graph) -> list[str]:
    return [node.outputs[0] for node in graph.nodes if not is_view_node(graph, node)]


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


def _run_onnxruntime(model: onnx.ModelProto, samples, count: int, names: list[str],
                     optimized: bool = False) -> list[dict[str, np.ndarray]]:
    if not names:  # onnxruntime reads an empty list of names as "every output"
        return [{} for _ in range(count)]
    model = onnx.ModelProto.FromString(model.SerializeToString())
    existing = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names
                              if n not in existing)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    feeds = [{n: samples[n][i] for n in inputs} for i in range(count)]
    runs = run_model(model, feeds, names, "to measure the quantization", optimized)
    return [dict(zip(names, values, strict=True)) for values in runs]


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
    rows = []
    for optimized in (False, True):
        theirs = _run_onnxruntime(qdq_model, samples, count, names, optimized)
        for name in names:
            got = np.stack([ours[i][name] for i in range(count)]).astype(np.int32)
            want = np.stack([theirs[i][name] for i in range(count)]).astype(np.int32)
            difference = np.abs(got - want)
            rows.append(Agreement(name, optimized, float((difference == 0).mean()),
                                  int(difference.max()), int(difference.size)))
    return rows


def format_report(report: QuantReport) -> str:
    basis = (f"errors on {report.samples} calibration samples" if report.samples else
             "the model came quantized: no float model to measure errors against")
    lines = [f"Quantization (int8; {basis})",
             f"  {'#':>3}  {'op':<16}{'out scale':>11}{'zp':>6}  {'weight scales':<20}"
             f"{'worst error':>12}{'= ORT, same inputs':>20}"]
    for row in report.layers:
        weights = (f"{row.weight_scales[0]:.2e}..{row.weight_scales[1]:.2e}"
                   if row.weight_scales else "")
        error = f"{row.worst_error:.4f}" if row.worst_error is not None else "n/a"
        same = (f"{100 * row.ort_identical:.2f}% (max {row.ort_max_lsb})"
                if row.ort_identical is not None else "n/a")
        lines.append(f"  {row.index:>3}  {row.op:<16}{row.scale:>11.4g}{row.zero_point:>6}  "
                     f"{weights:<20}{error:>12}{same:>20}")
    for row in report.agreement:
        how = ("default optimizations (its fused int8 kernels)" if row.optimized else
               "the QDQ model as written (optimizations off)")
        lines.append(f"  output '{row.output}' vs ONNX Runtime, {how}: "
                     f"{100 * row.identical:.2f}% of {row.values:,} int8 values identical, "
                     f"largest difference {row.max_lsb} LSB")
    if report.agreement:
        lines += ["  (worst error: against the float model, relative to the layer's largest "
                  "value. = ORT: each layer fed",
                  "  ONNX Runtime's own int8 inputs, optimizations off. As written, ONNX "
                  "Runtime dequantizes, computes",
                  "  in float and rounds half to even; ariel rounds once, in integers, half "
                  "up: they differ at ties.",
                  "  Optimized, ONNX Runtime fuses QDQ into its own integer kernels, which "
                  "requantize differently.)"]
    return "\n".join(lines)
