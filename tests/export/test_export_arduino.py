"""The Arduino export built and run: the scikit-learn-exported digits MLP in int8 (int8
tensors in and out) exported with --format arduino, its example sketch built by Debian's
arduino-builder for an Arduino Mega 2560 (the AVR core is the only one Debian packages) and
run in simavr; the scores it prints equal `ariel simulate`'s on ariel's own Cortex-M4 build of
the same model on the same input (the example's zeros), value for value; so do those of a
sketch of the test's own on a random int8 input. The kernels' integer arithmetic is the
same on an 8-bit core with a 16-bit int."""

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.resources import data_dir

pytestmark = pytest.mark.arduino

MODEL = data_dir("examples") / "models" / "digits_mlp.onnx"
HARDWARE = ["/usr/share/arduino/hardware", "/usr/share/arduino-builder"]
# Debian's arduino-core-avr 1.8.7 does not compile with its gcc-avr 5.4 (WString.cpp uses
# DECIMAL_DIG, which that compiler's <float.h> leaves undefined in C++): the value for the
# AVR's 32-bit double is given on the command line, for the core's C++ only.
DEBIAN_CORE_FIX = "compiler.cpp.extra_flags=-DDECIMAL_DIG=9"


def _sketch_output(elf: Path, lines: int, timeout: float = 60.0) -> list[str]:
    """What the sketch prints on its serial port in simavr, up to its `us:` line (loop()
    never returns, so simavr is stopped then)."""
    process = subprocess.Popen(["simavr", "-m", "atmega2560", "-f", "16000000", str(elf)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for line in process.stderr:
            # simavr shows each UART line in colour, ending in "..".
            text = line.replace("\x1b[32m", "").replace("\x1b[0m", "").strip()
            text = text.removesuffix("..")
            if text:
                printed.append(text)
            if text.startswith("us:") or len(printed) > lines or time.monotonic() > deadline:
                break
    finally:
        process.kill()
        process.wait()
    return printed


def _build_sketch(sketch: Path, library: Path, build: Path) -> Path:
    build.mkdir()
    compiled = subprocess.run(
        ["arduino-builder", "-compile", *[a for h in HARDWARE for a in ("-hardware", h)],
         "-tools", "/usr/bin", "-libraries", str(library.parent), "-fqbn",
         "arduino:avr:mega:cpu=atmega2560", "-prefs", DEBIAN_CORE_FIX, "-build-path",
         str(build), str(sketch)], capture_output=True, text=True, timeout=600)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    # The library was found by its library.properties and compiled from its src/.
    assert (build / "libraries" / library.name / f"{library.name}.c.o").is_file()
    return build / f"{sketch.name}.elf"


# A sketch of the test's own beside the example: the library's model on a given input.
OWN_SKETCH = """\
#include <digits_mlp_model.h>

static uint8_t arena[DIGITS_MLP_ARENA_SIZE] __attribute__((aligned(DIGITS_MLP_ARENA_ALIGN)));
static const int8_t sample[DIGITS_MLP_INPUT0_COUNT] = {%s};

void setup()
{
    Serial.begin(115200);
    for (unsigned i = 0; i < DIGITS_MLP_INPUT0_COUNT; ++i) {
        DIGITS_MLP_INPUT0(arena)[i] = sample[i];
    }
    digits_mlp_run(arena);
    for (unsigned i = 0; i < DIGITS_MLP_OUTPUT0_COUNT; ++i) {
        Serial.println((long)DIGITS_MLP_OUTPUT0(arena)[i]);
    }
    Serial.println("us: 0");
}

void loop()
{
}
"""


def test_arduino_sketch_runs_in_simavr_as_simulate_does(tmp_path):
    runner = CliRunner()
    common = [str(MODEL), "--precision", "int8", "--calib", "digits", "--io", "int8"]
    library = tmp_path / "libraries" / "digits_mlp"
    result = runner.invoke(main, ["export", *common, "--format", "arduino", "-o",
                                  str(library)])
    assert result.exit_code == 0, result.output

    example = library / "examples" / "run_model" / "run_model.ino"
    printed = _sketch_output(_build_sketch(example, library, tmp_path / "example_build"), 12)
    assert printed and printed[-1].startswith("us:"), printed
    example_got = np.array([int(value) for value in printed[:-1]], dtype=np.int64)

    sample = np.random.default_rng(9).integers(-128, 128, size=64).astype(np.int8)
    own = tmp_path / "own" / "own.ino"
    own.parent.mkdir()
    own.write_text(OWN_SKETCH % ", ".join(str(v) for v in sample))
    printed = _sketch_output(_build_sketch(own, library, tmp_path / "own_build"), 12)
    assert printed and printed[-1].startswith("us:"), printed
    own_got = np.array([int(value) for value in printed[:-1]], dtype=np.int64)

    out = tmp_path / "build"
    result = runner.invoke(main, ["build", *common, "-o", str(out)])
    assert result.exit_code == 0, result.output
    x = np.stack([np.zeros(64, dtype=np.int8), sample]).reshape(2, 1, 64)
    np.save(tmp_path / "x.npy", x)
    result = runner.invoke(main, ["simulate", str(out), "--inputs", str(tmp_path / "x.npy"),
                                  "--outputs", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    want = np.load(tmp_path / "y.npy").reshape(2, -1)
    assert want.dtype == np.int8 and want.shape == (2, 10)
    np.testing.assert_array_equal(example_got, want[0].astype(np.int64))
    np.testing.assert_array_equal(own_got, want[1].astype(np.int64))
