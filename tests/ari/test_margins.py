"""Margins, the simulated dispatcher and the choice of thresholds, on small hand-made cases
whose answers follow by hand."""

import numpy as np
import pytest

from codegen.ari.margins import (
    answers,
    choose,
    curve,
    expected_energy,
    margins,
    required_samples,
    simulate,
)
from codegen.errors import ArielError


def test_top2_and_binary_margins():
    scores = np.array([[0.1, 0.7, 0.2], [0.4, 0.35, 0.25]], np.float32)
    np.testing.assert_allclose(margins(scores, "top2"), [0.5, 0.05], rtol=1e-6)
    np.testing.assert_array_equal(answers(scores, "top2"), [1, 0])
    single = np.array([[2.5], [-0.5], [1.0]], np.float32)
    np.testing.assert_allclose(margins(single, "binary", 1.0), [1.5, 1.5, 0.0])
    np.testing.assert_array_equal(answers(single, "binary", 1.0), [1, 0, 1])
    with pytest.raises(ArielError, match="at least two scores"):
        margins(single, "top2")


def test_dispatch_escalates_below_threshold():
    little = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8]], np.float32)  # margins .8 .1 .6
    big = np.array([[0.7, 0.3], [0.1, 0.9], [0.4, 0.6]], np.float32)
    dispatch = simulate([little, big], [0.5], "top2")
    np.testing.assert_array_equal(dispatch.stage, [0, 1, 0])
    np.testing.assert_array_equal(dispatch.answer, [0, 1, 1])
    # A margin equal to the threshold answers (>=), as in the C dispatcher.
    at_edge = simulate([little, big], [np.float32(0.6)], "top2")
    np.testing.assert_array_equal(at_edge.stage, [0, 1, 0])


def test_three_stage_cascade():
    s0 = np.array([[0.6, 0.4], [0.9, 0.1], [0.5, 0.5]], np.float32)  # .2 .8 0
    s1 = np.array([[0.95, 0.05], [0.5, 0.5], [0.52, 0.48]], np.float32)  # .9 0 .04
    s2 = np.array([[1, 0], [0, 1], [0, 1]], np.float32)
    dispatch = simulate([s0, s1, s2], [0.5, 0.5], "top2")
    np.testing.assert_array_equal(dispatch.stage, [1, 0, 2])
    np.testing.assert_array_equal(dispatch.answer, [0, 0, 1])


def test_curve_default_is_the_smallest_threshold_with_full_agreement():
    rng = np.random.default_rng(0)
    final = rng.normal(size=(200, 4)).astype(np.float32)
    noisy = (final + rng.normal(scale=0.3, size=final.shape)).astype(np.float32)
    points = curve([noisy, final], "top2", [10.0, 100.0])
    chosen = choose(points)
    assert chosen.agreement == 1.0
    # Nothing smaller agrees fully, and the energy follows the escalation rate.
    assert all(p.agreement < 1.0 for p in points if p.threshold < chosen.threshold)
    assert chosen.energy_uj == pytest.approx(10.0 + 100.0 * chosen.escalation)
    target = choose(points, target_agreement=0.95)
    assert target.threshold <= chosen.threshold and target.agreement >= 0.95
    budget = choose(points, energy_budget_uj=40.0)
    assert budget.energy_uj <= 40.0
    with pytest.raises(ArielError, match="no threshold meets an energy budget"):
        choose(points, energy_budget_uj=5.0)


def test_expected_energy_and_sample_counts():
    assert expected_energy(np.array([0, 0, 1, 2]), [1.0, 10.0, 100.0]) == pytest.approx(
        (1 + 1 + 11 + 111) / 4)
    assert required_samples(None) == 20
    assert required_samples(0.999) == 1000
