"""The contract every agent keeps, and nothing more.

An agent is built from an env (it reads the spaces) and its hyperparameters, ``learn``s
within a :class:`~rlnas.monitor.Budget`, ``predict``s an action, and ``save``s / ``load``s
its whole state, random generators included, so a resumed run makes the same choices
an uninterrupted one would have made.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlnas import checkpoint
from rlnas.logger import Logger
from rlnas.monitor import Budget, SearchMonitor, VectorSearchMonitor
from rlnas.ranges import INT_AT_LEAST_0, check

Callback = Callable[["Agent"], None]


class Agent(ABC):
    """Base class of every agent, built-in or plugin.

    Args:
        env: any Gymnasium env, wrapped in a :class:`SearchMonitor` unless it is one; or a
            vector env (``AutoresetMode.SAME_STEP``), wrapped in a :class:`VectorSearchMonitor`.
        seed: seeds the agent's own generators (and the env at its first reset).
        device: torch device for agents with networks.

    Subclasses add their hyperparameters as keyword arguments with defaults; ``train.py``
    passes the agent's config group to them.
    """

    name: ClassVar[str]
    #: True for agents that step every sub-env of a vector env (PPO, A2C, DQN): a parallel
    #: run hands them one env per worker, in lock-step (rlnas.parallel.LockStepEnvs).
    supports_vector_env: ClassVar[bool] = False
    #: True for agents whose work between two callbacks is costly (a one-shot search's epoch
    #: of supernet training): the runner checkpoints at every callback, not every N evaluations.
    checkpoint_each_callback: ClassVar[bool] = False

    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu"):
        check(getattr(self, "name", type(self).__name__), {"seed": seed}, {"seed": INT_AT_LEAST_0})
        if isinstance(env, gym.vector.VectorEnv):
            self.env = env if isinstance(env, VectorSearchMonitor) else VectorSearchMonitor(env)
            self.observation_space, self.action_space = env.single_observation_space, env.single_action_space
        else:
            self.env = env if isinstance(env, SearchMonitor) else SearchMonitor(env)
            self.observation_space, self.action_space = env.observation_space, env.action_space
        self.seed = seed
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.logger: Logger = Logger()

    @abstractmethod
    def learn(self, budget: Budget, callback: Callback | None = None) -> Agent:
        """Interact with ``self.env`` until the budget is spent.

        ``callback(self)`` is called whenever the agent's state alone determines what it
        does next (after an update, say); the runner checkpoints there.
        """

    @abstractmethod
    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None,
                deterministic: bool = False, episode_start: bool = False) -> int:
        """Choose an action for one observation, honouring ``action_mask`` if given.

        Call it once per step; ``episode_start=True`` at an episode's first step. Recurrent
        agents (LSTM policies, REINFORCE's controller, Dreamer's RSSM) carry their state
        between calls and start afresh there; the others ignore it (SB3's convention).
        """

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the agent stopped."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    def search_report(self) -> dict[str, Any]:
        """What the run's report.json adds under ``search`` (a one-shot search's epochs, say);
        nothing by default."""
        return {}

    def reset_env(self) -> tuple[Any, dict]:
        """Reset ``self.env``, seeding it at the first episode only."""
        return self.env.reset(seed=self.seed if self.env.episodes == 0 else None)

    def save(self, path: str | Path) -> None:
        checkpoint.save(self.state_dict(), path)

    def load(self, path: str | Path) -> Agent:
        self.load_state_dict(checkpoint.load(path, map_location=self.device))
        return self


def as_vector_env(env: gym.Env | gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    """A vector env as is; a single env as a vector env of one (same-step autoreset), so
    agents written for vector envs take either."""
    if isinstance(env, gym.vector.VectorEnv):
        return env
    return gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
