"""The simple peers (local search, TPE) and the model-predictive planner."""

import numpy as np
import pytest
import torch

from rlnas.agents import make_agent
from rlnas.envs import NASEnv
from rlnas.evaluators import CallableEvaluator
from rlnas.monitor import Budget
from rlnas.spaces import NASNetSpace, NB201Space
from rlnas.world_models.ensemble import RewardEnsemble

TARGET = (3, 1, 2, 0, 3, 2)


def matches(space, target=TARGET):
    """Score = fraction of decisions equal to ``target``'s: one optimum, no other local one."""
    return CallableEvaluator(space, lambda arch: float(np.mean(np.array(space.from_string(arch)) == target)))


@pytest.mark.parametrize("space", [NB201Space(), NASNetSpace()], ids=["nb201", "nasnet"])
def test_neighbours_are_every_cell_one_legal_decision_away(space):
    rng = np.random.default_rng(0)
    cell = space.sample(rng)
    found = space.neighbours(cell, rng)
    expected = sum(len(space.legal_choices(cell[:s])) - 1 for s in range(space.num_decisions))
    assert len(found) == len(set(found)) == expected
    for n in found:
        assert space.validate(n) == n and sum(a != b for a, b in zip(n, cell, strict=True)) == 1
    assert space.neighbours(cell, np.random.default_rng(1)) != found  # a random order
    if isinstance(space, NB201Space):
        assert expected == 6 * 4


def test_local_search_climbs_to_the_first_better_neighbour():
    space = NB201Space()
    agent = make_agent("local_search", NASEnv(space, matches(space)), seed=0, n_init=5)
    agent.learn(Budget(evaluations=200))
    evaluated = [space.from_string(e.arch) for e in agent.env.evaluations]
    scores = [e.score for e in agent.env.evaluations]
    assert TARGET in evaluated  # no other local optimum: it must get there, and then stop improving
    for i in range(5, evaluated.index(TARGET) + 1):
        incumbent = evaluated[int(np.argmax(scores[:i]))]
        assert sum(a != b for a, b in zip(evaluated[i], incumbent, strict=True)) == 1
    # each better neighbour is taken at once: at most 4 * 6 tries per step up
    assert evaluated.index(TARGET) < 5 + 24 * round(6 * (1 - max(scores[:5])))
    assert len(set(evaluated)) == len(evaluated)


def test_local_search_restarts_at_a_local_optimum():
    space = NASNetSpace(num_blocks=1, ops=["identity"])  # 64 cells, a flat objective: each a local optimum
    agent = make_agent("local_search", NASEnv(space, CallableEvaluator(space, lambda arch: 0.5)), seed=0, n_init=3)
    agent.learn(Budget(evaluations=64))
    assert len({e.arch for e in agent.env.evaluations}) == 64  # walked, restarted, and exhausted the space
    assert agent.propose() is None


@pytest.mark.parametrize("name", ["local_search", "tpe", "planner"])
def test_masks_honoured_on_nasnet(name):
    space = NASNetSpace()
    env = NASEnv(space, CallableEvaluator(space, lambda arch: float(len(arch) % 7) / 7))  # raises on illegal
    agent = make_agent(name, env, seed=0, **({"train_steps": 20} if name == "planner" else {}))
    agent.learn(Budget(evaluations=15))
    archs = [e.arch for e in agent.env.evaluations]
    assert len(archs) == len(set(archs)) == 15
    assert all(space.to_string(space.from_string(a)) == a for a in archs)


def test_tpe_asks_one_categorical_per_decision_over_the_legal_choices():
    space = NASNetSpace()
    agent = make_agent("tpe", NASEnv(space, matches(space, target=(0,) * space.num_decisions)), seed=0)
    agent.learn(Budget(evaluations=12))
    trial = agent.study.trials[-1]
    assert len(trial.params) == space.num_decisions
    for step, (name, dist) in enumerate(trial.distributions.items()):
        assert name.startswith(f"{step}:") and list(dist.choices) == list(space.legal_choices([0] * step))


def test_tpe_beats_random_on_average():
    space = NB201Space()
    best = {name: np.mean([max(e.score for e in make_agent(name, NASEnv(space, matches(space)), seed=s)
                                .learn(Budget(evaluations=40)).env.evaluations) for s in range(3)])
            for name in ("tpe", "random")}
    assert best["tpe"] > best["random"]


def test_reward_ensemble_fits_and_is_unsure_off_the_data():
    torch.manual_seed(0)
    x = torch.eye(8)[:6]  # six one-hot inputs, two never seen
    y = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    model = RewardEnsemble(8, members=4, hidden=32)
    loss = model.fit(x, y, steps=300, lr=1e-2, weight_decay=0.0, generator=torch.Generator().manual_seed(0))
    assert loss < 1e-3
    mean, std = model.predict(torch.eye(8))
    assert torch.allclose(mean[:6], y, atol=0.01)
    assert std[6:].min() > 5 * std[:6].max()  # the members agree on the data, not off it
    again = RewardEnsemble(8, members=4, hidden=32)
    again.fit(x, y, steps=300, lr=1e-2, weight_decay=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.predict(torch.eye(8))[0], mean)  # a function of data and generator


def test_planner_finds_the_optimum_of_an_additive_objective():
    space = NB201Space()
    for seed in range(2):
        agent = make_agent("planner", NASEnv(space, matches(space)), seed=seed)
        agent.learn(Budget(evaluations=60))
        assert max(e.score for e in agent.env.evaluations) == 1.0
