"""Hyperparameter spaces in NNI's format (rlnas/hpo_space.py) and rlnas/HPO-v0."""

import json
import math
import sqlite3

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnas.cli.train import compose
from rlnas.core.store import EvaluationStore
from rlnas.envs import NASEnv
from rlnas.envs.nas_env import IllegalActionError
from rlnas.evaluators import CallableEvaluator, StoredEvaluator
from rlnas.search.runner import run
from rlnas.spaces.hpo import HPOSpace, load_search_space
from tests.objectives import learning_rate_bowl
from tests.test_train import ROOT, stored_archs, train

SPACE = {
    "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "batch_size": {"_type": "choice", "_value": [32, 64, 128]},
    "optimizer": {"_type": "choice", "_value": [
        {"_name": "sgd", "momentum": {"_type": "quniform", "_value": [0.0, 0.9, 0.1]}},
        {"_name": "adam"},
    ]},
}


def grid(kind, value, levels=16):
    return HPOSpace({"x": {"_type": kind, "_value": value}}, levels=levels).params[0].grid


@pytest.mark.parametrize("kind,value,levels,expected", [
    ("choice", ["relu", "tanh", 3], 16, ("relu", "tanh", 3)),
    ("randint", [0, 5], 16, (0, 1, 2, 3, 4)),  # upper excluded
    ("randint", [0, 100], 4, (0, 33, 66, 99)),  # more integers than levels: evenly spread
    ("uniform", [0, 1], 5, (0.0, 0.25, 0.5, 0.75, 1.0)),
    ("quniform", [0, 10, 2.5], 16, (0.0, 2.5, 5.0, 7.5, 10.0)),  # NNI's own two examples
    ("quniform", [2, 10, 5], 16, (2.0, 5.0, 10.0)),
    ("quniform", [0, 1, 0.1], 16, tuple(i / 10 for i in range(11))),  # 0.30000000000000004 tidied to 0.3
    ("loguniform", [1e-4, 1], 5, (1e-4, 1e-3, 1e-2, 1e-1, 1.0)),
    ("qloguniform", [1, 100, 25], 16, (1.0, 25.0, 50.0, 75.0, 100.0)),  # round(1/25)*25 = 0, clipped to 1
    ("normal", [0, 1], 2, (-0.674489750196, 0.674489750196)),  # quartiles of N(0, 1)
    ("qnormal", [0, 1, 0.5], 4, (-1.0, -0.5, 0.5, 1.0)),  # octiles ±1.150, ±0.319 to multiples of 0.5
    ("lognormal", [0, 1], 2, (0.509416283863, 1.96303108415)),  # exp(±0.67449)
    ("qlognormal", [0, 1, 1], 4, (0.0, 1.0, 3.0)),  # exp(octiles) = 0.32, 0.73, 1.38, 3.16, rounded
])
def test_each_type_has_its_grid(kind, value, levels, expected):
    assert grid(kind, value, levels) == (expected if kind == "choice" else pytest.approx(expected, rel=1e-9, abs=1e-12))


@pytest.mark.parametrize("kind,value,check", [
    ("randint", [3, 7], lambda x: isinstance(x, int) and 3 <= x < 7),
    ("uniform", [-1, 2], lambda x: -1 <= x <= 2),
    ("quniform", [2, 10, 5], lambda x: x in (2.0, 5.0, 10.0)),
    ("loguniform", [1e-3, 1], lambda x: 1e-3 <= x <= 1),
    ("qloguniform", [1, 100, 25], lambda x: x in (1.0, 25.0, 50.0, 75.0, 100.0)),
    ("normal", [5, 2], lambda x: isinstance(x, float)),
    ("qnormal", [5, 2, 0.5], lambda x: (x / 0.5).is_integer()),
    ("lognormal", [0, 1], lambda x: x > 0),
    ("qlognormal", [0, 1, 2], lambda x: x >= 0 and (x / 2).is_integer()),
    ("choice", ["a", "b", "c"], lambda x: x in ("a", "b", "c")),
])
def test_each_type_samples_as_nni_does(kind, value, check):
    """Uniform in the unit interval, mapped: NNI's own distributions (normals cut at ±4.75 sigma)."""
    space, rng = HPOSpace({"x": {"_type": kind, "_value": value}}), np.random.default_rng(0)
    xs = [space.to_parameters(space.sample(rng))["x"] for _ in range(4000)]
    assert all(check(x) for x in xs)
    if kind == "randint":
        assert set(xs) == {3, 4, 5, 6}
    if kind == "uniform":
        assert np.mean(xs) == pytest.approx(0.5, abs=0.05)
    if kind == "loguniform":  # the log is uniform: its mean is halfway between the ends' logs
        assert np.mean(np.log10(xs)) == pytest.approx(-1.5, abs=0.05)
    if kind == "normal":
        assert (np.mean(xs), np.std(xs)) == pytest.approx((5, 2), abs=0.1)
    if kind == "lognormal":
        assert np.mean(np.log(xs)) == pytest.approx(0, abs=0.05)
    if kind == "quniform":  # clip(round(U(2, 10) / 5) * 5): 2 for U < 2.5, 10 for U >= 7.5
        assert xs.count(2.0) / len(xs) == pytest.approx(0.5 / 8, abs=0.02)


