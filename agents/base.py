"""The contract every agent keeps, and nothing more.

An agent is built from an env (it reads the spaces) and its settings (a
:class:`AgentConfig`), ``learn``s within a :class:`~rlnas.envs.monitor.Budget`,
``predict``s an action, and ``save``s / ``load``s its whole state, random generators
included, so a resumed run makes the same choices an uninterrupted one would have made.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlnas.core import checkpoint
from rlnas.core.logger import Logger
from rlnas.core.registry import AGENTS
from rlnas.core.settings import INT_AT_LEAST_0, Component, check, configured
from rlnas.envs.monitor import Budget, SearchMonitor, VectorSearchMonitor

Callback = Callable[["Agent"], None]
NAS = "nas"  # the preset train.py and make_agent use: the settings tuned for NAS episodes


@dataclass
class AgentConfig(Component):
    """An agent's settings (the ``agent`` config group). Defaults are the paper's or the
    library's (SB3's); ``PRESETS["nas"]`` holds what differs for NAS episodes."""

    group: ClassVar[str] = "agent"


class Agent(ABC):
    """Base class of every agent, built-in or plugin.

    Args:
        env: any Gymnasium env, wrapped in a :class:`SearchMonitor` unless it is one; or a
            vector env (``AutoresetMode.SAME_STEP``), wrapped in a :class:`VectorSearchMonitor`.
        config: the agent's settings (its ``Config``; default: the class's defaults).
        seed: seeds the agent's own generators (and the env at its first reset).
        device: torch device for agents with networks.
        settings: override single settings of ``config``.

    Subclasses declare their settings as a ``Config`` dataclass (:class:`AgentConfig`) and
    read them from ``self.config``.
    """

    Config: ClassVar[type[AgentConfig]] = AgentConfig
    name: ClassVar[str] = ""
    #: True for agents that step every sub-env of a vector env (PPO, A2C, DQN): a parallel
    #: run hands them one env per worker, in lock-step (rlnas.search.lockstep).
    supports_vector_env: ClassVar[bool] = False
    #: True for agents whose work between two callbacks is costly (a one-shot search's epoch
    #: of supernet training): the runner checkpoints at every callback, not every N evaluations.
    checkpoint_each_callback: ClassVar[bool] = False

    def __init__(self, env: gym.Env, config: AgentConfig | None = None, seed: int = 0, device: str = "cpu",
                 **settings: Any):
        self.config = configured(type(self).Config, config, {"name": self.name, **settings})
        check(self.config.owner, {"seed": seed}, {"seed": INT_AT_LEAST_0})
        if isinstance(env, gym.vector.VectorEnv):
            self.env = env if isinstance(env, VectorSearchMonitor) else VectorSearchMonitor(env)
            self.observation_space, self.action_space = env.single_observation_space, env.single_action_space
        else:
            self.env = env if isinstance(env, SearchMonitor) else SearchMonitor(env)
            self.observation_space, self.action_space = env.observation_space, env.action_space
        self.seed = seed
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)

    @property
    def logger(self) -> Logger:
        """Where the agent logs: its monitor's logger (the run's TensorBoard, or nowhere)."""
        return self.env.logger

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

    def progress(self) -> tuple[int, int, str] | None:
        """``(done, total, unit)`` for an agent whose work is not counted in evaluations (a
        one-shot search's epochs); None for the others, which the budget measures."""
        return None

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


def make_agent(name: str, env: gym.Env, seed: int = 0, device: str = "cpu", preset: str | None = NAS,
               **settings: Any) -> Agent:
    """The agent registered as ``name`` on ``env``, with its ``preset`` (``"nas"``, the
    setting ``train.py agent=name`` uses, is the default; None: the paper's or library's
    defaults) and then ``settings``. An unknown name, preset or setting is refused with
    what exists."""
    cls = AGENTS.get(name)
    if preset == NAS and NAS not in cls.Config.PRESETS:
        preset = None  # an agent without NAS tuning: its defaults are the NAS setting
    return cls(env, cls.Config.make(None, preset, name=name, **settings), seed=seed, device=device)


def as_vector_env(env: gym.Env | gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    """A vector env as is; a single env as a vector env of one (same-step autoreset), so
    agents written for vector envs take either."""
    if isinstance(env, gym.vector.VectorEnv):
        return env
    return gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
