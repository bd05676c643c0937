"""Helpers the tests share: build small ONNX models, compile them to C for the host, run."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from codegen.compiler.compile import CompiledModel, Options, compile_graph, compile_int8
from codegen.compiler.frontend import ModelSource, drop_zipmaps, fix_input_shapes, to_graph
from codegen.resources import data_dir
from codegen.run.hostrun import HostModel, build_host_library

_builds = itertools.count()


def single_node_model(op: str, inputs: dict[str, np.ndarray], constants: dict[str, np.ndarray]
                      | None = None, opset: int = 17, n_outputs: int = 1, **attrs
                      ) -> onnx.ModelProto:
    """A model of one node. `inputs` become graph inputs (their arrays give shape and dtype),
    `constants` initializers; the node reads them in the order given (inputs first). A name
    of "" in `constants` stands for an omitted optional input."""
    constants = constants or {}
    graph_inputs = [helper.make_tensor_value_info(name, _elem_type(value), value.shape)
                    for name, value in inputs.items()]
    initializers = [numpy_helper.from_array(value, name) for name, value in constants.items()
                    if name]
    outputs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op, [*inputs, *constants], outputs, name=f"{op.lower()}_node",
                            **attrs)
    graph = helper.make_graph([node], f"{op.lower()}_test", graph_inputs,
                              [helper.make_empty_tensor_value_info(o)
                               for o in outputs], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    # Let ONNX fill in the outputs' types, so the model passes onnx.checker like a real one.
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _elem_type(value: np.ndarray) -> int:
    return helper.np_dtype_to_tensor_dtype(value.dtype)


def compile_onnx(model: onnx.ModelProto, name: str = "m",
                 weights_in_ram: bool = False) -> CompiledModel:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    fix_input_shapes(model, {})
    drop_zipmaps(model)
    graph = to_graph(model, name)
    return compile_graph(graph, ModelSource(f"{name}.onnx", "0" * 64, []), "tests",
                         weights_in_ram=weights_in_ram)


def compile_onnx_int8(model: onnx.ModelProto, calibration: dict[str, np.ndarray] | None = None,
                      io: str = "int8", name: str = "m") -> CompiledModel:
    """The int8 path on an in-memory model: a float model is quantized by ONNX Runtime on
    `calibration` (input name -> (N, *shape) arrays); a QDQ/QOperator model is taken as is.
    With io="int8" the compiled model reads and writes the int8 tensors themselves."""
    from codegen.compiler.quant.calibrate import CalibrationData

    model = onnx.ModelProto.FromString(model.SerializeToString())
    fix_input_shapes(model, {})
    data = CalibrationData(calibration, None, "tests") if calibration is not None else None
    return compile_int8(model, name, ModelSource(f"{name}.onnx", "0" * 64, []),
                        Options(precision="int8", io=io), "tests", data)


def host_model(compiled: CompiledModel, workdir: Path) -> HostModel:
    """`compiled` built for the host and loaded."""
    return HostModel(build_host_library(compiled.files, workdir / f"build{next(_builds)}"),
                     compiled.info)


# The firmware's warnings for a Cortex-M4F, as the generated Makefile sets them (objects
# only: these builds check that generated C compiles, not that it links).
CORTEX_M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                   "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-c"]


def compile_for_cortex_m4(compiled: CompiledModel, folder: Path) -> None:
    """Write `compiled`'s files into `folder` and compile every C file of it with
    arm-none-eabi-gcc and CORTEX_M4_FLAGS; fails on any warning, skips without the
    compiler."""
    import pytest

    compiler = shutil.which("arm-none-eabi-gcc")
    if compiler is None:
        pytest.skip("arm-none-eabi-gcc is not installed (run `make setup`)")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in compiled.files.items():
        (folder / name).write_text(text)
    for name in sorted(n for n in compiled.files if n.endswith(".c")):
        result = subprocess.run(
            [compiler, *CORTEX_M4_FLAGS, f"-I{data_dir('firmware')}", f"-I{folder}",
             str(folder / name), "-o", str(folder / f"{name}.o")],
            capture_output=True, text=True)
        assert result.returncode == 0, f"{folder.name}/{name}:\n{result.stderr}"


def run_on_host(model: onnx.ModelProto, inputs: list[np.ndarray], workdir: Path,
                name: str = "m") -> list[np.ndarray]:
    """Compile `model` to C, build it for the host and run it on `inputs`."""
    compiled = compile_onnx(model, name)
    library = build_host_library(compiled.files, workdir / f"build{next(_builds)}")
    return HostModel(library, compiled.info).run(*inputs)


def run_reference(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The independent oracle: onnx.reference on the same model."""
    names = [i.name for i in model.graph.input]
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs, strict=True)))


def assert_matches_reference(model: onnx.ModelProto, inputs: list[np.ndarray], workdir: Path,
                             rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """Generated C (host build) against onnx.reference, and ariel's own numpy reference of
    the compiled graph against onnx.reference too."""
    from codegen.compiler.reference import run_graph

    expected = run_reference(model, inputs)
    compiled = compile_onnx(model)
    library = build_host_library(compiled.files, workdir / f"build{next(_builds)}")
    for label, actual in (("host C", HostModel(library, compiled.info).run(*inputs)),
                          ("numpy reference", run_graph(compiled.graph, inputs))):
        assert len(actual) == len(expected), label
        for got, want in zip(actual, expected, strict=True):
            got = np.asarray(got)
            assert got.shape == want.shape, (label, got.shape, want.shape)
            assert got.dtype == want.dtype, (label, got.dtype, want.dtype)
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=label)


def random_array(rng: np.random.Generator, shape, dtype=np.float32, low=-1.0, high=1.0
                 ) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), size=shape, dtype=dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


DAMAGED_NPZ = {  # kind -> what the one-line error says
    "object array": "holds Python objects, which ariel does not load",
    "member not .npy": "holds 'x', which is not an .npy array",
    "bad checksum": "Bad CRC-32",
}


def damaged_npz(path: Path, kind: str, array: np.ndarray) -> Path:
    """An .npz keyed 'x' that numpy cannot read back safely: `kind` is one of DAMAGED_NPZ."""
    import io
    import zipfile

    if kind == "object array":
        np.savez(path, x=np.array([{"a": 1}, None], dtype=object))
    elif kind == "member not .npy":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("x", array.tobytes())
    else:
        buffer = io.BytesIO()
        np.savez(buffer, x=array)
        data = bytearray(buffer.getvalue())
        data[data.find(b"\x93NUMPY") + 200] ^= 0xFF  # a byte of the array's data
        path.write_bytes(bytes(data))
    return path
