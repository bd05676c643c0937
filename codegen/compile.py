"""From an ONNX file (or ModelProto) to C sources in memory: front end, passes, plan, emit."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from codegen.emit import ModelInfo, emit_model, file_header
from codegen.frontend import ModelSource, c_identifier, load_graph
from codegen.ir import Graph
from codegen.passes import run_pipeline
from codegen.plan import MemoryPlan, plan_memory


@dataclass
class CompiledModel:
    graph: Graph
    plan: MemoryPlan
    files: dict[str, str]
    info: ModelInfo
    source: ModelSource


def compile_model(path: str | Path, input_shapes: dict | None = None, name: str | None = None,
                  command: str | None = None) -> CompiledModel:
    graph, source = load_graph(path, input_shapes, name)
    return compile_graph(graph, source, command)


def compile_graph(graph: Graph, source: ModelSource, command: str | None = None
                  ) -> CompiledModel:
    run_pipeline(graph)
    plan = plan_memory(graph)
    prefix = c_identifier(graph.name)
    header = file_header(Path(source.path).name, source.sha256, command or current_command())
    files, info = emit_model(graph, plan, prefix, header)
    return CompiledModel(graph, plan, files, info, source)


def current_command() -> str:
    """The command line as the user typed it, program name shortened to `ariel`."""
    return shlex.join(["ariel", *sys.argv[1:]])
