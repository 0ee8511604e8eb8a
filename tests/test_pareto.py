"""Fronts and hypervolumes against values worked out by hand; the runner's options."""

import re

import pytest

from rlnas.evaluators import CallableEvaluator, TabularEvaluator
from rlnas.search.build import pareto_archive
from rlnas.search.config import ParetoConfig, RunConfig
from rlnas.search.pareto import ParetoArchive, hypervolume, pareto_front

# (score, cost): score maximised, cost minimised
POINTS = [(0.5, 1.0), (0.4, 2.0), (0.8, 3.0), (0.8, 4.0), (0.7, 3.0), (0.5, 1.0), (0.9, 6.0)]


def test_front_keeps_what_nothing_dominates_by_cost_ascending():
    # (0.4, 2) is beaten by (0.5, 1); (0.7, 3) by (0.8, 3); (0.8, 4) by (0.8, 3); (0.5, 1) twice is once
    assert pareto_front(POINTS) == [(0.5, 1.0), (0.8, 3.0), (0.9, 6.0)]
    assert pareto_front([]) == []


def test_hypervolume_by_hand():
    # Strips from reference (0, 5): (0.5 - 0) x (5 - 1) + (0.8 - 0.5) x (5 - 3) = 2.0 + 0.6; the
    # point of cost 6 lies outside the box and adds nothing.
    assert hypervolume(POINTS, (0.0, 5.0)) == pytest.approx(2.6)
    # From (0.6, 7): (0.5, 1) is below the reference score; (0.8 - 0.6) x (7 - 3) + (0.9 - 0.8) x (7 - 6)
    assert hypervolume(POINTS, (0.6, 7.0)) == pytest.approx(0.9)
    assert hypervolume([(0.5, 1.0)], (0.5, 2.0)) == 0.0 and hypervolume([], (0.0, 1.0)) == 0.0


def test_archive_follows_the_front_and_names_its_cells():
    archive = ParetoArchive("params")
    joined = [archive.add(f"cell{i}", score, {"params": cost}) for i, (score, cost) in enumerate(POINTS)]
    assert joined == [True, False, True, False, False, False, True]
    assert archive.add("crashed", 1.0, {"params": 0, "failed": "trial exited 1"}) is False
    assert archive.add("no cost", 1.0, {"val_acc": 1.0}) is False
    assert archive.front == [{"arch": "cell0", "score": 0.5, "params": 1.0},
                             {"arch": "cell2", "score": 0.8, "params": 3.0},
                             {"arch": "cell6", "score": 0.9, "params": 6.0}]
    # no reference given: score 0 and the costliest evaluation (6): 0.5 x 5 + 0.3 x 3 + 0.1 x 0
    assert archive.reference == (0.0, 6.0) and archive.hypervolume == pytest.approx(3.4)
    assert archive.add("cheaper", 0.95, {"params": 0.5}) and [p["arch"] for p in archive.front] == ["cheaper"]
    fixed = ParetoArchive("flops", reference=(0.0, 5.0))
    fixed.add("a", 0.5, {"flops": 1.0})
    assert fixed.report() == {"cost": "flops", "reference": (0.0, 5.0), "hypervolume": 2.0,
                              "front": [{"arch": "a", "score": 0.5, "flops": 1.0}]}


@pytest.mark.parametrize("settings, message", [
    ({"cost": 3}, "pareto: cost=3 must be a metric's name, or null (no front)"),
    ({"cost": "params", "reference": [0.5]}, "pareto.reference must be [score, cost]"),
    ({"cost": "params", "reference": "far"}, "pareto: reference='far' must be a list, or null"),
    ({"cost": "params", "every": 0}, "every=0 must be an integer >= 1"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ParetoConfig(**settings)


def front(evaluator, **pareto) -> ParetoArchive | None:
    return pareto_archive(RunConfig.make({"pareto": pareto}, agent={}, env={}, evaluator={}, reward={}, scheduler={},
                                         backend={}, dataset={}), evaluator)


def test_a_cost_the_evaluator_does_not_report_is_refused_by_name():
    """Before, pareto.cost=banana was taken, and the front silently stayed empty."""
    with pytest.raises(ValueError, match="pareto.cost='banana': the tabular evaluator reports no such cost; it "
                                         "reports params, flops"):
        front(TabularEvaluator(), cost="banana")
    assert front(TabularEvaluator(), cost="flops").cost == "flops"


def test_auto_takes_params_where_the_evaluator_reports_it_and_null_takes_nothing(nb201):
    assert front(TabularEvaluator()).cost == "params"  # cost: auto
    assert front(TabularEvaluator(), cost=None) is None
    user = CallableEvaluator(nb201, lambda arch: 0.5)  # the user's function reports what it reports
    assert user.costs is None and front(user, cost="banana").cost == "banana"
