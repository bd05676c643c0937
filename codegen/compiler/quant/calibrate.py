"""Calibration: real input data in, and ONNX Runtime's static quantizer turning a float model
into a QDQ model (per-channel symmetric int8 weights, per-tensor asymmetric int8
activations). A well-kept calibrator rather than one of our own: ONNX Runtime's is what
most users will compare against, and its MinMax, Entropy and Percentile methods are
documented and maintained."""

from __future__ import annotations

import io
import logging
import tempfile
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from codegen.arrays import as_batch, load_arrays, require_finite
from codegen.compiler.onnxrun import in_child, integer_divisions
from codegen.compiler.quant.recurrent import quantize_recurrent_weights
from codegen.errors import ArielError, UnsupportedError

METHODS = ("minmax", "entropy", "percentile")
BUILTIN = ("digits", "toycar")


@dataclass
class CalibrationData:
    inputs: dict[str, np.ndarray]  # model input name -> (N, *shape)
    labels: np.ndarray | None
    source: str

    @property
    def count(self) -> int:
        return len(next(iter(self.inputs.values())))


def load_calibration(spec: str, model_inputs: list[tuple[str, tuple[int, ...], str]],
                     what: str = "calibration data") -> CalibrationData:
    """Read calibration data: a .npy of inputs, an .npz with `x` (and optional `y` labels)
    or one array per input name, or a built-in real data set (digits, toycar). `what` names
    the data in errors (other commands read their data the same way)."""
    if spec in BUILTIN:
        arrays, labels = _builtin(spec, model_inputs)
        source = f"built-in data set '{spec}'"
    else:
        arrays, labels = _from_file(Path(spec), model_inputs, what)
        source = f"'{spec}'"
    batches = {}
    for name, shape, dtype in model_inputs:
        if name not in arrays:
            raise ArielError(f"{what} {source} has nothing for input '{name}'")
        batch = as_batch(arrays[name], name, shape, dtype, what=f"{what} for input")
        if len(batch) == 0:
            raise ArielError(f"{what} {source} is empty")
        require_finite(arrays[name], f"{what} for input '{name}'")
        batches[name] = batch
    counts = {len(b) for b in batches.values()}
    if len(counts) != 1:
        raise ArielError(f"{what} {source} holds different numbers of samples per "
                         f"input: {sorted(counts)}")
    if labels is not None and len(labels) != counts.pop():
        raise ArielError(f"{what} {source}: {len(labels)} labels for "
                         f"{len(next(iter(batches.values())))} inputs")
    return CalibrationData(batches, labels, source)


def _builtin(name: str, model_inputs) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    from codegen.datasets import digits_split, toycar_windows

    if len(model_inputs) != 1:
        raise ArielError(f"the built-in data set '{name}' fits models with one input")
    input_name, shape, _ = model_inputs[0]
    if name == "digits":
        x, labels = digits_split()[:2]  # the training split: the test split stays held out
    else:
        x, labels = toycar_windows(), None
    per_sample = int(np.prod(x.shape[1:]))
    if per_sample != int(np.prod(shape)):
        raise ArielError(f"the built-in data set '{name}' has {per_sample} values per sample; "
                         f"the model's input '{input_name}' takes {list(shape)}")
    return {input_name: x.reshape(len(x), *shape)}, labels


def _from_file(path: Path, model_inputs, what: str
               ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    if not path.is_file():
        raise ArielError(f"{what} '{path}' not found; give a .npy or .npz file or "
                         f"a built-in data set ({', '.join(BUILTIN)})")
    loaded = load_arrays(path, what)
    if isinstance(loaded, np.ndarray):
        if len(model_inputs) != 1:
            raise ArielError(f"the model has several inputs: give {what} as an .npz "
                             "with one array per input name")
        return {model_inputs[0][0]: loaded}, None
    arrays = dict(loaded)
    labels = arrays.pop("y", None)
    if "x" in arrays and len(model_inputs) == 1:
        arrays = {model_inputs[0][0]: arrays["x"]}
    return arrays, labels


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over our arrays, one sample at a time."""

    def __init__(self, data: CalibrationData):
        self.samples = iter(range(data.count))
        self.data = data

    def get_next(self):
        index = next(self.samples, None)
        if index is None:
            return None
        return {name: batch[index] for name, batch in self.data.inputs.items()}

    def rewind(self):
        self.samples = iter(range(self.data.count))


def quantize_float_model(model: onnx.ModelProto, data: CalibrationData, method: str = "minmax",
                         recurrent_weights: bool = True) -> onnx.ModelProto:
    """The QDQ model ONNX Runtime's quantize_static makes of `model` on `data` (in a child
    process when the model has an integer division, which can trap: codegen/compiler/
    onnxrun.py), and (unless `recurrent_weights` is False, which leaves them float islands)
    the recurrent layers' weights in int8 (quant/recurrent.py)."""
    dividing = integer_divisions(model)
    if dividing:
        names = list(data.inputs)

        def write(folder: Path) -> dict:
            onnx.save(model, folder / "float.onnx")
            np.savez(folder / "calibration.npz", *[data.inputs[name] for name in names])
            return {"inputs": names, "method": method, "source": data.source}

        quantized = in_child("quantize", write, lambda folder: onnx.load(folder / "qdq.onnx"),
                             "calibrating the quantization", dividing)
    else:
        quantized = _quantize(model, data, method)
    # ONNX Runtime's quantizer leaves recurrent layers in float, weights included: ariel's
    # own step.
    return quantize_recurrent_weights(quantized) if recurrent_weights else quantized


def quantize_job(folder: Path, request: dict) -> None:
    """The child's side of quantize_float_model."""
    with np.load(folder / "calibration.npz", allow_pickle=False) as saved:
        inputs = {name: saved[f"arr_{i}"] for i, name in enumerate(request["inputs"])}
    quantized = _quantize(onnx.load(folder / "float.onnx"),
                          CalibrationData(inputs, None, request["source"]), request["method"])
    onnx.save(quantized, folder / "qdq.onnx")


def _quantize(model: onnx.ModelProto, data: CalibrationData, method: str) -> onnx.ModelProto:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(data)
    # Per-channel QDQ needs QuantizeLinear's `axis`, which arrived in opset 13; older models
    # are converted first (else the quantizer writes an invalid model).
    model = _at_least_opset_13(model)
    with tempfile.TemporaryDirectory(prefix="ariel-quant-") as folder, _quiet_onnxruntime():
        source, target = Path(folder) / "float.onnx", Path(folder) / "qdq.onnx"
        onnx.save(model, source)
        try:
            quantize_static(source, target, reader, quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, calibrate_method=methods[method],
                            extra_options={"ActivationSymmetric": False,
                                           "WeightSymmetric": True})
        except Exception as exc:  # the quantizer raises many types for models it cannot take
            raise UnsupportedError(f"ONNX Runtime's quantizer could not quantize the model: "
                                   f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from exc
        return onnx.load(target)


def _at_least_opset_13(model: onnx.ModelProto) -> onnx.ModelProto:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset >= 13:
        return model
    try:
        return onnx.version_converter.convert_version(model, 13)
    except Exception as exc:
        raise UnsupportedError(f"the model's opset {opset} could not be converted to opset 13 "
                               f"for per-channel quantization: {exc}") from exc


@contextmanager
def _quiet_onnxruntime():
    """The quantizer logs advice on the root logger and prints its calibrators' progress;
    ariel reports on its own."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
