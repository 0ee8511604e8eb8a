"""Every agent that acts on continuous decisions, on a problem whose optimum is known: a 3-D
quadratic (a uniform, a log-uniform and an integer range) with one categorical choice."""

import math

import numpy as np
import pytest

from rlnas.agents import make_agent
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget
from rlnas.evaluators import CallableEvaluator
from rlnas.spaces.hpo import HPOSpace

SPACE = {"x": {"_type": "uniform", "_value": [-2, 2]}, "lr": {"_type": "loguniform", "_value": [1e-4, 1]},
         "n": {"_type": "randint", "_value": [0, 64]}, "act": {"_type": "choice", "_value": ["relu", "tanh", "gelu"]}}
OPTIMUM = {"x": 0.5, "lr": 1e-2, "n": 40, "act": "tanh"}


def distance(params: dict) -> float:
    """Euclidean distance from the optimum in the unit cube the agents act in."""
    return math.sqrt(((params["x"] - 0.5) / 4) ** 2 + ((math.log10(params["lr"]) + 2) / 4) ** 2
                     + ((params["n"] - 40) / 64) ** 2)


def score(params: dict) -> float:
    return -distance(params) ** 2 - 0.5 * (params["act"] != "tanh")


# (agent, evaluations, the largest distance from the optimum of the median seed of three). Each bound is
# about 1.5 times the fourth of five seeds measured here (seeds 0-4; the Dreamers: the largest of three),
# 2026-12-07: a model of the objective (the planner, TPE) needs far fewer evaluations than random search.
BOUNDS = [("random", 60, 0.4), ("evolution", 60, 0.3), ("local_search", 60, 0.3), ("tpe", 60, 0.15),
          ("planner", 30, 0.12), ("ppo", 60, 0.15), ("a2c", 60, 0.35), ("reinforce", 60, 0.2),
          ("dreamer_v1", 30, 0.4), ("dreamer_v2", 30, 0.3)]


@pytest.mark.slow
@pytest.mark.parametrize("agent,evaluations,bound", BOUNDS)
def test_each_agent_nears_the_optimum_of_a_quadratic_with_a_choice(agent, evaluations, bound):
    space = HPOSpace(SPACE)
    found = []
    for seed in range(3):
        searcher = make_agent(agent, NASEnv(space, CallableEvaluator(space, score)), seed=seed)
        searcher.learn(Budget(evaluations=evaluations))
        assert len(searcher.env.evaluations) == evaluations
        found.append(space.parameters(searcher.env.best.arch))
    distances = sorted(distance(p) for p in found)
    assert distances[1] <= bound, f"{agent}: distances {np.round(distances, 3)} (bound {bound})"
    assert sum(p["act"] == "tanh" for p in found) >= 2  # the choice is found too


@pytest.mark.parametrize("name", ["random", "evolution", "local_search", "tpe",
                                  *(pytest.param(name, marks=pytest.mark.slow)
                                    for name in ("ppo", "reinforce", "planner", "dreamer_v2"))])
def test_save_load_continues_identically_on_continuous_decisions(tmp_path, name):
    space = HPOSpace(SPACE)

    def searcher(seed):
        return make_agent(name, NASEnv(space, CallableEvaluator(space, score)), seed=seed)

    agent = searcher(1)
    agent.learn(Budget(evaluations=15))
    agent.save(tmp_path / "agent.pt")
    steps, episodes = agent.env.env_steps, agent.env.episodes
    agent.learn(Budget(evaluations=25))
    clone = searcher(99).load(tmp_path / "agent.pt")
    clone.env.restore(agent.env.evaluations[:15], env_steps=steps, episodes=episodes, wall_seconds=0.0)
    clone.learn(Budget(evaluations=25))
    assert [e.arch for e in clone.env.evaluations[15:]] == [e.arch for e in agent.env.evaluations[15:]]


@pytest.mark.parametrize("name", ["dqn", "rainbow"])
def test_an_agent_that_acts_only_discretely_refuses_continuous_ranges_by_name_and_takes_the_grid(name):
    continuous, grid = HPOSpace(SPACE), HPOSpace(SPACE, levels=16)
    with pytest.raises(ValueError, match=rf"agent {name} acts on a Discrete action space only, got Tuple.*"
                                         r"give each continuous range a grid: env\.levels=16"):
        make_agent(name, NASEnv(continuous, CallableEvaluator(continuous, score)))
    agent = make_agent(name, NASEnv(grid, CallableEvaluator(grid, score)), seed=0)
    agent.learn(Budget(evaluations=5))
    assert len(agent.env.evaluations) == 5
