"""A user's debug build: the generated C compiles warning-free without optimization (-O0,
where GCC keeps R7 as the frame pointer, so inline assembly that needs every other register
cannot be allocated) and at -Og, on a Cortex-M4F and a Cortex-M7, in float and int8. The
digits CNN takes the kernels whose assembly uses the most registers."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.resources import data_dir
from tests.e2e.test_models_qemu import MODELS

CORES = {"cortex-m4": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16"],
         "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16"]}
# Helpers with register-hungry assembly (or asm with constant operands) on a DSP core; the
# test fails if the model stops reaching them, so that it keeps testing what it says.
# ariel_dot_4x2_s16_from runs ariel_dot_4x2_s16.
ASSEMBLY_HELPERS = {"int8": ["ariel_dot_3pairs_s8", "ariel_dot_4x2_s16_from",
                             "ariel_store_4x2_common"],
                    "float": ["ariel_row3_4x4_f32", "ariel_dot_4x4_f32"]}


@pytest.fixture(scope="module", params=["float", "int8"])
def built(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "digits"
    options = ["--precision", "int8", "--calib", "digits"] if request.param == "int8" else []
    result = CliRunner().invoke(main, ["build", str(MODELS / "digits_cnn.onnx"), *options,
                                       "--board", "nucleo-l4r5zi", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    return request.param, out


@pytest.mark.parametrize("level", ["-O0", "-Og"])
@pytest.mark.parametrize("core", sorted(CORES))
def test_generated_c_compiles_unoptimized(built, core, level, tmp_path):
    precision, out = built
    compiler = shutil.which("arm-none-eabi-gcc")
    if compiler is None:
        pytest.skip("arm-none-eabi-gcc is not installed (run `make setup`)")
    sources = sorted((out / "model").glob("*.c"))
    text = "".join(source.read_text() for source in sources)
    assert all(f"{helper}(" in text for helper in ASSEMBLY_HELPERS[precision])
    for source in sources:
        result = subprocess.run(
            [compiler, *CORES[core], "-mthumb", "-mfloat-abi=hard", "-std=c11", level,
             "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", f"-I{data_dir('firmware')}",
             f"-I{out / 'model'}", f"-I{out / 'firmware'}", "-c", str(source),
             "-o", str(tmp_path / f"{source.stem}.o")], capture_output=True, text=True)
        assert result.returncode == 0, f"{source.name} at {level} on {core}:\n{result.stderr}"
