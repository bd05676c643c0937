"""The checkpoint plan of intermittent builds, checked by replaying it: whatever commit the
last power cut left, the tensors a resume reads back are in NVM as their last save wrote
them, and a commit's writes never touch what the previous commit's state still needs; an
on-period bounds the work between commits; bad input gets one line with the figures."""

from dataclasses import replace

import pytest

from codegen.compiler.checkpoint import (
    PowerOptions,
    Span,
    endurance_warning,
    nvm_cost,
    step_cycles,
    write_cycles,
)
from codegen.compiler.compile import Options, compile_model
from codegen.errors import ArielError
from codegen.resources import data_dir
from codegen.target.boards import get_board

MODELS = data_dir("examples") / "models"
FRAM = get_board("nucleo-l4r5zi-fram")
FLASH = get_board("nucleo-l4r5zi")


def power(board=FRAM, **changes) -> PowerOptions:
    return replace(PowerOptions(board.nvm, board.clock_hz, board=board.name), **changes)


def compiled(model: str, options: PowerOptions):
    return compile_model(MODELS / f"{model}.onnx", Options(power=options))


def _overlap(a: Span, b: Span) -> bool:
    return a.nvm < b.nvm + b.nbytes and b.nvm < a.nvm + a.nbytes


def replay(plan) -> None:
    """Walk the commits as a run makes them, tracking which tensor's bytes each NVM span
    holds, and check what a resume at every commit reads back."""
    holder: list[tuple[Span, str]] = []  # NVM spans as last written, and whose bytes
    for index, saves in enumerate(plan.saves):
        if index > 0:
            for save in saves:  # written while commit index - 1 is the newest record
                for needed in plan.restores[index - 1]:
                    assert not _overlap(save, needed), (index, save.name, needed.name)
        for save in saves:
            holder = [(s, n) for s, n in holder if not _overlap(s, save)] + [(save, save.name)]
        for needed in plan.restores[index]:
            assert (needed, needed.name) in holder, (index, needed.name)


@pytest.mark.parametrize("model", ["resnet8_cifar10", "kws_dscnn", "ad_autoencoder_toycar",
                                   "digits_cnn"])
@pytest.mark.parametrize("board", [FRAM, FLASH], ids=["fram", "flash"])
def test_every_resume_finds_its_tensors(model, board):
    result = compiled(model, power(board))
    plan, graph, memory = result.checkpoints, result.graph, result.plan
    replay(plan)
    assert len(plan.boundaries) == len(result.info.kernels) + 1  # after every kernel
    for index, boundary in enumerate(plan.boundaries):
        alive = {b.name for b in memory.buffers.values()
                 if b.first < boundary <= b.last and b.name not in memory.scratch.values()}
        assert {s.name for s in plan.restores[index]} == alive
    assert plan.nvm_bytes <= board.nvm.size
    if board.nvm.erases:  # flash: every span owns whole pages
        page = board.nvm.page_bytes
        for spans in plan.saves:
            assert all(s.nvm % page == 0 for s in spans)
    assert graph.inputs and plan.saves[0]  # commit 0 saves the inputs


def test_an_on_period_merges_commits_and_bounds_the_work():
    every = compiled("resnet8_cifar10", power()).checkpoints
    limit = 12_000_000  # float ResNet-8's largest layer needs 9.4 M
    result = compiled("resnet8_cifar10", power(on_period_cycles=limit))
    plan, graph = result.checkpoints, result.graph
    replay(plan)
    assert len(plan.boundaries) < len(every.boundaries)
    saved = sum(s.nbytes for spans in plan.saves for s in spans)
    assert saved < sum(s.nbytes for spans in every.saves for s in spans)
    for index in range(1, len(plan.boundaries)):
        a, b = plan.boundaries[index - 1], plan.boundaries[index]
        work = sum(step_cycles(graph, step) for step in range(a, b))
        assert work + write_cycles(FRAM.nvm, FRAM.clock_hz, plan.saves[index], 16) <= limit


def test_an_on_period_shorter_than_a_layer_says_what_it_needs():
    with pytest.raises(ArielError, match=r"--on-period-cycles 100,000: \S+ '[^']+' needs about "
                                         r"[\d,]+ cycles \(static estimate\) plus [\d,]+ to "
                                         r"restore its inputs and checkpoint its output on "
                                         r"nucleo-l4r5zi-fram's fram \(on SPI at 30 MHz\), "
                                         r"524,288 B, [\d,]+ in all; the smallest unit of work "
                                         r"ariel makes is one layer, since ariel splits only "
                                         r"int8 2-D convolutions \(depthwise too\) into bands "
                                         r"of output rows, not ariel.Relayout, so the on-period "
                                         r"must be at least [\d,]+ cycles"):
        compiled("resnet8_cifar10", power(on_period_cycles=100_000))


