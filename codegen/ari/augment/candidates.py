"""Where an exit can go: tensors that are a cut of the graph, the only activation alive once
they are computed, so that a head reading one costs no arena beyond its own small buffers.

A tensor T is a cut when every activation computed before it (the graph inputs and the
outputs of T's ancestors) is read only by T's ancestors and is not a graph output: then every
path from an input to an output passes through T. Inside a residual block the skip branch
keeps the block's input alive beside T, so no tensor there is a cut.

The listed candidates are the cuts that end a block: not a tensor that only feeds an
activation or normalisation of the same shape (the block goes on), not a reshaped copy of the
previous tensor, with float values, a leading batch of 1, work done before it, and at least
two layers doing work after it (an exit in front of the last layer alone saves nothing).
Where consecutive candidates cost the same backbone MACs (a ReLU's output, then its max
pooling), only the earlier is listed: an input its exit answers skips the pooling, which
costs more than the head's own pooling of the larger tensor (MNIST CNN in int8 on a
Cortex-M4F: 408 uJ for an exit after conv1's ReLU against 461 after its max pooling, with
the same held-out accuracy), and the larger tensor holds all the smaller one does."""

from __future__ import annotations

from dataclasses import dataclass

from codegen.compiler.ir import Graph, Node
from codegen.errors import ArielError

# Consumers that continue the block rather than end it: a tensor read only by one of these
# (with an output of its shape) is listed after them, not before.
BLOCK_CONTINUES = {
    "Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
    "Elu", "Selu", "Celu", "Softplus", "Softsign", "Gelu", "Mish", "ThresholdedRelu",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "Add", "Sub", "Mul",
    "Div", "Dropout", "Identity", "Cast", "QuantizeLinear", "DequantizeLinear",
}
# Producers whose output holds the values of their input rearranged: the input is listed.
SAME_VALUES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity",
               "Dropout"}
# Where a tensor's features are: the nearest of these among its ancestors decides. ONNX's
# convolutions and poolings put channels on axis 1 ([N, C, ...]); a sequence model's
# matrix products and layer norms on the last ([N, T, D]).
CHANNELS_FIRST = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool",
                  "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization",
                  "InstanceNormalization", "DepthToSpace", "SpaceToDepth", "Resize",
                  "Upsample"}
CHANNELS_LAST = {"MatMul", "Gemm", "LayerNormalization", "Attention", "MultiHeadAttention",
                 "Einsum", "LSTM", "GRU", "RNN"}


NAME_WIDTH = 48


def elided(name: str) -> str:
    """A name for a table: a long one shown by its end (where exporters put what differs)."""
    return name if len(name) <= NAME_WIDTH else "…" + name[-(NAME_WIDTH - 1):]


@dataclass(frozen=True)
class ExitPoint:
    """A cut tensor: its name, the node computing it (`node_index` in the graph's order),
    its shape, and the MACs of the backbone up to and including that node."""

    tensor: str
    node: str
    node_index: int
    shape: tuple[int, ...]
    macs: int
    channels_last: bool = False  # features on the last axis ([N, T, D]), not on axis 1

    @property
    def label(self) -> str:
        """The tensor's name for tables and progress lines."""
        return elided(self.tensor)


