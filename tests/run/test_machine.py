"""The power-cut emulator's machine (unicorn) against QEMU and the references: ordinary ariel
builds give the same outputs, bit for bit, and execute the same number of instructions as
QEMU's counting run; exits, faults and unknown calls are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from codegen.build import build
from codegen.compiler.compile import Options
from codegen.compiler.reference import run_graph
from codegen.errors import FirmwareError
from codegen.resources import data_dir
from codegen.run.emulate.counting import count_instructions
from codegen.run.emulate.machine import HostFiles, Machine
from codegen.run.power_cuts import run_uninterrupted
from codegen.run.simulate import open_build, simulate, write_inputs
from codegen.target.boards import get_board
from tests.e2e.test_int8_qemu import calibration_and_tests
from tests.run.support import build_firmware

pytestmark = pytest.mark.qemu
MODELS = data_dir("examples") / "models"


def digits(count: int) -> np.ndarray:
    return load_digits().images[:count].reshape(count, 1, 1, 8, 8).astype(np.float32)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The digits CNN in int8 and float, and MLPerf Tiny's anomaly detector in int8, on the
    MLPerf reference board (emulated on mps2-an386), with their compiled graphs."""
    folder = tmp_path_factory.mktemp("machine")
    np.save(folder / "digits.npy", digits(64))
    calibration, tests = calibration_and_tests("ad_autoencoder_toycar")
    np.save(folder / "toycar.npy", calibration.astype(np.float32))
    board = get_board("nucleo-l4r5zi")
    made = {}
    for name, model, options, x in [
            ("digits-int8", "digits_cnn", Options(precision="int8",
                                                  calibration=str(folder / "digits.npy")),
             digits(4)),
            ("digits-float", "digits_cnn", Options(), digits(4)),
            ("ad-int8", "ad_autoencoder_toycar",
             Options(precision="int8", calibration=str(folder / "toycar.npy")),
             tests[:2].astype(np.float32))]:
        result = build(MODELS / f"{model}.onnx", board, folder / name, options)
        made[name] = (folder / name, result.compiled.graph, x)
    return made


@pytest.mark.parametrize("name", ["digits-int8", "digits-float", "ad-int8"])
def test_outputs_and_instruction_counts_equal_qemu(builds, name, tmp_path):
    folder, graph, x = builds[name]
    built = open_build(folder)
    inputs = [x.reshape(len(x), *built.info.inputs[0].shape)]
    write_inputs(tmp_path, inputs)
    qemu_count = count_instructions(built.board, built.elf, tmp_path).total
    qemu = simulate(built, inputs).outputs[0]

    run = run_uninterrupted(built, inputs, seed=7)

    np.testing.assert_array_equal(run.outputs[0], qemu)
    assert run.instructions == qemu_count
    reference = np.stack([run_graph(graph, [sample])[0] for sample in inputs[0]])
    if name.endswith("int8"):  # ariel's integer reference: bit for bit
        np.testing.assert_array_equal(run.outputs[0], reference)
    else:
        np.testing.assert_allclose(run.outputs[0], reference, rtol=1e-4, atol=1e-4)
    assert "inferences done" in run.console


def test_ram_garbage_changes_nothing_for_a_build_that_initialises_its_memory(builds):
    folder, _, x = builds["digits-int8"]
    built = open_build(folder)
    inputs = [x.reshape(len(x), *built.info.inputs[0].shape)]
    first, second = (run_uninterrupted(built, inputs, seed=seed) for seed in (1, 2))
    np.testing.assert_array_equal(first.outputs[0], second.outputs[0])
    assert first.instructions == second.instructions


def test_bad_input_stops_with_the_harness_message(builds):
    folder, _, _ = builds["digits-float"]
    built = open_build(folder)
    machine = Machine(built.board, built.elf, HostFiles({"input.bin": bytearray(b"abc")}))
    machine.power_up(np.random.default_rng(0))
    stop = machine.run()
    assert stop.exited and stop.status == 1
    assert "input.bin is not a whole number of input records" in machine.files.last_console


FAULTING = """
#include "semihost.h"
__attribute__((noinline)) void take_the_jump(void) { __asm__ volatile("udf #0"); }
int main(void) { console_write("before\\n"); take_the_jump(); return 0; }
"""

WILD_STORE = """
#include <stdint.h>
__attribute__((noinline)) void scribble(void) { *(volatile uint32_t *)0x60000000u = 1u; }
int main(void) { scribble(); return 0; }
"""


@pytest.mark.parametrize("source, function, what", [
    (FAULTING, "take_the_jump", "an undefined instruction"),
    (WILD_STORE, "scribble", "it wrote 0x60000000, outside nucleo-l4r5zi's memory")])
def test_a_fault_names_the_function(tmp_path, source, function, what):
    board = get_board("nucleo-l4r5zi")
    elf = build_firmware(tmp_path, board, source, hooks=False)
    machine = Machine(board, elf, HostFiles())
    machine.power_up(None)
    with pytest.raises(FirmwareError, match=f"in {function}: {what}"):
        machine.run()


def test_an_instruction_limit_stops_exactly_there(builds):
    """A run stopped after N instructions stands where the Nth ends, counted as QEMU counts
    (an IT block's skipped instructions included; unicorn's own count leaves them out): run
    on from there, it executes the rest of the uninterrupted count, and its outputs are the
    uninterrupted run's."""
    import unicorn

    folder, _, x = builds["digits-int8"]
    built = open_build(folder)
    inputs = [x.reshape(len(x), *built.info.inputs[0].shape)]
    whole = run_uninterrupted(built, inputs)
    files = HostFiles({"input.bin": bytearray(np.ascontiguousarray(inputs[0]).tobytes())})
    machine = Machine(built.board, built.elf, files)
    # Every instruction unicorn runs, in order: the IT blocks' skipped ones are missing.
    machine.power_up(None)
    executed: list[int] = []
    hook = machine.uc.hook_add(unicorn.UC_HOOK_CODE, lambda uc, pc, size, _: executed.append(pc))
    machine.run(counting=False)
    machine.uc.hook_del(hook)
    assert whole.instructions - len(executed) > 20  # so there are skipped ones to pass
    limits = [1, 2, 17, 1_000, 12_345, 60_001, 300_000, whole.instructions - 1]
    for limit in limits:
        machine.power_up(None)
        first = machine.run(limit=limit)
        assert (first.executed, first.exited) == (limit, False)
        rest = machine.run()
        assert rest.exited and rest.status == 0
        assert first.executed + rest.executed == whole.instructions, limit
        np.testing.assert_array_equal(
            np.frombuffer(bytes(files.files["output.bin"]), np.float32),
            whole.outputs[0].ravel())
