"""A2C: synchronous advantage actor-critic (Mnih et al. 2016), read top to bottom.

Each iteration collects ``n_steps`` from every env (agents/on_policy.py) and takes one
gradient step on the whole rollout, with RMSprop as in SB3 (alpha 0.99, eps 1e-5):

    L = -E[A * log pi(a|s)] + vf_coef * E[(V - R)^2] - ent_coef * E[H]

``normalize_advantage_decay`` d > 0 divides the advantages by a running scale,
``A / sqrt(s_k)`` with ``s_k = d s_{k-1} + (1 - d) mean(A_k^2)``, instead of their batch's spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from rlnas.agents.base import Callback
from rlnas.agents.on_policy import ActorCriticAgent, ActorCriticConfig, explained_variance, scale_by_running_rms
from rlnas.core.settings import DECAY, INT_AT_LEAST_1, POSITIVE, UNIT, setting
from rlnas.envs.monitor import Budget


@dataclass
class A2CConfig(ActorCriticConfig):
    """SB3's defaults. ``nas``: an LSTM controller with a centred critic LSTM of its own, one
    update per NB201 cell, advantages on a running scale (docs/benchmarks.md, "Every agent on
    NB201"). ``cartpole``: RL-Zoo's."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(policy="lstm", hidden_sizes=[64], learning_rate=0.01, n_steps=6, gamma=1.0, ent_coef=0.03,
                    max_grad_norm=1.0, normalize_advantage_decay=0.95, center_values=True),
        "cartpole": dict(),
    }
    learning_rate: float = setting(7e-4, "RMSprop's learning rate (alpha 0.99, eps 1e-5, as SB3's)", POSITIVE)
    n_steps: int = setting(5, "steps collected from each env per update", INT_AT_LEAST_1)
    gae_lambda: float = setting(1.0, "GAE's lambda (1: A2C's plain n-step advantage)", UNIT)
    normalize_advantage: bool = setting(False, "standardise advantages per update")
    normalize_advantage_decay: float = setting(0.0, "d > 0: divide advantages by a running RMS, s = d s + (1 - d) "
                                                    "mean(A^2)", DECAY)

    def validate(self) -> None:
        super().validate()
        if self.normalize_advantage and self.normalize_advantage_decay:
            raise ValueError(f"{self.owner}: normalize_advantage=True and normalize_advantage_decay > 0 both scale "
                             "the advantages; choose one (per batch, or by a running scale)")


class A2C(ActorCriticAgent):
    Config = A2CConfig
    name = "a2c"
    checkpointed = (*ActorCriticAgent.checkpointed, "advantage_square")
    config: A2CConfig

    def __init__(self, env, config: A2CConfig | None = None, seed: int = 0, device: str = "cpu", **settings):
        super().__init__(env, config, seed, device, **settings)
        self.advantage_square: float | None = None  # s_k, the running mean of A^2
        self.optimizer = torch.optim.RMSprop(self.policy.parameters(), lr=self.config.learning_rate, alpha=0.99,
                                             eps=1e-5)

    def learn(self, budget: Budget, callback: Callback | None = None) -> A2C:
        params, c = list(self.policy.parameters()), self.config
        while (r := self.collect(budget)) is not None:
            remaining = 1.0 - self.env.env_steps / budget.env_steps if c.anneal and budget.env_steps else 1.0
            self.optimizer.param_groups[0]["lr"] = lr = c.learning_rate * remaining
            log_probs, entropy, values = self.evaluate_actions(r.obs, r.actions, r.masks, r.starts, r.initial_state)
            advantages = r.advantages
            if c.normalize_advantage:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            if c.normalize_advantage_decay:
                advantages, self.advantage_square = scale_by_running_rms(advantages, self.advantage_square,
                                                                         c.normalize_advantage_decay)

            policy_loss = -(advantages * log_probs).mean()
            value_loss = ((values - r.returns) ** 2).mean()
            loss = policy_loss + c.vf_coef * value_loss - c.ent_coef * entropy.mean()

            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, c.max_grad_norm)
            self.optimizer.step()
            self.updates += 1
            if self.updates % 10 == 0:  # per-update logging would cost more than the update
                self.log_update({"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                                 "entropy": entropy.mean().item(), "learning_rate": lr,
                                 "explained_variance": explained_variance(r.values.flatten(), r.returns.flatten())})
            if callback is not None:
                callback(self)
        return self
