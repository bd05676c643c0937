"""Intermittent builds (`--power intermittent`) under power cuts and on harvested energy: cuts
at random instructions and inside NVM writes leave the outputs equal bit for bit to an
uninterrupted run's; on a harvest where an ordinary build never finishes, the intermittent
one does, and the layer-checkpoint baseline too."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from click.testing import CliRunner

from codegen.build import build
from codegen.cli import main
from codegen.compiler.checkpoint import PowerOptions
from codegen.compiler.compile import Options
from codegen.datasets import digits_split
from codegen.resources import data_dir
from codegen.run.harvest import Capacitor, Harvest
from codegen.run.harvested import load_for, run_harvested
from codegen.run.power_cuts import (
    CutsAt,
    Emulation,
    nvm_region,
    random_cuts,
    run_uninterrupted,
    run_with_cuts,
)
from codegen.run.simulate import open_build
from codegen.target.boards import get_board
from tests.e2e.test_int8_qemu import calibration_and_tests

pytestmark = pytest.mark.qemu
MODEL = data_dir("examples") / "models" / "digits_cnn.onnx"
BUILDS = {"fram-live": ("nucleo-l4r5zi-fram", "live", None),
          "fram-arena": ("nucleo-l4r5zi-fram", "arena", None),
          "flash-live": ("nucleo-l4r5zi", "live", None),
          # an on-period shorter than the second convolution: it runs in bands of rows
          "fram-bands": ("nucleo-l4r5zi-fram", "live", 40_000)}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The digits CNN in int8: intermittent on the FRAM and the flash board, and the
    ordinary build; two test images."""
    folder = tmp_path_factory.mktemp("intermittent")
    made = {}
    for name, (board_name, strategy, on_period) in BUILDS.items():
        board = get_board(board_name)
        build(MODEL, board, folder / name, Options(
            precision="int8", calibration="digits",
            power=PowerOptions(board.nvm, board.clock_hz, strategy, on_period,
                               board=board.name)))
        made[name] = open_build(folder / name)
    build(MODEL, get_board("nucleo-l4r5zi-fram"), folder / "plain",
          Options(precision="int8", calibration="digits"))
    made["plain"] = open_build(folder / "plain")
    return made, [digits_split()[2][:2]], folder


@pytest.mark.parametrize("name", list(BUILDS))
def test_random_cuts_leave_the_outputs_bit_exact(builds, name):
    made, inputs, _ = builds
    built = made[name]
    reference = run_uninterrupted(built, inputs, nvm_region(built), seed=5)
    if name == "fram-bands":  # the banded layer computes what the whole one does
        assert built.info.checkpoints["bands"]
        plain = run_uninterrupted(made["plain"], inputs, seed=5)
        assert [a.tobytes() for a in reference.outputs] == [a.tobytes() for a in plain.outputs]
    run = run_with_cuts(built, inputs, random_cuts(30, reference.instructions, seed=5),
                        seed=5, uninterrupted=reference)
    assert run.completed and run.equal, run.stuck
    assert len(run.cuts) == 30 and run.has_nvm_write and run.nvm_bytes > 0


def _writes(built, inputs) -> list[list[int]]:
    """The instruction index of each store of each NVM write of an uninterrupted run,
    grouped by write (consecutive words stored one loop turn apart)."""
    emulation = Emulation(built, inputs, nvm_region(built))
    stores: list[tuple[int, int]] = []
    emulation.machine.on_nvm_store = lambda index, address, size: stores.append(
        (index, address))
    emulation.power_up(0)
    assert emulation.machine.run().exited
    groups = [[stores[0]]]
    for store in stores[1:]:
        last = groups[-1][-1]
        if store[1] == last[1] + 4 and (len(groups[-1]) < 2 or store[0] - last[0]
                                         == last[0] - groups[-1][-2][0]):
            groups[-1].append(store)
        else:
            groups.append([store])
    return [[index for index, _ in group] for group in groups]


