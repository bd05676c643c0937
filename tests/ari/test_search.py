"""The optimizer's search on problems small enough to enumerate: every configuration with
every threshold at 0, at each margin, just above it and at +inf. The search must find the
same least expected energy at the target agreement, and the same Pareto front."""

import itertools

import numpy as np
import pytest

from codegen.ari.search import (
    Candidate,
    Cost,
    Split,
    above,
    chains,
    evaluate,
    search,
    stage_costs,
)
from codegen.errors import ArielError


def candidates(energy: bool = True) -> list[list[Candidate]]:
    """An int8 run with two exits and its final output, and the float model's final output.
    Energy is not proportional to cycles here, so the two objectives differ."""

    def cost(cycles: float, energy_uj: float) -> Cost:
        return Cost(cycles, energy_uj if energy else None)

    int8 = [Candidate("ee:int8:ariel_exit1", "ee:int8", 0, cost(100, 1.0), cost(10, 0.3)),
            Candidate("ee:int8:ariel_exit2", "ee:int8", 1, cost(250, 2.4), cost(20, 0.1)),
            Candidate("ee:int8", "ee:int8", 2, cost(600, 6.5), final=True)]
    floats = [Candidate("ee:float", "ee:float", 2, cost(900, 8.0), final=True)]
    return [int8, floats]


def problem(seed: int, count: int) -> Split:
    """Answers right with a probability rising with the stage, margins larger when right,
    rounded so that some margins tie."""
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 3, count)
    keys = ["ee:int8:ariel_exit1", "ee:int8:ariel_exit2", "ee:int8", "ee:float"]
    answers, margins = {}, {}
    for key, right in zip(keys, [0.6, 0.75, 0.9, 1.0], strict=True):
        ok = rng.random(count) < right
        answers[key] = np.where(ok, reference, (reference + 1) % 3)
        margins[key] = np.round(rng.random(count) * 4 + ok * 2, 1).astype(np.float32)
    return Split(answers, margins, reference, labels=reference)


def brute_force(configurations, split: Split, objective: str):
    """(agreement, cost) of every configuration and threshold setting."""
    found = []
    for stages in configurations:
        grids = []
        for stage in stages[:-1]:
            values = np.unique(split.margins[stage.key])
            grids.append(sorted({0.0, np.inf, *map(float, values),
                                 *(above(v) for v in values)}))
        for thresholds in itertools.product(*grids):
            outcome = evaluate(stages, thresholds, split)
            cost = outcome.energy_uj if objective == "energy_uj" else outcome.cycles
            found.append((outcome.agreement, cost, [s.key for s in stages]))
    return found


def pareto(found, floor: float) -> list[tuple[float, float]]:
    front, least = [], np.inf
    for agreement in sorted({a for a, _, _ in found if a >= floor - 1e-12}, reverse=True):
        cost = min(c for a, c, _ in found if a == agreement)
        if cost < least - 1e-9:
            front.append((agreement, cost))
            least = cost
    return front


@pytest.mark.parametrize("seed,target,energy", [(1, 0.8, True), (2, 1.0, True),
                                                (3, 0.9, False), (4, 0.7, True)])
def test_the_search_finds_the_enumerated_optimum_and_front(seed, target, energy):
    split = problem(seed, 10)
    configurations = chains(candidates(energy))
    objective = "energy_uj" if energy else "cycles"
    result = search(configurations, split, target, front_floor=0.5)
    assert result.objective == objective
    found = brute_force(configurations, split, objective)
    reaching = [(c, a, keys) for a, c, keys in found if a >= target - 1e-12]
    cost, _, _ = min(reaching)
    chosen = result.chosen.calibration
    assert (chosen.energy_uj if energy else chosen.cycles) == pytest.approx(cost, rel=1e-12)
    assert chosen.agreement >= target
    optimal = {tuple(keys) for c, _, keys in reaching if abs(c - cost) < 1e-9}
    assert result.chosen.stages in optimal
    got = [(p.calibration.agreement, p.calibration.energy_uj if energy else
            p.calibration.cycles) for p in result.front]
    want = pareto(found, 0.5)
    assert [a for a, _ in got] == pytest.approx([a for a, _ in want])
    assert [c for _, c in got] == pytest.approx([c for _, c in want], rel=1e-12)
    assert result.evaluated < len(found)  # it did not enumerate


