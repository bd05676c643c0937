"""Compile every stage of an adaptive build and put them behind one dispatcher: one arena
(the largest stage's, plus a small result area), one input at offset 0 that every stage
reads and none overwrites, and `ari_run` as the firmware's model API. Consecutive stages of
one model and precision (early exits) are one model run segment by segment."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import onnx

from codegen.ari.segments import (
    StageGroup,
    cut_to_outputs,
    group_stages,
    prune_dead_nodes,
    stage_outputs,
)
from codegen.ari.spec import AriOptions, check_thresholds
from codegen.compiler.budget import CEILING, Budget
from codegen.compiler.c import environment
from codegen.compiler.compile import CompiledModel, Options, compile_model_proto, current_command
from codegen.compiler.emit import ModelInfo, TensorInfo, file_header
from codegen.compiler.frontend import load_model, sha256_of
from codegen.compiler.plan import align
from codegen.errors import ArielError

PREFIX = "ari"


@dataclass
class AriCompiled:
    options: AriOptions
    groups: list[StageGroup]  # consecutive stages of one model and precision
    models: list[CompiledModel]  # one per group
    files: dict[str, str]
    info: ModelInfo
    header: str

    @property
    def stages(self) -> list[CompiledModel]:
        """The compiled model each stage runs (stages of one group share one)."""
        return [model for group, model in zip(self.groups, self.models, strict=True)
                for _ in group.indices]

    def segment(self, stage: int) -> int:
        """Which output of its compiled model stage `stage` reads (its segment)."""
        group = next(g for g in self.groups if stage in g.indices)
        return group.indices.index(stage)

    def scores(self, stage: int) -> TensorInfo:
        return self.stages[stage].info.outputs[self.segment(stage)]

    def continues(self, stage: int) -> bool:
        """Whether stage `stage` continues the previous stage's run (a later segment)."""
        return self.segment(stage) > 0

    def run_function(self, stage: int) -> str:
        """The C function that runs stage `stage`: its model's run, or its segment."""
        info = self.stages[stage].info
        return info.segments[self.segment(stage)] if info.segments else f"{info.prefix}_run"

    @property
    def plan_text(self) -> str:
        return "\n\n".join(
            f"stages {', '.join(str(i) for i in g.indices)} "
            f"({', '.join(self.options.stages[i].label for i in g.indices)}):\n"
            f"{c.plan.timeline()}" for g, c in zip(self.groups, self.models, strict=True))


def with_scores(model: onnx.ModelProto, scores: str) -> onnx.ModelProto:
    """The model with the outputs the margins are taken on: as they are, their logits (a
    final Softmax dropped) or probabilities (a Softmax added), each output alike."""
    if scores == "model":
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    producers = {name: node for node in graph.node for name in node.output}
    outputs = []
    for index, output in enumerate(graph.output):
        producer = producers.get(output.name)
        ends_in_softmax = producer is not None and producer.op_type == "Softmax"
        name = output.name
        if scores == "logits" and ends_in_softmax:
            name = producer.input[0]
        elif scores == "probabilities" and not ends_in_softmax:
            name = f"{output.name}_probabilities"
            graph.node.append(onnx.helper.make_node(
                "Softmax", [output.name], [name], name=f"ariel_probabilities{index or ''}",
                axis=-1))
        outputs.append(onnx.ValueInfoProto.FromString(output.SerializeToString())
                       if name == output.name else
                       onnx.helper.make_empty_tensor_value_info(name))
    del graph.output[:]
    graph.output.extend(outputs)
    prune_dead_nodes(model)
    return onnx.shape_inference.infer_shapes(model)


def compile_stages(options: AriOptions, command: str | None = None,
                   budget: Budget = CEILING) -> AriCompiled:
    """Every group of stages compiled (consecutive stages of one model and precision as one
    model run segment by segment), each held to `budget` (the board's memory), and the
    dispatcher."""
    command = command or current_command()
    groups = group_stages(options.stages)
    compiled = []
    for group in groups:
        stages = [options.stages[i] for i in group.indices]
        model = load_model(group.model)
        model = cut_to_outputs(model, stage_outputs(model, stages))
        model = with_scores(model, options.scores)
        compiled.append(compile_model_proto(model, group.model, Options(
            precision=group.precision, calibration=options.calibration, io="float",
            input_shapes=dict(options.input_shapes), name=f"s{group.first}_{group.precision}",
            pin_inputs=True, segmented=group.segmented,
            float_weights=options.float_weights if group.precision == "float" else "fp32",
            budget=budget), command))
    if options.thresholds is not None:
        check_thresholds(options.thresholds, options.margin, options.scores)
    first = options.stages[0].model
    header = file_header(Path(first).name, sha256_of(first), command)
    result = AriCompiled(options, groups, compiled, {}, None, header)
    _check_compatible(result)
    result.info = _info(result)
    result.files = {name: text for model in compiled for name, text in model.files.items()}
    result.files.update(render_dispatcher(result))
    return result


