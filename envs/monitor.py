"""Budgets, and the wrapper counting what a search spends (repeats cost steps, no budget)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlnas.core.logger import Logger
from rlnas.core.settings import Range, Settings, setting
from rlnas.core.store import Evaluation

Reward = Callable[[float, Mapping[str, Any]], float]  # (score, metrics) -> what the episode earns
LIMIT = Range(1, integer=True, none_means="no limit")


@dataclass
class Budget(Settings):
    """Stop at whichever limit comes first (None: no limit of that kind). ``patience`` stops
    a converged search (a controller replaying what it knows spends no budget); ``resource``
    caps trials' reported intermediate results, so early stopping buys more trials."""

    evaluations: int | None = setting(None, "distinct architectures paid for; repeats are free", LIMIT)
    env_steps: int | None = setting(None, "decisions taken, repeats included", LIMIT)
    patience: int | None = setting(None, "episodes in a row without a new architecture before a converged "
                                         "controller is stopped", LIMIT)
    resource: int | None = setting(None, "steps (epochs) the trials report, summed: early stopping buys more "
                                         "trials", LIMIT)

    @property
    def owner(self) -> str:
        return "budget"

    def validate(self) -> None:
        if self.evaluations is None and self.env_steps is None:
            raise ValueError("a budget needs budget.evaluations or budget.env_steps (or both)")


class SearchCounts:
    """Counters shared by the single-env and the vector-env monitor."""

    def _init_counts(self, reward: Reward | None, logger: Logger | None,
                     on_evaluation: Callable[[Evaluation], None] | None) -> None:
        self.reward = reward  # None: the score itself; resumed evaluations are weighed again by it
        self.logger = logger or Logger()
        self.on_evaluation = on_evaluation
        self.env_steps = 0
        self.episodes = 0
        self.stale_episodes = 0  # episodes in a row without a new architecture
        self.evaluations: list[Evaluation] = []  # distinct, in the order they were paid for
        self.resource_spent = 0  # the evaluations' metrics["resource"], summed
        self.best: Evaluation | None = None  # by reward: the most accurate cell within the constraints
        self.best_reward = float("-inf")
        self._seen: set[str] = set()
        self._clock_offset = 0.0
        self._clock_start = time.perf_counter()

    @property
    def wall_seconds(self) -> float:
        return self._clock_offset + time.perf_counter() - self._clock_start

    def within(self, budget: Budget) -> bool:
        """True while the budget allows another step."""
        return not ((budget.evaluations is not None and len(self.evaluations) >= budget.evaluations)
                    or (budget.env_steps is not None and self.env_steps >= budget.env_steps)
                    or (budget.patience is not None and self.stale_episodes >= budget.patience)
                    or (budget.resource is not None and self.resource_spent >= budget.resource))

    def affordable(self, archs: Iterable[str], budget: Budget) -> list[str]:
        """Which of ``archs`` the budget pays for: those counted already, and new ones while left."""
        left = None if budget.evaluations is None else budget.evaluations - len(self.evaluations)
        paid = []
        for arch in archs:
            if arch not in self._seen:
                if left is not None and left <= 0:
                    continue
                left = None if left is None else left - 1
            paid.append(arch)
        return paid

    def _end_episode(self, episode_return: float, evaluation: Evaluation | None) -> None:
        self.episodes += 1
        self.logger.scalar("episode/return", episode_return, self.env_steps)
        if evaluation is None:
            return
        if evaluation.arch in self._seen:
            self.stale_episodes += 1
            return
        self.stale_episodes = 0
        self._add(evaluation)
        n, log = len(self.evaluations), self.logger
        if math.isfinite(evaluation.score):  # a failure before any real score has none to show
            log.scalar("search/score", evaluation.score, n)
        if self.best is not None:  # None while every evaluation so far has failed
            log.scalar("search/best_score", self.best.score, n)
            if self.reward is not None:
                log.scalar("search/best_reward", self.best_reward, n)
            log.scalar("search/best_score_vs_wall_ms", self.best.score, int(1000 * self.wall_seconds))
        log.scalar("search/distinct_architectures", n, self.env_steps)
        if self.best is evaluation:
            log.text("search/best_arch", evaluation.arch, n)
        if self.on_evaluation is not None:
            self.on_evaluation(evaluation)

    def _add(self, evaluation: Evaluation) -> None:
        self._seen.add(evaluation.arch)
        self.evaluations.append(evaluation)
        self.resource_spent += evaluation.metrics.get("resource", 0)
        if "failed" in evaluation.metrics:
            return
        reward = evaluation.score if self.reward is None else self.reward(evaluation.score, evaluation.metrics)
        if self.best is None or reward > self.best_reward:
            self.best, self.best_reward = evaluation, reward

    def restore(self, evaluations: Iterable[Evaluation], env_steps: int, episodes: int, wall_seconds: float) -> None:
        """Pick up a killed run: its evaluations from the store, its counters from the checkpoint."""
        for evaluation in evaluations:
            self._add(evaluation)
        self.env_steps, self.episodes = env_steps, episodes
        self._clock_offset, self._clock_start = wall_seconds, time.perf_counter()