def test_nested_choice_is_a_conditional_decision():
    space = HPOSpace(SPACE, levels=4)
    assert space.decision_names() == ["lr", "batch_size", "optimizer", "optimizer > sgd > momentum"]
    assert space.size == 4 * 3 * (10 + 1)  # momentum 0.0-0.9 under sgd; adam has nothing below it
    assert list(space.legal_choices([3, 1, 0])) == list(range(10))  # sgd chose: momentum is asked
    assert list(space.legal_choices([3, 1, 1])) == [0]  # adam: one legal action, and no momentum
    assert space.to_parameters((3, 1, 0, 9)) == {"lr": 0.1, "batch_size": 64,
                                                 "optimizer": {"_name": "sgd", "momentum": 0.9}}
    assert space.to_parameters((0, 2, 1, 0)) == {"lr": 1e-4, "batch_size": 128, "optimizer": {"_name": "adam"}}
    assert space.to_string((0, 2, 1, 0)) == '{"batch_size":128,"lr":0.0001,"optimizer":{"_name":"adam"}}'
    with pytest.raises(ValueError, match=r"optimizer > sgd > momentum is not used .* only legal action is 0"):
        space.validate((0, 2, 1, 3))


def test_mutation_skips_an_unused_hyperparameter_and_repairs_a_new_one():
    space, rng = HPOSpace(SPACE, levels=4), np.random.default_rng(0)
    for _ in range(50):
        mutant = space.mutate((0, 0, 1, 0), rng)  # adam: momentum is not a decision to mutate
        assert space.validate(mutant) and mutant != (0, 0, 1, 0)
        assert sum(a != b for a, b in zip(mutant, (0, 0, 1, 0), strict=True)) == 1


@pytest.mark.parametrize("spec,message", [
    ({}, "search space is empty"),
    ({"lr": 0.1}, r"lr: expected \{'_type': ..., '_value': ...\}"),
    ({"lr": {"_type": "uniform"}}, r"lr: expected \{'_type'"),
    ({"lr": {"_type": "gaussian", "_value": [0, 1]}}, "lr: unknown _type 'gaussian'; allowed: choice, randint"),
    ({"lr": {"_type": "uniform", "_value": [0, 1], "_default": 0.5}}, "lr: unknown key '_default'"),
    ({"lr": {"_type": "uniform", "_value": 0.5}}, "lr: _value of uniform must be a list"),
    ({"lr": {"_type": "quniform", "_value": [0, 1]}}, r"lr: _value of quniform is \[low, high, q\] \(3 numbers\)"),
    ({"lr": {"_type": "normal", "_value": [0, "1"]}}, r"_value of normal is \[mu, sigma\]"),
    ({"lr": {"_type": "uniform", "_value": [1, 1]}}, "lr: uniform needs low < high, got low=1, high=1"),
    ({"lr": {"_type": "loguniform", "_value": [0, 1]}}, "lr: loguniform needs low > 0"),
    ({"n": {"_type": "randint", "_value": [5, 5]}}, "n: randint needs lower < upper"),
    ({"n": {"_type": "randint", "_value": [0, 2.5]}}, "n: randint's lower and upper must be integers"),
    ({"lr": {"_type": "qloguniform", "_value": [1, 10, 0]}}, "lr: qloguniform needs q > 0, got q=0"),
    ({"lr": {"_type": "qnormal", "_value": [0, 1, -1]}}, "lr: qnormal needs q > 0"),
    ({"lr": {"_type": "lognormal", "_value": [0, 0]}}, "lr: lognormal needs sigma > 0"),
    ({"opt": {"_type": "choice", "_value": []}}, "opt: a choice needs at least one option"),
    ({"opt": {"_type": "choice", "_value": [1, 1]}}, "opt: a choice's options must differ"),
    ({"opt": {"_type": "choice", "_value": [{"momentum": {"_type": "uniform", "_value": [0, 1]}}]}},
     "opt: option 0 is a nested space and needs a '_name'"),
    ({"opt": {"_type": "choice", "_value": [{"_name": "a"}, {"_name": "a", "x": {"_type": "randint",
                                                                                  "_value": [0, 2]}}]}},
     "opt: the nested options' _name values must differ"),
    ({"opt": {"_type": "choice", "_value": [{"_name": "sgd", "m": {"_type": "uniform", "_value": [1, 0]}}]}},
     "opt > sgd > m: uniform needs low < high"),  # the key path of a nested hyperparameter
])
def test_a_bad_space_is_refused_naming_the_key_and_what_is_allowed(spec, message):
    with pytest.raises(ValueError, match=message):
        HPOSpace(spec)


