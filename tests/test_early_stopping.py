"""Early stopping of trials (rlnas/search/schedulers.py) against hand-computed cases, and
in the trial evaluator with real scripts."""

import json
import sqlite3
import sys

import pytest

from rlnas.core.context import RunContext
from rlnas.core.registry import SCHEDULERS
from rlnas.evaluators import TrialEvaluator
from rlnas.search.schedulers import MedianStopping, SuccessiveHalving
from rlnas.spaces.hpo import HPOSpace
from tests.test_parallel import report_of
from tests.test_train import ROOT, train

COMPLETED = [("a", [0.5, 0.6, 0.7], True), ("b", [0.2, 0.3, 0.4], True), ("c", [0.9, 0.9, 0.9], True)]


def test_median_stopping_compares_the_best_so_far_with_completed_running_averages():
    rule = MedianStopping(start_step=2)
    # at step 2 the running averages are 0.55, 0.25 and 0.9: median 0.55
    assert rule.should_stop([0.1, 0.5], COMPLETED)
    assert not rule.should_stop([0.6, 0.1], COMPLETED)  # its best so far, 0.6, is above
    assert not rule.should_stop([0.0], COMPLETED)  # before start_step
    running = [("d", [0.99, 0.99], False)]  # running and stopped trials do not count
    assert not rule.should_stop([0.1, 0.5], running)
    # at step 3: averages 0.6, 0.3, 0.9, median 0.6
    assert rule.should_stop([0.1, 0.5, 0.59], COMPLETED) and not rule.should_stop([0.1, 0.5, 0.61], COMPLETED)


def test_successive_halving_stops_below_the_rungs_quantile():
    rule = SuccessiveHalving(min_resource=1, eta=3)
    assert [step for step in range(1, 30) if rule.is_rung(step, 0)] == [1, 3, 9, 27]
    assert [step for step in range(1, 30) if rule.is_rung(step, 1)] == [3, 9, 27]
    others = [(str(i), [v, v, v], False) for i, v in enumerate([0.1, 0.2, 0.3, 0.4, 0.5])]
    # rung 3 holds 0.1 ... 0.5 and the trial's own value; the cut is their 2/3 quantile
    assert rule.should_stop([0, 0, 0.35], others)  # quantile of 0.1-0.5 and 0.35 at 2/3: 0.3667
    assert not rule.should_stop([0, 0, 0.45], others)  # 0.4167: kept
    assert not rule.should_stop([0, 0.0], others)  # step 2 is no rung
    assert not rule.should_stop([0.0], [])  # alone at a rung: nothing to compare with


def test_hyperband_brackets_compare_trials_only_within_their_bracket():
    rule = SuccessiveHalving(min_resource=1, eta=2, brackets=2)
    ids = [f"t{i}" for i in range(40)]
    by_bracket = {b: [i for i in ids if rule.bracket(i) == b] for b in (0, 1)}
    assert by_bracket[0] and by_bracket[1]  # trials spread over both
    me, rival = by_bracket[0][0], by_bracket[1][0]
    assert not rule.should_stop([0.1, 0.1], [(rival, [0.9, 0.9], True)], me)  # the rival is in another bracket
    assert rule.should_stop([0.1, 0.1], [(by_bracket[0][1], [0.9, 0.9], True)], me)


def scheduler(name: str, **settings) -> RunContext:
    """A run whose scheduler is ``name`` with ``settings``, as train.py's scheduler=NAME makes it."""
    return RunContext(scheduler=SCHEDULERS.get(name)(**settings))


@pytest.mark.parametrize("name,settings,message", [
    ("asha", {}, "unknown scheduler 'asha'; available schedulers: fifo, hyperband, median"),
    ("hyperband", {"eta": 1}, r"hyperband scheduler: eta=1 must be an integer >= 2"),
    ("median", {"start_step": 0}, r"median scheduler: start_step=0 must be an integer >= 1"),
    ("median", {"eta": 3}, r"median has no setting\(s\) \['eta'\]; it takes start_step"),
])
def test_bad_scheduler_settings_are_refused(name, settings, message):
    with pytest.raises(ValueError, match=message):
        scheduler(name, **settings)


SPACE = {"x": {"_type": "quniform", "_value": [0, 1, 0.25]}, "epochs": {"_type": "choice", "_value": [10]}}


