"""Agents that propose whole architectures: the NAS baselines think in cells but build them
through the env one decision per step, so the store, budget and logs see them as they see
an RL controller; :class:`Proposer` lets step agents (REINFORCE, Dreamer) search in parallel."""

from __future__ import annotations

from collections.abc import Container, Sequence

import gymnasium as gym
import numpy as np

from rlnas.agents.base import Agent, AgentConfig, Callback
from rlnas.envs.monitor import Budget
from rlnas.spaces import Decisions, SearchSpace


class Proposer:
    """What an agent adds to search in parallel: ``propose()`` the next cell (None when
    nothing is left to try) and ``observe`` scores as they come back; ``in_flight`` holds
    what other workers are evaluating."""

    in_flight: set[Decisions]
    held: list[Decisions]  # failures built before any real result, not yet observed
    failed: bool = False  # whether the cell play() built last failed

    def observe(self, decisions: Decisions, score: float) -> None:
        """Learn from the score of an architecture just built (nothing, by default)."""

    def play(self, decisions: Sequence[int]) -> float:
        """Build ``decisions`` through the env; return the final reward (the score)."""
        self.reset_env()
        reward, info = 0.0, {}
        for action in decisions:
            _, reward, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                break
        self.failed = "failed" in info.get("metrics", {})
        return float(reward)

    def learn_from(self, decisions: Decisions, score: float) -> None:
        """Observe the cell :meth:`play` just built. A failure before any real result has no
        scale to be scored on: it is held until one comes, then rebuilt (free: the store
        answers it with the lowest real score) and observed."""
        if self.failed and self.env.best is None:
            self.held.append(decisions)
            self.in_flight.add(decisions)
            return
        self.observe(decisions, score)
        while self.held and self.env.best is not None:
            held = self.held.pop(0)
            self.in_flight.discard(held)
            self.observe(held, self.play(held))

    def nas_env(self):
        """The NASEnv underneath: what proposing needs (its space, its previews)."""
        env = self.env.unwrapped
        if not isinstance(getattr(env, "space", None), SearchSpace):
            raise TypeError(f"{type(self).__name__} searches architectures and needs an rlnas NASEnv, "
                            f"not {env!r}")
        return env


class ArchitectureAgent(Proposer, Agent):
    """An agent that thinks in whole cells on a NASEnv: propose, play, observe, one at a time.
    The space samples, mutates and lists neighbours, values included, so every such agent
    searches continuous decisions unless it says otherwise."""

    acts_on_values = True

    def __init__(self, env: gym.Env, config: AgentConfig | None = None, seed: int = 0, device: str = "cpu", **settings):
        super().__init__(env, config, seed, device, **settings)
        self.space: SearchSpace = self.nas_env().space
        self.in_flight, self.held = set(), []

    def learn(self, budget: Budget, callback: Callback | None = None) -> ArchitectureAgent:
        while self.env.within(budget):
            decisions = self.propose()
            if decisions is None:
                break
            self.learn_from(decisions, self.play(decisions))
            if callback is not None:
                callback(self)
        return self

    def unseen_random(self, seen: Container[Decisions]) -> Decisions:
        """A random cell neither in ``seen`` nor in flight (the caller makes sure one is left)."""
        while (decisions := self.space.sample(self.rng)) in seen or decisions in self.in_flight:
            pass
        return decisions

    def step_of(self, obs: np.ndarray) -> int:
        """The decision a NASEnv observation asks for (its one-hot step, after the decisions so far)."""
        return int(np.argmax(obs[self.space.num_decisions * self.nas_env().width:]))

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None,
                deterministic: bool = False, episode_start: bool = False) -> int | float:
        """Deterministic: the best architecture so far's decision; else uniform over legal ones
        (a value: uniform in [0, 1])."""
        step = self.step_of(obs)
        best = self.env.best  # the monitor tracks the best architecture evaluated so far
        if deterministic and best is not None and step < self.space.num_decisions:
            return self.space.from_string(best.arch)[step]
        if step < self.space.num_decisions and self.space.is_value(step):
            return float(self.rng.random())
        legal = np.flatnonzero(action_mask) if action_mask is not None else np.arange(self.space.max_choices)
        return int(self.rng.choice(legal))