def test_spaces_load_from_json_and_yaml_and_bad_files_are_named(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(SPACE))
    (tmp_path / "s.yaml").write_text("lr: {_type: loguniform, _value: [0.0001, 0.1]}\n")
    assert load_search_space(tmp_path / "s.json") == SPACE
    assert HPOSpace(tmp_path / "s.yaml").decision_names() == ["lr"]
    (tmp_path / "bad.json").write_text('{"lr": {"_type": ')
    with pytest.raises(ValueError, match="bad.json' is not valid JSON"):
        load_search_space(tmp_path / "bad.json")
    with pytest.raises(ValueError, match=r"expected a \.json, \.yaml or \.yml file"):
        load_search_space(tmp_path / "s.txt")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_search_space(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="levels=1 must be an integer >= 2"):
        HPOSpace(SPACE, levels=1)


def test_parameter_dicts_off_the_grid_or_unknown_are_refused():
    space = HPOSpace(SPACE, levels=4)
    with pytest.raises(ValueError, match=r"lr=0\.05 is not one of its values: 0\.0001, 0\.001, 0\.01, 0\.1"):
        space.from_parameters({"lr": 0.05, "batch_size": 64, "optimizer": {"_name": "adam"}})
    with pytest.raises(ValueError, match="parameter batch_size is missing"):
        space.from_parameters({"lr": 0.1, "optimizer": {"_name": "adam"}})
    with pytest.raises(ValueError, match="unknown parameter 'dropout'; the space has batch_size, lr, optimizer"):
        space.from_parameters({"lr": 0.1, "batch_size": 64, "optimizer": {"_name": "adam"}, "dropout": 0.1})
    with pytest.raises(ValueError, match="unknown parameter 'momentum' under optimizer"):
        space.from_parameters({"lr": 0.1, "batch_size": 64, "optimizer": {"_name": "adam", "momentum": 0.9}})
    with pytest.raises(ValueError, match="is not a JSON parameter dict"):
        space.from_string("lr=0.1")


NESTED = HPOSpace({
    **SPACE,
    "layers": {"_type": "randint", "_value": [1, 40]},
    "dropout": {"_type": "qnormal", "_value": [0.3, 0.1, 0.05]},
    "act": {"_type": "choice", "_value": ["relu", {"_name": "leaky", "slope": {"_type": "uniform", "_value": [0, 0.3]},
                                                  "inner": {"_type": "choice", "_value": [
                                                      {"_name": "deep", "n": {"_type": "randint", "_value": [0, 3]}},
                                                      True]}}]},
}, levels=8)


