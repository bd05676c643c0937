"""Per-layer counts of a real model (MLPerf Tiny's keyword-spotting DS-CNN, built with
`ariel build` for mps2-an386): deterministic, the same for every inference of a batch, and
consistent with the whole run's count."""

import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile

from codegen.cli import main
from codegen.resources import data_dir
from codegen.run.emulate.counting import PROFILE_ELF, hook_addresses, profile
from codegen.run.simulate import open_build, simulate

pytestmark = pytest.mark.qemu

MODEL = data_dir("examples") / "models" / "kws_dscnn.onnx"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("kws") / "build"
    result = CliRunner().invoke(main, ["build", str(MODEL), "--board", "mps2-an386",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    return open_build(out)


def features(count: int, seed: int = 7) -> np.ndarray:
    """MFCC-like inputs in the range the model was trained on (about -123..26)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-123.0, 26.0, size=(count, 1, 1, 49, 10)).astype(np.float32)


def layer_counts(result) -> list[list[int]]:
    return [[layer.instructions for layer in inference.layers]
            for inference in result.inferences]


def test_counts_are_deterministic(build):
    x = features(2)
    first, second = profile(build, [x]), profile(build, [x])
    assert layer_counts(first) == layer_counts(second)
    assert [s.instructions for s in first.counts.segments] == [
        s.instructions for s in second.counts.segments]


def test_layers_add_up_and_every_inference_counts_the_same(build):
    x = np.repeat(features(1), 3, axis=0)
    result = profile(build, [x])
    kernels = build.info.kernels
    for inference in result.inferences:
        assert [layer.kernel["index"] for layer in inference.layers] == [
            k["index"] for k in kernels]
        assert all(layer.instructions > 0 for layer in inference.layers)
        assert inference.total == sum(layer.instructions for layer in inference.layers) + \
            inference.between_layers
        # Between two kernels the run function only calls the hooks and passes arguments.
        assert inference.between_layers < 10 * len(kernels)
    assert len({tuple(counts) for counts in layer_counts(result)}) == 1
    assert len({i.total for i in result.inferences}) == 1
    # Everything the run did is in exactly one place.
    split = result.split
    assert split.startup + sum(i.total for i in result.inferences) + \
        sum(split.between_inferences) + split.shutdown == result.counts.total


def test_one_more_inference_costs_one_inference(build):
    """Independent of the segment bookkeeping: the whole run's count grows, per extra
    inference, by exactly one inference's layers plus the harness's work between two."""
    x = np.repeat(features(1), 4, axis=0)
    one, four = profile(build, [x[:1]]), profile(build, [x])
    per_inference = (four.counts.total - one.counts.total) // 3
    assert four.counts.total - one.counts.total == 3 * per_inference
    assert per_inference == four.inferences[1].total + four.split.between_inferences[0]


def test_only_data_dependent_layers_vary_between_inputs(build):
    """Convolutions run the same instructions whatever the data; Softmax calls expf, whose
    path depends on its argument."""
    result = profile(build, [features(3, seed=1)])
    for position, kernel in enumerate(build.info.kernels):
        counts = {inference.layers[position].instructions for inference in result.inferences}
        if kernel["op"] == "Conv":
            assert len(counts) == 1, kernel["op"]


def test_profiling_build_computes_the_same_outputs(build):
    x = features(2)
    assert all(np.array_equal(a, b) for a, b in zip(
        profile(build, [x]).outputs, simulate(build, [x]).outputs, strict=True))


def test_blocks_and_edges_of_a_model(build):
    result = profile(build, [features(1)], edges=True)
    counts = result.counts
    for segment in counts.segments:
        assert sum(runs * counts.blocks[b].n_insns
                   for b, runs in segment.executions.items()) == segment.instructions
        entered: dict[int, int] = {}
        for (_, to), n in segment.edges.items():
            entered[to] = entered.get(to, 0) + n
        assert entered == segment.executions
    plain = profile(build, [features(1)])
    assert [s.instructions for s in plain.counts.segments] == [
        s.instructions for s in counts.segments]


def test_the_normal_firmware_is_untouched(build):
    """The profiling build lives beside the normal one: the normal ELF has no hooks and
    `make profile` does not change it."""
    elf = build.elf
    before = elf.read_bytes()
    profile_elf = build.folder / PROFILE_ELF
    shutil.rmtree(build.folder / "build" / "profile", ignore_errors=True)
    profile_elf.unlink(missing_ok=True)
    subprocess.run(["make", "-s", "-C", str(build.folder), "profile"], check=True)
    assert elf.read_bytes() == before
    assert hook_addresses(elf) is None
    assert hook_addresses(profile_elf) is not None
    with open(elf, "rb") as handle:
        symbols = ELFFile(handle).get_section_by_name(".symtab")
        assert not symbols.get_symbol_by_name("ariel_profile_begin")
