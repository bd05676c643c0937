"""Float islands: the kernels of an int8 build that still compute in float32 (an operator with
no int8 kernel, one ONNX Runtime's quantizer left between DequantizeLinear and QuantizeLinear,
a recurrent layer with int8 weights and float state). `ariel build` prints each with its
share of the model's work and ariel.json lists them, so nothing stays float silently. The
model's own float boundary (the QuantizeLinear of a float input, the DequantizeLinear of a
float output) and views, which run no code, are not islands."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from codegen.compiler.ir import Graph, Node
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.base import is_view_node

BOUNDARY = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class FloatIsland:
    node: str
    op: str
    macs: int
    share: float  # of the model's MACs (0 when the model does none)
    why: str

    def to_dict(self) -> dict:
        return asdict(self)


def float_islands(graph: Graph) -> list[FloatIsland]:
    """Every kernel of the compiled int8 `graph` that reads or writes float32 data."""
    total = sum(REGISTRY[node.op].macs(node, graph) for node in graph.nodes)
    islands = []
    for node in graph.nodes:
        if node.op in BOUNDARY or is_view_node(graph, node) or not _computes_in_float(graph,
                                                                                     node):
            continue
        macs = REGISTRY[node.op].macs(node, graph)
        islands.append(FloatIsland(node.name, node.op, macs, macs / total if total else 0.0,
                                   _why(graph, node)))
    return islands


def _computes_in_float(graph: Graph, node: Node) -> bool:
    return any(graph.tensor(name).dtype == "float32" and not graph.tensor(name).is_const
               for name in [*node.inputs, *node.outputs] if name)


def _why(graph: Graph, node: Node) -> str:
    opdef = REGISTRY[node.op]
    if any(graph.tensor(name).dtype == "int8" and graph.tensor(name).is_const
           for name in node.inputs if name):
        return "int8 weights, float activations"
    if not opdef.int8:
        return f"ariel has no int8 kernel for {node.op}"
    return "its int8 kernel is not used here: its inputs and outputs are not all int8"


def format_float_islands(islands: list[FloatIsland]) -> str:
    """The build's table of float islands (one line saying there are none, if so)."""
    if not islands:
        return "Float islands: none (every kernel computes on int8)"
    share = sum(island.share for island in islands)
    lines = [f"Float islands: {len(islands)} kernel(s) compute in float32, "
             f"{100 * share:.1f}% of the model's MACs",
             f"  {'node':<36}  {'op':<20}{'MACs':>12}{'share':>8}  why"]
    for island in islands:
        name = island.node if len(island.node) <= 36 else "…" + island.node[-35:]
        lines.append(f"  {name:<36}  {island.op:<20}{island.macs:>12,}"
                     f"{100 * island.share:>7.1f}%  {island.why}")
    return "\n".join(lines)
