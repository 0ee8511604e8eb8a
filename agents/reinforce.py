"""REINFORCE with an LSTM controller (Williams 1992; Zoph & Le 2017).

The controller samples each decision from a softmax over the legal actions, carrying an
LSTM state through the episode. After ``batch_episodes`` episodes it ascends

    sum_t (G_t - b) * grad log pi(a_t | s_t)  +  entropy_coef * sum_t grad H(pi(. | s_t))

with b an exponential moving average of past returns (Zoph & Le's baseline). With
``normalize_advantage_decay`` d > 0, ``G_t - b`` is divided by a running RMS of it, so the
entropy bonus weighs the same on every table. Defaults follow NATS-Bench's baseline (Adam,
lr 0.01, momentum 0.9) with an entropy bonus of 0.01: at ENAS's 1e-4 the controller
collapses onto a few cells within a hundred episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlnas.agents.architecture_agent import Proposer
from rlnas.agents.base import Agent, AgentConfig, Callback
from rlnas.agents.on_policy import scale_by_running_rms
from rlnas.agents.policies import ActionHead, LSTMController
from rlnas.core.settings import DECAY, INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, UNIT, setting
from rlnas.envs.monitor import Budget
from rlnas.spaces import Decisions


@dataclass
class ReinforceConfig(AgentConfig):
    """``nas``: chosen on seeds 0-39 of both tables, checked on 40-79 (docs/benchmarks.md)."""

    PRESETS: ClassVar[dict] = {"nas": dict(learning_rate=0.02, entropy_coef=0.1, normalize_advantage_decay=0.95)}
    learning_rate: float = setting(0.01, "Adam's learning rate", POSITIVE)
    hidden_size: int = setting(64, "the LSTM controller's width", INT_AT_LEAST_1)
    batch_episodes: int = setting(1, "episodes per update", INT_AT_LEAST_1)
    baseline_decay: float = setting(0.9, "momentum of the exponential-average baseline", DECAY)
    entropy_coef: float = setting(0.01, "weight of the entropy bonus", NON_NEGATIVE)
    gamma: float = setting(1.0, "discount factor", UNIT)
    max_grad_norm: float = setting(5.0, "gradient norm clip", POSITIVE)
    normalize_advantage_decay: float = setting(0.0, "d > 0: divide G - b by a running RMS of it with decay d", DECAY)


class Reinforce(Proposer, Agent):
    Config = ReinforceConfig
    name = "reinforce"
    acts_on_values = True
    checkpointed = ("controller", "optimizer", "generator", "baseline", "advantage_square", "updates")
    config: ReinforceConfig

    def __init__(self, env: gym.Env, config: ReinforceConfig | None = None, seed: int = 0, device: str = "cpu",
                 **settings: Any):
        super().__init__(env, config, seed, device, **settings)
        torch.manual_seed(seed)
        obs_dim = int(np.prod(env.observation_space.shape))
        self.head = ActionHead(self.action_space, self.name)
        self.controller = LSTMController(obs_dim, self.head.size, self.config.hidden_size).to(self.device)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.config.learning_rate)
        self.generator = torch.Generator().manual_seed(seed)
        self.baseline: float | None = None
        self.advantage_square: float | None = None  # the running mean of (G_t - b)^2
        self.updates = 0
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None  # predict()'s LSTM state
        self.in_flight: set[Decisions] = set()
        self.held: list[Decisions] = []
        self.pending: list[tuple[Decisions, float]] = []  # observed cells not yet learned from

    def _policy(self, obs: np.ndarray, mask: np.ndarray | None, state):
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(1, -1)
        logits, state = self.controller(obs_t, state)
        mask_t = None if mask is None else torch.as_tensor(mask, dtype=torch.bool, device=self.device)[None]
        return self.head.distribution(logits, mask_t), state

    def learn(self, budget: Budget, callback: Callback | None = None) -> Reinforce:
        env = self.env
        while env.within(budget):
            losses, entropies = [], []
            for _ in range(self.config.batch_episodes):
                obs, info = self.reset_env()
                state, log_probs, rewards, done = None, [], [], False
                while not done:
                    dist, state = self._policy(obs, info.get("action_mask"), state)
                    action = self.head.draw(dist, self.generator)
                    log_probs.append(dist.log_prob(action))
                    entropies.append(dist.entropy())
                    obs, reward, terminated, truncated, info = env.step(self.head.one(action, dist))
                    rewards.append(float(reward))
                    done = terminated or truncated
                losses.append(self._episode_loss(torch.cat(log_probs), torch.cat(entropies[-len(rewards):]), rewards))
                if not env.within(budget):
                    break
            self._update(losses, entropies)
            if callback is not None:
                callback(self)
        return self

    def _episode_loss(self, log_probs: torch.Tensor, entropies: torch.Tensor, rewards: list[float]) -> torch.Tensor:
        """``-sum_t (G_t - b) log pi(a_t|s_t) - entropy_coef * sum_t H_t``; b moves toward the return."""
        to_go, running = [], 0.0  # returns-to-go G_t = r_t + gamma * G_{t+1}
        for r in reversed(rewards):
            running = r + self.config.gamma * running
            to_go.append(running)
        to_go = torch.tensor(to_go[::-1], device=self.device)
        episode_return = float(sum(rewards))
        if self.baseline is None:
            self.baseline = episode_return
        advantages = to_go - self.baseline
        c = self.config
        if c.normalize_advantage_decay:
            advantages, self.advantage_square = scale_by_running_rms(advantages, self.advantage_square,
                                                                     c.normalize_advantage_decay)
        loss = -(advantages * log_probs).sum() - c.entropy_coef * entropies.sum()
        self.baseline = c.baseline_decay * self.baseline + (1 - c.baseline_decay) * episode_return
        return loss

    def _update(self, losses: list[torch.Tensor], entropies: list[torch.Tensor]) -> None:
        loss = torch.stack(losses).mean()
        self.optimizer.zero_grad()
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.controller.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        for key, value in {"loss": loss.item(), "baseline": self.baseline, "grad_norm": float(grad_norm),
                           "entropy": torch.cat(entropies).mean().item(),
                           "learning_rate": self.optimizer.param_groups[0]["lr"]}.items():
            self.logger.scalar(f"reinforce/{key}", value, self.env.env_steps)

    # -- proposing whole cells (parallel runs) ------------------------------------------
    def propose(self) -> Decisions:
        """Sample a cell from the controller as an episode would, without stepping the env."""
        env, decisions, state = self.nas_env(), [], None
        with torch.no_grad():
            for _ in range(env.space.num_decisions):
                dist, state = self._policy(*env.preview(decisions), state)
                decisions.append(self.head.one(self.head.draw(dist, self.generator), dist))
        return tuple(decisions)

    def observe(self, decisions: Decisions, score: float) -> None:
        """Queue the cell's episode; every ``batch_episodes``, one update."""
        self.pending.append((tuple(decisions), float(score)))
        if len(self.pending) < self.config.batch_episodes:
            return
        env, losses, entropies = self.nas_env(), [], []
        for cell, cell_score in self.pending:
            state, log_probs = None, []
            for t, action in enumerate(cell):
                dist, state = self._policy(*env.preview(cell[:t]), state)
                _ = dist.probs  # made before log_prob, as sampling in learn() makes it: the same graph, the same sums
                log_probs.append(dist.log_prob(torch.tensor([float(action)], device=self.device)))
                entropies.append(dist.entropy())
            rewards = [0.0] * (len(cell) - 1) + [cell_score]
            losses.append(self._episode_loss(torch.cat(log_probs), torch.cat(entropies[-len(cell):]), rewards))
        self.pending = []
        self._update(losses, entropies)

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None, deterministic: bool = False,
                episode_start: bool = False) -> int | float:
        """Recurrent: ``episode_start=True`` starts the LSTM state afresh."""
        if episode_start:
            self._state = None
        with torch.no_grad():
            dist, self._state = self._policy(obs, action_mask, self._state)
        return self.head.one(self.head.draw(dist, self.generator, deterministic), dist)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pending": [list(c) + [s] for c, s in self.pending]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pending = [(tuple(row[:-1]), float(row[-1])) for row in state.get("pending", [])]
