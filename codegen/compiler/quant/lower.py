"""Lower a quantized graph to integer IR. Both ONNX forms end up the same:

- QOperator (QLinearConv, QLinearMatMul, QLinearAdd, ...): each node becomes the plain
  operator on int8 tensors, its scales and zero points moved onto those tensors.
- QDQ (DequantizeLinear -> float op -> QuantizeLinear): where every data input of an
  operator with an int8 kernel comes from a DequantizeLinear and its output goes only to
  QuantizeLinear nodes of one scale and zero point, the operator is rewired to read and
  write the int8 tensors directly and the Q/DQ pair around it disappears. A chain of
  elementwise real functions between a DequantizeLinear and QuantizeLinear nodes (Div by a
  constant, then Erf, as in PyTorch's GELU) becomes one table (ops/table.py).

What cannot be lowered stays float between the DequantizeLinear and QuantizeLinear kernels
that remain, so a model with an operator ariel has no int8 kernel for still runs; a float
operator that takes int8 weights (OpDef.int8_weights: LSTM, GRU, RNN) is handed them. uint8
tensors become int8 (q - 128, zero point - 128: the same real values)."""

from __future__ import annotations

import numpy as np

from codegen.compiler.ir import Graph, Node, QuantParams, Tensor
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.elementwise import UnaryOp
from codegen.compiler.ops.table import TABLE, link_of
from codegen.compiler.quant.fixedpoint import quantize_bias
from codegen.errors import UnsupportedError

# Inputs (by position) that carry data to quantize; the others are parameters (shapes,
# axes, Clip bounds) that stay as they are. Absent operators: every input is data.
DATA_INPUTS = {"Reshape": (0,), "Squeeze": (0,), "Unsqueeze": (0,), "Clip": (0,),
               "ReduceMean": (0,), "ReduceMax": (0,), "ReduceMin": (0,), "ReduceSum": (0,),
               "Where": (1, 2),
               "PRelu": (0,), "Slice": (0,), "Split": (0,), "Pad": (0,), "Gather": (0,),
               "Expand": (0,), "Tile": (0,), "Resize": (0,), "Upsample": (0,), "TopK": (0,)}
# Operators with a bias input that may arrive as a float constant (ONNX Runtime's quantizer
# leaves Gemm's bias in float): it is quantized here to int32 at s_in * s_w.
BIAS_INPUT = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2}

QOPERATORS = {
    # op: (plain op, data inputs as (tensor, scale, zero point) positions, output params)
    "QLinearConv": ("Conv", [(0, 1, 2), (3, 4, 5)], (6, 7), 8),
    "QLinearMatMul": ("MatMul", [(0, 1, 2), (3, 4, 5)], (6, 7), None),
    "QLinearAdd": ("Add", [(0, 1, 2), (3, 4, 5)], (6, 7), None),
    "QLinearAveragePool": ("AveragePool", [(0, 1, 2)], (3, 4), None),
    "QLinearGlobalAveragePool": ("GlobalAveragePool", [(0, 1, 2)], (3, 4), None),
}


def lower_quantized(graph: Graph) -> None:
    for node in list(graph.nodes):
        if node.op in QOPERATORS:
            _lower_qoperator(graph, node)
    for node in list(graph.nodes):
        if node in graph.nodes and getattr(REGISTRY.get(node.op), "int8", False):
            _absorb_qdq(graph, node)
        elif getattr(REGISTRY.get(node.op), "int8_weights", ()):
            _absorb_weight_dequantize(graph, node)
    for node in list(graph.nodes):
        if node in graph.nodes and node.op == "DequantizeLinear":
            for first in graph.consumers(node.outputs[0]):
                if first in graph.nodes:
                    _absorb_chain(graph, node, first)
    graph.remove_dead_nodes()
    _uint8_to_int8(graph)
    graph.remove_unused()