def test_consecutive_stages_of_one_run_resume_the_backbone():
    int8, floats = candidates()
    costs = stage_costs([int8[0], int8[2], floats[0]])
    assert [c.cycles for c in costs] == [110, 500, 900]  # 100 + 10, 600 - 100, all of float
    assert costs[1].energy_uj == pytest.approx(5.5)
    # A stage of another run in between: the int8 backbone starts again
    assert [c.cycles for c in stage_costs([int8[0], floats[0], int8[2]])] == [110, 900, 600]


def test_chains_end_in_a_final_output_and_keep_backbone_order():
    configurations = chains(candidates())
    assert len(configurations) == 12  # int8 subsets (8) x float or not, last one final
    for stages in configurations:
        assert stages[-1].final
        depths = [s.depth for s in stages if s.run == "ee:int8"]
        assert depths == sorted(depths)
    assert all(len(c) <= 2 for c in chains(candidates(), max_stages=2))


def test_held_out_figures_come_from_the_chosen_thresholds():
    calibration, heldout = problem(5, 40), problem(6, 30)
    result = search(chains(candidates()), calibration, 0.95, heldout=heldout)
    point = result.chosen
    stages = [c for c in sum(candidates(), []) if c.key in point.stages]
    stages.sort(key=lambda c: point.stages.index(c.key))
    assert point.heldout == evaluate(stages, point.thresholds, heldout)
    assert sum(point.heldout.answered) == 30


def test_a_target_no_configuration_reaches_is_an_error():
    split = problem(7, 10)
    split.answers["ee:float"] = (split.reference + 1) % 3  # even the last stage disagrees
    int8, floats = candidates()
    with pytest.raises(ArielError, match="no configuration reaches 99.5% agreement"):
        search([[int8[0], floats[0]]], split, 0.995)


@pytest.mark.parametrize("always_right", ["ee:int8:ariel_exit1", "ee:int8:ariel_exit2"])
def test_among_equal_costs_the_fewest_stages_then_models_win(always_right):
    """An exit right on every input can answer them all (threshold 0), and whatever follows
    it is then free: many lists tie. Of the enumerated optima, the search keeps the one with
    the fewest stages, then the fewest compiled models (here the int8 final output, not the
    float model, after the exit)."""
    split = problem(8, 10)
    split.answers[always_right] = split.reference.copy()
    configurations = chains(candidates())
    result = search(configurations, split, 1.0)
    found = brute_force(configurations, split, "energy_uj")
    cost = min(c for a, c, _ in found if a == 1.0)
    optimal = {tuple(keys) for a, c, keys in found if a == 1.0 and c <= cost * (1 + 1e-12)}
    assert len(optimal) > 1  # a real tie
    smallest = min(optimal, key=lambda keys: (len(keys), len({k.rsplit(":", 1)[0]
                                                              if k.count(":") > 1 else k
                                                              for k in keys})))
    assert result.chosen.stages == smallest
    assert result.chosen.calibration.energy_uj == pytest.approx(cost, rel=1e-12)
    assert "ee:float" not in result.chosen.stages


