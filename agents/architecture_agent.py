"""Shared ground of the NAS baselines that propose whole architectures at once.

Random search and regularized evolution think in complete cells, not in steps; they still
go through the env like every other agent, one decision per step, so the store, the
budget and the logs see them exactly as they see an RL controller.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from rlnas.agents.base import Agent, Callback
from rlnas.monitor import Budget
from rlnas.spaces import Decisions, SearchSpace


class ArchitectureAgent(Agent):
    """An agent that needs a :class:`~rlnas.envs.NASEnv` underneath (it reads ``env.unwrapped.space``)."""

    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu"):
        super().__init__(env, seed, device)
        space = getattr(env.unwrapped, "space", None)
        if not isinstance(space, SearchSpace):
            raise TypeError(f"{type(self).__name__} searches architectures and needs an rlnas NASEnv, "
                            f"not {env.unwrapped!r}")
        self.space: SearchSpace = space
        # Proposed and not yet observed: what other workers are evaluating in a parallel run
        # (rlnas.parallel). An agent that skips these spends no proposal waiting on them.
        self.in_flight: set[Decisions] = set()

    def propose(self) -> Decisions | None:
        """The next architecture to build, or None when there is nothing left to try."""
        raise NotImplementedError

    def observe(self, decisions: Decisions, score: float) -> None:
        """Learn from the score of an architecture just built (nothing, by default)."""

    def learn(self, budget: Budget, callback: Callback | None = None) -> ArchitectureAgent:
        while self.env.within(budget):
            decisions = self.propose()
            if decisions is None:
                break
            self.observe(decisions, self.play(decisions))
            if callback is not None:
                callback(self)
        return self

    def play(self, decisions: Sequence[int]) -> float:
        """Build ``decisions`` through the env; return the final reward (the score)."""
        self.reset_env()
        reward = 0.0
        for action in decisions:
            _, reward, terminated, truncated, _ = self.env.step(action)
            if terminated or truncated:
                break
        return float(reward)

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None,
                deterministic: bool = False, episode_start: bool = False) -> int:
        """Deterministic: the decision of the best architecture found so far at the step the
        observation points to. Otherwise uniform over the legal choices."""
        step = int(np.argmax(obs[self.space.num_decisions * self.space.max_choices:]))
        best = self.env.best  # the monitor tracks the best architecture evaluated so far
        if deterministic and best is not None and step < self.space.num_decisions:
            return self.space.from_string(best.arch)[step]
        legal = np.flatnonzero(action_mask) if action_mask is not None else np.arange(self.action_space.n)
        return int(self.rng.choice(legal))
