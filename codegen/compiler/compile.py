"""From an ONNX file to C sources in memory: front end, (quantization), passes, plan, emit."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from codegen.compiler.budget import CEILING, Budget
from codegen.compiler.c import c_identifier
from codegen.compiler.checkpoint import CheckpointPlan, PowerOptions, plan_checkpoints
from codegen.compiler.emit import ModelInfo, emit_model, file_header
from codegen.compiler.frontend import (
    ModelSource,
    drop_zipmaps,
    fix_input_shapes,
    load_model,
    require_outputs,
    require_runtime_inputs,
    sha256_of,
    to_graph,
)
from codegen.compiler.ir import Graph
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.zero_words import REFERENCE_WAIT_STATES
from codegen.compiler.passes import PIPELINE, run_pipeline
from codegen.compiler.plan import MemoryPlan, plan_memory
from codegen.compiler.segments import order_by_outputs
from codegen.errors import ArielError

PRECISIONS = ("float", "int8")
FLOAT_WEIGHTS = ("fp32", "fp16")  # how a float model's filters and matrices are stored


@dataclass
class Options:
    """How to compile: precision, and for int8 the calibration and the I/O type."""

    precision: str = "float"
    calibration: str | None = None  # a .npy/.npz path or a built-in data set name
    method: str = "minmax"
    io: str = "float"  # "int8": the model's inputs and outputs are its int8 tensors
    input_shapes: dict = field(default_factory=dict)
    name: str | None = None
    pin_inputs: bool = False  # keep the inputs at arena offset 0 for the whole run
    float_weights: str = "fp32"  # "fp16": stored at half precision, widened as loaded
    budget: Budget = CEILING  # the target's memory: bigger tensors and weights are refused
    # --power intermittent: checkpoints in the board's NVM (codegen/compiler/checkpoint.py)
    power: PowerOptions | None = None
    # Run segment by segment, one per graph output in order, each with an entry of its own
    # (compiler/segments.py): the early exits of an adaptive build.
    segmented: bool = False
    # --weights-in-ram: the constant arrays linked into .data, copied from flash at reset,
    # so that the kernels read them without the flash's wait states (more RAM used)
    weights_in_ram: bool = False
    # --fixed-timing: no kernel whose time depends on the input's values (the dense layers
    # that skip their row's zeros, ops/zero_words.py); also the case for --power intermittent,
    # whose checkpoints bound each unit of work's cycles.
    fixed_timing: bool = False
    # The board's flash wait states (codegen/build.py sets them), which decide where reading
    # fewer weights pays; where no board is known, the reference board's.
    flash_wait_states: int = REFERENCE_WAIT_STATES
    # --tune's measured choices (codegen/tune.py): node name -> whether the dense layer lists
    # its row's nonzero words, overruling the cost model; "all" lists every layer that can.
    listing_choices: dict[str, bool] | str | None = None


@dataclass
class CompiledModel:
    graph: Graph
    plan: MemoryPlan
    files: dict[str, str]
    info: ModelInfo
    source: ModelSource
    quantized_model: onnx.ModelProto | None = None  # the QDQ model ariel made, if any
    calibration: object = None  # the CalibrationData used, if any
    # int8 builds: the kernels that still compute in float32 (quant/islands.py)
    float_islands: list | None = None
    checkpoints: CheckpointPlan | None = None  # intermittent builds


def compile_model(path: str | Path, options: Options | None = None,
                  command: str | None = None) -> CompiledModel:
    return compile_model_proto(load_model(path), path, options, command)


def compile_model_proto(model: onnx.ModelProto, path: str | Path, options: Options | None = None,
                        command: str | None = None) -> CompiledModel:
    """compile_model on a model already in memory (`path` names the file it came from)."""
    options = options or Options()
    require_outputs(model)
    require_runtime_inputs(model)
    notes = fix_input_shapes(model, options.input_shapes) + drop_zipmaps(model)
    source = ModelSource(str(path), sha256_of(path), notes)
    name = c_identifier(options.name or Path(path).stem)
    if options.float_weights not in FLOAT_WEIGHTS:
        raise ArielError(f"--float-weights {options.float_weights}: choose one of "
                         f"{', '.join(FLOAT_WEIGHTS)}")
    if options.precision == "float":
        if options.io != "float":
            raise ArielError("--io int8 needs --precision int8")
        return compile_graph(to_graph(model, name, options.budget), source, command,
                             options.pin_inputs, half_weights=options.float_weights == "fp16",
                             segmented=options.segmented, power=options.power,
                             weights_in_ram=options.weights_in_ram)
    if options.float_weights != "fp32":
        raise ArielError("--float-weights fp16 stores a float model's weights at half "
                         "precision; an int8 model has none (use it with --precision float, "
                         "or ari, where it applies to the float stages)")
    return compile_int8(model, name, source, options, command)


def compile_int8(model: onnx.ModelProto, name: str, source: ModelSource, options: Options,
                 command: str | None, calibration=None) -> CompiledModel:
    """The int8 path: quantize a float model on calibration data (a CalibrationData, or
    read from options.calibration), or take an already quantized one, then lower it."""
    from codegen.compiler.quant.calibrate import load_calibration, quantize_float_model
    from codegen.compiler.quant.islands import float_islands
    from codegen.compiler.quant.lower import expose_int8_io, lower_quantized
    from codegen.compiler.quant.prepare import prepare_for_quantization
    from codegen.compiler.quant.scheme import check_scheme, is_quantized_model

    quantized = None
    if not is_quantized_model(model):
        # Before calibration data is read: an unsupported operator is named as in float,
        # and a model beyond the budget is refused before ONNX Runtime calibrates on it.
        model = prepare_for_quantization(model, name, options.budget)
        if options.calibration is None and calibration is None:
            raise ArielError("--precision int8 needs calibration data for a float model: "
                             "--calib DATA (a .npy or .npz of real inputs, or a built-in "
                             "data set: digits, toycar)")
        if calibration is None:
            calibration = load_calibration(options.calibration, model_inputs(model))
        model = quantized = quantize_float_model(model, calibration, options.method)
        source.notes.append(f"quantized with ONNX Runtime's quantize_static ({options.method}) "
                            f"on {calibration.count} samples from {calibration.source}")
    elif calibration is None and options.calibration is not None:
        # A quantized model needs no calibration; data given anyway still informs the
        # kernels' choices (which dense layers list their row's zero words).
        calibration = load_calibration(options.calibration, model_inputs(model))
    check_scheme(model)
    graph = to_graph(model, name, options.budget)
    lower_quantized(graph)
    if options.io == "int8":
        expose_int8_io(graph)
    compiled = compile_graph(graph, source, command, options.pin_inputs,
                             segmented=options.segmented, power=options.power,
                             weights_in_ram=options.weights_in_ram,
                             calibration=None if options.fixed_timing or options.power
                             else calibration,
                             flash_wait_states=0 if options.weights_in_ram
                             else options.flash_wait_states,
                             listing_choices=options.listing_choices)
    compiled.quantized_model, compiled.calibration = quantized, calibration
    compiled.float_islands = float_islands(compiled.graph)
    return compiled


def compile_graph(graph: Graph, source: ModelSource, command: str | None = None,
                  pin_inputs: bool = False, half_weights: bool = False,
                  segmented: bool = False, power: PowerOptions | None = None,
                  weights_in_ram: bool = False, calibration=None,
                  flash_wait_states: int = REFERENCE_WAIT_STATES,
                  listing_choices: dict[str, bool] | str | None = None) -> CompiledModel:
    """Lower and emit `graph`; `calibration` (a CalibrationData, int8 builds) gives the
    statistics of the rows that dense layers may list the nonzero words of, and
    `flash_wait_states` what reading their weights costs (deciding where a list pays)."""
    run_pipeline(graph, PIPELINE)
    if calibration is not None:
        from codegen.compiler.quant.zero_rows import plan_listing, record_row_zeros

        record_row_zeros(graph, calibration)
        if listing_choices == "all":
            listing_choices = {node.name: True for node in graph.nodes}
        plan_listing(graph, flash_wait_states, listing_choices)
    segments = order_by_outputs(graph) if segmented else None
    for node in graph.nodes:
        source.notes.extend(REGISTRY[node.op].build_notes(node, graph))
    plan = plan_memory(graph, pin_inputs=pin_inputs)
    for step, units in plan.room.items():
        graph.nodes[step].room = units
    checkpoints = plan_checkpoints(graph, plan, power) if power is not None else None
    prefix = c_identifier(graph.name)
    header = file_header(Path(source.path).name, source.sha256, command or current_command())
    files, info = emit_model(graph, plan, prefix, header, half_weights, segments,
                             checkpoints, weights_in_ram)
    source.notes.extend(skipped_notes(info.kernels))
    source.notes.extend(input_dependent_notes(info.kernels))
    if half_weights:
        source.notes.append("float filters and matrices stored at half precision (IEEE "
                            "float16, rounded to nearest), widened to float as loaded")
    return CompiledModel(graph, plan, files, info, source, checkpoints=checkpoints)


def skipped_notes(kernels: list[dict]) -> list[str]:
    """A build note per kernel that leaves MACs out (constant_channels.py): the model holds
    channels it could prune, and its MAC count overstates the work done."""
    return [f"{k['op']} '{k['name']}': {k['skipped_macs']:,} of its {k['macs']:,} MACs not "
            "computed: output channels that are one value whatever the input (listed in its "
            "kernel's comment), their filters not stored" for k in kernels
            if k.get("skipped_macs")]


def input_dependent_notes(kernels: list[dict]) -> list[str]:
    """One build note on the kernels whose time depends on the input's values, and what bounds
    it: a profile's cycles are those of the inputs it ran, not of every input."""
    varying = [k for k in kernels if k.get("input_dependent")]
    if not varying:
        return []
    layers = ", ".join(f"{k['op']} '{k['name']}'" for k in varying)
    return [f"the time of {len(varying)} layer{'s' if len(varying) > 1 else ''} depends on the "
            f"input ({layers}): {varying[0]['input_dependent']}; build with --fixed-timing "
            "for the same time on every input"]


def model_inputs(model: onnx.ModelProto) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, numpy dtype) of each graph input that is not an initializer."""
    import numpy as np

    initializers = {i.name for i in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
        inputs.append((value.name, tuple(d.dim_value for d in tensor_type.shape.dim), dtype))
    return inputs


def current_command() -> str:
    """The command line as the user typed it, program name shortened to `ariel`."""
    return shlex.join(["ariel", *sys.argv[1:]])
