"""`ariel augment` from end to end: find the exit points, compute the backbone's features on
the training and held-out data, train a head per exit, measure it, write the augmented model
and its sidecar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from codegen.ari.augment.candidates import Cuts, ExitPoint, choose, elided
from codegen.ari.augment.data import Split, carve, load_split
from codegen.ari.augment.features import backbone_features
from codegen.ari.augment.fitting import fit_exit, head_options, pooling_of
from codegen.ari.augment.heads import Head, HeadShape, check_shape
from codegen.ari.augment.sidecar import is_sidecar, sidecar_path, sidecar_text
from codegen.ari.augment.surgery import METADATA_KEY, METADATA_VALUE, add_exits, exit_name
from codegen.compiler.frontend import load_model, sha256_of
from codegen.errors import ArielError
from codegen.files import check_target, write_atomic

FITS = ("labels", "final")
# Fewer held-out inputs than this, and the command says how coarse its figures are.
SMALL_HELDOUT = 100  # what heads learn: the true labels, or the final output's argmax


@dataclass
class AugmentRequest:
    model: Path
    data: str
    output: Path
    heldout: str | None = None
    exits: str = "auto"
    head: HeadShape = field(default_factory=lambda: HeadShape("auto"))
    fit: str | None = None  # None: labels when the training data has them, else final
    final_output: str | None = None
    input_shapes: dict = field(default_factory=dict)
    seed: int = 0


@dataclass
class ExitResult:
    point: ExitPoint
    output: str
    head: Head
    train_accuracy: float  # against the targets it was fitted to
    accuracy: float | None  # held out, against the labels
    agreement: float  # held out, with the final output's argmax


@dataclass
class Augmented:
    model: onnx.ModelProto
    sidecar: dict
    exits: list[ExitResult]
    final_accuracy: float | None
    heldout: Split


def analyse(model_path: Path, input_shapes: dict | None = None) -> Cuts:
    """The model's cut analysis (its exit points and MACs), on ariel's folded graph."""
    from codegen.report.inspect import inspect

    inspection = inspect(model_path, input_shapes or {})
    return Cuts(inspection.graph, [row.macs for row in inspection.rows])


def final_output_of(cuts: Cuts, name: str | None) -> tuple[str, int]:
    """The original output that is the final answer, and its number of classes: `name`, or
    the first output of shape [1, K] with K >= 2."""
    graph = cuts.graph
    shapes = {out: graph.tensor(out).shape for out in graph.outputs}
    if name is not None:
        if name not in shapes:
            raise ArielError(f"--final-output '{name}' is not an output of the model (its "
                             f"outputs: {', '.join(graph.outputs)})")
        candidates = [name]
    else:
        candidates = list(graph.outputs)
    for out in candidates:
        shape = shapes[out]
        if shape is not None and len(shape) == 2 and shape[0] == 1 and shape[1] >= 2 \
                and graph.tensor(out).dtype.startswith("float"):
            return out, shape[1]
    described = ", ".join(f"'{o}' {graph.tensor(o).dtype or '?'}"
                          f"{list(shapes[o]) if shapes[o] else '[?]'}" for o in candidates)
    raise ArielError(f"early exits need float class scores [1, K] as the final answer; the "
                     f"model gives {described}")


def check_outputs(request: AugmentRequest) -> None:
    """Refuse, before any work, an -o that ariel must not or cannot write."""
    output = check_target(request.output, "-o")
    if output.suffix != ".onnx":
        raise ArielError(f"-o '{output}' must name an .onnx file")
    sidecar = sidecar_path(output)
    written = {_resolved(output), _resolved(sidecar)}
    for given, what in ((request.model, "the model"), (request.data, "the --data file"),
                        (request.heldout, "the --heldout file")):
        if given is not None and Path(given).is_file() and Path(given).resolve() in written:
            raise ArielError(f"-o '{output}' would replace {what}; write elsewhere")
    if output.exists() and not _is_augmented(output):
        raise ArielError(f"-o '{output}' exists and is not a model ariel augmented; remove it "
                         "or choose another name")
    if sidecar.exists() and not is_sidecar(sidecar):
        raise ArielError(f"'{sidecar}' (the exits file beside -o) exists and is not ariel's; "
                         "remove it or choose another name")


def _resolved(path: Path) -> Path:
    return path.parent.resolve() / path.name


def _is_augmented(path: Path) -> bool:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # any file onnx cannot read is not ours
        return False
    return any(p.key == METADATA_KEY and p.value == METADATA_VALUE
               for p in model.metadata_props)


def augment(request: AugmentRequest, progress: Callable[[str], None]) -> Augmented:
    check_shape(request.head)
    source = load_model(request.model)
    cuts = analyse(request.model, request.input_shapes)
    final_output, classes = final_output_of(cuts, request.final_output)
    points = choose(cuts, request.exits)
    train, heldout, fit = _splits(request, cuts, classes, progress)
    options = [head_options(p, request.head) for p in points]
    poolings = list(dict.fromkeys(pooling_of(p, shape) for p, shapes in
                                  zip(points, options, strict=True) for shape in shapes))
    progress(f"backbone features at {len(points)} exit(s) for {train.count} training inputs "
             f"from {train.source} (onnxruntime)")
    train_features, train_final = backbone_features(source, train.inputs, poolings,
                                                    final_output, progress, "training inputs")
    progress(f"backbone features for {heldout.count} held-out inputs")
    held_features, held_final = backbone_features(source, heldout.inputs, poolings,
                                                  final_output, progress, "held-out inputs")
    targets = train.labels if fit == "labels" else train_final.argmax(axis=1)
    _notes(targets, classes, fit, heldout, progress)
    final_answers = held_final.argmax(axis=1)
    final_accuracy = None if heldout.labels is None else \
        float(np.mean(final_answers == heldout.labels))
    results = []
    for number, (point, shapes) in enumerate(zip(points, options, strict=True), start=1):
        head = fit_exit(point, shapes, train_features, targets, classes, request.seed,
                        progress)
        pooling = pooling_of(point, head.shape)
        train_answers = head.logits(train_features[pooling]).argmax(axis=1)
        answers = head.logits(held_features[pooling]).argmax(axis=1)
        result = ExitResult(
            point, exit_name(number), head, float(np.mean(train_answers == targets)),
            None if heldout.labels is None else float(np.mean(answers == heldout.labels)),
            float(np.mean(answers == final_answers)))
        results.append(result)
        progress(f"{result.output} after '{point.label}' ({head.shape.label} head, "
                 f"{head.macs:,} MACs): training {fit} {result.train_accuracy:.1%}, held out "
                 + (f"accuracy {result.accuracy:.1%}, " if result.accuracy is not None else "")
                 + f"agreement {result.agreement:.1%}")
    augmented = add_exits(source, [(r.point.tensor, r.head) for r in results], classes,
                          final_output)
    data = {
        "model": request.output.name,
        "model_sha256": _sha256(augmented.SerializeToString()),
        "source": {"path": str(request.model), "sha256": sha256_of(request.model)},
        "final_output": final_output,
        "classes": classes,
        "macs_total": cuts.total_macs,
        "final_accuracy": final_accuracy,
        "data": {"train": train.source, "train_count": train.count,
                 "heldout": heldout.source, "heldout_count": heldout.count, "targets": fit},
        "exits": [_exit_entry(r, augmented, heldout.count) for r in results],
    }
    return Augmented(augmented, data, results, final_accuracy, heldout)


def _splits(request: AugmentRequest, cuts: Cuts, classes: int,
            progress: Callable[[str], None]) -> tuple[Split, Split, str]:
    """The training and held-out data, and what the heads learn (labels or final)."""
    graph = cuts.graph
    model_inputs = [(name, tuple(graph.tensor(name).shape), graph.tensor(name).dtype)
                    for name in graph.inputs]
    train = load_split(request.data, model_inputs, classes, "training data (--data)")
    fit = request.fit or ("labels" if train.labels is not None else "final")
    if fit == "labels" and train.labels is None:
        raise ArielError(f"--fit labels: the training data {train.source} has no labels (an "
                         ".npz with x and y); or fit the final output's answers (--fit final)")
    if request.heldout is not None:
        if request.heldout == request.data:
            progress("note: the held-out data is the training data: the figures below "
                     "flatter the heads (give inputs they were not trained on)")
        return train, load_split(request.heldout, model_inputs, classes,
                                 "held-out data (--heldout)"), fit
    train, heldout = carve(train)
    progress(f"no --heldout: holding out {heldout.source} ("
             + ("the same share of each label, " if train.labels is not None else "")
             + "seed 0)")
    return train, heldout, fit


def _notes(targets: np.ndarray, classes: int, fit: str, heldout: Split,
           progress: Callable[[str], None]) -> None:
    """What the user should know about the data before trusting the figures."""
    missing = sorted(set(range(classes)) - set(targets.tolist()))
    if missing:
        progress(f"note: no training input of class {', '.join(map(str, missing[:8]))}"
                 f"{', ...' if len(missing) > 8 else ''} ({fit}): the heads never answer it")
    if heldout.count < SMALL_HELDOUT:
        progress(f"note: {heldout.count} held-out inputs; one input moves an accuracy by "
                 f"{1 / heldout.count:.1%}")


def _exit_entry(result: ExitResult, augmented: onnx.ModelProto, heldout: int) -> dict:
    return {"output": result.output, "after_tensor": result.point.tensor,
            "after_node": result.point.node, "macs_backbone": result.point.macs,
            "macs_head": result.head.macs, "head": _head_entry(result.head),
            "head_nodes": [n.name for n in augmented.graph.node
                           if n.name.startswith(result.output + "/")],
            "accuracy": result.accuracy, "agreement": result.agreement, "heldout": heldout}


def _head_entry(head: Head) -> dict:
    entry = {"pool": head.shape.pool, "hidden": head.shape.hidden}
    if head.shape.pool == "grid":
        entry.update(cells=head.shape.cells, window=list(head.window))
    return entry


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def write_augmented(result: Augmented, output: Path) -> Path:
    """The model, then its sidecar, each written whole or not at all; returns the sidecar's
    path."""
    sidecar = sidecar_path(output)
    model_bytes = result.model.SerializeToString()
    text = sidecar_text(result.sidecar)
    write_atomic(output, model_bytes)
    write_atomic(sidecar, text)
    return sidecar


def format_candidates(cuts: Cuts) -> str:
    """The listed exit points, numbered as --exits takes them."""
    listed = cuts.candidates()
    total = max(cuts.total_macs, 1)
    rows = [("#", "tensor", "node", "shape", "MACs so far", "share")]
    for number, point in enumerate(listed, start=1):
        rows.append((str(number), point.label,
                     "(same)" if point.node == point.tensor else elided(point.node),
                     "[" + ",".join(map(str, point.shape)) + "]", f"{point.macs:,}",
                     f"{point.macs / total:.1%}"))
    lines = _table(rows, right={0, 4, 5})
    lines.append(f"{len(listed)} candidate exit(s); the whole backbone: {cuts.total_macs:,} "
                 "MACs; --exits takes their numbers or (full) tensor names")
    return "\n".join(lines)


def format_result(result: Augmented, total_macs: int) -> str:
    """The closing table: one row per exit, then the final output."""
    rows = [("exit", "after tensor", "head", "MACs", "share", "accuracy", "agreement")]
    total = max(total_macs, 1)
    for r in result.exits:
        macs = r.point.macs + r.head.macs
        rows.append((r.output, r.point.label, r.head.shape.label, f"{macs:,}",
                     f"{macs / total:.1%}", _percent(r.accuracy), _percent(r.agreement)))
    rows.append(("final", result.sidecar["final_output"], "-", f"{total_macs:,}", "100.0%",
                 _percent(result.final_accuracy), "100.0%"))
    lines = _table(rows, right={3, 4, 5, 6})
    lines.append(f"held out: {result.heldout.count} inputs ({result.heldout.source}); "
                 "MACs: backbone up to the exit plus its head")
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _table(rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return lines