@pytest.mark.parametrize("settings,order,stops", [
    # completed 0.25, 0.5, 1.0 average 0.0375, 0.075, 0.15 at step 2: x=0 stops there, median 0.075
    ({"name": "median", "start_step": 2}, [0.25, 0.5, 1.0, 0.0], {0.0: 2}),
    # rung 2 holds x=1.0's 0.2 and x=0.25's 0.05; the median cut, 0.125, stops the second
    ({"name": "hyperband", "min_resource": 2, "eta": 2}, [1.0, 0.25], {0.25: 2}),
])
def test_the_trial_evaluator_stops_a_hopeless_trial_at_its_step(tmp_path, monkeypatch, settings, order, stops):
    monkeypatch.setenv("RLNAS_TEST_EPOCH_SECONDS", "0.05")
    space = HPOSpace(SPACE)
    evaluator = TrialEvaluator(space, f"{sys.executable} {ROOT / 'tests' / 'trial_script.py'}", workdir=tmp_path,
                               run=scheduler(**settings))
    for x in order:
        result = evaluator.evaluate(space.to_string(space.from_parameters({"x": x, "epochs": 10})))
        if x in stops:
            assert result.metrics["stopped_at"] == stops[x] and "failed" not in result.metrics
            assert result.score == pytest.approx(x * stops[x] / 10)  # the result it was stopped at
            assert stops[x] <= result.metrics["resource"] < 10  # killed before its last epoch
        else:
            assert "stopped_at" not in result.metrics and result.metrics["resource"] == 10 and result.score == x


def test_a_trial_stopped_after_its_final_result_is_not_a_failure(tmp_path, monkeypatch):
    """The rule may stop a trial whose final result is already written while it is still
    alive: the kill's exit code (-9) must not turn a finished trial into a failed one."""
    monkeypatch.setenv("RLNAS_TEST_LINGER", "1")
    space = HPOSpace(SPACE)
    evaluator = TrialEvaluator(space, f"{sys.executable} {ROOT / 'tests' / 'trial_script.py'}", workdir=tmp_path,
                               run=scheduler("median", start_step=10))
    for x in (1.0, 0.0):  # the second is below the first's running average at its last step
        result = evaluator.evaluate(space.to_string(space.from_parameters({"x": x, "epochs": 10})))
        assert "failed" not in result.metrics and result.metrics["resource"] == 10 and result.score == x


def test_early_stopping_under_minimize_stops_the_high_curves(tmp_path, monkeypatch):
    """Curves rise to x; minimising, a higher one is worse. Negated, the median rule at step 2
    compares -0.15 x: after x = 0.25 completes (-0.0375), x = 0.5's best so far (-0.05) is
    below it; after x = 0.25 and 0 (median -0.01875), so is x = 1's (-0.1)."""
    monkeypatch.setenv("RLNAS_TEST_EPOCH_SECONDS", "0.05")
    space = HPOSpace(SPACE)
    evaluator = TrialEvaluator(space, f"{sys.executable} {ROOT / 'tests' / 'trial_script.py'}", workdir=tmp_path,
                               run=scheduler("median", start_step=2), optimize_mode="minimize")
    stops = {}
    for x in [0.25, 0.5, 0.0, 1.0]:
        result = evaluator.evaluate(space.to_string(space.from_parameters({"x": x, "epochs": 10})))
        assert result.score == -result.metrics["value"]
        if "stopped_at" in result.metrics:
            stops[x] = result.metrics["stopped_at"]
            assert result.metrics["value"] == pytest.approx(x * stops[x] / 10)
        else:
            assert result.metrics["value"] == x
    assert stops == {0.5: 2, 1.0: 2}


@pytest.mark.slow
def test_a_search_with_early_stopping_reports_what_it_spent(tmp_path):
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    run_dir = tmp_path / "run"
    train("agent=random", "env=hpo", f"env.search_space={tmp_path / 'space.json'}", "evaluator=trial",
          "evaluator.command=python tests/trial_script.py", "scheduler=median", "scheduler.start_step=1",
          "budget.evaluations=5", "quiet=true", f"hydra.run.dir={run_dir}", env={"RLNAS_TEST_EPOCH_SECONDS": "0.05"})
    report = report_of(run_dir)
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        rows = [(score, json.loads(m)) for score, m in db.execute("SELECT score, metrics FROM evaluations")]
    spent = sum(m["resource"] for _, m in rows)
    stopped = [(score, m) for score, m in rows if "stopped_at" in m]
    assert report["evaluations"] == 5 and report["resource_spent"] == spent
    assert report["full_trial_equivalents"] == round(spent / 10, 2) and report["stopped_early"] == len(stopped)
    for score, m in stopped:
        assert m["stopped_at"] < 10 and score == m["intermediate"][m["stopped_at"] - 1]


@pytest.mark.slow
def test_a_resource_budget_counts_the_epochs_trials_spent(tmp_path):
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    run_dir = tmp_path / "run"
    train("agent=random", "env=hpo", f"env.search_space={tmp_path / 'space.json'}", "evaluator=trial",
          "evaluator.command=python tests/trial_script.py", "budget.resource=25", "budget.evaluations=5", "quiet=true",
          f"hydra.run.dir={run_dir}")
    report = report_of(run_dir)  # 10 epochs a trial: 20 < 25 after two, 30 after the third
    assert (report["evaluations"], report["resource_spent"], report["stopped_by"]) == (3, 30, "budget.resource")