def _check_compatible(compiled: AriCompiled) -> None:
    """Every stage must read the same input and answer with the same number of scores."""
    options = compiled.options
    first, first_scores = compiled.models[0].info, compiled.scores(0)
    for index, stage in enumerate(options.stages):
        info = compiled.stages[index].info
        if len(info.inputs) != 1:
            raise ArielError(f"stage {stage.label} has {len(info.inputs)} inputs; adaptive "
                             "builds take models with one input")
        ours, theirs = info.inputs[0], first.inputs[0]
        if (ours.shape, ours.dtype) != (theirs.shape, theirs.dtype):
            raise ArielError(f"stage {stage.label} takes {ours.dtype}{ours.shape} but stage "
                             f"{options.stages[0].label} takes {theirs.dtype}{theirs.shape}: "
                             "the stages of one build must read the same input")
        scores = compiled.scores(index)
        if scores.shape != first_scores.shape:
            raise ArielError(f"stage {stage.label} outputs {scores.shape} but stage "
                             f"{options.stages[0].label} outputs {first_scores.shape}: "
                             "the stages must answer with the same scores")
        if ours.offset != 0:
            raise ArielError(f"internal: stage {stage.label}'s input is not pinned at offset 0")
    count = math.prod(first_scores.shape)
    if options.margin == "top2" and count < 2:
        raise ArielError("the model gives a single score: use --margin binary with "
                         "--decision-threshold")
    if options.margin == "binary" and count != 1:
        raise ArielError(f"--margin binary takes a model with one score; this one gives {count}")


def _info(compiled: AriCompiled) -> ModelInfo:
    """The dispatcher's model info. Each kernel is tagged with the stage whose run it
    belongs to: in a segmented model, the stage of its segment, so that a stage's cost is
    the increment of its segment."""
    models = compiled.models
    first = models[0].info
    scores = compiled.scores(0)
    result = align(max(c.info.arena_size for c in models))
    kernels = [dict(kernel, stage=group.indices[kernel.get("segment", 0)])
               for group, c in zip(compiled.groups, models, strict=True)
               for kernel in c.info.kernels]
    return ModelInfo(
        prefix=PREFIX,
        arena_size=align(result + scores.nbytes + 8),
        arena_lower_bound=max(c.info.arena_lower_bound for c in models),
        inputs=[TensorInfo(first.inputs[0].name, first.inputs[0].shape, first.inputs[0].dtype,
                           0, first.inputs[0].nbytes)],
        outputs=[TensorInfo("scores", scores.shape, "float32", result, scores.nbytes),
                 TensorInfo("stage", [1], "int32", result + scores.nbytes, 4),
                 TensorInfo("margin", [1], "float32", result + scores.nbytes + 4, 4)],
        weights_bytes=sum(c.info.weights_bytes for c in models),
        kernels=kernels)


def render_dispatcher(compiled: AriCompiled) -> dict[str, str]:
    env = environment()
    options, info = compiled.options, compiled.info
    scores = info.outputs[0]
    context = {
        "header": compiled.header,
        "models": [c.info.prefix for c in compiled.models],
        "stages": [{"run": compiled.run_function(i), "label": s.label,
                    "scores_offset": compiled.scores(i).offset,
                    "continues": f", continuing stage {i - 1}" if compiled.continues(i) else "",
                    "macs": sum(k["macs"] for k in info.kernels if k["stage"] == i)}
                   for i, s in enumerate(options.stages)],
        "arena_size": info.arena_size,
        "input": info.inputs[0],
        "result_offset": scores.offset,
        "scores_bytes": scores.nbytes,
        "count": math.prod(scores.shape),
        "margin": options.margin,
        "decision_threshold": options.decision_threshold,
    }
    return {"ari.h": env.get_template("ari/ari.h.j2").render(context),
            "ari.c": env.get_template("ari/ari.c.j2").render(context),
            "ari_thresholds.c": render_thresholds(options, compiled.header)}


def render_thresholds(options: AriOptions, header: str, origin: str | None = None) -> str:
    """ari_thresholds.c: the given thresholds, or none yet (+inf: every stage escalates,
    which is how `ariel calibrate` measures each stage's cost)."""
    count = len(options.stages) - 1
    thresholds = options.thresholds if options.thresholds is not None else [math.inf] * count
    if origin is None:
        origin = ("thresholds given at build time" if options.thresholds is not None else
                  "not calibrated yet: +inf makes every stage escalate; run `ariel calibrate`")
    return environment().get_template("ari/ari_thresholds.c.j2").render(
        header=header, thresholds=thresholds, origin=origin,
        stage_labels=[s.label for s in options.stages[:-1]])

