"""The search `ariel optimize` runs: for candidate stage lists (which exits, which precisions,
in which order), the thresholds with the least expected energy whose answers agree with the
float model on at least a target share of the calibration inputs, and the Pareto front of
expected energy against agreement. Pure: it takes every candidate stage's answer and margin
per input and its measured costs, and runs nothing.

Why the search can be exact. Stage k answers an input when its margin reaches t_k. Take any
thresholds and, at the first stage, lower t_k to just above the largest margin of an input
it would answer wrongly among those it now passes on (or to 0 if there is none): it answers
the same wrong inputs and more right ones, which then pay for fewer stages, and the later
stages see fewer inputs, so they answer wrongly no more often. Repeating this stage by stage
never costs energy or agreement, so some optimum has every threshold at 0 or just above the
margin of a wrong answer. For each stage that leaves one candidate per wrong answer it may
still afford, and the error budget (1 - target) * N bounds the whole tree.

Ties. Lists often cost the same: a stage answering every input it sees (threshold 0) makes
whatever follows it free, so an exit at 0 followed by the int8 final output costs what the
same exit followed by the float model does. Among costs equal within rounding (sums taken in
another order differ in the last bits), the search keeps the list with the fewest stages, then
the fewest compiled models (each holds its own weights), then the fewest of them in float (a
little network at threshold 0 then the big model in int8, not in float): less flash for the
same answers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codegen.errors import ArielError


@dataclass(frozen=True)
class Cost:
    cycles: float
    energy_uj: float | None  # None without a power figure: the search then minimizes cycles

    def __add__(self, other: Cost) -> Cost:
        energy = None if self.energy_uj is None or other.energy_uj is None else \
            self.energy_uj + other.energy_uj
        return Cost(self.cycles + other.cycles, energy)

    def __sub__(self, other: Cost) -> Cost:
        energy = None if self.energy_uj is None or other.energy_uj is None else \
            self.energy_uj - other.energy_uj
        return Cost(self.cycles - other.cycles, energy)


ZERO = Cost(0.0, 0.0)


@dataclass(frozen=True)
class Candidate:
    """One stage a configuration may hold: a model's output (an exit or the final one) at
    one precision. Stages of the same `run` (model and precision) that follow each other
    resume the backbone where the previous one stopped, so a stage costs its backbone from
    there (`prefix` minus the previous stage's) plus its own head."""

    key: str  # as a stages file names it: MODEL:PRECISION[:OUTPUT]
    run: str  # MODEL:PRECISION
    depth: int  # order along the backbone within the run
    prefix: Cost  # the backbone from the run's start to this output's branch point
    head: Cost = ZERO  # the exit's own layers (0 for a model's final output)
    final: bool = False  # the model's own output rather than an exit


@dataclass
class Split:
    """Every candidate's answer and margin on one set of inputs, and the float model's answer
    (the reference agreement is measured against); labels when known."""

    answers: dict[str, np.ndarray]
    margins: dict[str, np.ndarray]  # float32, as the firmware compares them
    reference: np.ndarray
    labels: np.ndarray | None = None

    @property
    def count(self) -> int:
        return len(self.reference)


@dataclass
class Outcome:
    """A configuration with thresholds, on one split."""

    agreement: float
    accuracy: float | None
    cycles: float  # expected per inference
    energy_uj: float | None
    answered: list[int]  # inputs answered by each stage


@dataclass
class Point:
    stages: tuple[str, ...]
    thresholds: tuple[float, ...]
    calibration: Outcome
    heldout: Outcome | None = None
    costs: tuple[Cost, ...] = ()  # what each stage adds when it runs after the ones before


@dataclass
class SearchResult:
    chosen: Point
    front: list[Point]  # least expected energy for each agreement reached, best first
    configurations: int
    evaluated: int  # threshold settings costed (leaves of the search)
    target: float
    objective: str = field(default="energy_uj")


def stage_costs(stages: list[Candidate]) -> list[Cost]:
    """What each stage adds when it runs after the ones before it."""
    costs = []
    for index, stage in enumerate(stages):
        previous = stages[index - 1] if index else None
        resumes = previous is not None and previous.run == stage.run and \
            previous.depth < stage.depth
        costs.append(stage.prefix - previous.prefix + stage.head if resumes else
                     stage.prefix + stage.head)
    return costs


def chains(runs: list[list[Candidate]], max_stages: int = 5,
           ends: set[str] | None = None) -> list[list[Candidate]]:
    """Every stage list taking, from each run in the given order (cheapest first), any of its
    candidates in backbone order, and ending in a model's final output: one of the runs
    `ends` names, when given (a little network may open a list, never close it, so that
    every list keeps the model it was asked to stand in for)."""
    found: list[list[Candidate]] = [[]]
    for run in runs:
        ordered = sorted(run, key=lambda c: c.depth)
        found = [head + [c for bit, c in enumerate(ordered) if mask >> bit & 1]
                 for head in found for mask in range(1 << len(ordered))]
    return [stages for stages in found
            if stages and stages[-1].final and len(stages) <= max_stages
            and (ends is None or stages[-1].run in ends)]


def above(margin: float) -> float:
    """The smallest float32 threshold a margin of `margin` does not reach."""
    return float(np.nextafter(np.float32(margin), np.float32(np.inf)))


def dispatch(margins: list[np.ndarray], thresholds: tuple[float, ...]) -> np.ndarray:
    """The stage answering each input: the first whose margin reaches its threshold."""
    count = len(margins[0])
    stage = np.full(count, len(margins) - 1)
    pending = np.ones(count, bool)
    for index, threshold in enumerate(thresholds):
        answered = pending & (margins[index] >= np.float32(threshold))
        stage[answered] = index
        pending &= ~answered
    return stage


def evaluate(stages: list[Candidate], thresholds: tuple[float, ...], split: Split) -> Outcome:
    """Agreement, accuracy and expected cost of the configuration on `split`."""
    keys = [s.key for s in stages]
    stage = dispatch([split.margins[k] for k in keys], thresholds)
    answer = np.choose(stage, [split.answers[k] for k in keys])
    cumulative = np.cumsum([c.cycles for c in stage_costs(stages)])
    energies = [c.energy_uj for c in stage_costs(stages)]
    energy = None if any(e is None for e in energies) else \
        float(np.cumsum(energies)[stage].mean())
    return Outcome(float((answer == split.reference).mean()),
                   None if split.labels is None else float((answer == split.labels).mean()),
                   float(cumulative[stage].mean()), energy,
                   np.bincount(stage, minlength=len(stages)).tolist())


TIE = 1e-9  # relative: expected costs closer than this are the same cost


def below(value: float, limit: float) -> bool:
    """`value` is lower than `limit` by more than rounding."""
    if not np.isfinite(limit):
        return value < limit
    return value < limit - TIE * abs(limit)


def footprint(stages: list[Candidate]) -> tuple[int, int, int]:
    """What a list holds: its stages, then its compiled models, then those in float (whose
    weights take four times an int8 model's flash); fewer is less flash."""
    runs = {s.run for s in stages}
    return len(stages), len(runs), sum(run.endswith(":float") for run in runs)


def allowed_errors(target: float, count: int) -> int:
    """Disagreements the target leaves on `count` inputs."""
    return int(np.floor((1 - target) * count + 1e-9))


def search(configurations: list[list[Candidate]], calibration: Split, target: float = 0.995,
           heldout: Split | None = None, front_floor: float | None = None) -> SearchResult:
    """The least expected energy (cycles without power figures) among `configurations`
    reaching `target` agreement on `calibration`, and the front down to `front_floor`
    agreement (default: 2 points below the target, at most 5% of the inputs wrong)."""
    if not configurations:
        raise ArielError("no candidate configuration to search")
    objective = "energy_uj" if all(s.prefix.energy_uj is not None and s.head.energy_uj
                                   is not None for c in configurations for s in c) else "cycles"
    count = calibration.count
    budget = allowed_errors(target, count)
    floor = max(target - 0.02, 0.95) if front_floor is None else min(front_floor, target)
    front_budget = max(budget, allowed_errors(floor, count))
    best = _Front(front_budget)
    # Smallest lists first: a later list must cost less by more than rounding to replace one.
    for index in sorted(range(len(configurations)),
                        key=lambda i: footprint(configurations[i])):
        _search_one(index, configurations[index], calibration, best, objective)
    if best.cost[: budget + 1].min() == np.inf:
        raise ArielError(f"no configuration reaches {100 * target:g}% agreement with the float "
                         f"model on the {count} calibration inputs; add a stage that agrees "
                         "(the float model itself) or lower --target-agreement")
    points = []
    for errors in best.frontier():
        config, thresholds = best.found[errors]
        stages = configurations[config]
        points.append(Point(tuple(s.key for s in stages), thresholds,
                            evaluate(stages, thresholds, calibration),
                            None if heldout is None else evaluate(stages, thresholds, heldout),
                            tuple(stage_costs(stages))))
    reaching = [p for p in points if p.calibration.agreement >= target - 1e-12]
    chosen = min(reaching, key=lambda p: (_objective(p.calibration, objective),
                                          -p.calibration.agreement))
    return SearchResult(chosen, points, len(configurations), best.leaves, target, objective)


def _objective(outcome: Outcome, objective: str) -> float:
    return outcome.energy_uj if objective == "energy_uj" else outcome.cycles


class _Front:
    """The least total cost found for each number of disagreements, and what reached it."""

    def __init__(self, budget: int):
        self.cost = np.full(budget + 1, np.inf)
        self.found: dict[int, tuple[int, tuple[float, ...]]] = {}
        self.leaves = 0

    def record(self, errors: int, cost: float, config: int, thresholds: tuple[float, ...]
               ) -> None:
        self.leaves += 1
        if errors < len(self.cost) and below(cost, self.cost[errors]):
            self.cost[errors] = cost
            self.found[errors] = (config, thresholds)

    def bound(self, errors: int) -> float:
        """No leaf with at least `errors` disagreements is worth finding unless it costs
        less than this by more than rounding."""
        return float(self.cost[: errors + 1].min()) if errors < len(self.cost) else -np.inf

    def frontier(self) -> list[int]:
        """Error counts whose cost beats every count below them: the Pareto front."""
        kept, least = [], np.inf
        for errors, cost in enumerate(self.cost):
            if below(cost, least):
                kept.append(errors)
                least = cost
        return kept


def _search_one(config: int, stages: list[Candidate], split: Split, best: _Front,
                objective: str) -> None:
    costs = stage_costs(stages)
    per_stage = [(c.energy_uj if objective == "energy_uj" else c.cycles) for c in costs]
    if any(value < 0 for value in per_stage):
        raise ArielError(f"internal: a negative stage cost in {[s.key for s in stages]}")
    cumulative = np.cumsum(per_stage)
    margins = [np.asarray(split.margins[s.key], np.float32) for s in stages]
    wrong = [split.answers[s.key] != split.reference for s in stages]
    last = len(stages) - 1
    budget = len(best.cost) - 1

    def visit(k: int, reaching: np.ndarray, errors: int, spent: float,
              thresholds: tuple[float, ...]) -> None:
        if not below(spent + len(reaching) * cumulative[k], best.bound(errors)):
            return
        if k == last:
            best.record(errors + int(wrong[k][reaching].sum()),
                        spent + len(reaching) * cumulative[k], config, thresholds)
            return
        margin, bad = margins[k][reaching], wrong[k][reaching]
        for threshold in _thresholds(margin[bad], budget - errors):
            answered = margin >= np.float32(threshold)
            visit(k + 1, reaching[~answered], errors + int((answered & bad).sum()),
                  spent + int(answered.sum()) * cumulative[k], (*thresholds, threshold))

    visit(0, np.arange(split.count), 0, 0.0, ())


def _thresholds(wrong_margins: np.ndarray, affordable: int) -> list[float]:
    """Candidate thresholds of one stage, fewest wrong answers first: just above each wrong
    answer's margin, and 0 (answer everything) if every wrong answer is affordable."""
    levels = np.unique(wrong_margins)[::-1]  # distinct, largest first
    candidates = []
    for level in levels:
        if int((wrong_margins > level).sum()) > affordable:
            return candidates
        candidates.append(above(level))
    if len(wrong_margins) <= affordable:
        candidates.append(0.0)
    return candidates