def expose_int8_io(graph: Graph) -> None:
    """Make the model's inputs and outputs the int8 tensors: drop the QuantizeLinear that
    reads each float input and the DequantizeLinear that writes each float output. Each
    exposed tensor carries the scale and zero point of the node dropped beside it, also
    where no int8 kernel reads or writes it (an operator left in float between Q and DQ)."""
    for name in list(graph.inputs):
        consumers = graph.consumers(name)
        if consumers and all(c.op == "QuantizeLinear" for c in consumers):
            quantized = consumers[0].outputs[0]
            params = [_params(graph, c.inputs[1], c.inputs[2] if len(c.inputs) > 2 else None)
                      for c in consumers]
            if any(not _same(p, params[0]) for p in params[1:]):
                raise UnsupportedError(f"input '{name}' is quantized with several scales; "
                                       "--io int8 needs one (build with --io float)")
            _quantize_tensor(graph, quantized, params[0])
            for other in consumers[1:]:
                graph.replace_uses(other.outputs[0], quantized)
            graph.inputs[graph.inputs.index(name)] = quantized
            graph.origins[quantized] = name
            for consumer in consumers:
                graph.nodes.remove(consumer)
    for name in list(graph.outputs):
        producer = graph.producer(name)
        if producer is not None and producer.op == "DequantizeLinear":
            source = producer.inputs[0]
            if not graph.tensor(source).is_const:
                _quantize_tensor(graph, source, _dequantize_params(graph, producer))
                graph.outputs[graph.outputs.index(name)] = source
    graph.remove_dead_nodes()
    graph.remove_unused()


def _params(graph: Graph, scale: str, zero_point: str | None, axis: int | None = None
            ) -> QuantParams:
    scale_value = np.asarray(graph.tensor(scale).data, np.float32)
    if zero_point:
        zp = np.asarray(graph.tensor(zero_point).data)
    else:
        zp = np.zeros(scale_value.shape, np.int8)
    if scale_value.size == 1:
        return QuantParams(scale_value.reshape(()), zp.reshape(()).astype(np.int32), None)
    return QuantParams(scale_value, zp.astype(np.int32), axis)


def _quantize_tensor(graph: Graph, name: str, params: QuantParams) -> None:
    tensor = graph.tensor(name)
    if tensor.quant is not None and not _same(tensor.quant, params):
        raise UnsupportedError(f"tensor '{name}' is quantized twice with different scales")
    tensor.quant = params


def _same(a: QuantParams, b: QuantParams) -> bool:
    return (np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point)
            and a.axis == b.axis)


# -- QOperator ---------------------------------------------------------------------------

def _lower_qoperator(graph: Graph, node: Node) -> None:
    op, data, output, bias = QOPERATORS[node.op]
    inputs = []
    for index, (tensor, scale, zero_point) in enumerate(data):
        name = node.inputs[tensor]
        is_weight = graph.tensor(name).is_const and op in ("Conv", "MatMul") and index == 1
        axis = (0 if op == "Conv" else 1) if is_weight else None
        _quantize_tensor(graph, name, _params(graph, node.inputs[scale],
                                              node.inputs[zero_point], axis))
        inputs.append(name)
    out = node.outputs[0]
    _quantize_tensor(graph, out, _params(graph, node.inputs[output[0]], node.inputs[output[1]]))
    if bias is not None and len(node.inputs) > bias and node.inputs[bias]:
        b = graph.tensor(node.inputs[bias])
        b.quant = QuantParams(graph.tensor(inputs[0]).quant.scale * graph.tensor(
            inputs[1]).quant.scale, np.zeros(b.shape, np.int32), 0)
        inputs.append(node.inputs[bias])
    node.op, node.domain, node.inputs = op, "", inputs
    node.proto = None


# -- QDQ ---------------------------------------------------------------------------------

