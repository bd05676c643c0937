"""Power cuts in the unicorn machine: RAM lost to garbage and NVM kept at every power-up, a
write cut between two of its word stores torn, a plain build restarted from scratch, and
one that cannot finish found and reported instead of run forever."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_digits

from codegen.build import build
from codegen.cli import main
from codegen.compiler.compile import Options
from codegen.resources import data_dir
from codegen.run.emulate.machine import HostFiles, Machine
from codegen.run.power_cuts import CutEvery, CutsAt, random_cuts, run_uninterrupted, run_with_cuts
from codegen.run.simulate import open_build
from codegen.target.boards import Region, get_board
from codegen.target.elf import function_at
from tests.run.support import build_firmware

pytestmark = pytest.mark.qemu
FRAM_BOARD = "nucleo-l4r5zi-fram"  # its NVM: 512 KiB at 0x00200000 in the emulator's map
NVM = 0x00200000
WORDS = 64

# A write of 64 words into the NVM through a routine like ariel_nvm_write (firmware/ariel_nvm.h:
# word stores in address order), its words counting up from the value the NVM's first word
# held at power-up (so every run writes something new), then exit.
TEARING = f"""
#include <stdint.h>
__attribute__((noinline)) void ariel_nvm_write(void *dst, const void *src, uint32_t n)
{{
    volatile uint32_t *to = (volatile uint32_t *)dst;
    const uint32_t *from = (const uint32_t *)src;
    for (uint32_t i = 0; i < n / 4u; ++i) {{
        to[i] = from[i];
    }}
}}
int main(void)
{{
    uint32_t words[{WORDS}];
    const uint32_t base = *(volatile uint32_t *)0x{NVM:08X}u + 1000u;
    for (uint32_t i = 0; i < {WORDS}u; ++i) {{
        words[i] = base + i;
    }}
    ariel_nvm_write((void *)0x{NVM:08X}u, words, sizeof words);
    return 0;
}}
"""


def nvm_words(machine: Machine) -> list[int]:
    return list(struct.unpack(f"<{WORDS}I", machine.read(NVM, 4 * WORDS)))


def test_a_cut_inside_a_write_leaves_it_torn(tmp_path):
    """Cut after each number of instructions around the write in turn: the NVM holds the new
    words up to the cut and the old ones after it (every prefix of the write occurs), and
    the cut's PC lies in ariel_nvm_write exactly while the write is partial."""
    board = get_board(FRAM_BOARD)
    elf = build_firmware(tmp_path, board, TEARING, hooks=False)
    nvm = Region(board.nvm.origin, board.nvm.size)
    machine = Machine(board, elf, HostFiles(), nvm)
    stored = []
    machine.on_nvm_store = lambda index, address, size: stored.append((index, address, size))
    machine.power_up(None)
    whole = machine.run()
    assert whole.exited and whole.status == 0
    assert nvm_words(machine) == list(range(1000, 1000 + WORDS))  # NVM began as zeros
    # The hook saw every store, in order, with the instruction it happened at: one store
    # per turn of the copy loop.
    indices = [index for index, _, _ in stored]
    assert [(address, size) for _, address, size in stored] == [
        (NVM + 4 * i, 4) for i in range(WORDS)]
    steps = {b - a for a, b in zip(indices, indices[1:], strict=False)}
    assert len(steps) == 1 and 0 < indices[0] and indices[-1] < whole.executed

    prefixes = set()
    for limit in range(indices[0] - 3, indices[-1] + 4):
        machine.write(NVM, bytes(4 * WORDS))  # the NVM as it was before the run
        machine.power_up(np.random.default_rng(limit))
        stop = machine.run(limit=limit)
        words = nvm_words(machine)
        done = next((i for i, w in enumerate(words) if w != 1000 + i), WORDS)
        assert words[done:] == [0] * (WORDS - done), f"not a prefix after {limit}"
        # The store at index i has run once the limit is past it.
        assert done == sum(index < limit for index in indices)
        prefixes.add(done)
        if 0 < done < WORDS:
            assert function_at(elf, stop.pc) == "ariel_nvm_write"
    assert prefixes == set(range(WORDS + 1))


def test_power_up_fills_ram_with_garbage_and_keeps_the_nvm(tmp_path):
    board = get_board(FRAM_BOARD)
    elf = build_firmware(tmp_path, board, TEARING, hooks=False)
    machine = Machine(board, elf, HostFiles(), Region(board.nvm.origin, board.nvm.size))
    machine.write(NVM, b"kept across cuts")
    ram = board.ram
    seen = []
    for seed in (1, 2):
        machine.power_up(np.random.default_rng(seed))
        data = np.frombuffer(machine.read(ram.origin, ram.size), np.uint8)
        assert np.count_nonzero(data) > 0.99 * ram.size  # garbage, not zeros
        seen.append(data)
        assert machine.read(NVM, 16) == b"kept across cuts"
    assert not np.array_equal(seen[0], seen[1])


