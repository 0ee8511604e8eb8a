"""Regularized evolution (Real et al. 2019, "aging evolution").

Keep a population of the ``population_size`` most recent architectures. Each cycle:
draw ``sample_size`` of them at random, mutate one decision of the best of the draw,
evaluate the child, add it, and retire the oldest member (not the worst: aging is the
regularizer that keeps lucky scores from ruling forever).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym

from rlnas.agents.architecture_agent import ArchitectureAgent
from rlnas.agents.registry import register
from rlnas.ranges import INT_AT_LEAST_1, Range, check
from rlnas.spaces import Decisions


@register("evolution")
class RegularizedEvolution(ArchitectureAgent):
    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu",
                 population_size: int = 10, sample_size: int = 3):
        check(self.name, locals(), {
            "population_size": INT_AT_LEAST_1,
            "sample_size": Range(1, population_size, integer=True, high_name="population_size")})
        super().__init__(env, seed, device)
        self.population_size, self.sample_size = population_size, sample_size
        self.population: deque[tuple[tuple[int, ...], float]] = deque()

    def propose(self) -> Decisions:
        if len(self.population) < self.population_size:
            return self.space.sample(self.rng)
        draw = self.rng.choice(len(self.population), self.sample_size, replace=False)
        parent = max((self.population[i] for i in draw), key=lambda member: member[1])
        return self.space.mutate(parent[0], self.rng)

    def observe(self, decisions: Decisions, score: float) -> None:
        self.population.append((decisions, score))  # the oldest dies, not the worst
        if len(self.population) > self.population_size:
            self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": list(self.population)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = deque(state["population"])