def int8(model: str, options: PowerOptions):
    return compile_model(MODELS / f"{model}.onnx",
                         Options(precision="int8", calibration="digits", power=options))


def test_a_layer_longer_than_the_on_period_runs_in_bands_of_rows():
    """The digits CNN's second convolution (about 80,000 cycles) under a 40,000-cycle
    on-period: split into bands of output rows, a commit after each. Replayed byte by byte:
    every resume reads back exactly the rows done so far, which the earlier commits saved,
    and no commit's writes touch what the previous one's state needs."""
    limit = 40_000
    result = int8("digits_cnn", power(on_period_cycles=limit))
    plan, graph = result.checkpoints, result.graph
    assert plan.bands
    for step, edges in plan.bands.items():
        rows = graph.tensor(graph.nodes[step].outputs[0]).shape[2]
        assert edges[0] == 0 and edges[-1] == rows and edges == sorted(set(edges))
    holder: dict[int, tuple[str, int]] = {}  # NVM byte -> (tensor, byte of it) last written
    for index, saves in enumerate(plan.saves):
        needed = {s.nvm + k for s in plan.restores[index - 1] for k in range(s.nbytes)} \
            if index else set()
        for save in saves:
            offsets = range(save.nvm, save.nvm + save.nbytes)
            assert not needed.intersection(offsets), (index, save.name)
            for k in offsets:
                holder[k] = (save.name, save.arena + k - save.nvm)
        for need in plan.restores[index]:
            assert all(holder.get(need.nvm + k) == (need.name, need.arena + k)
                       for k in range(need.nbytes)), (index, need.name)
    for index, rows in enumerate(plan.rows_done):
        if rows:  # a commit inside a layer reads back its output's rows done
            step = plan.boundaries[index]
            out = graph.tensor(graph.nodes[step].outputs[0])
            spans = [s for s in plan.restores[index] if s.name == result.plan.storage[out.name]]
            assert [s.nbytes for s in spans] == [rows * out.nbytes // out.shape[2]]
    every = int8("digits_cnn", power()).checkpoints
    assert not every.bands  # without an on-period, a commit after every layer


def test_an_on_period_shorter_than_a_band_says_what_it_needs():
    with pytest.raises(ArielError, match=r"--on-period-cycles 8,000: Conv '[^']+' \(rows "
                                         r"\d+\.\.\d+ of its output\) needs about [\d,]+ cycles "
                                         r"\(static estimate\) plus [\d,]+ to restore its inputs "
                                         r"and checkpoint its output on .*; the smallest unit of "
                                         r"work ariel makes of this layer is a band of 1 output "
                                         r"rows .*, so the on-period must be at least [\d,]+"):
        int8("digits_cnn", power(on_period_cycles=8_000))


def test_nvm_too_small_for_two_arena_copies_is_refused():
    small = replace(FRAM.nvm, size=256 * 1024)
    with pytest.raises(ArielError, match=r"the checkpoints need [\d,]+ B of NVM \(the records "
                                         r"and two copies of the [\d,]+ B arena\), and "
                                         r"nucleo-l4r5zi-fram's \[nvm\] holds 262,144 B; choose "
                                         r"a board with more NVM, or --checkpoints live"):
        compiled("resnet8_cifar10", power(nvm=small, strategy="arena"))
    compiled("resnet8_cifar10", power(nvm=small))  # the live activations fit


def test_flash_wears_out_at_an_hourly_rate_fram_does_not():
    flash = power(FLASH, inferences_per_hour=60)
    cost = nvm_cost(compiled("digits_cnn", flash).checkpoints, flash)
    # the two record pages take turns: 7 commits (float: 7 kernels and the inputs) and the
    # done record, 4 erases each
    assert cost.commits == 7 and cost.wear_per_inference == 4
    assert cost.endurance_years == pytest.approx(10_000 / (4 * 60 * 24 * 365.25))
    assert endurance_warning(cost, flash) == (
        "warning: at 60 inferences per hour the checkpoints write one page of "
        "nucleo-l4r5zi's flash 4 times per inference, and its endurance (10,000 cycles) is "
        "used up in 1.7 days; lower the rate, declare an on-period (fewer commits), or use FRAM "
        "or MRAM")
    fram = power(inferences_per_hour=3600)
    assert endurance_warning(nvm_cost(compiled("digits_cnn", fram).checkpoints, fram),
                             fram) is None


def test_costs_count_every_write():
    fram = power()
    plan = compiled("digits_cnn", fram).checkpoints
    cost = nvm_cost(plan, fram)
    spans = [s for group in plan.saves for s in group]
    assert cost.writes == len(spans) + len(plan.boundaries) + 1  # spans, records, done
    assert cost.nbytes == sum(s.nbytes for s in spans) + 16 * (len(plan.boundaries) + 1)
    assert cost.cycles == round((cost.nbytes + 5 * cost.writes) * 8 / 30e6 * 120e6)
