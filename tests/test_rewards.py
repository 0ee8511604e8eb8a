"""Rewards against hand-computed values; the env and the runner weigh, the store stays raw."""

import json
import re
import sqlite3

import pytest

from rlnas.core.registry import REWARDS
from rlnas.envs import NASEnv
from rlnas.search.rewards import Constrained, Reward, Scalarized
from tests.test_train import train

SMALL = {"val_acc": 0.8, "params": 2.5e5, "flops": 4e7}
LARGE = {"val_acc": 0.8, "params": 1e6, "flops": 1.5e8}


def test_constrained_soft_is_mnasnets_formula():
    reward = Constrained({"params": 5e5}, w=-0.07, hard=False)
    assert reward(0.8, LARGE) == pytest.approx(0.8 * 2 ** -0.07)  # twice the target: 0.76211
    assert reward(0.8, SMALL) == pytest.approx(0.8 * 0.5 ** -0.07)  # half of it: 0.83975
    both = Constrained({"params": 5e5, "flops": 1e8}, w=-0.07, hard=False)
    assert both(0.8, LARGE) == pytest.approx(0.8 * 2 ** -0.07 * 1.5 ** -0.07)
    assert Constrained({"params": 5e5}, w=0.0, hard=False)(0.8, LARGE) == 0.8


def test_constrained_hard_cuts_at_the_target():
    reward = Constrained({"params": 5e5}, hard=True)
    assert reward(0.8, LARGE) == 0.0 and reward(0.8, SMALL) == 0.8
    assert reward(0.8, {**LARGE, "params": 5e5}) == 0.8  # at the target is within it
    assert reward.meets(SMALL) and not reward.meets(LARGE)


def test_scalarized_weighs_costs_in_units_of_their_scale():
    reward = Scalarized(weights={"params": 0.05, "flops": 0.1}, scales={"params": 1e6, "flops": 1e8})
    assert reward(0.8, LARGE) == pytest.approx(0.8 - 0.05 * 1.0 - 0.1 * 1.5)
    assert reward(0.8, SMALL) == pytest.approx(0.8 - 0.05 * 0.25 - 0.1 * 0.4)


def test_failed_evaluations_earn_their_score_and_accuracy_is_the_score():
    failed = {"failed": "trial exited 1"}
    assert Constrained({"params": 1.0})(0.0, failed) == 0.0
    assert Scalarized({"params": 1.0}, {"params": 1.0})(0.0, failed) == 0.0
    assert Reward()(0.7, {}) == 0.7 and REWARDS.get("accuracy")().name == "accuracy"


def test_constrained_refuses_a_negative_score_and_a_minimized_objective(tmp_path):
    """MnasNet's product ranks backwards on negative scores, and its hard cut to 0 would
    pay an over-budget cell more than any loss."""
    with pytest.raises(ValueError, match="needs scores >= 0; .*use reward=scalarized; got score -0.2"):
        Constrained({"params": 1e6})(-0.2, SMALL)
    proc = train("evaluator=function", "evaluator.fn=tests.objectives:slow_table_score",
                 "evaluator.optimize_mode=minimize", "reward=constrained", "reward.target.params=3e5",
                 f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0 and Constrained.NEEDS in proc.stderr and not (tmp_path / "evaluations.sqlite").exists()


def test_a_cost_the_evaluator_does_not_report_is_named():
    with pytest.raises(ValueError, match=r"weighs metric\(s\) \['latency_ms'\].*it reports \['params', 'val_acc'\]"):
        Constrained({"latency_ms": 5.0})(0.8, {"val_acc": 0.8, "params": 1})


@pytest.mark.parametrize("settings, message", [
    ({"name": "pareto"}, "unknown reward 'pareto'; available rewards: accuracy, constrained, scalarized"),
    ({"name": "constrained", "target": {}}, "needs at least one target"),
    ({"name": "constrained", "target": {"params": -1}}, "target.params"),
    ({"name": "constrained", "target": {"params": 1}, "w": 0.5}, "w"),
    ({"name": "constrained", "target": {"params": 1}, "hard": "yes"}, "hard='yes' must be one of False, True"),
    ({"name": "constrained", "target": {"params": 1}, "eta": 3}, "has no setting(s) ['eta']; it takes target, hard"),
    ({"name": "scalarized", "weights": {"params": 1}, "scales": {"flops": 1}}, "the same metrics in both"),
    ({"name": "scalarized", "weights": {"params": 1}, "scales": {"params": 0}}, "scales.params"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        REWARDS.get(settings.pop("name"))(**settings)


def test_env_returns_the_reward_and_keeps_the_score_in_info():
    env = NASEnv("nb201", "tabular", reward=Constrained({"params": 5e5}, hard=False))
    env.reset(seed=0)
    for action in [3, 3, 3, 1, 2, 3]:  # the C10 table's best cell: 1,073,466 parameters
        *_, reward, terminated, _, info = env.step(action)
    assert terminated and info["score"] == pytest.approx(0.84892)
    assert reward == pytest.approx(0.84892 * (1_073_466 / 5e5) ** -0.07)


@pytest.mark.slow
def test_constrained_run_keeps_raw_scores_and_pays_nothing_again(tmp_path):
    train("agent=random", "budget.evaluations=30", f"hydra.run.dir={tmp_path / 'plain'}")
    store = tmp_path / "plain" / "evaluations.sqlite"
    proc = train("agent=random", "budget.evaluations=30", "reward=constrained", "reward.target.params=3e5",
                 f"store={store}", f"hydra.run.dir={tmp_path / 'constrained'}")
    with sqlite3.connect(store) as db:
        rows = [(score, json.loads(m)) for score, m in db.execute("SELECT score, metrics FROM evaluations")]
    assert len(rows) == 30 and all(score == m["val_acc"] for score, m in rows)  # raw, and not one re-billed
    report = json.loads((tmp_path / "constrained" / "report.json").read_text())
    within = [m for _, m in rows if m["params"] <= 3e5]
    assert report["reward"]["within_targets"] == len(within) > 0
    assert report["best_metrics"]["params"] <= 3e5  # the most accurate cell within the budget
    assert report["best_search_score"] == max(m["val_acc"] for m in within)
    assert "within the targets" in proc.stdout


@pytest.mark.slow
def test_a_target_nothing_meets_still_runs_and_says_why(tmp_path):
    proc = train("agent=random", "budget.evaluations=10", "reward=constrained", "reward.target.params=5e4",
                 f"hydra.run.dir={tmp_path}")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["evaluations"] == 10 and report["reward"]["within_targets"] == 0
    assert "no evaluated cell meets params <= 50000: the cheapest evaluated costs params=" in proc.stdout