@dataclass
class Cuts:
    """The cut analysis of one graph (ariel's ir, constants folded)."""

    graph: Graph
    node_macs: list[int]  # per node of graph.nodes, as `ariel inspect` counts them

    def __post_init__(self) -> None:
        graph = self.graph
        self.dynamic = _dynamic_tensors(graph)
        self.producer_index = {out: index for index, node in enumerate(graph.nodes)
                               for out in node.outputs}
        self.readers: dict[str, list[int]] = {}
        for index, node in enumerate(graph.nodes):
            for name in _reads(node):
                self.readers.setdefault(name, []).append(index)

    @property
    def total_macs(self) -> int:
        return sum(self.node_macs)

    def problem(self, tensor: str) -> str | None:
        """Why `tensor` cannot carry an exit (None when it can), as the end of a sentence
        starting with its name."""
        graph = self.graph
        if tensor in graph.inputs:
            return "is a model input; an exit needs work done before it"
        if tensor not in self.producer_index:
            return ("is a constant, computed from no input" if tensor in graph.tensors
                    else "is not a tensor of the model")
        if tensor in graph.outputs:
            return "is a model output already"
        if tensor not in self.dynamic:
            return "is a constant, computed from no input"
        ancestors = self._ancestors(tensor)
        for name in [*graph.inputs, *(out for i in sorted(ancestors)
                                      for out in graph.nodes[i].outputs)]:
            if name == tensor or name not in self.dynamic:
                continue
            if name in graph.outputs:
                return (f"is not on every path from the input to the outputs: the model "
                        f"output '{name}' is computed beside it")
            for reader in self.readers.get(name, []):
                if reader not in ancestors:
                    return (f"is not on every path from the input to the outputs: node "
                            f"'{graph.nodes[reader].name}' ({graph.nodes[reader].op}) reads "
                            f"'{name}' beside it, so both would stay alive (inside a "
                            "residual block or a branch)")
        shape = graph.tensor(tensor).shape
        if graph.tensor(tensor).dtype not in ("float32", "float64", "float16"):
            return f"holds {graph.tensor(tensor).dtype or 'untyped'} values, not float"
        if shape is None or len(shape) < 2 or shape[0] != 1:
            return (f"has shape {list(shape) if shape else '?'}; an exit reads a batch of one "
                    "with at least one feature axis [1, C, ...]")
        return None

    def exit_point(self, tensor: str) -> ExitPoint:
        index = self.producer_index[tensor]
        ancestors = self._ancestors(tensor)
        macs = sum(self.node_macs[i] for i in ancestors)
        shape = tuple(self.graph.tensor(tensor).shape)
        return ExitPoint(tensor, self.graph.nodes[index].name, index, shape, macs,
                         len(shape) > 2 and self._channels_last(ancestors))

    def _channels_last(self, ancestors: set[int]) -> bool:
        """True when the nearest layout-deciding ancestor is a sequence model's operator."""
        for index in sorted(ancestors, reverse=True):
            op = self.graph.nodes[index].op
            if op in CHANNELS_FIRST:
                return False
            if op in CHANNELS_LAST:
                return True
        return False

    def candidates(self) -> list[ExitPoint]:
        """The listed candidates, in the graph's order."""
        graph = self.graph
        listed: list[ExitPoint] = []
        for index, node in enumerate(graph.nodes):
            if node.op in SAME_VALUES:
                continue
            for tensor in node.outputs:
                if self.problem(tensor) is not None or self._block_goes_on(tensor):
                    continue
                point = self.exit_point(tensor)
                if point.macs == 0:
                    continue  # nothing done before it: no saving
                working_after = sum(1 for i in range(index + 1, len(graph.nodes))
                                    if self.node_macs[i] > 0)
                if working_after < 2:
                    continue
                if not listed or listed[-1].macs != point.macs:
                    listed.append(point)
        return listed

    def _block_goes_on(self, tensor: str) -> bool:
        readers = self.readers.get(tensor, [])
        if len(readers) != 1:
            return False
        reader = self.graph.nodes[readers[0]]
        dynamic_inputs = [n for n in reader.inputs if n in self.dynamic]
        shape = self.graph.tensor(tensor).shape
        return (reader.op in BLOCK_CONTINUES and dynamic_inputs == [tensor]
                and all(self.graph.tensor(out).shape == shape for out in reader.outputs))

    def _ancestors(self, tensor: str) -> set[int]:
        """Indices of the nodes T depends on through activations, T's producer included."""
        found: set[int] = set()
        pending = [tensor]
        while pending:
            index = self.producer_index.get(pending.pop())
            if index is None or index in found:
                continue
            found.add(index)
            pending.extend(n for n in _reads(self.graph.nodes[index]) if n in self.dynamic)
        return found


def _dynamic_tensors(graph: Graph) -> set[str]:
    """Tensors whose values depend on a model input (activations), not on constants alone."""
    dynamic = set(graph.inputs)
    for node in graph.nodes:
        if any(name in dynamic for name in _reads(node)):
            dynamic.update(node.outputs)
    return dynamic


def _reads(node: Node) -> list[str]:
    """The tensors a node reads: its inputs, and the outer tensors its subgraphs name."""
    names = [name for name in node.inputs if name]
    if node.proto is not None:
        for attribute in node.proto.attribute:
            for sub in [attribute.g, *attribute.graphs] if attribute.type in (5, 10) else []:
                names.extend(_subgraph_reads(sub))
    return names


