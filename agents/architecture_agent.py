"""Shared ground of the NAS baselines that propose whole architectures at once.

Random search and regularized evolution think in complete cells, not in steps; they still
go through the env like every other agent, one decision per step, so the store, the
budget and the logs see them exactly as they see an RL controller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import Agent
from rlnas.spaces import SearchSpace


class ArchitectureAgent(Agent):
    """An agent that needs a :class:`~envs.NASEnv` underneath (it reads ``env.unwrapped.space``)."""

    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu"):
        super().__init__(env, seed, device)
        space = getattr(env.unwrapped, "space", None)
        if not isinstance(space, SearchSpace):
            raise TypeError(f"{type(self).__name__} searches architectures and needs an rlnas NASEnv, "
                            f"not {env.unwrapped!r}")
        self.space: SearchSpace = space
        self.best: tuple[tuple[int, ...], float] | None = None
        self._episodes = 0

    def play(self, decisions: Sequence[int]) -> float:
        """Build ``decisions`` through the env; return the final reward (the score)."""
        self.env.reset(seed=self.seed if self._episodes == 0 else None)
        self._episodes += 1
        reward = 0.0
        for action in decisions:
            _, reward, terminated, truncated, _ = self.env.step(action)
            if terminated or truncated:
                break
        decisions = tuple(decisions)
        if self.best is None or reward > self.best[1]:
            self.best = (decisions, float(reward))
        return float(reward)

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None,
                deterministic: bool = False) -> int:
        """Deterministic: the decision of the best architecture found so far at the step the
        observation points to. Otherwise uniform over the legal choices."""
        step = int(np.argmax(obs[self.space.num_decisions * self.space.max_choices:]))
        if deterministic and self.best is not None and step < self.space.num_decisions:
            return self.best[0][step]
        legal = np.flatnonzero(action_mask) if action_mask is not None else np.arange(self.action_space.n)
        return int(self.rng.choice(legal))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best": self.best, "episodes": self._episodes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best, self._episodes = state["best"], state["episodes"]
