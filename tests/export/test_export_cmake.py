"""The exported library in a user's own firmware: the KWS DS-CNN exported in int8 (and the
digits CNN in float) with --format cmake, built by CMake with arm-none-eabi-gcc beside a
main.c, start-up and linker script of the test's own (tests/export/user_firmware: nothing of
ariel's harness), run in QEMU, gives the outputs `ariel simulate` gives on ariel's own build
of the same model, bit for bit, within the stack the exported header states; and the
header's figures are the ones the model has."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.resources import data_dir

pytestmark = pytest.mark.qemu

MODEL = data_dir("examples") / "models" / "kws_dscnn.onnx"
USER_FIRMWARE = Path(__file__).parent / "user_firmware"


def _kws_data(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Calibration and test inputs over the MFCC range the model's int8 release states (as
    tests/e2e/test_int8_qemu.py: no speech data installs offline)."""
    values = np.random.default_rng(3).uniform(-123, 26, size=(52, 1, 1, 49, 10))
    values = values.astype(np.float32)
    np.save(tmp_path / "calib.npy", values[:48])
    return tmp_path / "calib.npy", values[48:]


def _inputs_header(x: np.ndarray) -> str:
    rows = ",\n".join("    {" + ", ".join(map(_c_float, sample.ravel())) + "}" for sample in x)
    return (f"#define INPUT_COUNT {len(x)}u\n"
            f"static const float inputs[{len(x)}][{x[0].size}] = {{\n{rows}\n}};\n")


def _c_float(value: np.float32) -> str:
    """A float literal that reads back to exactly `value` (C99 hexadecimal)."""
    return float(value).hex() + "f"


BINDING = """\
#include "{prefix}_model.h"
#define MODEL_ARENA_SIZE {guard}_ARENA_SIZE
#define MODEL_ARENA_ALIGN {guard}_ARENA_ALIGN
#define MODEL_INPUT0 {guard}_INPUT0
#define MODEL_INPUT0_BYTES {guard}_INPUT0_BYTES
#define MODEL_OUTPUT0 {guard}_OUTPUT0
#define MODEL_OUTPUT0_BYTES {guard}_OUTPUT0_BYTES
#define MODEL_STACK_BYTES {guard}_STACK_BYTES
#define model_run {prefix}_run
"""


def _model_case(name: str, tmp_path: Path) -> tuple[Path, list[str], np.ndarray]:
    """The model, its precision options and a few test inputs: the KWS DS-CNN in int8 (the
    issue's case), and the digits CNN in float (the float kernels, whose results depend on
    the flags the build files carry)."""
    if name == "kws_dscnn":
        calibration, x = _kws_data(tmp_path)
        return MODEL, ["--precision", "int8", "--calib", str(calibration)], x
    from codegen.datasets import digits_split

    x = digits_split()[2][:4][:, None].astype(np.float32)
    return data_dir("examples") / "models" / "digits_cnn.onnx", [], x