def test_hpo_env_is_registered_and_masks_the_unused_step():
    env = gym.make("rlnas/HPO-v0", space_kwargs={"search_space": SPACE, "levels": 4},
                   evaluator_kwargs={"fn": "tests.objectives:learning_rate_bowl"}).unwrapped
    _, info = env.reset(seed=0)
    assert info["action_mask"].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]  # lr: 4 levels of 10 actions
    for action in (2, 1, 1):  # lr 0.01, batch 64, adam
        _, _, _, _, info = env.step(action)
    assert info["action_mask"].tolist() == [1] + [0] * 9  # momentum is not used with adam
    _, reward, terminated, _, info = env.step(0)
    assert terminated and info["parameters"] == {"lr": 0.01, "batch_size": 64, "optimizer": {"_name": "adam"}}
    assert reward == pytest.approx(0.8) == learning_rate_bowl(info["parameters"])


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["random", "ppo"])
def test_train_searches_a_search_space_file(tmp_path, agent):
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    train(f"agent={agent}", "env=hpo", f"env.search_space={tmp_path / 'space.json'}", "env.levels=4",
          "evaluator=function", "evaluator.fn=tests.objectives:learning_rate_bowl", "budget.evaluations=30",
          "quiet=true", f"hydra.run.dir={tmp_path / 'run'}")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    best = report["best_parameters"]
    assert HPOSpace(SPACE, levels=4).parameters(report["best_arch"]) == best
    assert report["evaluations"] == 30 and math.isclose(report["best_search_score"], learning_rate_bowl(best))


def test_an_objective_may_return_metrics_with_the_score_as_default():
    space = HPOSpace(SPACE, levels=4)
    evaluator = CallableEvaluator(space, lambda params: {"default": params["lr"], "test_acc": 0.5})
    result = evaluator.evaluate(space.to_string((1, 0, 1, 0)))
    assert result.score == 1e-3 and result.metrics == {"test_acc": 0.5}