@pytest.fixture(scope="module")
def plain_build(tmp_path_factory):
    """The digits CNN in int8, an ordinary build: it keeps nothing across a power cut."""
    folder = tmp_path_factory.mktemp("cuts")
    x = load_digits().images[:64].reshape(64, 1, 1, 8, 8).astype(np.float32)
    np.save(folder / "calib.npy", x)
    np.save(folder / "X.npy", x[:3])
    build(data_dir("examples") / "models" / "digits_cnn.onnx", get_board("nucleo-l4r5zi"),
          folder / "out", Options(precision="int8", calibration=str(folder / "calib.npy")))
    return folder


def test_a_plain_build_restarts_from_scratch_and_still_gets_its_outputs(plain_build):
    built = open_build(plain_build / "out")
    inputs = [np.load(plain_build / "X.npy")]
    reference = run_uninterrupted(built, inputs)
    run = run_with_cuts(built, inputs, random_cuts(6, reference.instructions, seed=3),
                        seed=3, uninterrupted=reference)
    assert run.completed and run.equal and run.stuck is None
    assert len(run.cuts) == 6 and run.power_cycles == 7
    # Each cut threw its power cycle's work away: the last cycle ran the whole run again.
    assert run.instructions == sum(cut.after for cut in run.cuts) + reference.instructions
    assert run.torn_writes == 0 and not run.has_nvm_write


def test_a_plain_build_never_finishes_under_short_on_periods_and_says_so(plain_build, tmp_path):
    built = open_build(plain_build / "out")
    inputs = [np.load(plain_build / "X.npy")]
    reference = run_uninterrupted(built, inputs)
    run = run_with_cuts(built, inputs, CutEvery(reference.instructions // 2),
                        uninterrupted=reference)
    assert not run.completed and run.power_cycles <= 3
    assert "the same state repeats, so the firmware never finishes" in run.stuck

    result = CliRunner().invoke(main, [
        "simulate", str(plain_build / "out"), "--inputs", str(plain_build / "X.npy"),
        "--cut-every", str(reference.instructions - 1), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert "error: the firmware cannot finish under these power cuts" in result.output
    assert "--power intermittent" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["completed"] is False and report["power_cycles"] <= 3


def test_cut_at_counts_from_the_first_power_up(plain_build, tmp_path):
    built = open_build(plain_build / "out")
    inputs = [np.load(plain_build / "X.npy")]
    reference = run_uninterrupted(built, inputs)
    run = run_with_cuts(built, inputs, CutsAt([500, 1_500, 40_000]), uninterrupted=reference)
    assert [cut.after for cut in run.cuts] == [500, 1_000, 38_500]
    assert run.instructions == 40_000 + reference.instructions

    result = CliRunner().invoke(main, [
        "simulate", str(plain_build / "out"), "--inputs", str(plain_build / "X.npy"),
        "--cut-at", "500,1500,40000", "--outputs", str(tmp_path / "Y.npy")])
    assert result.exit_code == 0, result.output
    assert "outputs: equal to the uninterrupted run's, bit for bit" in result.output
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), reference.outputs[0])


@pytest.mark.parametrize("options, message", [
    (["--cut-at", "5,3"], "cut positions must be positive and increasing"),
    (["--cut-at", "5,x"], "--cut-at takes instruction counts separated by commas"),
    (["--power-cuts", "3", "--cut-every", "9"], "--power-cuts and --cut-every each choose"),
    (["--power-cuts", "3", "--compare"], "--compare has no effect with power cuts"),
    (["--seed", "3"], "--seed has no effect without power cuts")])
def test_bad_cut_options_are_one_line_errors(plain_build, options, message):
    result = CliRunner().invoke(main, ["simulate", str(plain_build / "out"), "--inputs",
                                       str(plain_build / "X.npy"), *options])
    assert result.exit_code != 0
    assert message in result.output


def test_native_counts_stop_where_unicorn_counts_and_still_finish(plain_build):
    """With native counts a cut lands after N instructions as unicorn counts them (those an
    IT block skips left out): where a trace of every executed instruction says; the run still
    finishes with the uninterrupted outputs."""
    import unicorn

    built = open_build(plain_build / "out")
    inputs = [np.load(plain_build / "X.npy")]
    files = HostFiles({"input.bin": bytearray(np.ascontiguousarray(inputs[0]).tobytes())})
    machine = Machine(built.board, built.elf, files)
    machine.power_up(None)
    trace: list[int] = []
    hook = machine.uc.hook_add(unicorn.UC_HOOK_CODE, lambda uc, pc, size, _: trace.append(pc))
    machine.run(limit=30_000, native=True)
    machine.uc.hook_del(hook)
    assert len(trace) == 30_000
    for limit in (1, 17, 4_321, 29_999):
        machine.power_up(None)
        assert machine.run(limit=limit, native=True).pc == trace[limit]

    reference = run_uninterrupted(built, inputs)
    run = run_with_cuts(built, inputs, CutsAt([700, 9_000, 50_000]), uninterrupted=reference,
                        native_from=0)
    assert run.completed and run.equal and len(run.cuts) == 3
