"""Random search without replacement, the baseline to beat (Li & Talwalkar 2019)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from rlnas.agents.architecture_agent import ArchitectureAgent
from rlnas.spaces import Decisions


class RandomSearch(ArchitectureAgent):
    """Sample architectures uniformly, never the same one twice. No settings."""

    name = "random"

    def __init__(self, env: gym.Env, config=None, seed: int = 0, device: str = "cpu", **settings):
        super().__init__(env, config, seed, device, **settings)
        self.tried: set[str] = set()

    def propose(self) -> Decisions | None:
        while len(self.tried) < self.space.size:
            decisions = self.space.sample(self.rng)
            arch = self.space.to_string(decisions)
            if arch not in self.tried:
                self.tried.add(arch)
                return decisions
        return None

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "tried": sorted(self.tried)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.tried = set(state["tried"])
