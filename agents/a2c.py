"""A2C: synchronous advantage actor-critic (Mnih et al. 2016), read top to bottom.

Each iteration collects ``n_steps`` from every env (agents/on_policy.py) and takes one
gradient step on the whole rollout:

    L = -E[A * log pi(a|s)] + vf_coef * E[(V - R)^2] - ent_coef * E[H]

with n-step returns (``gae_lambda=1``, the default, is A2C's plain n-step advantage) and
RMSprop as in SB3 (alpha 0.99, eps 1e-5).

``normalize_advantage_decay`` d > 0 divides the advantages by a running scale instead of
their batch's spread (``normalize_advantage``):

    s_k = d * s_{k-1} + (1 - d) * mean(A_k^2)      (s_1 = mean(A_1^2))
    A  <- A / sqrt(s_k)

(:func:`~rlnas.agents.on_policy.scale_by_running_rms`, which says why).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from torch import nn

from rlnas.agents.base import Callback
from rlnas.agents.on_policy import ACTOR_CRITIC_RANGES, ActorCriticAgent, explained_variance, scale_by_running_rms
from rlnas.agents.registry import register
from rlnas.monitor import Budget
from rlnas.ranges import DECAY, check


@register("a2c")
class A2C(ActorCriticAgent):
    """Constructor defaults are SB3's (an MLP policy); conf/agent/a2c.yaml holds the NAS setting."""

    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu", policy: str = "mlp",
                 hidden_sizes: tuple[int, ...] = (64, 64), learning_rate: float = 7e-4, n_steps: int = 5,
                 gamma: float = 0.99, gae_lambda: float = 1.0, ent_coef: float = 0.0, vf_coef: float = 0.5,
                 max_grad_norm: float = 0.5, normalize_advantage: bool = False, anneal: bool = False,
                 center_values: bool = False, shared_lstm: bool = False, normalize_advantage_decay: float = 0.0):
        check(self.name, locals(), {**ACTOR_CRITIC_RANGES, "normalize_advantage_decay": DECAY})
        if normalize_advantage and normalize_advantage_decay:
            raise ValueError("a2c: normalize_advantage=True and normalize_advantage_decay > 0 both scale the "
                             "advantages; choose one (per batch, or by a running scale)")
        super().__init__(env, seed, device, policy, list(hidden_sizes), n_steps, gamma, gae_lambda,
                         center_values, shared_lstm)
        self.learning_rate, self.ent_coef, self.vf_coef = learning_rate, ent_coef, vf_coef
        self.max_grad_norm, self.normalize_advantage, self.anneal = max_grad_norm, normalize_advantage, anneal
        self.normalize_advantage_decay = normalize_advantage_decay
        self.advantage_square: float | None = None  # s_k, the running mean of A^2
        self.optimizer = torch.optim.RMSprop(self.policy.parameters(), lr=learning_rate, alpha=0.99, eps=1e-5)

    def learn(self, budget: Budget, callback: Callback | None = None) -> A2C:
        params = list(self.policy.parameters())
        while (r := self.collect(budget)) is not None:
            remaining = 1.0 - self.env.env_steps / budget.env_steps if self.anneal and budget.env_steps else 1.0
            self.optimizer.param_groups[0]["lr"] = lr = self.learning_rate * remaining
            log_probs, entropy, values = self.evaluate_actions(r.obs, r.actions, r.masks, r.starts, r.initial_state)
            advantages = r.advantages
            if self.normalize_advantage:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            if self.normalize_advantage_decay:
                advantages, self.advantage_square = scale_by_running_rms(advantages, self.advantage_square,
                                                                         self.normalize_advantage_decay)

            policy_loss = -(advantages * log_probs).mean()
            value_loss = ((values - r.returns) ** 2).mean()
            loss = policy_loss + self.vf_coef * value_loss - self.ent_coef * entropy.mean()

            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, self.max_grad_norm)
            self.optimizer.step()
            self.updates += 1
            if self.updates % 10 == 0:  # per-update logging would cost more than the update
                self.log_update({"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                                 "entropy": entropy.mean().item(), "learning_rate": lr,
                                 "explained_variance": explained_variance(r.values.flatten(), r.returns.flatten())})
            if callback is not None:
                callback(self)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "advantage_square": self.advantage_square}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.advantage_square = state.get("advantage_square")