def test_a_cost_lower_only_by_rounding_does_not_buy_a_longer_list():
    """0.1 + 0.2 is 0.30000000000000004: the shorter list, an ulp dearer, is kept."""
    short = [Candidate("a:int8:e", "a:int8", 0, Cost(0.1, 0.1), Cost(0.2, 0.2)),
             Candidate("a:int8", "a:int8", 1, Cost(5.0, 5.0), final=True)]
    long = [Candidate("b:int8:e", "b:int8", 0, Cost(0.3, 0.3)),
            Candidate("b:int8", "b:int8", 1, Cost(5.0, 5.0), final=True),
            Candidate("b:float", "b:float", 1, Cost(9.0, 9.0), final=True)]
    reference = np.arange(20) % 3
    keys = [c.key for c in short + long]
    split = Split({k: reference for k in keys},
                  {k: np.ones(20, np.float32) for k in keys}, reference)
    result = search([long, short], split, 1.0)  # the longer one is found first
    assert result.chosen.stages == ("a:int8:e", "a:int8")
    assert result.chosen.costs[0].cycles > 0.3  # dearer than the other, by rounding
    # Cheaper by more than rounding, the longer list wins.
    long[0] = Candidate("b:int8:e", "b:int8", 0, Cost(0.2999, 0.2999))
    assert search([long, short], split, 1.0).chosen.stages == ("b:int8:e", "b:int8", "b:float")


def little_problem(seed: int, count: int, little_right: float) -> tuple[list, Split]:
    """A little network's final output at int8 and float opening the runs of `candidates`,
    cheaper than the big model's first exit; its answers right with `little_right`."""
    little = [[Candidate("little:int8", "little:int8", 0, Cost(40, 0.5), final=True)],
              [Candidate("little:float", "little:float", 0, Cost(70, 0.6), final=True)]]
    split = problem(seed, count)
    rng = np.random.default_rng(seed + 100)
    for key in ("little:int8", "little:float"):
        ok = rng.random(count) < little_right
        split.answers[key] = np.where(ok, split.reference, (split.reference + 1) % 3)
        split.margins[key] = np.round(rng.random(count) * 4 + ok * 2, 1).astype(np.float32)
    return [*little, *candidates()], split


def test_lists_opened_by_a_little_network_end_in_the_big_model():
    runs, _ = little_problem(9, 10, 0.9)
    configurations = chains(runs, 8, ends={"ee:int8", "ee:float"})
    assert len(configurations) == 4 * 12  # the little runs in or out, then the big lists
    assert all(stages[-1].run in ("ee:int8", "ee:float") for stages in configurations)
    assert [s.key for s in configurations[-1]][:2] == ["little:int8", "little:float"]
    # Without `ends` a little network's final output could close a list: it replaces the
    # model, which no list may do.
    assert any(stages[-1].run.startswith("little") for stages in chains(runs))


@pytest.mark.parametrize("seed,target,little_right", [(10, 1.0, 1.0), (11, 0.9, 0.8),
                                                       (12, 0.8, 0.7)])
def test_the_search_over_little_and_big_finds_the_enumerated_optimum(seed, target,
                                                                     little_right):
    """With the little network's lists among them, the search's optimum and front are those
    of brute force; a little network right on every input opens the chosen list, at a
    threshold of 0 (it answers everything, so the big model behind it costs nothing)."""
    runs, split = little_problem(seed, 8, little_right)
    configurations = chains(runs, 3, ends={"ee:int8", "ee:float"})  # brute force stays quick
    result = search(configurations, split, target, front_floor=0.5)
    found = brute_force(configurations, split, "energy_uj")
    cost = min(c for a, c, _ in found if a >= target - 1e-12)
    assert result.chosen.calibration.energy_uj == pytest.approx(cost, rel=1e-12)
    assert result.chosen.calibration.agreement >= target
    got = [(p.calibration.agreement, p.calibration.energy_uj) for p in result.front]
    want = pareto(found, 0.5)
    assert [a for a, _ in got] == pytest.approx([a for a, _ in want])
    assert [c for _, c in got] == pytest.approx([c for _, c in want], rel=1e-12)
    if little_right == 1.0:
        # It ties with the little network then the float model, which holds more flash.
        assert result.chosen.stages == ("little:int8", "ee:int8")
        assert result.chosen.thresholds == (0.0,)
        assert cost == pytest.approx(0.5)
