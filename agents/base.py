"""The contract every agent keeps: built from an env and an :class:`AgentConfig`, it
``learn``s within a budget, ``predict``s an action, and ``save``s / ``load``s its whole state,
generators included, so a resumed run makes the choices an uninterrupted one would."""

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
    """An agent's settings: the paper's or SB3's defaults; ``PRESETS["nas"]`` for NAS episodes."""

    group: ClassVar[str] = "agent"


class Agent(ABC):
    """Base class of every agent, built-in or plugin.

    Args:
        env: a Gymnasium env (wrapped in a :class:`SearchMonitor`) or a same-step-autoreset
            vector env (wrapped in a :class:`VectorSearchMonitor`).
        config: the agent's ``Config`` (default: its defaults); ``settings`` override single keys.
        seed: seeds the agent's generators and the env's first reset.
    """

    Config: ClassVar[type[AgentConfig]] = AgentConfig
    name: ClassVar[str] = ""
    supports_vector_env: ClassVar[bool] = False  # steps a vector env: parallel runs go in lock-step
    acts_on_values: ClassVar[bool] = False  # acts on a Box action (a continuous decision), not only on Discrete ones
    checkpointed: ClassVar[tuple[str, ...]] = ()  # attributes a checkpoint holds, beside the generator ``rng``
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
        if not isinstance(self.action_space, gym.spaces.Discrete) and not self.acts_on_values:
            raise ValueError(f"agent {self.name} acts on a Discrete action space only, got {self.action_space}; on a "
                             "hyperparameter space, give each continuous range a grid: env.levels=16")
        self.seed = seed
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)

    @property
    def logger(self) -> Logger:
        """Where the agent logs: its monitor's logger (the run's TensorBoard, or nowhere)."""
        return self.env.logger

    @abstractmethod
    def learn(self, budget: Budget, callback: Callback | None = None) -> Agent:
        """Act until the budget is spent, calling ``callback(self)`` where a checkpoint may be taken."""

    @abstractmethod
    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None,
                deterministic: bool = False, episode_start: bool = False) -> int:
        """An action for one observation; recurrent agents start afresh at ``episode_start``."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: ``rng`` and the :attr:`checkpointed` attributes."""
        state = {"rng": self.rng.bit_generator.state}
        for name in self.checkpointed:
            value = getattr(self, name)
            state[name] = (value.get_state() if isinstance(value, torch.Generator) else
                           value.state_dict() if hasattr(value, "state_dict") else value)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        for name in self.checkpointed:
            value = getattr(self, name)
            if isinstance(value, torch.Generator):
                value.set_state(state[name])
            elif hasattr(value, "load_state_dict"):
                value.load_state_dict(state[name])
            elif name in state:  # a plain value an older checkpoint lacks keeps its fresh one
                setattr(self, name, state[name])

    def progress(self) -> tuple[int, int, str] | None:
        """``(done, total, unit)`` where work is not counted in evaluations (one-shot epochs)."""
        return None

    def search_report(self) -> dict[str, Any]:
        """What report.json adds under ``search`` (a one-shot search's epochs, say)."""
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
    """The agent ``name`` on ``env``: ``preset`` (``"nas"`` as train.py; None: published defaults), ``settings``."""
    cls = AGENTS.get(name)
    if preset == NAS and NAS not in cls.Config.PRESETS:
        preset = None  # an agent without NAS tuning: its defaults are the NAS setting
    return cls(env, cls.Config.make(None, preset, name=name, **settings), seed=seed, device=device)


def as_vector_env(env: gym.Env | gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    """A vector env as is; a single env as a vector env of one (same-step autoreset)."""
    if isinstance(env, gym.vector.VectorEnv):
        return env
    return gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