@pytest.mark.parametrize("name", ["kws_dscnn", "digits_cnn"])
def test_cmake_export_runs_in_a_users_firmware_as_simulate_does(name, tmp_path):
    for tool in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (run `make setup`)")
    model, options, x = _model_case(name, tmp_path)
    runner = CliRunner()
    exported = tmp_path / "library"
    result = runner.invoke(main, ["export", str(model), *options, "--core", "cortex-m4",
                                  "--format", "cmake", "-o", str(exported)])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*")
                  if p.is_file()) == [
        "CMakeLists.txt", "ariel.json", "cmake/arm-none-eabi.cmake", "src/ariel_ml.h",
        "src/ariel_products_f32.inc", "src/ariel_runtime.h", f"src/{name}.c",
        f"src/{name}.h", f"src/{name}_model.h", f"src/{name}_weights.c",
        f"src/{name}_weights.h"]

    # ariel's own build of the same model, and its outputs in QEMU.
    build = tmp_path / "build"
    result = runner.invoke(main, ["build", str(model), *options, "-o", str(build)])
    assert result.exit_code == 0, result.output
    np.save(tmp_path / "x.npy", x)
    result = runner.invoke(main, ["simulate", str(build), "--inputs", str(tmp_path / "x.npy"),
                                  "--outputs", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    want = np.load(tmp_path / "y.npy").astype(np.float32)

    # The user's firmware: configured with the export's toolchain-file example, built by
    # CMake, run in QEMU.
    project = tmp_path / "user"
    shutil.copytree(USER_FIRMWARE, project)
    binary = tmp_path / "user_build"
    binary.mkdir()
    (binary / "inputs.h").write_text(_inputs_header(x))
    (binary / "model_binding.h").write_text(BINDING.format(prefix=name, guard=name.upper()))
    configure = subprocess.run(
        ["cmake", "-S", str(project), "-B", str(binary),
         f"-DCMAKE_TOOLCHAIN_FILE={exported / 'cmake' / 'arm-none-eabi.cmake'}",
         f"-DMODEL_DIR={exported}", f"-DMODEL_NAME={name}"],
        capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    make = subprocess.run(["cmake", "--build", str(binary), "--verbose"], capture_output=True,
                          text=True)
    assert make.returncode == 0, make.stdout + make.stderr
    # The library's sources were compiled with the flags the kernels rely on.
    library_compile = next(line for line in make.stdout.splitlines()
                           if f"{name}.c" in line and "arm-none-eabi-gcc" in line)
    for flag in ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O2",
                 "-ffp-contract=off", "-std=c11"):
        assert flag in library_compile.split(), flag
    # "No state of its own", as the header says: the library defines no writable data.
    archive = binary / "model" / f"lib{name}.a"
    symbols = subprocess.run(["arm-none-eabi-nm", str(archive)], capture_output=True,
                             text=True, check=True).stdout
    assert not re.findall(r"^[0-9a-f]+ [BbDdCc] (\S+)$", symbols, re.MULTILINE)
    assert re.search(rf" T {name}_run$", symbols, re.MULTILINE)
    run = subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial",
         "none", "-semihosting-config", "enable=on,target=native", "-kernel",
         str(binary / "firmware.elf")], capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    # QEMU writes what SYS_WRITE0 prints to its standard error.
    lines = [line for line in run.stderr.splitlines() if re.fullmatch(r"[0-9a-f]+", line)]
    got = np.array([[int(line[i:i + 8], 16) for i in range(0, len(line), 8)]
                    for line in lines], dtype=np.uint32).view(np.float32)
    assert got.size == want.size and len(lines) == len(x)
    assert got.reshape(want.shape).tobytes() == want.tobytes()  # bit for bit

    # The stack the header states holds what the runs used below the run function's entry
    # (measured by painting, tests/export/user_firmware/main.c), and is not far above it.
    header = (exported / "src" / f"{name}_model.h").read_text()
    stated = int(re.search(rf"^#define {name.upper()}_STACK_BYTES (\d+)u$", header,
                           re.MULTILINE)[1])
    used = int(re.search(r"^stack ([0-9a-f]{8})$", run.stderr, re.MULTILINE)[1], 16)
    assert 0 < used <= stated, (used, stated)
    assert used >= stated * 0.8, (used, stated)


def test_header_states_the_models_figures(tmp_path):
    """The public header's macros are the compiled model's (ariel.json), and the stack it
    states is what the library's deepest chain needs."""
    import json

    calibration, _ = _kws_data(tmp_path)
    out = tmp_path / "lib"
    result = CliRunner().invoke(main, ["export", str(MODEL), "--precision", "int8", "--calib",
                                       str(calibration), "--io", "int8", "-o", str(out)])
    assert result.exit_code == 0, result.output
    metadata = json.loads((out / "ariel.json").read_text())
    info, export = metadata["model_info"], metadata["export"]
    header = (out / "src" / "kws_dscnn_model.h").read_text()

    def macro(name: str) -> str:
        return re.search(rf"^#define {name} (.+)$", header, re.MULTILINE).group(1)

    assert macro("KWS_DSCNN_ARENA_SIZE") == f"{info['arena_size']}u"
    assert macro("KWS_DSCNN_ARENA_ALIGN") == "16u"
    assert macro("KWS_DSCNN_STACK_BYTES") == f"{export['stack_bytes']}u"
    assert export["stack_chain"][0] == "kws_dscnn_run" and export["stack_bytes"] > 0
    tensor = info["inputs"][0]
    assert macro("KWS_DSCNN_INPUT0_SHAPE") == "{ 1, 1, 49, 10 }"
    assert macro("KWS_DSCNN_INPUT0_CTYPE") == "int8_t"
    assert macro("KWS_DSCNN_INPUT0_ZERO_POINT") == str(tensor["zero_point"])
    assert np.float32(float(macro("KWS_DSCNN_INPUT0_SCALE").rstrip("f"))) == \
        np.float32(tensor["scale"])
    assert macro("KWS_DSCNN_OUTPUT0_OFFSET") == f"{info['outputs'][0]['offset']}u"
    assert "#include \"ariel" not in header  # the caller needs nothing of ariel's

    # The README's main.c is this file, and it compiles against the header warning-free.
    main_c = Path(__file__).parent / "readme_main.c"
    assert main_c.read_text() in (Path(data_dir("examples")).parent / "README.md").read_text()
    compiled = subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
         "-mfloat-abi=hard", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
         "-Wdouble-promotion", f"-I{out / 'src'}", "-c", str(main_c), "-o",
         str(tmp_path / "main.o")], capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