class SearchMonitor(SearchCounts, gym.Wrapper):
    """Counts env steps, episodes and distinct evaluations; tracks the best architecture by
    ``reward`` (the score itself by default); logs them to ``logger``; hands each new
    evaluation to ``on_evaluation``. Agents loop ``while env.within(budget)``."""

    def __init__(self, env: gym.Env, reward: Reward | None = None, logger: Logger | None = None,
                 on_evaluation: Callable[[Evaluation], None] | None = None):
        gym.Wrapper.__init__(self, env)
        self._init_counts(reward, logger, on_evaluation)
        self._episode_return = 0.0

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.env_steps += 1
        self._episode_return += float(reward)
        if terminated or truncated:
            evaluation = None
            if "arch" in info:
                evaluation = Evaluation(info["arch"], info["score"], info["metrics"], info["cost"], info["cached"])
            self._end_episode(self._episode_return, evaluation)
            self._episode_return = 0.0
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        self._episode_return = 0.0
        return self.env.reset(**kwargs)


class VectorSearchMonitor(SearchCounts, gym.vector.VectorWrapper):
    """The same counters over a same-step-autoreset vector env."""

    def __init__(self, env: gym.vector.VectorEnv, reward: Reward | None = None, logger: Logger | None = None,
                 on_evaluation: Callable[[Evaluation], None] | None = None):
        mode = env.metadata.get("autoreset_mode")
        if mode is not None and mode != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError(f"vector envs must use autoreset_mode=AutoresetMode.SAME_STEP, not {mode}")
        gym.vector.VectorWrapper.__init__(self, env)
        self._init_counts(reward, logger, on_evaluation)
        self._returns = np.zeros(env.num_envs)

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        self.env_steps += self.num_envs
        self._returns += rewards
        for i in np.flatnonzero(terminated | truncated):
            final = info.get("final_info", {})
            evaluation = None
            if final.get("_arch", np.zeros(self.num_envs, bool))[i]:
                got = final["metrics"]
                metrics = {k: v[i].item() if isinstance(v[i], np.generic) else v[i]  # a failure's text stays text
                           for k, v in got.items() if not k.startswith("_") and got[f"_{k}"][i]}
                evaluation = Evaluation(str(final["arch"][i]), float(final["score"][i]), metrics,
                                        float(final["cost"][i]), bool(final["cached"][i]))
            self._end_episode(float(self._returns[i]), evaluation)
            self._returns[i] = 0.0
        return obs, rewards, terminated, truncated, info

    def reset(self, **kwargs):
        self._returns[:] = 0.0
        return self.env.reset(**kwargs)