@pytest.mark.parametrize("name", ["fram-live", "flash-live"])
def test_cuts_inside_nvm_writes_tear_them_and_change_nothing(builds, name):
    """Cut in the middle of writes spread over the run, the progress records' among them (a
    record is 4 words, written last in a commit): each cut tears its write, and the run
    still ends with the uninterrupted outputs."""
    made, inputs, _ = builds
    built = made[name]
    reference = run_uninterrupted(built, inputs, nvm_region(built))
    writes = [group for group in _writes(built, inputs) if len(group) >= 2]
    records = [group for group in writes if len(group) == 4]
    chosen = writes[:: max(len(writes) // 6, 1)][:6] + records[1:3]
    assert len(chosen) >= 6 and records
    for group in chosen:
        cut = group[len(group) // 2]  # after the middle store has run, before the next
        run = run_with_cuts(built, inputs, CutsAt([cut + 1]), uninterrupted=reference)
        assert run.torn_writes == 1, group
        assert run.completed and run.equal, group


def test_on_harvested_power_the_intermittent_build_finishes_and_the_plain_one_cannot(builds):
    made, inputs, _ = builds
    harvest, capacitor = Harvest.constant(5e-3), Capacitor(47e-6, 3.3, 1.8)
    runs = {}
    for name in ("plain", "fram-live", "fram-arena"):
        built = made[name]
        load = load_for(built, 1.25, 0.0)
        runs[name] = run_harvested(built, inputs, harvest, capacitor, load, seed=2)
    plain = runs["plain"]
    assert not plain.completed and plain.power_cycles <= 3
    assert "the same state repeats" in plain.stuck
    # One on-period holds fewer instructions than the plain run needs.
    assert plain.uninterrupted.instructions > plain.instructions / plain.power_cycles
    for name in ("fram-live", "fram-arena"):
        run = runs[name]
        assert run.completed and run.equal, (name, run.stuck)
        assert run.power_cycles > 1
        assert run.seconds > run.on_seconds > 0
        assert run.checkpoint_joules > 0 and run.nvm_bytes > 0
        # The energy the board used is its run power over the time it was on, plus the
        # FRAM's own power over the time it spent writing.
        assert run.run_joules >= load.run_w * run.on_seconds * 0.999999
    # The layer-checkpoint baseline saves the whole arena at every commit.
    assert runs["fram-arena"].nvm_bytes > runs["fram-live"].nvm_bytes


def test_on_flash_the_energy_is_the_run_power_over_the_time_on(builds):
    """Internal flash gives no write power of its own: a write's cost is the core waiting
    for it at its run power, so the energy used is exactly run power x time on."""
    made, inputs, _ = builds
    built = made["flash-live"]
    load = load_for(built, 1.25, 0.0)
    run = run_harvested(built, inputs, Harvest.constant(20e-3), Capacitor(1e-3, 3.3, 1.8),
                        load, seed=1)
    assert run.completed and run.equal
    assert run.run_joules == pytest.approx(load.run_w * run.on_seconds, rel=1e-9)
    assert run.checkpoint_joules > 0


def test_the_command_writes_the_plot_and_the_json(builds, tmp_path):
    made, inputs, folder = builds
    np.save(tmp_path / "X.npy", inputs[0])
    out = folder / "fram-live"
    result = CliRunner().invoke(main, [
        "simulate", str(out), "--inputs", str(tmp_path / "X.npy"), "--harvest-power", "5",
        "--capacitance", "47", "--cycles-per-instruction", "1.25",
        "--json", str(tmp_path / "h.json")])
    assert result.exit_code == 0, result.output
    assert "finished: time to result" in result.output
    assert "outputs: equal to the uninterrupted run's, bit for bit" in result.output
    report = json.loads((tmp_path / "h.json").read_text())
    assert report["completed"] and report["power_cycles"] > 1
    page = (out / "harvest.html").read_text()
    svg = page[page.index("<svg"):page.index("</svg>") + 6]
    assert ElementTree.fromstring(svg).tag.endswith("svg")
    assert page.count("<polyline") == 3

    plain = CliRunner().invoke(main, [
        "simulate", str(folder / "plain"), "--inputs", str(tmp_path / "X.npy"),
        "--harvest-power", "5", "--capacitance", "47", "--cycles-per-instruction", "1.25"])
    assert plain.exit_code == 1
    assert "error: the firmware cannot finish on this harvest: the firmware makes no " \
           "progress" in plain.output


@pytest.mark.parametrize("model", ["ad_autoencoder_toycar", "kws_dscnn", "resnet8_cifar10",
                                   "vww_mobilenet_96"])
def test_mlperf_models_survive_cuts_inside_writes_and_at_random(model, tmp_path):
    """Each MLPerf Tiny model, intermittent int8 on the F-RAM board: eleven cuts, the first
    just after a store in the middle of an NVM write, the others at random instructions within
    twice the run (unicorn's native count, for speed): the outputs equal the uninterrupted
    run's bit for bit (bench/intermittent.py makes it 1,000 cuts)."""
    calibration, tests = calibration_and_tests(model)
    np.save(tmp_path / "calib.npy", calibration.astype(np.float32))
    board = get_board("nucleo-l4r5zi-fram")
    build(data_dir("examples") / "models" / f"{model}.onnx", board, tmp_path / "out",
          Options(precision="int8", calibration=str(tmp_path / "calib.npy"),
                  power=PowerOptions(board.nvm, board.clock_hz, "live", board=board.name)))
    built = open_build(tmp_path / "out")
    inputs = [tests[:1].astype(np.float32).reshape(1, *built.info.inputs[0].shape)]
    reference = run_uninterrupted(built, inputs, nvm_region(built), seed=11)
    writes = [group for group in _writes(built, inputs) if len(group) >= 4]
    group = writes[len(writes) // 2]
    first = group[len(group) // 2] + 1
    rest = random_cuts(11, 2 * reference.instructions, seed=11).positions[1:]
    run = run_with_cuts(built, inputs, CutsAt([first, *(first + p for p in rest)]), seed=11,
                        uninterrupted=reference, native_from=1)
    assert run.cuts[0].in_nvm_write
    assert run.completed and run.equal, run.stuck
