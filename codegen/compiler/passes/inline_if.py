"""An If whose condition is known at compile time (exporters write them for branches on a
shape, which constant folding turns into a constant) is replaced by the branch it takes: that
branch's nodes join the graph, and Identity views carry its results to the If's outputs."""

from __future__ import annotations

import numpy as np
from onnx import helper

from codegen.compiler.frontend import graph_nodes
from codegen.compiler.ir import Graph, Node, Tensor


def known_branch(graph: Graph, node: Node) -> str | None:
    """The branch attribute ('then_branch' or 'else_branch') a constant-condition If takes,
    or None when the node is no such If."""
    if node.op != "If" or node.domain not in ("", "ai.onnx") or not node.inputs:
        return None
    condition = graph.tensors.get(node.inputs[0])
    if condition is None or not condition.is_const or np.size(condition.data) != 1:
        return None
    branch = "then_branch" if bool(np.asarray(condition.data).reshape(-1)[0]) else "else_branch"
    body = node.attrs.get(branch)
    if body is None or len(body.output) != len(node.outputs):
        return None  # not a valid If: left for resolve to refuse
    return branch


def inline_branch(graph: Graph, node: Node, branch: str) -> list[Node]:
    """The nodes that replace `node`: its `branch`'s, then one Identity per output. ONNX
    names are unique across a model and its branches, so they join the graph unchanged."""
    body = node.attrs[branch]
    nodes = graph_nodes(body, graph.tensors, [*body.value_info, *body.output],
                        prefix=f"{node.name}/")
    for index, (result, output) in enumerate(zip([o.name for o in body.output], node.outputs,
                                                 strict=True)):
        if output not in graph.tensors:
            graph.tensors[output] = Tensor(output, None, "")
        name = f"{node.name}/{branch}_result_{index}"
        nodes.append(Node(name, "Identity", [result], [output], opset=node.opset,
                          proto=helper.make_node("Identity", [result], [output], name=name)))
    return nodes