@pytest.mark.parametrize("agent,parallel,objective,why", [
    ("random", 1, "fails_above_half", "RuntimeError: CUDA out of memory (pretend) at x="),
    ("random", 2, "fails_above_half", "RuntimeError: CUDA out of memory (pretend) at x="),
    ("ppo", 2, "fails_above_half", "RuntimeError: CUDA out of memory (pretend) at x="),  # a vector env's failure
    ("random", 1, "nan_above_half", "the function's value is nan, not a finite number"),
])
@pytest.mark.slow
def test_an_objective_that_raises_fails_that_evaluation_and_the_search_goes_on(tmp_path, agent, parallel, objective,
                                                                               why):
    """One evaluation at a time or two, alike: the run used to stop at the first exception
    when sequential (and would meet it again on resume) while workers recorded it. A nan
    was worse: SQLite kept no row for it, and it became the run's best score."""
    (tmp_path / "space.json").write_text(json.dumps({"x": {"_type": "quniform", "_value": [0, 1, 0.25]}}))
    proc = train(f"agent={agent}", "env=hpo", f"env.search_space={tmp_path / 'space.json'}", "evaluator=function",
                 f"evaluator.fn=tests.objectives:{objective}", "budget.evaluations=5", f"parallel={parallel}",
                 f"hydra.run.dir={tmp_path / 'run'}")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["evaluations"] == 5 and report["failed"] == 2  # every cell of the space: x = 0.75 and 1 raise
    assert report["first_failure"].startswith(why)
    assert report["best_parameters"] == {"x": 0.5} and "failed        2 of 5 evaluations" in proc.stdout
    with sqlite3.connect(tmp_path / "run" / "evaluations.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 5  # every one stored


def test_a_missing_search_space_is_named(tmp_path):
    args = ["env=hpo", "evaluator=function", "evaluator.fn=tests.objectives:learning_rate_bowl", "quiet=true"]
    config = compose(args)
    with pytest.raises(ValueError) as refused:
        run(config, tmp_path)
    assert "env.search_space has no value: give it on the command line, env.search_space=..." in str(refused.value)


# -- continuous ranges (the default): a value in [0, 1] mapped on each range's scale ----------------
@pytest.mark.parametrize("kind,value,u,expected", [
    ("uniform", [-1, 3], 0.0, -1.0), ("uniform", [-1, 3], 0.25, 0.0), ("uniform", [-1, 3], 1.0, 3.0),
    ("loguniform", [1e-4, 1e-1], 0.0, 1e-4), ("loguniform", [1e-4, 1e-1], 1 / 3, 1e-3),
    ("loguniform", [1e-4, 1e-1], 1.0, 0.1),
    ("randint", [2, 5], 0.0, 2), ("randint", [2, 5], 0.33, 2), ("randint", [2, 5], 0.34, 3),
    ("randint", [2, 5], 0.999, 4), ("randint", [2, 5], 1.0, 4),  # upper excluded, even at u = 1
    ("quniform", [0, 10, 2.5], 0.3, 2.5),  # x = 3 -> round(1.2) * 2.5
    ("quniform", [0, 10, 2.5], 0.9, 10.0),  # x = 9 -> round(3.6) * 2.5
    ("quniform", [2, 10, 5], 0.0, 2.0),  # x = 2 -> round(0.4) * 5 = 0, clipped to low
    ("qloguniform", [1, 100, 25], 0.75, 25.0),  # x = 100^0.75 = 31.6 -> round(1.26) * 25
    ("qloguniform", [1, 100, 25], 0.0, 1.0),  # x = 1 -> 0, clipped to low
    ("normal", [5, 2], 0.5, 5.0), ("normal", [5, 2], 0.8413447460685429, 7.0),  # Phi(1)
    ("normal", [5, 2], 0.0, 5 - 2 * 4.753424308822899),  # held at the 1e-6 quantile, -4.75 sigma
    ("qnormal", [0, 1, 0.5], 0.9031995154143897, 1.5),  # Phi(1.3): 1.3 -> round(2.6) * 0.5
    ("lognormal", [0, 1], 0.5, 1.0), ("lognormal", [0, 1], 0.8413447460685429, math.e),
    ("qlognormal", [0, 1, 1], 0.8413447460685429, 3.0),  # e -> 3
])
def test_every_range_type_maps_from_the_unit_interval_as_nni_draws_it(kind, value, u, expected):
    space = HPOSpace({"x": {"_type": kind, "_value": value}})
    assert space.is_value(0) and space.size == math.inf
    got = space.to_parameters((u,))["x"]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert isinstance(got, int) == (kind == "randint")
    assert space.to_parameters(space.from_parameters({"x": got}))["x"] == got  # the canonical value maps back


def test_a_value_outside_its_range_or_of_the_wrong_kind_is_refused_naming_the_range():
    space = HPOSpace({"lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
                      "n": {"_type": "randint", "_value": [2, 5]}})
    assert space.from_parameters({"lr": 1e-3, "n": 3}) == pytest.approx((1 / 3, 0.5))  # n=3: the middle of its third
    with pytest.raises(ValueError, match=r"lr=0\.5 is outside its range \(loguniform \[0\.0001, 0\.1\]\)"):
        space.from_parameters({"lr": 0.5, "n": 3})
    with pytest.raises(ValueError, match=r"n=5 is outside its range \(randint \[2, 5\]\)"):
        space.from_parameters({"lr": 1e-3, "n": 5})
    with pytest.raises(ValueError, match=r"n=2\.5 is not an integer"):
        space.from_parameters({"lr": 1e-3, "n": 2.5})
    with pytest.raises(ValueError, match=r"takes a value in \[0, 1\], mapped onto its range; got 1\.5"):
        space.validate((1.5, 0.5))


def test_the_env_has_a_parameterised_action_space_and_says_which_part_a_step_reads():
    env = NASEnv(HPOSpace(SPACE), CallableEvaluator(HPOSpace(SPACE), learning_rate_bowl))
    assert env.action_space == gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.Box(0.0, 1.0, (1,), np.float32)))
    _, info = env.reset(seed=0)
    assert info["action_part"] == "value" and info["action_mask"].tolist() == [0, 0, 0]  # lr: no choice to make
    with pytest.raises(IllegalActionError, match=r"lr \(loguniform \[0\.0001, 0\.1\]\) takes a value in \[0, 1\]"):
        env.step((0, np.array([1.5], np.float32)))
    obs, _, _, _, info = env.step((0, np.array([2 / 3])))  # the tuple's value part: lr = 0.01
    assert obs[0:2].tolist() == pytest.approx([2 / 3, 1.0]) and info["action_part"] == "choice"
    _, _, _, _, info = env.step(1)  # a bare int for a choice step: batch 64
    _, _, _, _, info = env.step(1)  # adam: momentum, nested under sgd, is not used
    assert info["action_part"] == "value"
    _, reward, terminated, _, info = env.step(0.7)  # any value: it is not used
    assert terminated and info["parameters"] == {"lr": 0.01, "batch_size": 64, "optimizer": {"_name": "adam"}}
    assert env.decisions == pytest.approx((2 / 3, 1, 1, 0.0)) and reward == pytest.approx(0.8)
    all_values = HPOSpace({"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "randint", "_value": [0, 9]}})
    assert NASEnv(all_values, CallableEvaluator(all_values, lambda p: p["x"])).action_space == gym.spaces.Box(
        0.0, 1.0, (1,), np.float32)


@st.composite
def points(draw, space):
    """Choices legal given the ones before; values anywhere in [0, 1] (also where unused)."""
    actions = []
    for step in range(space.num_decisions):
        if space.is_value(step):
            actions.append(draw(st.floats(0.0, 1.0)))
        else:
            legal = space.legal_choices(actions)
            actions.append(draw(st.integers(legal.start, legal.stop - 1)))
    return tuple(actions)


@pytest.mark.parametrize("space", [NESTED, HPOSpace(NESTED.spec)], ids=["grid", "continuous"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_an_episode_of_choices_nested_choices_and_values_round_trips_through_the_store(tmp_path_factory, space,
                                                                                        data):
    received = []
    evaluator = CallableEvaluator(space, lambda params: received.append(params) or 0.5)
    store = EvaluationStore(tmp_path_factory.mktemp("store") / "store.sqlite")
    env = NASEnv(space, StoredEvaluator(evaluator, store))
    env.reset(seed=0)
    for action in data.draw(points(space)):
        _, reward, terminated, _, info = env.step(action)
    decisions = env.decisions  # canonical: an unused value is 0.0, an integer's the middle of its interval
    params = space.to_parameters(decisions)
    assert terminated and reward == 0.5 and received == [params] and info["parameters"] == params
    assert json.loads(json.dumps(params)) == params  # the trial gets it as JSON
    assert space.from_parameters(params) == pytest.approx(decisions)
    assert space.to_parameters(space.from_string(info["arch"])) == params
    (stored,) = store.history(evaluator.fingerprint)
    assert space.parameters(stored.arch) == params  # the store's key is the canonical dict
    store.close()


def test_a_failure_on_a_minimised_objective_ranks_below_every_real_loss(tmp_path):
    """Under minimize a score is -loss, below 0: a failure answered with 0 would have been the best."""
    space = HPOSpace({"x": {"_type": "uniform", "_value": [0, 1]}})

    def loss(params):
        if params["x"] > 0.8:
            raise RuntimeError("diverged")
        return 10 + params["x"]

    store = EvaluationStore(tmp_path / "store.sqlite")
    env = NASEnv(space, StoredEvaluator(CallableEvaluator(space, loss, optimize_mode="minimize"), store))
    rewards = []
    for x in (0.9, 0.2, 0.5, 0.95, 0.1):
        env.reset()
        _, reward, terminated, truncated, info = env.step(x)
        rewards.append((reward, terminated, truncated, info.get("unscored", False)))
    assert rewards[0] == (0.0, False, True, True)  # no real loss yet to rank it below: cut, unscored
    assert [r[0] for r in rewards[1:]] == pytest.approx([-10.2, -10.5, -10.5, -10.1])  # the worst real loss so far
    assert all(r[1] and not r[2] for r in rewards[1:])
    store.close()


def test_a_minimised_search_reports_its_loss(tmp_path):
    (tmp_path / "space.json").write_text(json.dumps({"x": {"_type": "uniform", "_value": [0, 1]}}))
    report = run(compose(["agent=random", "env=hpo", f"env.search_space={tmp_path / 'space.json'}",
                          "evaluator=function", "evaluator.fn=tests.objectives:fails_above_half",
                          "evaluator.optimize_mode=minimize", "budget.evaluations=8", "quiet=true"]), tmp_path / "run")
    assert report["failed"] > 0 and report["best_loss"] == report["best_parameters"]["x"] <= 0.5
    assert report["best_search_score"] == -report["best_loss"]


@pytest.mark.slow
def test_the_default_agent_searches_the_svc_example_off_any_grid(tmp_path):
    train("env=hpo", "env.search_space=examples/digits_svc.json", "evaluator=function",
          "evaluator.fn=digits_svc:validation_score", "budget.evaluations=20", f"hydra.run.dir={tmp_path}",
          env={"PYTHONPATH": str(ROOT / "examples")})
    report = json.loads((tmp_path / "report.json").read_text())
    points = [json.loads(arch) for arch in stored_archs(tmp_path)]
    grid = HPOSpace(ROOT / "examples" / "digits_svc.json", levels=16)
    on_grid = [p for p in points if any(math.isclose(p["C"], c) for c in grid.params[0].grid)
               or any(math.isclose(p["gamma"], g) for g in grid.params[1].grid)]
    assert report["agent"] == compose([]).agent.name and len(points) == 20 and not on_grid
