"""The build-system files of each export format, around the sources in src/:

- c: the sources alone, for any build system;
- cmake: CMakeLists.txt with a static library target, and cmake/arm-none-eabi.cmake, an
  example toolchain file for the core exported for;
- zephyr: a Zephyr module (zephyr/module.yml, zephyr/CMakeLists.txt, zephyr/Kconfig);
- platformio: a PlatformIO library (library.json);
- arduino: an Arduino library (library.properties, src/, an examples/ sketch).

Each carries the flags the kernels rely on where its build system can (-O2, no fused
multiply-add, half-precision floats); Arduino's cannot, and its sketch says so. The only
name from the model that reaches these files is the model's C prefix (letters, digits and
underscores, codegen/compiler/c.py's c_identifier)."""

from __future__ import annotations

import json
from pathlib import Path

from codegen import __version__
from codegen.compiler.c import environment
from codegen.target.library_stack import KERNEL_FLAGS

FORMATS = ("c", "cmake", "zephyr", "platformio", "arduino")
# What PlatformIO's library.json carries for the library's own sources (build.flags).
PLATFORMIO_FLAGS = ["-O2", "-ffp-contract=off"]
ARDUINO_EXAMPLE = "run_model"  # examples/<name>/<name>.ino: the folder and sketch agree


def write_format(fmt: str, folder: Path, info, sources: list[str], target) -> None:
    """Write format `fmt`'s files into `folder` (the export's staging folder), for the
    model `info` (ModelInfo) whose C sources are src/`sources`, compiled for `target`."""
    prefix = info.prefix
    context = {"version": __version__, "prefix": prefix, "guard": prefix.upper(),
               "sources": sources, "arch": target.arch_flags, "run": f"{prefix}_run",
               "float_output": info.outputs[0].dtype == "float32"}
    writers = {"c": lambda: None, "cmake": lambda: _cmake(folder, context),
               "zephyr": lambda: _zephyr(folder, context),
               "platformio": lambda: _platformio(folder, context),
               "arduino": lambda: _arduino(folder, context)}
    writers[fmt]()


def _render(name: str, context: dict) -> str:
    return environment().get_template(f"export/{name}.j2").render(context)


def _cmake(folder: Path, context: dict) -> None:
    (folder / "CMakeLists.txt").write_text(_render("CMakeLists.txt", context))
    (folder / "cmake").mkdir()
    (folder / "cmake" / "arm-none-eabi.cmake").write_text(_render("arm-none-eabi.cmake",
                                                                  context))


def _zephyr(folder: Path, context: dict) -> None:
    # Zephyr's own Kconfig symbols (ARM, ...) and CMake targets (kernel, app, zephyr, ...)
    # share one namespace with a module's: the model's go under ARIEL_ and ariel_, which no
    # model's prefix starts with (c_identifier).
    context = {**context, "symbol": f"ARIEL_{context['guard']}",
               "library": f"ariel_{context['prefix']}"}
    module = folder / "zephyr"
    module.mkdir()
    (module / "module.yml").write_text(_render("zephyr_module.yml", context))
    (module / "CMakeLists.txt").write_text(_render("zephyr_CMakeLists.txt", context))
    (module / "Kconfig").write_text(_render("Kconfig", context))


def platformio_name(prefix: str) -> str:
    """PlatformIO's library names are slugs: lower-case letters, digits and single dashes."""
    return "-".join(part for part in prefix.split("_") if part)


def _platformio(folder: Path, context: dict) -> None:
    prefix = context["prefix"]
    manifest = {
        "name": platformio_name(prefix),
        "version": __version__,
        "description": f"The model {prefix}, compiled to C by ariel: call {prefix}_run() on "
                       f"an arena of {context['guard']}_ARENA_SIZE bytes "
                       f"({prefix}_model.h).",
        "keywords": ["ariel", "onnx", "tinyml", "neural network"],
        "frameworks": "*",
        "platforms": "*",
        "headers": f"{prefix}_model.h",
        "build": {"srcDir": "src", "includeDir": "src", "flags": PLATFORMIO_FLAGS},
    }
    (folder / "library.json").write_text(json.dumps(manifest, indent=2) + "\n")


def arduino_name(prefix: str) -> str:
    """Arduino reserves library names starting with 'Arduino' for its own."""
    return f"m_{prefix}" if prefix.lower().startswith("arduino") else prefix


def _arduino(folder: Path, context: dict) -> None:
    (folder / "library.properties").write_text(_render(
        "library.properties", {**context, "name": arduino_name(context["prefix"])}))
    sketch = folder / "examples" / ARDUINO_EXAMPLE
    sketch.mkdir(parents=True)
    (sketch / f"{ARDUINO_EXAMPLE}.ino").write_text(_render(
        "sketch.ino", {**context, "flags": " ".join(KERNEL_FLAGS)}))
