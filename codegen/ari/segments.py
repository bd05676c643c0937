"""Stages grouped into compiled models. Consecutive stages of one model at one precision are
one compiled model whose graph outputs are their outputs, in stage order, run segment by
segment: escalating from one of them to the next continues where the previous stopped
instead of recomputing the backbone. This module is the ONNX side of it: each stage's output
resolved and checked, a model cut down to the outputs its stages read, and the exits of a
group checked to come in backbone order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from codegen.ari.spec import Stage
from codegen.errors import ArielError


@dataclass
class StageGroup:
    """Stages `indices` (consecutive) of the stage list: one model at one precision."""

    model: Path
    precision: str
    indices: list[int]

    @property
    def first(self) -> int:
        return self.indices[0]

    @property
    def segmented(self) -> bool:
        return len(self.indices) > 1


def group_stages(stages: list[Stage]) -> list[StageGroup]:
    """Runs of consecutive stages with the same model file and precision."""
    groups: list[StageGroup] = []
    for index, stage in enumerate(stages):
        last = groups[-1] if groups else None
        if (last is not None and last.precision == stage.precision
                and _same_file(last.model, stage.model)):
            last.indices.append(index)
        else:
            groups.append(StageGroup(stage.model, stage.precision, [index]))
    return groups


def _same_file(a: Path, b: Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def stage_outputs(model: onnx.ModelProto, stages: list[Stage]) -> list[str]:
    """The graph output each stage of one group reads (its own, or the model's first),
    refused when it is not a graph output, when two stages read the same one, or when they
    do not follow the backbone (see backbone_order)."""
    names = [value.name for value in model.graph.output]
    outputs = []
    for stage in stages:
        output = names[0] if stage.output is None else stage.output
        if output not in names:
            raise ArielError(f"stage {stage.label}: '{output}' is not a graph output of "
                             f"{stage.model.name} (its outputs: "
                             f"{', '.join(repr(n) for n in names)}); name one of them")
        if output in outputs:
            raise ArielError(f"stage {stage.label} reads output '{output}' as an earlier stage "
                             "of the same model and precision does: it could only give the "
                             "same answer again; drop one of them")
        outputs.append(output)
    backbone_order(model, stages, outputs)
    return outputs


def backbone_order(model: onnx.ModelProto, stages: list[Stage], outputs: list[str]) -> None:
    """Each stage's exit must branch off the backbone (the part of the graph the model's
    first output depends on) no earlier than the previous stage's: the backbone nodes the
    previous one needs are a subset of those the next one needs. Otherwise the later stage
    would not continue the earlier one's run but go back to a point already passed."""
    producers = _producers(model.graph)
    backbone = _ancestors(model.graph, model.graph.output[0].name, producers)
    reached = [_ancestors(model.graph, name, producers) & backbone for name in outputs]
    for current in range(1, len(stages)):
        previous = current - 1
        if not reached[previous] <= reached[current]:
            raise ArielError(
                f"stage {stages[current].label} comes after stage {stages[previous].label} "
                f"but its output '{outputs[current]}' branches off the backbone before "
                f"'{outputs[previous]}' does: list the stages of {stages[current].model.name} "
                f"at {stages[current].precision} in backbone order, the earliest exit first")


def cut_to_outputs(model: onnx.ModelProto, outputs: list[str]) -> onnx.ModelProto:
    """A copy of `model` whose graph outputs are `outputs`, in that order, without the nodes
    none of them needs (another exit's head, say)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    declared = {value.name: value for value in graph.output}
    kept = [onnx.ValueInfoProto.FromString(declared[name].SerializeToString())
            for name in outputs]
    del graph.output[:]
    graph.output.extend(kept)
    prune_dead_nodes(model)
    return model


def prune_dead_nodes(model: onnx.ModelProto) -> None:
    """Drop the nodes and initializers no graph output depends on."""
    graph = model.graph
    producers = _producers(graph)
    needed: set[int] = set()
    for value in graph.output:
        needed |= _ancestors(graph, value.name, producers)
    nodes = [node for index, node in enumerate(graph.node) if index in needed]
    read = {value.name for value in graph.output}
    for node in nodes:
        read.update(_reads(node))
    del graph.node[:]
    graph.node.extend(nodes)
    initializers = [init for init in graph.initializer if init.name in read]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _producers(graph: onnx.GraphProto) -> dict[str, int]:
    return {name: index for index, node in enumerate(graph.node) for name in node.output}


def _reads(node: onnx.NodeProto) -> set[str]:
    """The tensors a node reads, those its subgraphs (If, Loop) read from outside included."""
    names = {name for name in node.input if name}
    for attribute in node.attribute:
        for subgraph in [attribute.g, *attribute.graphs]:
            for inner in subgraph.node:
                names |= _reads(inner)
    return names


def _ancestors(graph: onnx.GraphProto, tensor: str, producers: dict[str, int]) -> set[int]:
    """The indices of the nodes `tensor` depends on (its producer's included)."""
    found: set[int] = set()
    pending = [tensor]
    while pending:
        index = producers.get(pending.pop())
        if index is None or index in found:
            continue
        found.add(index)
        pending.extend(_reads(graph.node[index]))
    return found