def _absorb_qdq(graph: Graph, node: Node) -> None:
    """Rewire `node` onto int8 tensors if its inputs come from DequantizeLinear and each of
    its outputs goes only to QuantizeLinear nodes of one scale and zero point."""
    # Outputs that hold no real values (ArgMax's, TopK's indices) stay as they are.
    real = [name for name in node.outputs if graph.tensor(name).dtype == "float32"]
    if any(name in graph.outputs for name in real):
        return
    quantizers, out_params = [], []
    for name in real:
        consumers = graph.consumers(name)
        if not consumers or any(q.op != "QuantizeLinear" for q in consumers):
            return
        params = [_params(graph, q.inputs[1], q.inputs[2] if len(q.inputs) > 2 else None)
                  for q in consumers]
        if any(not _same(p, params[0]) for p in params[1:]):
            return
        quantizers.append(consumers)
        out_params.append(params[0])
    op = REGISTRY[node.op]
    # A move keeps the values' scale, so its inputs and outputs must share one, unless its
    # kernel maps them through tables.
    same_scale = op.int8_same_scale and not op.int8_rescales
    if same_scale and any(not _same(p, out_params[0]) for p in out_params[1:]):
        return
    data = DATA_INPUTS.get(node.op, range(len(node.inputs)))
    new_inputs = list(node.inputs)
    pending_bias = None
    for index in data:
        if index >= len(node.inputs) or not node.inputs[index]:
            continue
        source = graph.tensor(node.inputs[index])
        producer = graph.producer(source.name)
        if producer is not None and producer.op == "DequantizeLinear":
            if same_scale and not _same(_dequantize_params(graph, producer), out_params[0]):
                return
            new_inputs[index] = producer.inputs[0]
        elif source.is_const and source.dtype == "float32" and BIAS_INPUT.get(node.op) == index:
            pending_bias = index
        else:
            return
    for index in data:
        if index >= len(node.inputs) or not node.inputs[index] or index == pending_bias:
            continue
        dequantize = graph.producer(node.inputs[index])
        _quantize_tensor(graph, new_inputs[index], _dequantize_params(graph, dequantize))
    if pending_bias is not None:
        new_inputs[pending_bias] = _quantized_bias(graph, node, new_inputs)
    outputs = list(node.outputs)
    for name, consumers, params in zip(real, quantizers, out_params, strict=True):
        quantized_out = consumers[0].outputs[0]
        _quantize_tensor(graph, quantized_out, params)
        graph.origins[quantized_out] = name
        for other in consumers[1:]:
            graph.replace_uses(other.outputs[0], quantized_out)
        for quantizer in consumers:
            graph.nodes.remove(quantizer)
        outputs[node.outputs.index(name)] = quantized_out
    node.inputs, node.outputs = new_inputs, outputs


def _absorb_chain(graph: Graph, dequantize: Node, first: Node) -> None:
    """Replace the chain of real functions that starts at `first` (reading `dequantize`'s
    output) by one table, if it ends in QuantizeLinear nodes of one scale and zero point."""
    source = graph.tensor(dequantize.inputs[0])
    params = _dequantize_params(graph, dequantize)
    if source.is_const or params.scale.size != 1:
        return
    links, node = [], first
    while True:
        link = link_of(graph, node)
        if link is None or node.outputs[0] in graph.outputs:
            return
        links.append(link)
        consumers = graph.consumers(node.outputs[0])
        if consumers and all(c.op == "QuantizeLinear" for c in consumers):
            break
        if len(consumers) != 1:
            return
        node = consumers[0]
    if len(links) == 1 and isinstance(REGISTRY[first.op], UnaryOp):
        return  # a table of its own already (_absorb_qdq)
    out_params = [_params(graph, q.inputs[1], q.inputs[2] if len(q.inputs) > 2 else None)
                  for q in consumers]
    if any(not _same(p, out_params[0]) for p in out_params[1:]):
        return
    quantized_out = consumers[0].outputs[0]
    _quantize_tensor(graph, source.name, params)
    _quantize_tensor(graph, quantized_out, out_params[0])
    graph.origins[quantized_out] = node.outputs[0]
    name = " -> ".join(link.node.name for link in links)
    table = Node(name, TABLE, [source.name], [quantized_out], {"chain": links}, domain="ariel")
    graph.nodes.insert(graph.nodes.index(consumers[0]), table)
    for other in consumers[1:]:
        graph.replace_uses(other.outputs[0], quantized_out)
    for dead in [*(link.node for link in links), *consumers]:
        graph.nodes.remove(dead)