def _subgraph_reads(graph) -> list[str]:
    defined = {value.name for value in graph.input} | {init.name for init in graph.initializer}
    names = []
    for node in graph.node:
        names.extend(n for n in node.input if n and n not in defined)
        defined.update(node.output)
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs] if attribute.type in (5, 10) else []:
                names.extend(n for n in _subgraph_reads(sub) if n not in defined)
    return names


def choose(cuts: Cuts, spec: str) -> list[ExitPoint]:
    """The exits `--exits` asks for, in the graph's order: `auto`, or a comma-separated list
    of candidate indices (as `--list` numbers them) and tensor names."""
    listed = cuts.candidates()
    if spec.strip() == "auto":
        if not listed:
            raise ArielError(f"no candidate exit in the model: {no_candidate_reason(cuts)}")
        return auto_exits(listed, cuts.total_macs)
    chosen: dict[str, ExitPoint] = {}
    for item in _items(spec, cuts.graph.tensors):
        if not item:
            raise ArielError(f"--exits '{spec}' has an empty item; give candidate numbers or "
                             "tensor names separated by commas, or auto")
        point = _named_exit(cuts, listed, item)
        if point.tensor in chosen:
            raise ArielError(f"--exits names tensor '{point.tensor}' twice")
        chosen[point.tensor] = point
    return sorted(chosen.values(), key=lambda p: p.node_index)


def _items(spec: str, tensors) -> list[str]:
    """The comma-separated items of `spec`, where a tensor name holding commas counts as one
    item (the longest run of parts that names a tensor)."""
    parts = spec.split(",")
    items, start = [], 0
    while start < len(parts):
        stop = next((end for end in range(len(parts), start + 1, -1)
                     if ",".join(parts[start:end]) in tensors), start + 1)
        joined = ",".join(parts[start:stop])
        items.append(joined if joined in tensors else joined.strip())
        start = stop
    return items


def _named_exit(cuts: Cuts, listed: list[ExitPoint], item: str) -> ExitPoint:
    # A number is a candidate's (exporters name tensors "12" too: those are reached by
    # their number in the list, as numbers always mean the list).
    if item.isdigit():
        number = int(item)
        if not 1 <= number <= len(listed):
            raise ArielError(f"--exits: there is no candidate {number}; "
                             f"{candidates_hint(listed)}")
        return listed[number - 1]
    if item in cuts.graph.tensors or item in cuts.producer_index:
        problem = cuts.problem(item)
        if problem is not None:
            raise ArielError(f"--exits: tensor '{item}' {problem}; {candidates_hint(listed)}")
        return cuts.exit_point(item)
    raise ArielError(f"--exits: '{item}' is neither a candidate number nor a tensor of the "
                     f"model; {candidates_hint(listed)}")


def candidates_hint(listed: list[ExitPoint]) -> str:
    if not listed:
        return "the model has no candidate exit"
    return "candidates: " + ", ".join(f"{n} '{p.tensor}'" for n, p in
                                      enumerate(listed, 1)) + " (see `ariel augment --list`)"


def no_candidate_reason(cuts: Cuts) -> str:
    return ("no tensor that ends a block is the only live activation with two or more layers "
            f"doing work after it ({len(cuts.graph.nodes)} nodes, {cuts.total_macs:,} MACs); "
            "name a tensor with --exits NAME to try one anyway")


# `--exits auto` places at most this many exits, nearest to these shares of the backbone's
# MACs: early ones, since an exit after a share s of the work saves at most 1 - s.
AUTO_SHARES = (1 / 8, 1 / 4, 1 / 2)


def auto_exits(listed: list[ExitPoint], total_macs: int) -> list[ExitPoint]:
    """Every candidate when there are few, else the ones nearest to AUTO_SHARES of the
    backbone's MACs."""
    if len(listed) <= len(AUTO_SHARES):
        return list(listed)
    picked: dict[int, ExitPoint] = {}
    for share in AUTO_SHARES:
        target = total_macs * share
        best = min((p for p in listed if p.node_index not in picked),
                   key=lambda p: (abs(p.macs - target), p.node_index))
        picked[best.node_index] = best
    return [picked[i] for i in sorted(picked)]
