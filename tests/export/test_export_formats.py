"""The Zephyr, PlatformIO and Arduino exports against the metadata rules those tools publish
(their required keys, the values they accept, the layout they look for), the plain C export's
contents, and an adaptive export's dispatcher. Neither Zephyr nor PlatformIO builds here
(Zephyr's SDK and PlatformIO's toolchains come from their own servers): Zephyr's module
rules are checked as written, PlatformIO's manifest by PlatformIO's own schema, and the
sources they would compile are compiled for the core by tests/e2e/test_hostile_names.py. The Arduino
library is also built and run (test_export_arduino.py)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from codegen.cli import main
from codegen.resources import data_dir

MODEL = data_dir("examples") / "models" / "digits_mlp.onnx"
PREFIX = "digits_mlp"


def _export(tmp_path: Path, fmt: str, *extra: str) -> Path:
    out = tmp_path / fmt
    result = CliRunner().invoke(main, ["export", str(MODEL), "--format", fmt, *extra, "-o",
                                       str(out)])
    assert result.exit_code == 0, result.output
    return out


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


SOURCES = {f"src/{name}" for name in (
    "ariel_ml.h", "ariel_products_f32.inc", "ariel_runtime.h", f"{PREFIX}.c", f"{PREFIX}.h",
    f"{PREFIX}_model.h", f"{PREFIX}_weights.c", f"{PREFIX}_weights.h")}


def test_c_export_is_the_sources_and_nothing_of_the_firmware(tmp_path):
    out = _export(tmp_path, "c")
    assert _files(out) == SOURCES | {"ariel.json"}
    for text in (p.read_text() for p in (out / "src").iterdir()):
        for harness in ("semihost.h", "sh_write", "Reset_Handler", "ariel_model.h",
                        "stack_usage.h", "int main("):
            assert harness not in text


# Zephyr's scripts/zephyr_module.py validates zephyr/module.yml with a pykwalify schema
# (METADATA_SCHEMA): a map whose keys are `name` (str) and `build` (a map of `cmake`, a folder
# relative to the module holding CMakeLists.txt, and `kconfig`, a file relative to it, among
# optional others); validate_setting() then requires those files to exist. A module's
# Kconfig symbols are what its CMakeLists.txt tests (CONFIG_<SYMBOL>).
ZEPHYR_TOP_KEYS = {"name", "build", "samples", "boards", "tests", "blobs", "security",
                   "package-managers"}
ZEPHYR_BUILD_KEYS = {"cmake", "kconfig", "cmake-ext", "kconfig-ext", "sysbuild-cmake",
                     "sysbuild-kconfig", "sysbuild-cmake-ext", "sysbuild-kconfig-ext",
                     "depends", "settings"}


def test_zephyr_module_follows_zephyrs_module_schema(tmp_path):
    out = _export(tmp_path, "zephyr")
    assert _files(out) == SOURCES | {"ariel.json", "zephyr/module.yml",
                                     "zephyr/CMakeLists.txt", "zephyr/Kconfig"}
    module = yaml.safe_load((out / "zephyr" / "module.yml").read_text())
    assert set(module) <= ZEPHYR_TOP_KEYS and isinstance(module["name"], str)
    build = module["build"]
    assert set(build) <= ZEPHYR_BUILD_KEYS
    assert all(isinstance(build[key], str) for key in ("cmake", "kconfig"))
    assert (out / build["cmake"] / "CMakeLists.txt").is_file()
    assert (out / build["kconfig"]).is_file()
    kconfig = (out / build["kconfig"]).read_text()
    symbol = re.search(r"^config (\w+)$", kconfig, re.MULTILINE).group(1)
    assert symbol == "ARIEL_DIGITS_MLP"  # apart from Zephyr's own symbols
    assert re.search(r"^\tbool \"", kconfig, re.MULTILINE)
    cmake = (out / build["cmake"] / "CMakeLists.txt").read_text()
    assert f"if(CONFIG_{symbol})" in cmake
    assert "zephyr_library_named(ariel_digits_mlp)" in cmake
    sources = re.findall(r'"\$\{SOURCES_DIR\}/([^"]+)"', cmake)
    assert sorted(sources) == [f"{PREFIX}.c", f"{PREFIX}_weights.c"]
    assert all((out / "src" / s).is_file() for s in sources)
    assert "-ffp-contract=off" in cmake and "-O2" in cmake

    # The Kconfig as Zephyr's build parses it (kconfiglib): one bool symbol, no warnings.
    import kconfiglib

    parsed = kconfiglib.Kconfig(str(out / build["kconfig"]), warn_to_stderr=False)
    assert [(s.name, s.type) for s in parsed.unique_defined_syms] == [
        (symbol, kconfiglib.BOOL)]
    assert parsed.warnings == []
    # The CMakeLists.txt as CMake runs it, with Zephyr's functions recording their arguments
    # (zephyr_library_named, zephyr_library_sources, zephyr_include_directories and
    # zephyr_library_compile_options, as Zephyr's cmake/modules/extensions.cmake names them).
    assert _zephyr_calls(out / build["cmake"], tmp_path, {}) == []
    calls = _zephyr_calls(out / build["cmake"], tmp_path, {f"CONFIG_{symbol}": "y",
                                                           "CONFIG_ARM": "y"})
    assert ("zephyr_library_named", "ariel_digits_mlp") in calls
    recorded_sources = [Path(a).resolve() for f, a in calls if f == "zephyr_library_sources"]
    assert recorded_sources == [(out / "src" / s).resolve() for s in sources]
    includes = [Path(a).resolve() for f, a in calls if f == "zephyr_include_directories"]
    assert includes == [(out / "src").resolve()]
    options = [a for f, a in calls if f == "zephyr_library_compile_options"]
    assert options == ["-O2", "-ffp-contract=off", "-mfp16-format=ieee"]


ZEPHYR_STUBS = """\
foreach(function zephyr_library_named zephyr_library_sources zephyr_include_directories
                 zephyr_library_compile_options)
  cmake_language(EVAL CODE "
    function(${function})
      foreach(argument IN LISTS ARGN)
        file(APPEND \\"${CALLS}\\" \\"${function}\\t\\${argument}\\n\\")
      endforeach()
    endfunction()")
endforeach()
include("${MODULE_CMAKE}")
"""


def _zephyr_calls(folder: Path, tmp_path: Path, config: dict[str, str]) -> list[tuple]:
    """The Zephyr functions the module's CMakeLists.txt calls, with each argument, when
    run in CMake's script mode under the Kconfig values `config`."""
    import shutil
    import subprocess

    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed (run `make setup`)")
    calls, stubs = tmp_path / "calls.txt", tmp_path / "stubs.cmake"
    calls.unlink(missing_ok=True)
    stubs.write_text(ZEPHYR_STUBS)
    defines = [f"-D{name}={value}" for name, value in config.items()]
    result = subprocess.run(["cmake", f"-DCALLS={calls}",
                             f"-DMODULE_CMAKE={folder / 'CMakeLists.txt'}", *defines, "-P",
                             str(stubs)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, result.stderr
    if not calls.exists():
        return []
    return [tuple(line.split("\t", 1)) for line in calls.read_text().splitlines()]


# PlatformIO's library.json (docs.platformio.org, "library.json" and its fields): `name`
# (required; at most 50 characters, a slug: a-z, digits and single dashes, neither first nor
# last), `version` (required; at most 20, Semantic Versioning), `description` (required; at
# most 255), optional `keywords`, `frameworks`, `platforms`, `headers`, and `build` with
# `srcDir` and `includeDir` (folders of the library) and `flags` (for the library's sources).
SEMVER = re.compile(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?")


def test_platformio_library_follows_library_json_rules(tmp_path):
    from platformio.package.manifest.parser import ManifestParserFactory
    from platformio.package.manifest.schema import ManifestSchema

    out = _export(tmp_path, "platformio")
    assert _files(out) == SOURCES | {"ariel.json", "library.json"}
    # PlatformIO's own parser and schema (what `pio pkg pack` and its registry apply; they
    # raise ManifestValidationError on a missing or wrong field).
    parsed = ManifestParserFactory.new_from_file(str(out / "library.json")).as_dict()
    assert ManifestSchema().load_manifest(parsed)["name"] == "digits-mlp"
    manifest = json.loads((out / "library.json").read_text())
    name = manifest["name"]
    assert len(name) <= 50 and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name)
    assert len(manifest["version"]) <= 20 and SEMVER.fullmatch(manifest["version"])
    assert 0 < len(manifest["description"]) <= 255
    build = manifest["build"]
    assert (out / build["srcDir"]).is_dir() and (out / build["includeDir"]).is_dir()
    assert (out / build["includeDir"] / manifest["headers"]).is_file()
    assert build["flags"] == ["-O2", "-ffp-contract=off"]


# The Arduino library specification (1.5 format, rev. 2.2): library.properties in the root
# with the keys Arduino's IDE requires (name, version, author, maintainer, sentence,
# paragraph, url: its LIBRARY_MANDATORY_PROPERTIES) and the others the specification names
# (category from its list, architectures, includes); the name pattern and length arduino-lint
# checks (letters, digits, spaces, '_', '.', '-', a letter or digit first, at most 63, not
# starting with "Arduino"); sources in src/; each example a folder holding a sketch of the
# same name (.ino).
ARDUINO_REQUIRED = {"name", "version", "author", "maintainer", "sentence", "paragraph", "url"}
ARDUINO_CATEGORIES = {"Display", "Communication", "Signal Input/Output", "Sensors",
                      "Device Control", "Timing", "Data Storage", "Data Processing", "Other",
                      "Uncategorized"}


def _properties(path: Path) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines()
             if line and not line.startswith("#")]
    assert all(len(pair) == 2 for pair in pairs)
    return dict(pairs)


def test_arduino_library_follows_the_library_specification(tmp_path):
    out = _export(tmp_path, "arduino")
    assert _files(out) == SOURCES | {"ariel.json", "library.properties",
                                     "examples/run_model/run_model.ino"}
    properties = _properties(out / "library.properties")
    assert ARDUINO_REQUIRED <= set(properties)
    name = properties["name"]
    assert len(name) <= 63 and not name.lower().startswith("arduino")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _.\-]*", name)
    assert SEMVER.fullmatch(properties["version"])
    assert properties["category"] in ARDUINO_CATEGORIES
    assert properties["architectures"] == "*"
    assert (out / "src" / properties["includes"]).is_file()
    for example in (out / "examples").iterdir():
        assert (example / f"{example.name}.ino").is_file()
    sketch = (out / "examples" / "run_model" / "run_model.ino").read_text()
    assert f"#include <{PREFIX}_model.h>" in sketch and f"{PREFIX}_run(arena)" in sketch


def test_arduino_names_leave_arduinos_own_alone():
    from codegen.export.formats import arduino_name, platformio_name

    assert arduino_name("arduino_kws") == "m_arduino_kws"
    assert arduino_name("kws") == "kws"
    assert platformio_name("kws__ds_cnn_") == "kws-ds-cnn"


def test_adaptive_export_carries_the_dispatcher(tmp_path):
    data = tmp_path / "calib.npy"
    from codegen.datasets import digits_split

    np.save(data, digits_split()[0][:64].reshape(64, 1, 64).astype(np.float32))
    out = _export(tmp_path, "c", "--precision", "ari", "--calib", str(data), "--threshold",
                  "0.25")
    assert {"src/ari.c", "src/ari.h", "src/ari_thresholds.c", "src/ari_model.h"} <= _files(out)
    header = (out / "src" / "ari_model.h").read_text()
    assert "void ari_run(uint8_t *arena);" in header
    assert "stage 0: " in header and "threshold 0.25" in header
    # The answering stage's scores, its index and its margin.
    assert re.search(r"output 1 'stage': int32 \[1\]", header)
    assert re.search(r"output 2 'margin': float32 \[1\]", header)


def test_adaptive_export_needs_its_thresholds(tmp_path):
    result = CliRunner().invoke(main, ["export", str(MODEL), "--precision", "ari", "--calib",
                                       "digits", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "needs its thresholds" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,message", [
    (["--core", "cortex-m0plus", "--fpu", "fpv4-sp-d16"], "a cortex-m0plus has none"),
    (["--board", "mps2-an386", "--board-file", "x.toml"], "not both"),
    (["--fixed-timing"], "--fixed-timing has no effect on a float build"),
])
def test_export_refuses_what_cannot_be(tmp_path, args, message):
    result = CliRunner().invoke(main, ["export", str(MODEL), *args, "-o", str(tmp_path / "o")])
    assert result.exit_code != 0 and message in result.output


def test_export_lists_zero_words_unless_fixed_timing(tmp_path):
    """digits_mlp's first layer reads the image's pixels, half of them 0: on a board whose
    flash has wait states the int8 export lists its nonzero words, and builds the dense loop
    with --fixed-timing."""
    listed = {}
    for extra in ([], ["--fixed-timing"]):
        out = _export(tmp_path / str(len(extra)), "c", "--precision", "int8", "--calib",
                      "digits", "--board", "nucleo-l4r5zi", *extra)
        source = (out / "src" / f"{PREFIX}.c").read_text()
        listed[bool(extra)] = "ariel_dot_3pairs_listed_s8" in source
    assert listed == {False: True, True: False}


def test_export_keeps_the_users_files(tmp_path):
    """An export folder is an ariel output like any other: a second export replaces only
    ariel's files, and a file of the user's where the export writes its own stops it."""
    out = _export(tmp_path, "cmake")
    (out / "notes.txt").write_text("mine")
    _export(tmp_path, "cmake")
    assert (out / "notes.txt").read_text() == "mine"
    (out / "src" / f"{PREFIX}.c").write_text("edited")
    result = CliRunner().invoke(main, ["export", str(MODEL), "--format", "cmake", "-o",
                                       str(out)])
    assert result.exit_code == 1 and "changed since ariel wrote them" in result.output
    assert (out / "src" / f"{PREFIX}.c").read_text() == "edited"


def test_static_arena_export_runs_on_the_host_as_onnxruntime_does(tmp_path):
    """--static-arena: the library defines <prefix>_arena; a main of the test's own that
    uses it, compiled with the exported sources by the host's gcc, gives onnxruntime's
    scores for real digits."""
    import shutil
    import subprocess

    import onnxruntime

    from codegen.datasets import digits_split

    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (run `make setup`)")
    out = _export(tmp_path, "c", "--static-arena")
    assert "src/digits_mlp_arena.c" in _files(out)
    header = (out / "src" / f"{PREFIX}_model.h").read_text()
    assert f"extern uint8_t {PREFIX}_arena[DIGITS_MLP_ARENA_SIZE];" in header
    x = digits_split()[2][:3].reshape(3, 64).astype(np.float32)
    rows = ", ".join("{" + ", ".join(float(v).hex() + "f" for v in row) + "}" for row in x)
    (out / "main.c").write_text(
        '#include <stdio.h>\n#include "digits_mlp_model.h"\n'
        f"static const float x[3][64] = {{{rows}}};\n"
        "int main(void) {\n"
        "    for (int n = 0; n < 3; ++n) {\n"
        "        for (int i = 0; i < 64; ++i) DIGITS_MLP_INPUT0(digits_mlp_arena)[i] = x[n][i];\n"
        "        digits_mlp_run(digits_mlp_arena);\n"
        "        for (unsigned k = 0; k < DIGITS_MLP_OUTPUT0_COUNT; ++k)\n"
        "            printf(\"%a \", (double)DIGITS_MLP_OUTPUT0(digits_mlp_arena)[k]);\n"
        "        printf(\"\\n\");\n    }\n    return 0;\n}\n")
    sources = [str(p) for p in sorted((out / "src").glob("*.c"))] + [str(out / "main.c")]
    built = subprocess.run(["gcc", "-std=c11", "-O2", "-ffp-contract=off", "-Wall", "-Wextra",
                            "-Werror", f"-I{out / 'src'}", *sources, "-lm", "-o",
                            str(tmp_path / "run")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    printed = subprocess.run([str(tmp_path / "run")], capture_output=True, text=True,
                             check=True).stdout.split("\n")[:3]
    got = np.array([[float.fromhex(v) for v in line.split()] for line in printed])
    session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    want = np.stack([session.run(None, {name: row.reshape(1, 64)})[0].reshape(-1)
                     for row in x])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