def _absorb_weight_dequantize(graph: Graph, node: Node) -> None:
    """Hand a float node its int8 weights: each int8_weights input that a DequantizeLinear
    makes of an int8 constant becomes that constant, with the scales and axis on it."""
    for index in REGISTRY[node.op].int8_weights:
        if index >= len(node.inputs) or not node.inputs[index]:
            continue
        dequantize = graph.producer(node.inputs[index])
        if dequantize is None or dequantize.op != "DequantizeLinear":
            continue
        source = graph.tensor(dequantize.inputs[0])
        if source.is_const and source.dtype == "int8":
            _quantize_tensor(graph, source.name, _dequantize_params(graph, dequantize))
            node.inputs[index] = source.name


def _dequantize_params(graph: Graph, dequantize: Node) -> QuantParams:
    """The scale and zero point a DequantizeLinear applies (per channel only for constants,
    along its `axis`, 1 by default as ONNX says)."""
    per_channel = graph.tensor(dequantize.inputs[0]).is_const
    return _params(graph, dequantize.inputs[1],
                   dequantize.inputs[2] if len(dequantize.inputs) > 2 else None,
                   dequantize.attrs.get("axis", 1) if per_channel else None)


def _quantized_bias(graph: Graph, node: Node, inputs: list[str]) -> str:
    x, w = graph.tensor(inputs[0]), graph.tensor(inputs[1])
    bias = graph.tensor(node.inputs[2])
    weight_scales = np.asarray(w.quant.scale, np.float64).reshape(-1)
    if node.op == "ConvTranspose" and 1 < weight_scales.size < bias.size:
        # Its weights' scales run over the output channels of one group, for every group.
        weight_scales = np.tile(weight_scales, bias.size // weight_scales.size)
    values = quantize_bias(bias.data.reshape(-1), float(x.quant.scale), weight_scales
                           if weight_scales.size > 1 else weight_scales[0])
    name = graph.fresh_name(f"{bias.name}_int32")
    graph.tensors[name] = Tensor(name, bias.shape, "int32", data=values.reshape(bias.shape),
                                 quant=QuantParams(
                                     (np.float64(x.quant.scale) * weight_scales).astype(
                                         np.float32), np.zeros(weight_scales.shape, np.int32),
                                     0 if weight_scales.size > 1 else None))
    return name


def _uint8_to_int8(graph: Graph) -> None:
    for tensor in graph.tensors.values():
        if tensor.dtype != "uint8" or tensor.quant is None:
            continue
        if tensor.name in graph.inputs or tensor.name in graph.outputs:
            raise UnsupportedError(f"model input or output '{tensor.name}' is uint8; ariel's "
                                   "int8 models take float or int8 inputs and outputs")
        tensor.quant = QuantParams(tensor.quant.scale, tensor.quant.zero_point - 128,
                                   tensor.quant.axis)
        if tensor.is_const:
            tensor.data = (tensor.data.astype(np.int16) - 128).astype(np.int8)
        tensor.dtype = "int8"
    # A QuantizeLinear or DequantizeLinear left at the float boundary names its own zero
    # point: where its quantized tensor became int8, that zero point moves with it (else the
    # node would still say uint8 and 128).
    for node in graph.nodes:
        if node.op not in ("QuantizeLinear", "DequantizeLinear") or len(node.inputs) < 3:
            continue
        quantized = node.outputs[0] if node.op == "QuantizeLinear" else node.inputs[0]
        zero_point = graph.tensor(node.inputs[2]) if node.inputs[2] else None
        if (graph.tensor(quantized).dtype == "int8" and zero_point is not None
                and zero_point.dtype == "uint8" and zero_point.is_const):
            name = graph.fresh_name(f"{zero_point.name}_int8")
            graph.tensors[name] = Tensor(name, zero_point.shape, "int8", data=(
                zero_point.data.astype(np.int16) - 128).astype(np.int8))
            node.inputs[2] = name
