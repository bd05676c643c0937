"""Idempotent resumption, proven on the host: the intermittent firmware (its harness, the
checkpoint runtime and the generated model, compiled with gcc) is cut before every single
word store into NVM in turn, including inside the saves, the progress records and flash
erases, and before later stores after each reboot; every run ends with output.bin equal,
byte for byte, to the uninterrupted run's, which equals ariel's integer reference.

A cut between two NVM stores leaves the NVM as a cut right after the first of them does, and
RAM is lost either way (the test fills the arena with garbage), so these runs reach every
state a cut at any instruction can leave. The power-cut emulator (`ariel simulate
--power-cuts`) does the same on the Cortex-M itself."""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codegen.compiler.c import environment
from codegen.compiler.checkpoint import PowerOptions
from codegen.compiler.compile import Options, compile_model
from codegen.compiler.quant.report import quantize_inputs
from codegen.compiler.reference import run_graph
from codegen.datasets import digits_split
from codegen.resources import data_dir
from codegen.run.simulate import write_inputs
from codegen.target.boards import get_board
from codegen.target.firmware import generated_header

HERE = Path(__file__).parent
FIRMWARE = data_dir("firmware")
MODELS = data_dir("examples") / "models"
CFLAGS = ["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-DARIEL_NVM_CUT_HOOK"]




def _compile(folder: Path, compiled) -> Path:
    """Objects for everything but the driver (whose main stays main), then the link."""
    model = folder / "model"
    objects = []
    for source in [*sorted(model.glob("*.c")), FIRMWARE / "ariel_nvm.c",
                   FIRMWARE / "console_numbers.c", FIRMWARE / "harness_intermittent.c",
                   HERE / "host_cuts.c"]:
        renamed = ["-Dmain=ariel_firmware_main"] if source.name == "harness_intermittent.c" \
            else []
        obj = folder / f"{source.stem}.o"
        result = subprocess.run(["gcc", *CFLAGS, *renamed, f"-I{model}", f"-I{FIRMWARE}",
                                 "-c", str(source), "-o", str(obj)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr  # warning-free, -Werror
        objects.append(str(obj))
    program = folder / "host_cuts"
    subprocess.run(["gcc", *objects, "-o", str(program)], check=True)
    return program


def cut_runs(tmp_path: Path, board: str, strategy: str, first: tuple[int, int, int],
             every: int, count: int = 2, on_period: int | None = None
             ) -> tuple[int, int, int]:
    folder = tmp_path / f"{board}-{strategy}-{first[1]}-{first[2]}-{every}-{on_period}"
    model = folder / "model"
    model.mkdir(parents=True)
    b = get_board(board)
    power = PowerOptions(b.nvm, b.clock_hz, strategy, on_period, board=b.name)
    compiled = compile_model(MODELS / "digits_cnn.onnx",
                             Options(precision="int8", calibration="digits", io="int8",
                                     power=power))
    if on_period is not None:  # the on-period is shorter than the second convolution
        assert compiled.checkpoints.bands, "no layer split into bands"
    for name, text in compiled.files.items():
        (model / name).write_text(text)
    info = compiled.info
    (model / "ariel_model.h").write_text(environment().get_template(
        "firmware/ariel_model.h.j2").render(header=generated_header(compiled.files, info),
                                            prefix=info.prefix, guard=info.prefix.upper(),
                                            intermittent=True))
    program = _compile(folder, compiled)
    x = digits_split()[2][:count]
    graph = compiled.graph
    q = quantize_inputs(graph, [x.reshape(count, *graph.tensor(graph.inputs[0]).shape)])[0]
    write_inputs(folder, [q])
    result = subprocess.run([str(program), *map(str, first), str(every)], cwd=folder,
                            capture_output=True, text=True, timeout=600)
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, summary
    expected = np.stack([run_graph(graph, [sample])[0] for sample in q])
    assert (folder / "output.bin").read_bytes() == expected.tobytes()
    stores, cuts, boots = map(int, re.fullmatch(r"stores (\d+) cuts (\d+) boots (\d+)",
                                                 summary).groups())
    return stores, cuts, boots


@pytest.mark.parametrize("strategy", ["live", "arena", "restart"])
def test_a_cut_before_any_store_on_fram_changes_nothing(tmp_path, strategy):
    stores, cuts, boots = cut_runs(tmp_path, "nucleo-l4r5zi-fram", strategy, (1, 10**9, 1), 0)
    assert cuts == stores and boots == 2 * cuts  # every store, one reboot each


def test_cuts_on_flash_inside_erases_and_programs(tmp_path):
    # 4 KiB pages: each save erases 1,024 words first; every 13th store, and every one of
    # the first 2,100 (the inputs' page, its erase and program, and the first record's)
    stores, cuts, _ = cut_runs(tmp_path, "nucleo-l4r5zi", "live", (1, 2100, 1), 0)
    assert cuts == 2100
    stores, cuts, _ = cut_runs(tmp_path, "nucleo-l4r5zi", "live", (1, 10**9, 13), 0)
    assert cuts == -(-stores // 13)


@pytest.mark.parametrize("every", [300, 600])
def test_repeated_cuts_still_finish(tmp_path, every):
    """A cut after every `every` NVM stores of each boot: the run finishes (each boot gets
    past at least one commit) with the same outputs."""
    stores, cuts, boots = cut_runs(tmp_path, "nucleo-l4r5zi-fram", "live", (1, 10**9, 37),
                                   every)
    assert boots > 2 * cuts


def test_a_cut_before_any_store_inside_a_layer_split_into_bands(tmp_path):
    """An on-period shorter than the digits CNN's second convolution: it runs as bands of
    output rows with a commit after each (each band saves its rows, a resume reads the rows
    done back and runs the next band); a cut before every store still changes nothing."""
    stores, cuts, boots = cut_runs(tmp_path, "nucleo-l4r5zi-fram", "live", (1, 10**9, 1), 0,
                                   count=1, on_period=40_000)
    assert cuts == stores and boots == 2 * cuts
