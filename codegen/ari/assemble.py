"""Compile every stage of an adaptive build and put them behind one dispatcher: one arena
(the largest stage's, plus a small result area), one input at offset 0 that every stage
reads and none overwrites, and `ari_run` as the firmware's model API."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import onnx

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
    stages: list[CompiledModel]
    files: dict[str, str]
    info: ModelInfo
    header: str

    @property
    def plan_text(self) -> str:
        return "\n\n".join(f"stage {i} ({s.label}):\n{c.plan.timeline()}" for i, (s, c) in
                           enumerate(zip(self.options.stages, self.stages, strict=True)))


def with_scores(model: onnx.ModelProto, scores: str) -> onnx.ModelProto:
    """The model with the output the margin is taken on: as it is, its logits (a final
    Softmax dropped) or probabilities (a Softmax added)."""
    if scores == "model":
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    output = graph.output[0]
    producer = next((n for n in graph.node if output.name in n.output), None)
    ends_in_softmax = producer is not None and producer.op_type == "Softmax"
    if scores == "logits" and ends_in_softmax:
        graph.node.remove(producer)
        del graph.output[:]
        graph.output.append(onnx.helper.make_empty_tensor_value_info(producer.input[0]))
    elif scores == "probabilities" and not ends_in_softmax:
        probabilities = f"{output.name}_probabilities"
        graph.node.append(onnx.helper.make_node("Softmax", [output.name], [probabilities],
                                                name="ariel_probabilities", axis=-1))
        del graph.output[:]
        graph.output.append(onnx.helper.make_empty_tensor_value_info(probabilities))
    return onnx.shape_inference.infer_shapes(model)


def compile_stages(options: AriOptions, command: str | None = None,
                   budget: Budget = CEILING) -> AriCompiled:
    """Every stage compiled, each held to `budget` (the board's memory), and the dispatcher."""
    command = command or current_command()
    compiled = []
    for index, stage in enumerate(options.stages):
        model = with_scores(load_model(stage.model), options.scores)
        compiled.append(compile_model_proto(model, stage.model, Options(
            precision=stage.precision, calibration=options.calibration, io="float",
            input_shapes=dict(options.input_shapes), name=f"s{index}_{stage.precision}",
            pin_inputs=True,
            float_weights=options.float_weights if stage.precision == "float" else "fp32",
            budget=budget), command))
    _check_compatible(options, compiled)
    if options.thresholds is not None:
        check_thresholds(options.thresholds, options.margin, options.scores)
    first = options.stages[0].model
    header = file_header(Path(first).name, sha256_of(first), command)
    info = _info(options, compiled)
    files = {name: text for stage in compiled for name, text in stage.files.items()}
    files.update(render_dispatcher(options, compiled, info, header))
    return AriCompiled(options, compiled, files, info, header)


def _check_compatible(options: AriOptions, compiled: list[CompiledModel]) -> None:
    """Every stage must read the same input and answer with the same number of scores."""
    first = compiled[0].info
    for stage, model in zip(options.stages, compiled, strict=True):
        info = model.info
        if len(info.inputs) != 1 or len(info.outputs) != 1:
            raise ArielError(f"stage {stage.label} has {len(info.inputs)} inputs and "
                             f"{len(info.outputs)} outputs; adaptive builds take models with "
                             "one input and one output")
        ours, theirs = info.inputs[0], first.inputs[0]
        if (ours.shape, ours.dtype) != (theirs.shape, theirs.dtype):
            raise ArielError(f"stage {stage.label} takes {ours.dtype}{ours.shape} but stage "
                             f"{options.stages[0].label} takes {theirs.dtype}{theirs.shape}: "
                             "the stages of one build must read the same input")
        if info.outputs[0].shape != first.outputs[0].shape:
            raise ArielError(f"stage {stage.label} outputs {info.outputs[0].shape} but stage "
                             f"{options.stages[0].label} outputs {first.outputs[0].shape}: "
                             "the stages must answer with the same scores")
        if ours.offset != 0:
            raise ArielError(f"internal: stage {stage.label}'s input is not pinned at offset 0")
    count = math.prod(first.outputs[0].shape)
    if options.margin == "top2" and count < 2:
        raise ArielError("the model gives a single score: use --margin binary with "
                         "--decision-threshold")
    if options.margin == "binary" and count != 1:
        raise ArielError(f"--margin binary takes a model with one score; this one gives {count}")


def _info(options: AriOptions, compiled: list[CompiledModel]) -> ModelInfo:
    first = compiled[0].info
    scores = first.outputs[0]
    result = align(max(c.info.arena_size for c in compiled))
    kernels = [dict(kernel, stage=index) for index, c in enumerate(compiled)
               for kernel in c.info.kernels]
    return ModelInfo(
        prefix=PREFIX,
        arena_size=align(result + scores.nbytes + 8),
        arena_lower_bound=max(c.info.arena_lower_bound for c in compiled),
        inputs=[TensorInfo(first.inputs[0].name, first.inputs[0].shape, first.inputs[0].dtype,
                           0, first.inputs[0].nbytes)],
        outputs=[TensorInfo("scores", scores.shape, "float32", result, scores.nbytes),
                 TensorInfo("stage", [1], "int32", result + scores.nbytes, 4),
                 TensorInfo("margin", [1], "float32", result + scores.nbytes + 4, 4)],
        weights_bytes=sum(c.info.weights_bytes for c in compiled),
        kernels=kernels)


def render_dispatcher(options: AriOptions, compiled: list[CompiledModel], info: ModelInfo,
                      header: str) -> dict[str, str]:
    env = environment()
    scores = info.outputs[0]
    context = {
        "header": header,
        "stages": [{"prefix": c.info.prefix, "label": s.label,
                    "scores_offset": c.info.outputs[0].offset,
                    "macs": sum(k["macs"] for k in c.info.kernels)}
                   for s, c in zip(options.stages, compiled, strict=True)],
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
            "ari_thresholds.c": render_thresholds(options, header)}


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

