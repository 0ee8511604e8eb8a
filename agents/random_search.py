"""Random search without replacement: the baseline every NAS method must beat
(Li & Talwalkar 2019; Yu et al. 2020)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agents.architecture_agent import ArchitectureAgent
from agents.base import Callback
from agents.registry import register
from rlnas.monitor import Budget


@register("random")
class RandomSearch(ArchitectureAgent):
    """Sample architectures uniformly, never the same one twice."""

    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu"):
        super().__init__(env, seed, device)
        self.tried: set[str] = set()

    def learn(self, budget: Budget, callback: Callback | None = None) -> RandomSearch:
        tried = self.tried
        while self.env.within(budget) and len(tried) < self.space.size:
            decisions = self.space.sample(self.rng)
            arch = self.space.to_string(decisions)
            if arch in tried:
                continue
            tried.add(arch)
            self.play(decisions)
            if callback is not None:
                callback(self)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "tried": sorted(self.tried)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.tried = set(state["tried"])
