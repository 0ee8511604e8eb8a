"""Regularized evolution (Real et al. 2019, "aging evolution").

Keep a population of the ``population_size`` most recent architectures. Each cycle:
draw ``sample_size`` of them at random, mutate one decision of the best of the draw,
evaluate the child, add it, and retire the oldest member (not the worst: aging is the
regularizer that keeps lucky scores from ruling forever).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from rlnas.agents.architecture_agent import ArchitectureAgent
from rlnas.agents.base import AgentConfig
from rlnas.core.settings import INT_AT_LEAST_1, Range, check, setting
from rlnas.spaces import Decisions


@dataclass
class EvolutionConfig(AgentConfig):
    """P=10, S=3: the setting NAS-Bench-201 reports for its REA baseline."""

    population_size: int = setting(10, "members kept: the most recent ones", INT_AT_LEAST_1)
    sample_size: int = setting(3, "members drawn at random; the best of them is mutated", INT_AT_LEAST_1)

    def validate(self) -> None:
        check(self.owner, vars(self), {"sample_size": Range(1, self.population_size, integer=True,
                                                            high_name="population_size")})


class RegularizedEvolution(ArchitectureAgent):
    Config = EvolutionConfig
    name = "evolution"

    def __init__(self, env, config: EvolutionConfig | None = None, seed: int = 0, device: str = "cpu", **settings):
        super().__init__(env, config, seed, device, **settings)
        self.population: deque[tuple[Decisions, float]] = deque()

    def propose(self) -> Decisions:
        if len(self.population) < self.config.population_size:
            return self.space.sample(self.rng)
        draw = self.rng.choice(len(self.population), self.config.sample_size, replace=False)
        parent = max((self.population[i] for i in draw), key=lambda member: member[1])
        return self.space.mutate(parent[0], self.rng)

    def observe(self, decisions: Decisions, score: float) -> None:
        self.population.append((decisions, score))  # the oldest dies, not the worst
        if len(self.population) > self.config.population_size:
            self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": list(self.population)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = deque(state["population"])
